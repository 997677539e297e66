"""`validate_config`: everything `rowforge validate` checks beyond what a config checks itself.

A `DatasetConfig` is checked on construction (types, names, references, processors, and that the
template sandbox does not refuse a template). `validate_config(config)` adds what a run would
only find out later, each reported as a `ConfigError` naming the field path:

- every template (column prompts, system prompts, expression templates, sampler conditions,
  schema_transform templates) rendered once on sample values typed by the upstream column
  types; a template that reads what a value of that type does not have (`{{ verdict.scor }}`
  when the schema says `score`) fails on every row, so it is reported;
- a subcategory (without conditions) whose category column is a `category` sampler with a
  value it has no subcategories for, and a timedelta whose reference column's type is not text
  (every row of either would fail);
- an "openai" model used by a column whose `api_key_env` variable is unset or empty;
- a custom column's function that cannot be imported or is not callable;
- a seed-data file that is missing, unreadable, empty or lacks a declared column;
- then the config is compiled and planned, as a run would (`build` and `preview` run the
  checks above as `check_config`, then compile and plan once for the run itself).

It is part of the public API (`rowforge.validate_config` when the API re-exports it).

Sample values: a category gives its first value (a subcategory its first subcategory), numbers
their lower bound or mean (counts and mixtures 0), a bernoulli `True`, strings a short text,
datetimes and timedeltas an ISO timestamp, a `faker_person` a mapping of every key it has (so
`{{ customer.frist_name }}` is reported), a structured LLM column a document generated from its
schema (the mock model's generator, so every declared property is there); `convert_to` and an
expression's `dtype` give a value of their type. A custom column or a seed-data column gives a
stand-in that has every attribute and item, since nothing says what it holds.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pyarrow as pa

from rowforge.config.columns import (
    FAKER_PERSON_FIELDS,
    BernoulliMixtureSampler,
    BernoulliSampler,
    BinomialSampler,
    CategorySampler,
    Column,
    CustomColumn,
    DatetimeSampler,
    ExpressionColumn,
    FakerPersonSampler,
    GaussianSampler,
    IntegerSampler,
    LLMStructuredColumn,
    LLMTextColumn,
    NumericSampler,
    PersonSampler,
    PoissonSampler,
    Sampler,
    ScipySampler,
    SeedDatasetColumns,
    SubcategorySampler,
    TimedeltaSampler,
    UniformSampler,
    UUIDSampler,
    condition_template,
)
from rowforge.config.seed_files import seed_files
from rowforge.errors import ConfigError, describe_error
from rowforge.importing import resolve
from rowforge.models.config import describe
from rowforge.processors import RenameColumns, SchemaTransform
from rowforge.templates import compile_template

if TYPE_CHECKING:
    from rowforge.config.dataset import DatasetConfig

__all__ = ["check_config", "check_templates", "sample_row", "validate_config"]


def validate_config(config: DatasetConfig) -> None:
    """Raise `ConfigError` (naming the field path) for the first problem a run would meet:
    `check_config`, then compile and plan the config as a run would."""
    from rowforge.config.compile import compile_config
    from rowforge.scheduler import build_plan

    check_config(config)
    compiled = compile_config(config)
    build_plan(compiled.steps, 1, 1)


def check_config(config: DatasetConfig) -> None:
    """Everything `validate_config` checks before it compiles and plans.

    `build` and `preview` call this rather than `validate_config`: they compile the config and
    build the run's plan once themselves, and that plan is the one the run uses.
    """
    from rowforge.config.dataset import DatasetConfig

    if not isinstance(config, DatasetConfig):
        raise ConfigError(f"config: must be a DatasetConfig, got {describe(config)}")
    check_templates(config, strict=True)
    _check_subcategories(config)
    _check_time_references(config)
    _check_api_keys(config)
    _check_functions(config)
    _check_seed_files(config)


# -- templates ---------------------------------------------------------------------------------


def check_templates(config: DatasetConfig, strict: bool = False) -> None:
    """Render every template once on `sample_row(config)`.

    A template the sandbox refuses (`{{ ''.__class__ }}`) is always an error: it would be
    refused on every row. With `strict` (validate), so is one that reads an attribute or item
    the sample values do not have; without it (construction) that is left to validate, since a
    sample is only a guess at the values.
    """
    row = sample_row(config)
    for where, source in _templates(config, row):
        problem = _render_problem(source, row, strict)
        if problem:
            raise ConfigError(f"{where}: {problem}")


def _templates(config: DatasetConfig, row: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field path, source) of every template; adds processor outputs to `row` as it goes."""
    from rowforge.config.processors import processor_kind, template_strings

    for index, column in enumerate(config.columns):
        where = f"columns[{index}] {column.name!r}"
        if isinstance(column, ExpressionColumn):
            yield f"{where}.template", column.template
        if isinstance(column, Sampler):
            for condition in column.conditional_params:
                yield f"{where}.conditional_params[{condition!r}]", condition_template(condition)
        if isinstance(column, LLMTextColumn):
            yield f"{where}.prompt", column.prompt
            if column.system_prompt is not None:
                yield f"{where}.system_prompt", column.system_prompt
    for index, processor in enumerate(config.processors):
        where = f"processors[{index}] {processor_kind(processor)!r}"
        if isinstance(processor, SchemaTransform):
            for path, source in template_strings(processor.template):
                yield f"{where}.template{path}", source
            row.setdefault(processor.column, '{"sample": true}')
        elif isinstance(processor, RenameColumns):
            for old, new in processor.mapping.items():
                row.setdefault(new, row.get(old, Anything()))


