"""`COLUMN_COMPILERS` is the one place a column type is compiled: it covers every registered
type, and nothing outside it decides how a column becomes steps or which Arrow type it has."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pyarrow as pa
import pytest

from rowforge.config.columns import (
    COLUMN_TYPES,
    NUMPY_DISTRIBUTIONS,
    BernoulliMixtureSampler,
    BernoulliSampler,
    BinomialSampler,
    CategorySampler,
    Column,
    ExpressionColumn,
    GaussianSampler,
    IntegerSampler,
    LLMStructuredColumn,
    PoissonSampler,
    ScipySampler,
    SeedDatasetColumns,
    SubcategorySampler,
    TimedeltaSampler,
    UUIDSampler,
)
from rowforge.config.compile import COLUMN_COMPILERS, NUMPY_DRAWS, column_type, compile_config
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError
from rowforge.processors import DropColumns, RenameColumns


@pytest.mark.parametrize("name", sorted(COLUMN_TYPES))
def test_every_registered_column_type_has_a_compiler(name: str) -> None:
    assert COLUMN_TYPES[name] in COLUMN_COMPILERS, (
        f"column type {name!r} is registered in COLUMN_TYPES but has no COLUMN_COMPILERS entry"
    )


def test_the_table_compiles_only_registered_column_types() -> None:
    assert set(COLUMN_COMPILERS) == set(COLUMN_TYPES.values())


@attrs.frozen(kw_only=True)
class Unregistered(Column):
    TYPE: ClassVar[str] = "unregistered"


@attrs.frozen(kw_only=True)
class TenToTwenty(IntegerSampler):
    """A subclass nobody registered: it compiles like the type it extends."""

    TYPE: ClassVar[str] = "ten_to_twenty"
    low: int = 10
    high: int = 20


def test_a_column_type_without_a_compiler_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="column 'x': no generator for type 'unregistered'"):
        compile_config(DatasetConfig([Unregistered(name="x")]))


def test_an_unregistered_subclass_compiles_like_its_registered_base() -> None:
    compiled = compile_config(DatasetConfig([TenToTwenty(name="n")]))
    (step,) = compiled.steps
    assert step.kind == "batch" and not step.depends_on
    assert compiled.column_types == {"n": pa.int64()}


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (CategorySampler(name="c", values=[True, False]), pa.bool_()),
        (CategorySampler(name="c", values=[1, 2]), pa.int64()),
        (CategorySampler(name="c", values=[1, 2.5]), pa.float64()),
        (CategorySampler(name="c", values=["a", None]), None),
        (
            LLMStructuredColumn(
                name="v",
                model="m",
                prompt="p",
                output_schema={"type": "object", "properties": {"s": {"type": "integer"}}},
            ),
            pa.struct([pa.field("s", pa.int64())]),
        ),
        (BinomialSampler(name="b", n=3, p=0.5), pa.int64()),
        (PoissonSampler(name="p", mean=2), pa.int64()),
        (BernoulliMixtureSampler(name="m", p=0.5, dist_name="norm"), pa.float64()),
        (
            BernoulliMixtureSampler(
                name="m", p=0.5, dist_name="binom", dist_params={"n": 2, "p": 1}
            ),
            pa.int64(),
        ),
        (ScipySampler(name="s", dist_name="gamma", dist_params={"a": 2}), pa.float64()),
        (ScipySampler(name="s", dist_name="geom", dist_params={"p": 0.5}), pa.int64()),
        (SubcategorySampler(name="s", category="c", values={"a": ["x"]}), pa.string()),
        (SubcategorySampler(name="s", category="c", values={"a": [1], "b": [2.5]}), pa.float64()),
        (
            TimedeltaSampler(name="t", dt_min=0, dt_max=1, reference_column_name="d"),
            pa.string(),
        ),
        (GaussianSampler(name="g", convert_to="int"), pa.int64()),
        (BernoulliSampler(name="b", convert_to="str"), pa.string()),
        (
            IntegerSampler(name="i", conditional_params={"c": {"low": 5}}, convert_to="float"),
            pa.float64(),
        ),
        (ExpressionColumn(name="e", template="{{ 1 }}", dtype="bool"), pa.bool_()),
        (ExpressionColumn(name="e", template="{{ 1 }}", dtype="float"), pa.float64()),
        (ExpressionColumn(name="e", template="{{ 1 }}", dtype="int"), pa.int64()),
    ],
)
def test_arrow_types_come_from_the_table(column: Column, expected: Any) -> None:
    assert column_type(column) == expected


def test_numpy_draws_every_distribution_a_mixture_draws_without_scipy() -> None:
    assert set(NUMPY_DRAWS) == set(NUMPY_DISTRIBUTIONS)


def test_hidden_steps_are_those_not_named_after_an_output(tmp_path: Any) -> None:
    data = tmp_path / "seed.csv"
    data.write_text("a,b\n1,2\n")
    seed = SeedDatasetColumns(name="rows", columns=["a", "b"], path=str(data))
    compiled = compile_config(DatasetConfig([seed]))
    assert [step.name for step in compiled.steps] == ["_seed_rows", "a", "b"]
    assert compiled.processors == (DropColumns(["_seed_rows"]),)


def test_dropped_columns_are_removed_after_the_processors_under_the_names_they_then_have() -> None:
    columns = [
        UUIDSampler(name="a", drop=True),
        UUIDSampler(name="b", drop=True),
        UUIDSampler(name="c", drop=True),
        UUIDSampler(name="kept"),
    ]
    rename = RenameColumns({"a": "renamed"}, stage="pre_batch")
    drop = DropColumns(["b"])
    compiled = compile_config(DatasetConfig(columns, processors=[rename, drop]))
    assert compiled.processors == (rename, drop, DropColumns(["renamed", "c"]))


def test_a_config_that_drops_nothing_gets_no_drop_processor() -> None:
    assert compile_config(DatasetConfig([UUIDSampler(name="a")])).processors == ()
