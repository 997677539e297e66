"""Compile a `DatasetConfig` into engine steps, processors and per-model caps.

Theory of operation
-------------------
Each column becomes one `Step` named after it (a seed dataset becomes a hidden loader step plus
one cheap batch step per output column; a post-batch `DropColumns` removes the hidden column).
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
from typing import Any

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


def compile_config(
    config: DatasetConfig, run_config: RunConfig | None = None, num_records: int | None = None
) -> CompiledConfig:
    """Steps, processors and a RunConfig whose per-model caps come from the model configs."""
    run_config = run_config or RunConfig()
    caps = {m.alias: m.max_parallel_requests for m in config.models}
    caps.update(run_config.max_parallel_requests)
    run_config = attrs.evolve(run_config, max_parallel_requests=caps, seed=config.seed)
    registry = ModelRegistry(config.models)
    steps: list[Step] = []
    hidden: list[str] = []
    for column in config.columns:
        if isinstance(column, SeedDatasetColumns):
            loader = f"_seed_{column.name}"
            hidden.append(loader)
            steps.append(Step(loader, _seed_loader(column, config.seed, num_records), kind="batch"))
            steps.extend(
                Step(name, _field_of(loader, name), kind="batch", depends_on=[loader])
                for name in column.columns
            )
        else:
            steps.append(_step(column, config, registry))
    processors: list[Processor] = list(config.processors)
    if hidden:
        processors.insert(0, DropColumns(hidden))
    types = {c.name: kind for c in config.columns if (kind := column_type(c)) is not None}
    return CompiledConfig(tuple(steps), tuple(processors), run_config, registry, types)


def column_type(column: Column) -> pa.DataType | None:
    """The Arrow type of `column`'s values, or None when only the values can tell (custom
    Python, seed data, a category of mixed values): the run then locks the first type seen."""
    if isinstance(column, LLMStructuredColumn):
        return json_schema_type(column.output_schema)
    if isinstance(column, CategorySampler):
        values = column.values
        if all(isinstance(v, bool) for v in values):
            return pa.bool_()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return pa.int64()
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return pa.float64()
        return pa.string() if all(isinstance(v, str) for v in values) else None
    fixed: dict[type[Column], pa.DataType] = {
        UniformSampler: pa.float64(),
        GaussianSampler: pa.float64(),
        IntegerSampler: pa.int64(),
        BernoulliSampler: pa.bool_(),
        UUIDSampler: pa.string(),
        DatetimeSampler: pa.string(),
        PersonSampler: pa.string(),
        ExpressionColumn: pa.string(),
        LLMTextColumn: pa.string(),
    }
    return fixed.get(type(column))


def _step(column: Column, config: DatasetConfig, registry: ModelRegistry) -> Step:
    deps = sorted(column.dependencies())
    if isinstance(column, LLMTextColumn):
        return Step(column.name, _llm(column, registry), depends_on=deps, resource=column.model)
    if isinstance(column, ExpressionColumn):
        template = compile_template(column.template, f"column {column.name!r}.template")
        return Step(column.name, lambda row: render(template, row), depends_on=deps)
    if isinstance(column, CustomColumn):
        function = column.function
        if isinstance(function, str):
            function = resolve(function)
        return Step(
            column.name,
            function,
            kind=column.kind,
            depends_on=deps,
            allow_resize=column.allow_resize,
        )
    return Step(column.name, _sampler(column, config.seed), kind="batch")


# -- samplers ----------------------------------------------------------------------------------


def _rng(seed: int, column: str, index: Any) -> random.Random:
    return random.Random(f"{seed}/{column}/{index}")


def _sampler(column: Column, seed: int) -> Callable[[pd.DataFrame], list[Any]]:
    draw = _draw_function(column)

    def sample(frame: pd.DataFrame) -> list[Any]:
        return [draw(_rng(seed, column.name, index), index) for index in frame.index]

    return sample


def _draw_function(column: Column) -> Callable[[random.Random, Any], Any]:
    if isinstance(column, CategorySampler):
        values, weights = list(column.values), column.weights
        return lambda rng, _: rng.choices(values, weights=weights)[0]
    if isinstance(column, UniformSampler):
        return lambda rng, _: rng.uniform(column.low, column.high)
    if isinstance(column, GaussianSampler):
        return lambda rng, _: rng.gauss(column.mean, column.stddev)
    if isinstance(column, IntegerSampler):
        return lambda rng, _: rng.randint(column.low, column.high)
    if isinstance(column, BernoulliSampler):
        return lambda rng, _: rng.random() < column.p
    if isinstance(column, UUIDSampler):
        return lambda rng, _: str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if isinstance(column, DatetimeSampler):
        start = dt.datetime.fromisoformat(column.start)
        span = dt.datetime.fromisoformat(column.end) - start
        return lambda rng, _: (start + span * rng.random()).isoformat(timespec="seconds")
    if isinstance(column, PersonSampler):
        from faker import Faker

        faker = Faker(column.locale)
        attribute = column.field

        def person(rng: random.Random, _: Any) -> str:
            faker.seed_instance(rng.getrandbits(64))
            return str(getattr(faker, attribute)())

        return person
    raise ConfigError(f"column {column.name!r}: no generator for type {column.TYPE!r}")


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


# -- models ------------------------------------------------------------------------------------


def _llm(column: LLMTextColumn, registry: ModelRegistry) -> Callable[[dict[str, Any]], Any]:
    prompt = compile_template(column.prompt, f"column {column.name!r}.prompt")
    system = (
        None
        if column.system_prompt is None
        else compile_template(column.system_prompt, f"column {column.name!r}.system_prompt")
    )
    structured = isinstance(column, LLMStructuredColumn)
    schema = dict(column.output_schema) if isinstance(column, LLMStructuredColumn) else None
    retries = column.max_parse_retries if isinstance(column, LLMStructuredColumn) else 0

    async def generate(row: dict[str, Any]) -> Any:
        messages = [{"role": "user", "content": render(prompt, row)}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": render(system, row)})
        client = registry.client(column.model)
        if not structured:
            return await client.complete(messages)
        assert schema is not None
        problem = ""
        for _ in range(retries + 1):
            reply = await client.complete(messages, json_schema=schema)
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

    return generate


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