def _render_problem(source: str, row: dict[str, Any], strict: bool) -> str | None:
    template = compile_template(source, "template")  # compiled (and cached) by the column
    try:
        template.render(**row)
    except jinja2.exceptions.SecurityError as refused:
        return f"the template sandbox refuses it: {refused}"
    except jinja2.exceptions.UndefinedError as undefined:
        return f"fails on sample values: {undefined}" if strict else None
    except (
        Exception
    ):  # e.g. `{{ 1 / n }}` with a sample n of 0: the sample's fault, not the template's
        return None
    return None


def sample_row(config: DatasetConfig) -> dict[str, Any]:
    """One made-up value per output column, typed like the values a run produces."""
    row: dict[str, Any] = {}
    for column in config.columns:
        if isinstance(column, SeedDatasetColumns):
            row.update((name, Anything()) for name in column.outputs())
        else:
            row[column.name] = _sample(column)
    return row


#: What a converted number or a cast expression gives as its sample, by `convert_to`/`dtype`.
_TYPED_SAMPLES: dict[str, Any] = {"int": 0, "float": 0.0, "str": "0", "bool": True}


def _sample(column: Column) -> Any:
    if isinstance(column, NumericSampler) and column.convert_to is not None:
        return _TYPED_SAMPLES[column.convert_to]
    if isinstance(column, ExpressionColumn) and column.dtype != "str":
        return _TYPED_SAMPLES[column.dtype]
    if isinstance(column, CategorySampler):
        return next((value for value in column.values if value is not None), None)
    if isinstance(column, SubcategorySampler):
        return next(iter(column.values.values()))[0]
    if isinstance(column, UniformSampler | IntegerSampler):
        return column.low
    if isinstance(column, GaussianSampler):
        return column.mean
    if isinstance(column, BinomialSampler | PoissonSampler):
        return 0
    if isinstance(column, BernoulliMixtureSampler | ScipySampler):
        return 0.0
    if isinstance(column, BernoulliSampler):
        return True
    if isinstance(column, UUIDSampler):
        return "00000000-0000-4000-8000-000000000000"
    if isinstance(column, DatetimeSampler):
        return column.start
    if isinstance(column, TimedeltaSampler):
        return "2000-01-01T00:00:00"
    if isinstance(column, PersonSampler):
        return f"sample {column.field}"
    if isinstance(column, FakerPersonSampler):
        return {
            key: column.age_range[0] if key == "age" else f"sample {key}"
            for key in FAKER_PERSON_FIELDS
        }
    if isinstance(column, LLMStructuredColumn):
        from rowforge.models.schema import example_for

        try:
            return example_for(dict(column.output_schema), random.Random(0))
        except Exception:  # a schema the generator cannot follow: nothing to check against
            return Anything()
    if isinstance(column, LLMTextColumn | ExpressionColumn):
        return "sample text"
    return Anything()  # custom columns: nothing says what they return


class Anything:
    """A sample of unknown type: every attribute, item, call and operation gives a sample.

    Underscore names are not provided, so the sandbox's refusal of `x.__class__` still shows,
    nor are the names the sandbox probes to decide whether a call is safe.
    """

    _PROBES = frozenset({"unsafe_callable", "alters_data", "jinja_pass_arg"})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in Anything._PROBES:
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter((self,))

    def __len__(self) -> int:
        return 1

    def __str__(self) -> str:
        return "sample"

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def _same(self, *other: Any) -> Any:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _same
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __round__ = _same


