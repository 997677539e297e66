"""Survivors of `make mutants` in rowforge.storage.arrow_types, killed: which Arrow type a JSON
schema gets, which struct fields may be null, and how values are conformed to that type."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from rowforge.storage.arrow_types import RunSchema, conform, json_schema_type

INTEGER = {"type": "integer"}
JSON_TEXT_SCHEMAS = {
    "several types": {"type": ["integer", "string"]},
    "several types and null": {"type": ["integer", "string", "null"]},
    "nothing said": {},
    "an enum of numbers": {"enum": [1, 2]},
    "an enum of only null": {"enum": [None]},
    "an object without properties": {"type": "object"},
    "an array without items": {"type": "array"},
    "an array of several shapes": {"type": "array", "items": {"anyOf": [INTEGER]}},
    **{
        f"properties beside {key} and no type": {
            "properties": {"x": INTEGER},
            key: [{"required": ["x"]}] if key != "$ref" else "#/definitions/x",
        }
        for key in ("anyOf", "oneOf", "allOf", "$ref")
    },
}


def field_of(schema: dict[str, Any], name: str = "f", required: bool = True) -> pa.Field:
    """The struct field `name` gets when `schema` is one property of an object."""
    parent = {"type": "object", "properties": {name: schema}}
    if required:
        parent["required"] = [name]
    return json_schema_type(parent).field(name)


@pytest.mark.parametrize("schema", JSON_TEXT_SCHEMAS.values(), ids=JSON_TEXT_SCHEMAS.keys())
def test_a_schema_that_allows_several_shapes_is_stored_as_json_text(schema: dict[str, Any]) -> None:
    assert json_schema_type(schema) == pa.string()


def test_json_text_is_stored_with_sorted_keys_and_unescaped_unicode() -> None:
    assert conform({"b": 1, "a": "é"}, {}) == '{"a": "é", "b": 1}'
    assert conform("café", {"type": ["string", "integer"]}) == '"café"'
    assert conform(3, {"enum": [1, 3]}) == "3"


def test_a_missing_json_text_value_stays_missing_rather_than_the_text_null() -> None:
    assert conform(None, {}) is None


def test_an_object_without_a_type_but_with_properties_is_a_struct() -> None:
    schema = {"properties": {"x": INTEGER}, "required": ["x"]}
    assert json_schema_type(schema) == pa.struct([pa.field("x", pa.int64(), nullable=False)])
    assert conform({"x": 2.0, "extra": 1}, schema) == {"x": 2}


def test_a_type_beside_anyof_fixes_the_shape() -> None:
    schema = {"type": "object", "properties": {"x": INTEGER}, "anyOf": [{"required": ["x"]}]}
    assert json_schema_type(schema) == pa.struct([pa.field("x", pa.int64())])


def test_an_enum_of_strings_is_a_string_column_and_its_values_stay_plain_strings() -> None:
    assert json_schema_type({"enum": ["a", "b"]}) == pa.string()
    assert conform("a", {"enum": ["a", "b"]}) == "a"
    assert conform("a", {"enum": ["a", None]}) == "a"


def test_a_required_field_is_not_nullable_unless_its_schema_allows_null_or_several_shapes() -> None:
    assert not field_of(INTEGER).nullable
    assert not field_of({"type": ["integer"]}).nullable
    assert not field_of({"enum": ["a", "b"]}).nullable
    assert not field_of({"properties": {"x": INTEGER}}).nullable
    assert field_of({"type": ["integer", "null"]}).nullable
    assert field_of({"enum": ["a", None]}).nullable
    assert field_of({"anyOf": [INTEGER]}).nullable
    assert field_of(INTEGER, required=False).nullable


def test_a_property_whose_schema_is_true_holds_anything_as_json_text() -> None:
    schema = {"type": "object", "properties": {"anything": True}}
    assert json_schema_type(schema) == pa.struct([pa.field("anything", pa.string())])
    assert conform({"anything": [1, "x"]}, schema) == {"anything": '[1, "x"]'}


def test_a_nullable_integer_is_an_integer_column() -> None:
    assert field_of({"type": ["integer", "null"]}).type == pa.int64()
    assert conform(4.0, {"type": ["null", "integer"]}) == 4


@pytest.mark.parametrize(
    ("value", "schema", "message"),
    [
        ("x", {"type": "object", "properties": {"a": INTEGER}}, "$: expected an object, got str"),
        (
            {"a": 5},
            {"type": "object", "properties": {"a": {"type": "array", "items": INTEGER}}},
            "$.a: expected an array, got int",
        ),
    ],
)
def test_a_value_of_the_wrong_shape_is_refused_naming_its_path_and_what_it_was(
    value: Any, schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as error:
        conform(value, schema)
    assert str(error.value) == message


def test_a_row_group_that_does_not_fit_names_the_column_at_fault_not_one_with_missing_values() -> (
    None
):
    schema = RunSchema({"a": pa.int64(), "b": pa.int64()})
    frame = pd.DataFrame({"a": [1.0, math.nan], "b": ["x", "y"]})
    with pytest.raises(ValueError, match="row group 3: column 'b' does not fit"):
        schema.table(3, frame)


def test_an_index_that_is_not_an_integer_is_named_when_it_does_not_fit() -> None:
    frame = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["p", "q"], name="id"))
    with pytest.raises(ValueError, match="column 'id' does not fit"):
        RunSchema({"a": pa.int64()}).table(0, frame)


def test_on_resume_the_files_types_hold_for_their_columns_but_not_for_the_record_index() -> None:
    frame = pd.DataFrame({"a": [1, 2]}, index=pd.Index([0, 1], name="record_index"))
    existing = pa.Table.from_pandas(frame, preserve_index=True).schema
    resumed = RunSchema(existing=existing)
    assert resumed.describe() == {"a": "int64"}
    later = pd.DataFrame({"a": [None, None]}, index=pd.Index([2, 3], name="record_index"))
    assert resumed.table(1, later).schema.field("a").type == pa.int64()


def test_on_resume_files_without_pandas_metadata_lock_every_column() -> None:
    resumed = RunSchema(existing=pa.schema([pa.field("a", pa.int64())]))
    assert resumed.describe() == {"a": "int64"}
