"""One Arrow schema per run: structured replies that drift between row groups still read back.

Before this, pyarrow inferred each file's types from its own values: an `llm_structured` field
that was whole numbers in one row group and fractions in another, or a key present in one and
missing in another, made `pd.read_parquet(dir)` and `pyarrow.dataset` fail with ArrowInvalid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rowforge
from rowforge.config.columns import LLMStructuredColumn, SeedDatasetColumns
from rowforge.config.dataset import DatasetConfig
from rowforge.models import ModelConfig
from rowforge.storage.arrow_types import RunSchema, conform, json_schema_type
from rowforge.storage.check import first_violation

SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer"},
        "ratio": {"type": "number"},
        "note": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "detail": {
            "type": "object",
            "properties": {"depth": {"type": "integer"}, "ok": {"type": "boolean"}},
            "required": ["depth"],
        },
        "anything": {},
        "maybe": {"type": ["integer", "null"]},
    },
    "required": ["score", "ratio"],
}


def reply_for(record: int) -> dict[str, Any]:
    """What the model answers for a record: each row group (10 records) drifts differently."""
    group = record // 10
    if group == 0:  # whole numbers only, optional keys missing
        return {"score": 3, "ratio": 1}
    if group == 1:  # whole floats for integers, every key present, a key the schema lacks
        return {
            "score": 4.0,
            "ratio": 0.5,
            "note": "n",
            "tags": ["a", "b"],
            "detail": {"depth": 2.0, "ok": True},
            "anything": {"free": [1, "x"]},
            "maybe": None,
            "unexpected": 1,
        }
    if group == 2:  # other optional keys, different shapes in the free-form field
        return {"score": 5, "ratio": 2, "tags": [], "anything": 7, "maybe": 9}
    return {"score": 2.5, "ratio": 0.1}  # group 3: not an integer: the row must be dropped


class ScriptedClient:
    """A model client whose reply depends only on the record index in the prompt."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    async def complete(self, messages: list[dict[str, str]], *, json_schema: Any = None) -> str:
        record = int(re.findall(r"\d+", messages[-1]["content"])[0])
        return json.dumps(reply_for(record))

    async def aclose(self) -> None:
        return None


@pytest.fixture
def drifting(monkeypatch: pytest.MonkeyPatch) -> DatasetConfig:
    monkeypatch.setattr("rowforge.models.registry.create_client", ScriptedClient)
    return DatasetConfig(
        columns=[
            SeedDatasetColumns(
                name="records", columns=("k",), frame=pd.DataFrame({"k": range(40)})
            ),
            LLMStructuredColumn(
                name="verdict",
                model="judge",
                prompt="record {{ k }}",
                output_schema=SCHEMA,
                max_parse_retries=0,
            ),
        ],
        models=[ModelConfig(alias="judge")],
    )


def test_replies_that_drift_across_row_groups_read_back_as_one_table(
    tmp_path: Path, drifting: DatasetConfig
) -> None:
    output = tmp_path / "out"
    result = rowforge.build(drifting, 40, output, rowforge.RunConfig(buffer_size=10))

    frame = pd.read_parquet(output / "parquet-files")
    table = pads.dataset(output / "parquet-files").to_table()
    assert len(frame) == table.num_rows == 30
    assert sorted(frame.index) == list(range(30))
    expected_type = json_schema_type(SCHEMA)
    assert table.schema.field("verdict").type == expected_type
    by_record = frame["verdict"].to_dict()
    assert by_record[0]["score"] == 3 and by_record[0]["ratio"] == 1.0
    assert by_record[0]["note"] is None and by_record[0]["detail"] is None
    assert by_record[12]["score"] == 4 and by_record[12]["detail"] == {"depth": 2, "ok": True}
    assert json.loads(by_record[12]["anything"]) == {"free": [1, "x"]}
    assert "unexpected" not in by_record[12]
    assert by_record[25]["maybe"] == 9 and json.loads(by_record[25]["anything"]) == 7

    metadata = result.metadata
    assert metadata["schema"]["verdict"] == str(expected_type)
    assert metadata["dropped_records"] == 10
    (reason,) = metadata["row_groups"][3]["drop_reasons"]
    assert "step 'verdict' failed" in reason and "2.5 is not of type 'integer'" in reason
    assert first_violation(output) is None


