"""Compile a `DatasetConfig` into engine steps, processors and per-model caps.

Theory of operation
-------------------
Each column becomes one `Step` named after it (a seed dataset becomes a hidden loader step plus
one cheap batch step per output column; a post-batch `DropColumns` removes the hidden column).
How is data, not code: `COLUMN_COMPILERS`, at the end of this module, maps every registered
column type (`columns.COLUMN_TYPES`) to a `ColumnCompiler`, its steps and its Arrow type; adding
a column type is one entry there, and a test fails while a registered type has none.
Samplers are batch steps with no inputs (seed steps): each row draws from its own
`random.Random` keyed by (config seed, column, record index), so values are reproducible and
independent of row-group boundaries and engines. Expressions and LLM columns are cell steps:
a row moves on as soon as its own inputs are ready. Templates are compiled once per column.

LLM steps call clients from a `ModelRegistry` (`rowforge.models.registry`), an async context
manager the run enters around the engine, so HTTP sessions are opened in the run's event loop
and always closed.

Each column's Arrow type is decided here too (`column_types`), from its type and, for a
structured LLM column, its `output_schema`; a structured reply is conformed to that type in the
step (a reply that cannot be stored fails its cell, and the row is dropped with the reason), so
every file of a run has one schema (see `rowforge.storage.arrow_types`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs
import pandas as pd
import pyarrow as pa

from rowforge.config.columns import (
    BernoulliSampler,
    CategorySampler,
    Column,
    CustomColumn,
    DatetimeSampler,
    ExpressionColumn,
    GaussianSampler,
    IntegerSampler,
    LLMStructuredColumn,
    LLMTextColumn,
    PersonSampler,
    SeedDatasetColumns,
    UniformSampler,
    UUIDSampler,
)
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError
from rowforge.importing import resolve
from rowforge.models.registry import ModelRegistry
from rowforge.processors import DropColumns, Processor
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.arrow_types import conform, json_schema_type
from rowforge.templates import compile_template, render


@attrs.frozen
class CompiledConfig:
    """What the engine runs for a config."""

    steps: tuple[Step, ...]
    processors: tuple[Processor, ...]
    run_config: RunConfig
    registry: ModelRegistry
    column_types: dict[str, pa.DataType] = attrs.field(factory=dict)


@attrs.frozen
class CompileContext:
    """What a column's compiler may read besides the column itself."""

    seed: int
    #: The run's record count; None when only validating (a check that needs it waits).
    num_records: int | None
    registry: ModelRegistry


C = TypeVar("C", bound=Column)


@attrs.frozen
class ColumnCompiler(Generic[C]):
    """How a column type becomes engine steps, and the Arrow type of its values.

    `steps` returns the column's steps: one named after the column, or (seed data) one per
    output column plus hidden helper steps, which are those not named after an output; a
    post-batch `DropColumns` removes them. `arrow_type` returns None when only the values can
    tell (custom Python, seed data, a category of mixed values): the run then locks the first
    type seen.
    """

    steps: Callable[[C, CompileContext], tuple[Step, ...]]
    arrow_type: Callable[[C], pa.DataType | None]


def compile_config(
    config: DatasetConfig, run_config: RunConfig | None = None, num_records: int | None = None
) -> CompiledConfig:
    """Steps, processors and a RunConfig whose per-model caps come from the model configs."""
    run_config = run_config or RunConfig()
    caps = {m.alias: m.max_parallel_requests for m in config.models}
    caps.update(run_config.max_parallel_requests)
    run_config = attrs.evolve(run_config, max_parallel_requests=caps, seed=config.seed)
    registry = ModelRegistry(config.models)
    context = CompileContext(config.seed, num_records, registry)
    steps: list[Step] = []
    hidden: list[str] = []
    for column in config.columns:
        compiled = compiler_for(column).steps(column, context)
        steps.extend(compiled)
        hidden.extend(step.name for step in compiled if step.name not in column.outputs())
    processors: list[Processor] = list(config.processors)
    if hidden:
        processors.insert(0, DropColumns(hidden))
    types = {c.name: kind for c in config.columns if (kind := column_type(c)) is not None}
    return CompiledConfig(tuple(steps), tuple(processors), run_config, registry, types)


def compiler_for(column: Column) -> ColumnCompiler[Any]:
    """The `COLUMN_COMPILERS` entry of `column`'s type, or of the nearest registered base class
    (a subclass compiles like the type it extends)."""
    for cls in type(column).__mro__:
        compiler = COLUMN_COMPILERS.get(cls)
        if compiler is not None:
            return compiler
    raise ConfigError(f"column {column.name!r}: no generator for type {column.TYPE!r}")


def column_type(column: Column) -> pa.DataType | None:
    """The Arrow type of `column`'s values, or None when only the values can tell."""
    return compiler_for(column).arrow_type(column)


def _fixed(kind: pa.DataType) -> Callable[[Column], pa.DataType]:
    return lambda _: kind


def _values_decide(_: Column) -> None:
    return None


def _category_type(column: CategorySampler) -> pa.DataType | None:
    values = column.values
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string() if all(isinstance(v, str) for v in values) else None