# -- columns read by samplers ------------------------------------------------------------------


def _check_subcategories(config: DatasetConfig) -> None:
    """A subcategory reading a `category` sampler covers every value it can give (its
    conditions' values too): a value without subcategories fails every row that draws it. One
    with conditions of its own is left alone: each may only ever see some of the values."""
    producers = {column.name: column for column in config.columns}
    for index, column in enumerate(config.columns):
        if not isinstance(column, SubcategorySampler) or column.conditional_params:
            continue
        category = producers.get(column.category)
        if not isinstance(category, CategorySampler):
            continue
        given = [category.values, *(variant.values for _, variant in category.variants())]
        missing = [
            value
            for values in given
            for value in values
            if not isinstance(value, str) or value not in column.values
        ]
        if missing:
            raise ConfigError(
                f"columns[{index}] {column.name!r}.values: has no subcategories for "
                f"{missing[0]!r}, a value of column {column.category!r}"
            )


def _check_time_references(config: DatasetConfig) -> None:
    """A timedelta's reference column gives text (ISO timestamps) when its type is known: a
    number or a boolean there fails every row."""
    from rowforge.config.compile import column_type

    producers = {column.name: column for column in config.columns}
    for index, column in enumerate(config.columns):
        if not isinstance(column, TimedeltaSampler):
            continue
        for condition, variant in (("", column), *column.variants()):
            reference = producers.get(variant.reference_column_name)
            kind = None if reference is None else column_type(reference)
            if kind is not None and kind != pa.string():
                field = "reference_column_name"
                if condition:
                    field = f"conditional_params[{condition!r}].{field}"
                raise ConfigError(
                    f"columns[{index}] {column.name!r}.{field}: column "
                    f"{variant.reference_column_name!r} gives {kind} values, not ISO datetimes"
                )


# -- the machine: keys, functions, files -------------------------------------------------------


def _check_api_keys(config: DatasetConfig) -> None:
    used = {column.model for column in config.columns if isinstance(column, LLMTextColumn)}
    for index, model in enumerate(config.models):
        name = model.api_key_env
        if model.provider != "openai" or model.alias not in used or name is None:
            continue
        if not os.environ.get(name, "").strip():
            state = "empty" if name in os.environ else "not set"
            raise ConfigError(
                f"models[{index}] {model.alias!r}.api_key_env: names environment variable "
                f"{name!r}, which is {state}"
            )


def _check_functions(config: DatasetConfig) -> None:
    for index, column in enumerate(config.columns):
        if not isinstance(column, CustomColumn) or not isinstance(column.function, str):
            continue
        where = f"columns[{index}] {column.name!r}.function"
        try:
            function = resolve(column.function)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        except Exception as error:  # importing runs the module's code: anything can happen
            raise ConfigError(
                f"{where}: cannot import {column.function!r}: {describe_error(error)}"
            ) from None
        if not callable(function):
            raise ConfigError(f"{where}: {column.function!r} is not callable: {describe(function)}")


def _check_seed_files(config: DatasetConfig) -> None:
    for index, column in enumerate(config.columns):
        if not isinstance(column, SeedDatasetColumns) or column.frame is not None:
            continue
        where = f"columns[{index}] {column.name!r}"
        path = seed_files(column.path, f"{where}.path")[0]
        try:
            names, rows = _seed_header(path)
        except Exception as error:  # a corrupt or foreign file: pandas/pyarrow say why
            raise ConfigError(
                f"{where}.path: cannot read {path.name}: {describe_error(error)}"
            ) from None
        missing = [name for name in column.columns if name not in names]
        if missing:
            what = f"column {missing[0]!r}" if len(missing) == 1 else f"columns {missing}"
            raise ConfigError(f"{where}.columns: {path.name} has no {what}; it has {names}")
        if not rows:
            raise ConfigError(f"{where}.path: {path.name} has no rows")


def _seed_header(path: Path) -> tuple[list[str], int]:
    """Column names and (for CSV, at least) whether there is a row, without reading it all."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(path).metadata
        return list(metadata.schema.to_arrow_schema().names), metadata.num_rows
    import pandas as pd

    head = pd.read_csv(path, nrows=1)
    return [str(name) for name in head.columns], len(head)