def test_resumed_row_groups_get_the_schema_of_the_files_already_written(
    tmp_path: Path, drifting: DatasetConfig
) -> None:
    output = tmp_path / "out"
    rowforge.build(drifting, 40, output, rowforge.RunConfig(buffer_size=10))
    (output / "parquet-files" / "batch_00000.parquet").unlink()
    rowforge.resume(output, drifting)
    table = pads.dataset(output / "parquet-files").to_table()
    assert table.num_rows == 30
    assert first_violation(output) is None


def test_an_undeclared_column_keeps_the_type_its_first_row_group_had(tmp_path: Path) -> None:
    schema = RunSchema()
    first = pd.DataFrame({"x": [1, 2]}, index=pd.Index([0, 1], name="record_index"))
    later = pd.DataFrame({"x": [3.0, None]}, index=pd.Index([2, 3], name="record_index"))
    assert schema.table(0, first).schema.field("x").type == pa.int64()
    assert schema.table(1, later).schema.field("x").type == pa.int64()
    clash = pd.DataFrame({"x": ["three"]}, index=pd.Index([4], name="record_index"))
    with pytest.raises(
        ValueError, match=r"row group 2: column 'x' does not fit the run's type int64"
    ):
        schema.table(2, clash)
    halves = pd.DataFrame({"x": [4.5]}, index=pd.Index([5], name="record_index"))
    with pytest.raises(  # a truncating float is named too (not the record index)
        ValueError, match=r"row group 3: column 'x' does not fit the run's type int64"
    ):
        schema.table(3, halves)
    assert schema.describe() == {"x": "int64"}


@pytest.mark.parametrize(
    ("value", "schema", "problem"),
    [
        (2.5, {"type": "integer"}, r"\$: 2.5 does not fit the schema's integer"),
        (True, {"type": "integer"}, r"\$: True does not fit the schema's integer"),
        ("1", {"type": "number"}, r"\$: '1' does not fit the schema's number"),
        (
            {"a": [1, "x"]},
            {
                "type": "object",
                "properties": {"a": {"type": "array", "items": {"type": "integer"}}},
            },
            r"\$\.a\[1\]: 'x' does not fit the schema's integer",
        ),
    ],
)
def test_conform_names_the_path_of_a_value_that_cannot_be_stored(
    value: Any, schema: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        conform(value, schema)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "score": st.integers(-5, 5),
                "ratio": st.integers(0, 9) | st.floats(0, 1),
                "anything": json_values,
            }
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_valid_documents_convert_to_the_declared_type(documents: list[dict[str, Any]]) -> None:
    values = [conform(document, SCHEMA) for document in documents]
    array = pa.array(values, type=json_schema_type(SCHEMA))
    assert array.to_pylist()[0]["score"] == documents[0]["score"]


def _ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def _whole_floats_first(row: dict[str, Any]) -> float | int:
    """Row group 0 holds floats, the rest ints: the first file written fixes float64."""
    return float(row["id"]) if row["id"] < 10 else row["id"]


def test_a_resumed_row_group_of_an_undeclared_column_keeps_the_written_files_type(
    tmp_path: Path,
) -> None:
    from rowforge.build import build_steps, resume
    from rowforge.scheduler import Step

    steps = [
        Step("id", _ids, kind="batch"),
        Step("value", _whole_floats_first, depends_on=["id"]),
    ]
    config = rowforge.RunConfig(buffer_size=10, max_concurrent_row_groups=1)
    output = tmp_path / "out"
    build_steps(steps, 30, output, config=config)
    (output / "parquet-files" / "batch_00001.parquet").unlink()  # a row group of ints
    resume(output, steps=steps, config=config)
    files = sorted((output / "parquet-files").glob("batch_*.parquet"))
    assert [pq.read_schema(f).field("value").type for f in files] == [pa.float64()] * 3
    assert pd.read_parquet(output / "parquet-files")["value"].dtype == "float64"
    assert first_violation(output) is None
