"""data-designer column generators as rowforge steps.

One step per generator instance: a `MultiColumnConfig` (several samplers drawn together, a seed
dataset's columns) becomes one step with `extra_columns`, and so do a column's side-effect
columns (`{name}__trace`, `{name}__reasoning_content`). Cell-by-cell generators become cell
steps whose resource is the model alias (so the alias's `max_parallel_requests` caps them);
from-scratch and full-column generators become batch steps. A column's `skip` and
`propagate_skip` become the step's `skip_when` (data-designer's own evaluator, so the Jinja
semantics are its own) and `propagate_skip`.

The model errors data-designer raises are mapped onto rowforge's retryable errors, because
rowforge does the retrying (see `rowforge.integrations.data_designer`): rate limits to
`RateLimitError` (with the provider's Retry-After when it sent one), timeouts to
`ProviderTimeoutError`, server errors and lost connections to `RetryableError` /
`ProviderConnectionError`. Every other error fails the cell (or the batch), as in rowforge.

An expression column may leave out rows whose template failed to render; those rows fail
(`RowFailed`) and are dropped, as data-designer drops them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pandas as pd

from rowforge.errors import (
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
    StepOutputError,
)
from rowforge.scheduler import RowFailed, Step


def _dd() -> SimpleNamespace:
    """data-designer's names this file needs, imported when a build starts (the extra may be
    missing where rowforge is merely imported)."""
    from data_designer.config.column_configs import ExpressionColumnConfig, GenerationStrategy
    from data_designer.engine.column_generators.generators.base import FromScratchColumnGenerator
    from data_designer.engine.dataset_builders.multi_column_configs import MultiColumnConfig
    from data_designer.engine.dataset_builders.utils.skip_evaluator import evaluate_skip_when
    from data_designer.engine.models import errors

    return SimpleNamespace(
        ExpressionColumnConfig=ExpressionColumnConfig,
        GenerationStrategy=GenerationStrategy,
        FromScratch=FromScratchColumnGenerator,
        MultiColumnConfig=MultiColumnConfig,
        evaluate_skip_when=evaluate_skip_when,
        errors=errors,
    )


def retryable_equivalent(error: BaseException) -> BaseException | None:
    """rowforge's retryable error for one of data-designer's model errors, or None."""
    errors = _dd().errors
    retry_after = _retry_after(error)
    if isinstance(error, errors.ModelRateLimitError):
        return RateLimitError(str(error), retry_after)
    if isinstance(error, errors.ModelTimeoutError):
        return ProviderTimeoutError(str(error), retry_after)
    if isinstance(error, errors.ModelAPIConnectionError):
        return ProviderConnectionError(str(error), retry_after)
    if isinstance(error, errors.ModelInternalServerError):
        return RetryableError(str(error), retry_after, status=_status(error))
    return None


def _retry_after(error: BaseException) -> float | None:
    """The Retry-After data-designer's provider error carried, wherever in the chain it is."""
    current: BaseException | None = error
    while current is not None:
        value = getattr(current, "retry_after", None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        current = current.__cause__
    return None


def _status(error: BaseException) -> int | None:
    current: BaseException | None = error
    while current is not None:
        status = getattr(current, "status_code", None)
        if isinstance(status, int) and not isinstance(status, bool):
            return status
        current = current.__cause__
    return None


async def _mapped(call: Awaitable[Any]) -> Any:
    """Await a generator call; its retryable model errors become rowforge's."""
    try:
        return await call
    except Exception as error:
        equivalent = retryable_equivalent(error)
        if equivalent is None:
            raise
        raise equivalent from error


def _resource(generator: Any) -> tuple[str | None, int | None]:
    """The step's resource (the model alias, or the aliases joined with '+') and its cap: the
    smallest `max_parallel_requests` among the aliases, so no model is asked for more."""
    aliases_of = getattr(generator, "_get_scheduling_model_aliases", None)
    aliases = list(aliases_of()) if callable(aliases_of) else []
    if not aliases:
        return None, None
    caps = []
    for alias in aliases:
        config = generator.get_model_config(model_alias=alias)
        cap = getattr(config.inference_parameters, "max_parallel_requests", None)
        caps.append(cap if isinstance(cap, int) and cap > 0 else 1)
    return "+".join(sorted(aliases)), min(caps)


class GeneratorSteps:
    """The steps for one build, and the caps of the resources they use."""

    def __init__(self, generators: dict[str, Any], graph: Any) -> None:
        """`generators` maps every column (also each of a multi-column config's) to its
        generator, as data-designer's builder hands them to its scheduler; `graph` is its
        `ExecutionGraph`."""
        self._graph = graph
        self._dd = _dd()
        self.steps: list[Step] = []
        self.caps: dict[str, int] = {}
        seen: set[int] = set()
        for column in graph.get_topological_order():
            generator = generators[column]
            if id(generator) in seen:
                continue
            seen.add(id(generator))
            self.steps.append(self._step(generator))

    def _step(self, generator: Any) -> Step:
        dd, graph = self._dd, self._graph
        config = generator.config
        if isinstance(config, dd.MultiColumnConfig):
            columns = [sub.name for sub in config.columns]
        else:
            columns = [config.name]
        name = columns[0]
        side_effects = [se for column in columns for se in graph.get_side_effect_columns(column)]
        produced = set(columns)
        depends_on = sorted(
            {up for column in columns for up in graph.get_upstream_columns(column)} - produced
        )
        resource, cap = _resource(generator)
        if resource is not None and cap is not None:
            self.caps[resource] = min(cap, self.caps.get(resource, cap))
        skip = graph.get_skip_config(name) if len(columns) == 1 else None
        cell = graph.get_strategy(name) == dd.GenerationStrategy.CELL_BY_CELL
        outputs = (*columns, *side_effects)
        if cell:
            fn: Callable[[Any], Awaitable[Any]] = _cell_call(generator, outputs)
        elif isinstance(generator, dd.FromScratch) and not depends_on:
            fn = _from_scratch_call(generator, outputs)
        else:
            drops = isinstance(config, dd.ExpressionColumnConfig)
            fn = _batch_call(generator, outputs, drops_rows=drops)
        return Step(
            name,
            fn,
            kind="cell" if cell else "batch",
            depends_on=depends_on,
            resource=resource,
            extra_columns=outputs[1:],
            skip_when=_skip_condition(dd.evaluate_skip_when, skip.when) if skip else None,
            skip_value=skip.value if skip else None,
            propagate_skip=all(graph.should_propagate_skip(column) for column in columns),
        )


def _skip_condition(evaluate: Callable[[str, dict[str, Any]], bool], when: str) -> Any:
    def skip_when(row: dict[str, Any]) -> bool:
        return evaluate(when, row)

    return skip_when


def _single(outputs: tuple[str, ...], result: dict[str, Any]) -> Any:
    """A cell result in the shape the step declares: the value, or a mapping of its columns
    (side-effect columns a generator did not fill are None, as in data-designer's buffer)."""
    if len(outputs) == 1:
        return result[outputs[0]]
    return {column: result.get(column) for column in outputs}


def _cell_call(generator: Any, outputs: tuple[str, ...]) -> Callable[[Any], Awaitable[Any]]:
    async def call(row: dict[str, Any]) -> Any:
        result = await _mapped(generator.agenerate(dict(row)))
        if not isinstance(result, dict) or outputs[0] not in result:
            raise StepOutputError(
                f"column {outputs[0]!r}: the generator returned no value for it "
                f"({type(result).__name__})"
            )
        return _single(outputs, result)

    return call


def _frame_values(outputs: tuple[str, ...], frame: pd.DataFrame) -> Any:
    missing = [column for column in outputs[:1] if column not in frame.columns]
    if missing:
        raise StepOutputError(f"column {outputs[0]!r}: the generator returned no such column")
    if len(outputs) == 1:
        return list(frame[outputs[0]])
    return pd.DataFrame(
        {c: (frame[c] if c in frame.columns else None) for c in outputs}, index=frame.index
    )


def _from_scratch_call(generator: Any, outputs: tuple[str, ...]) -> Callable[[Any], Awaitable[Any]]:
    """A root generator draws as many rows as the row group has. Generators whose output
    depends on earlier calls (a seed dataset read in order) are called one at a time, as
    data-designer's own engine does."""
    lock = asyncio.Lock() if getattr(generator, "is_order_dependent", False) else None

    async def call(frame: pd.DataFrame) -> Any:
        if lock is None:
            result = await _mapped(generator.agenerate_from_scratch(len(frame)))
        else:
            async with lock:
                result = await _mapped(generator.agenerate_from_scratch(len(frame)))
        if len(result) != len(frame):
            raise StepOutputError(
                f"column {outputs[0]!r}: the generator drew {len(result)} rows for a row group "
                f"of {len(frame)}"
            )
        return _frame_values(outputs, result.set_axis(frame.index))

    return call


def _batch_call(
    generator: Any, outputs: tuple[str, ...], *, drops_rows: bool
) -> Callable[[Any], Awaitable[Any]]:
    async def call(frame: pd.DataFrame) -> Any:
        result = await _mapped(generator.agenerate(frame.copy()))
        if not isinstance(result, pd.DataFrame):
            raise StepOutputError(
                f"column {outputs[0]!r}: the generator returned {type(result).__name__}, not a "
                "DataFrame"
            )
        if len(result) == len(frame) and (not drops_rows or result.index.equals(frame.index)):
            return _frame_values(outputs, result.set_axis(frame.index))
        if not drops_rows:
            raise StepOutputError(
                f"column {outputs[0]!r}: the generator returned {len(result)} rows for "
                f"{len(frame)}"
            )
        return _with_dropped_rows(outputs, frame, result)

    return call


def _with_dropped_rows(outputs: tuple[str, ...], frame: pd.DataFrame, result: pd.DataFrame) -> Any:
    """An expression column keeps the rows it rendered, by index; the rest fail."""
    unexpected = result.index.difference(frame.index)
    if len(unexpected) or result.index.has_duplicates:
        raise StepOutputError(
            f"column {outputs[0]!r}: the generator returned rows that were not given to it"
        )
    failed = RowFailed(StepOutputError(f"expression column {outputs[0]!r} dropped the row"))
    kept = result.reindex(frame.index)
    present = frame.index.isin(result.index)
    if len(outputs) == 1:
        return [
            value if keep else failed
            for value, keep in zip(kept[outputs[0]].tolist(), present, strict=True)
        ]
    values = _frame_values(outputs, kept)
    values[outputs[0]] = [
        value if keep else failed
        for value, keep in zip(values[outputs[0]].tolist(), present, strict=True)
    ]
    return values