def _structured_type(column: LLMStructuredColumn) -> pa.DataType:
    return json_schema_type(column.output_schema)


# -- samplers ----------------------------------------------------------------------------------

#: Draws one value from the row's own generator (the second argument is the record index).
Draw = Callable[[random.Random, Any], Any]


def _rng(seed: int, column: str, index: Any) -> random.Random:
    return random.Random(f"{seed}/{column}/{index}")


def _sampled(draw_for: Callable[[C], Draw]) -> Callable[[C, CompileContext], tuple[Step, ...]]:
    """A sampler's compiler: one batch step with no inputs (a seed step) drawing each row's
    value from `draw_for(column)`."""

    def steps(column: C, context: CompileContext) -> tuple[Step, ...]:
        sample = _sampler(column.name, context.seed, draw_for(column))
        return (Step(column.name, sample, kind="batch"),)

    return steps


def _sampler(name: str, seed: int, draw: Draw) -> Callable[[pd.DataFrame], list[Any]]:
    def sample(frame: pd.DataFrame) -> list[Any]:
        return [draw(_rng(seed, name, index), index) for index in frame.index]

    return sample


def _draw_category(column: CategorySampler) -> Draw:
    values, weights = list(column.values), column.weights
    return lambda rng, _: rng.choices(values, weights=weights)[0]


def _draw_uniform(column: UniformSampler) -> Draw:
    return lambda rng, _: rng.uniform(column.low, column.high)


def _draw_gaussian(column: GaussianSampler) -> Draw:
    return lambda rng, _: rng.gauss(column.mean, column.stddev)


def _draw_integer(column: IntegerSampler) -> Draw:
    return lambda rng, _: rng.randint(column.low, column.high)


def _draw_bernoulli(column: BernoulliSampler) -> Draw:
    return lambda rng, _: rng.random() < column.p


def _draw_uuid(_: UUIDSampler) -> Draw:
    return lambda rng, _: str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _draw_datetime(column: DatetimeSampler) -> Draw:
    start = dt.datetime.fromisoformat(column.start)
    span = dt.datetime.fromisoformat(column.end) - start
    return lambda rng, _: (start + span * rng.random()).isoformat(timespec="seconds")


def _draw_person(column: PersonSampler) -> Draw:
    from faker import Faker

    faker = Faker(column.locale)
    attribute = column.field

    def person(rng: random.Random, _: Any) -> str:
        faker.seed_instance(rng.getrandbits(64))
        return str(getattr(faker, attribute)())

    return person


# -- expressions and custom Python -------------------------------------------------------------


def _expression_steps(column: ExpressionColumn, _: CompileContext) -> tuple[Step, ...]:
    deps = sorted(column.dependencies())
    template = compile_template(column.template, f"column {column.name!r}.template")
    return (Step(column.name, lambda row: render(template, row), depends_on=deps),)


def _custom_steps(column: CustomColumn, _: CompileContext) -> tuple[Step, ...]:
    deps = sorted(column.dependencies())
    function = column.function
    if isinstance(function, str):
        function = resolve(function)
    step = Step(
        column.name,
        function,
        kind=column.kind,
        depends_on=deps,
        allow_resize=column.allow_resize,
    )
    return (step,)


# -- seed data ---------------------------------------------------------------------------------


def _seed_loader(
    column: SeedDatasetColumns, seed: int, num_records: int | None
) -> Callable[[pd.DataFrame], list[dict[str, Any]]]:
    if column.frame is None and not Path(column.path).is_file():
        raise ConfigError(f"column {column.name!r}.path: no such file {column.path!r}")
    cache: dict[str, pd.DataFrame] = {}

    def table() -> pd.DataFrame:
        if "data" not in cache:
            path = column.path or "the DataFrame"
            if column.frame is not None:
                data = pd.DataFrame(column.frame)
            elif path.endswith(".parquet"):
                data = pd.read_parquet(path)
            else:
                data = pd.read_csv(path)
            missing = [c for c in column.columns if c not in data.columns]
            if missing:
                raise ConfigError(f"column {column.name!r}: {path} has no columns {missing}")
            if data.empty:
                raise ConfigError(f"column {column.name!r}: {path} has no rows")
            cache["data"] = data[list(column.columns)].reset_index(drop=True)
        return cache["data"]

    if column.order == "shuffled" and not column.with_replacement and num_records is not None:
        rows = len(table())
        if num_records > rows:
            raise ConfigError(
                f"column {column.name!r}: {num_records} records without "
                f"replacement from {rows} seed rows"
            )

    def load(frame: pd.DataFrame) -> list[dict[str, Any]]:
        data = table()
        size = len(data)
        if column.order == "ordered":
            picks = [index % size for index in frame.index]
        elif column.with_replacement:
            picks = [_rng(seed, column.name, index).randrange(size) for index in frame.index]
        else:
            order = list(range(size))
            random.Random(f"{seed}/{column.name}").shuffle(order)
            picks = [order[index % size] for index in frame.index]
        records = data.to_dict(orient="records")
        return [records[pick] for pick in picks]

    return load


def _field_of(loader: str, name: str) -> Callable[[pd.DataFrame], list[Any]]:
    return lambda frame: [record[name] for record in frame[loader]]


def _seed_steps(column: SeedDatasetColumns, context: CompileContext) -> tuple[Step, ...]:
    """A hidden loader step (one record per row) and one cheap batch step per output column."""
    loader = f"_seed_{column.name}"
    load = _seed_loader(column, context.seed, context.num_records)
    return (
        Step(loader, load, kind="batch"),
        *(
            Step(name, _field_of(loader, name), kind="batch", depends_on=[loader])
            for name in column.columns
        ),
    )


# -- models ------------------------------------------------------------------------------------


def _messages(column: LLMTextColumn) -> Callable[[dict[str, Any]], list[dict[str, str]]]:
    """The chat messages for a row: the column's templates compiled once, rendered per row."""
    prompt = compile_template(column.prompt, f"column {column.name!r}.prompt")
    system = (
        None
        if column.system_prompt is None
        else compile_template(column.system_prompt, f"column {column.name!r}.system_prompt")
    )

    def messages(row: dict[str, Any]) -> list[dict[str, str]]:
        rendered = [{"role": "user", "content": render(prompt, row)}]
        if system is not None:
            rendered.insert(0, {"role": "system", "content": render(system, row)})
        return rendered

    return messages


def _llm_step(
    column: LLMTextColumn, deps: list[str], generate: Callable[[dict[str, Any]], Any]
) -> Step:
    """A cell step naming its model as the resource, so the model's cap and the early-shutdown
    window apply to it."""
    return Step(column.name, generate, depends_on=deps, resource=column.model)


def _llm_text_steps(column: LLMTextColumn, context: CompileContext) -> tuple[Step, ...]:
    deps = sorted(column.dependencies())
    messages = _messages(column)
    registry = context.registry

    async def generate(row: dict[str, Any]) -> Any:
        rendered = messages(row)
        return await registry.client(column.model).complete(rendered)

    return (_llm_step(column, deps, generate),)


def _llm_structured_steps(column: LLMStructuredColumn, context: CompileContext) -> tuple[Step, ...]:
    """Asks again (up to `max_parse_retries` times) while the reply is not JSON valid for the
    schema or cannot be stored in the column's Arrow type; then the cell fails saying why."""
    deps = sorted(column.dependencies())
    messages = _messages(column)
    registry = context.registry
    schema = dict(column.output_schema)
    retries = column.max_parse_retries

    async def generate(row: dict[str, Any]) -> Any:
        rendered = messages(row)
        client = registry.client(column.model)
        problem = ""
        for _ in range(retries + 1):
            reply = await client.complete(rendered, json_schema=schema)
            document, problem = _parse(reply, schema)
            if not problem:
                try:
                    return conform(document, schema)
                except ValueError as misfit:
                    problem = f"cannot be stored in the column's type: {misfit}"
        raise ValueError(
            f"column {column.name!r}: model output does not match the schema "
            f"after {retries + 1} attempts: {problem}"
        )

    return (_llm_step(column, deps, generate),)


def _parse(reply: str, schema: dict[str, Any]) -> tuple[Any, str]:
    """The parsed document and "" when `reply` is JSON valid for `schema`, else what is wrong."""
    import jsonschema

    try:
        document = json.loads(reply)
    except json.JSONDecodeError as bad_json:
        return None, f"not JSON: {bad_json}"
    mismatch = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(document)
    )
    return document, "" if mismatch is None else mismatch.message


# -- the table ---------------------------------------------------------------------------------

#: Every column type of `rowforge.config.columns.COLUMN_TYPES` and how it compiles. A new column
#: type is one entry here (tests/config/test_compile_table.py fails while one is missing).
COLUMN_COMPILERS: dict[type[Column], ColumnCompiler[Any]] = {
    CategorySampler: ColumnCompiler(_sampled(_draw_category), _category_type),
    UniformSampler: ColumnCompiler(_sampled(_draw_uniform), _fixed(pa.float64())),
    GaussianSampler: ColumnCompiler(_sampled(_draw_gaussian), _fixed(pa.float64())),
    IntegerSampler: ColumnCompiler(_sampled(_draw_integer), _fixed(pa.int64())),
    BernoulliSampler: ColumnCompiler(_sampled(_draw_bernoulli), _fixed(pa.bool_())),
    UUIDSampler: ColumnCompiler(_sampled(_draw_uuid), _fixed(pa.string())),
    DatetimeSampler: ColumnCompiler(_sampled(_draw_datetime), _fixed(pa.string())),
    PersonSampler: ColumnCompiler(_sampled(_draw_person), _fixed(pa.string())),
    ExpressionColumn: ColumnCompiler(_expression_steps, _fixed(pa.string())),
    LLMTextColumn: ColumnCompiler(_llm_text_steps, _fixed(pa.string())),
    LLMStructuredColumn: ColumnCompiler(_llm_structured_steps, _structured_type),
    CustomColumn: ColumnCompiler(_custom_steps, _values_decide),
    SeedDatasetColumns: ColumnCompiler(_seed_steps, _values_decide),
}
