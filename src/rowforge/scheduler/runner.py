"""Running a plan: choose the engine for this run, execute it, report the outcome loudly.

`run_plan_async` is the one run path shared by build, preview and resume (the caller picks the
sink). It takes the `Plan` its caller built once for the run and never plans again, so what the
engine runs, what metadata describes and what the caller reports are the same plan.
`run_steps_async` is the convenience for plain steps: it plans them once, then runs that plan.
A run returns a `RunResult` for `completed` and `partial` runs and raises for the rest:

- `failed`: `DatasetGenerationError` (or its `DatasetProcessingError`) naming what failed and
  where, with the original exception chained; the result is attached as `error.result`;
- `partial`: a WARNING naming target, actual, dropped and the reasons; with
  `on_partial="raise"`, `PartialDatasetError` after everything produced was written;
- an early shutdown (the engine decided a provider is broken), whether it salvaged rows
  (`partial`) or not (`failed`): `EarlyShutdownError` naming step, model and status, after the
  complete rows were written; `on_partial` does not apply;
- `cancelled`: `CancelledError` propagates after every worker was awaited.

Engine choice is per run (INV-5): `engine="auto"` picks the sync engine only when a step has
`allow_resize`, with a `DeprecationWarning` pointing at the caller's line, so two runs in one
process never influence each other's engine. The one process-wide setting a run touches is the
garbage collector's young threshold, raised for its duration and restored after the last active
run (`RunConfig.gc_young_threshold`, `scheduler.gc_tuning`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from rowforge.errors import (
    ConfigError,
    DatasetGenerationError,
    EarlyShutdownError,
    PartialDatasetError,
    RowforgeError,
)
from rowforge.processors import Processor
from rowforge.progress import ProgressSnapshot
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.core import EngineCore
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.scheduler.gc_tuning import young_threshold_at_least
from rowforge.scheduler.outcome import RowGroupSummary, RunResult
from rowforge.scheduler.plan import Plan, Step, build_plan
from rowforge.scheduler.snapshots import ModelUsageSource, SnapshotTaker
from rowforge.scheduler.sync_engine import SyncEngine
from rowforge.statemachine import EventLog
from rowforge.storage.sinks import MemorySink, Sink

log = logging.getLogger("rowforge")

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
_ASYNCIO_DIR = str(Path(asyncio.__file__).resolve().parent)


def choose_engine(plan: Plan, config: RunConfig) -> type[EngineCore]:
    """The engine class for this run only."""
    if config.engine == "sync":
        return SyncEngine
    resizing = [step.name for step in plan.steps if step.allow_resize]
    if config.engine == "async":
        if resizing:
            raise ConfigError(
                f"steps {resizing} have allow_resize, which the async engine cannot run (it never "
                "changes a row group's row count); use engine='sync' or engine='auto'"
            )
        return AsyncEngine
    if resizing:
        warnings.warn(
            f"steps {resizing} use allow_resize: this run uses the sync engine. allow_resize is "
            "deprecated; return one value per row instead",
            DeprecationWarning,
            stacklevel=_caller_stacklevel(),
        )
        return SyncEngine
    return AsyncEngine


def _caller_stacklevel() -> int:
    """Stack level of the first frame outside rowforge and asyncio: the user's line, whether
    they called `run_steps`/`run_plan` or awaited their async forms."""
    import sys

    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith((_PACKAGE_DIR, _ASYNCIO_DIR)):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def config_for(plan: Plan, config: RunConfig | None) -> RunConfig:
    """`config`, or a default `RunConfig` with the plan's `buffer_size`.

    The plan fixes the row-group layout, so a `config` whose `buffer_size` says otherwise is
    refused: the run would silently follow the plan while the caller believed the config.
    """
    config = config or RunConfig(buffer_size=plan.buffer_size)
    if config.buffer_size != plan.buffer_size:
        raise ConfigError(
            f"config.buffer_size is {config.buffer_size} but the plan was built with "
            f"buffer_size {plan.buffer_size}; build the plan with the run's buffer_size"
        )
    return config


#: Called when a row group ends, with its summary (only that one: the hook keeps its own totals)
#: and the run's Arrow schema so far.
CheckpointHook = Callable[[RowGroupSummary, dict[str, str]], None]

#: Receives a `ProgressSnapshot` every `RunConfig.progress_interval_s`, in the run's event loop,
#: and a last one (`final=True`) when the run has ended, however it ended.
ProgressHook = Callable[[ProgressSnapshot], None]


async def run_plan_async(
    plan: Plan,
    *,
    config: RunConfig | None = None,
    sink: Sink | None = None,
    processors: Sequence[Processor] = (),
    row_groups: Sequence[int] | None = None,
    events: EventLog | None = None,
    on_checkpoint: CheckpointHook | None = None,
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
    on_progress: ProgressHook | None = None,
    model_usage: ModelUsageSource | None = None,
) -> RunResult:
    """Generate the records of `plan` into `sink` (memory by default).

    The plan is built once by whoever starts the run and only read from here on: the engine,
    the checkpoints and the result all see this one. `config` must agree with its
    `buffer_size` (see `config_for`).

    Returns only after every worker and write has finished (INV-2). See the module docstring
    for what is raised when. Tracing is on when `config.trace` is set or `ROWFORGE_TRACE=1`.
    `row_groups` limits the run to some planned row groups (resume); `on_checkpoint` receives
    each row group's summary and the Arrow schema when it ends (metadata). `lifespan` is entered
    around the engine in the run's loop (model clients open and close there). `on_progress`
    receives snapshots (see `ProgressHook`); `model_usage` supplies the model clients' figures
    for them.
    """
    config = config_for(plan, config)
    if not config.trace and os.environ.get("ROWFORGE_TRACE", "") not in ("", "0"):
        config = attrs.evolve(config, trace=True)
    engine_class = choose_engine(plan, config)
    sink = sink if sink is not None else MemorySink()
    events = events if events is not None else EventLog()
    engine: EngineCore

    def checkpointed(summary: RowGroupSummary) -> None:
        if on_checkpoint is not None:
            on_checkpoint(summary, engine.schema)

    engine = engine_class(
        plan,
        config,
        sink,
        events,
        processors=processors,
        row_groups=row_groups,
        on_checkpoint=checkpointed,
    )
    started = time.monotonic()
    with young_threshold_at_least(config.gc_young_threshold):
        async with lifespan if lifespan is not None else contextlib.nullcontext():
            if on_progress is None:
                await engine.execute()
            else:
                await _execute_reporting(engine, on_progress, model_usage, config)
    result = summarise(engine, sink)
    failure = _report(result, engine.first_error, config)
    log.info(  # the run's final summary: every worker is awaited, nothing logs after this
        "run %s (%s engine): %d of %d records written in %.2fs",
        result.outcome,
        result.engine,
        result.actual_records,
        result.target_records,
        time.monotonic() - started,
    )
    if failure is not None:
        raise failure
    return result


async def _execute_reporting(
    engine: EngineCore,
    on_progress: ProgressHook,
    model_usage: ModelUsageSource | None,
    config: RunConfig,
) -> None:
    """Run the engine with a sampler beside it in one TaskGroup (nothing outlives the run),
    then hand over the final snapshot, also when the run failed or was cancelled."""
    taker = SnapshotTaker(engine, model_usage)

    async def sample() -> None:
        while True:
            await asyncio.sleep(config.progress_interval_s)
            deliver_progress(on_progress, taker.take())

    try:
        async with asyncio.TaskGroup() as group:
            sampler = group.create_task(sample())
            try:
                await engine.execute()
            finally:
                sampler.cancel()
    finally:
        deliver_progress(on_progress, taker.take(final=True))


def deliver_progress(on_progress: ProgressHook, snapshot: ProgressSnapshot) -> None:
    """A failing progress callback must not end a long run: log it, keep generating."""
    try:
        on_progress(snapshot)
    except Exception:
        log.exception("the on_progress callback raised; the run goes on")


def run_plan(plan: Plan, **options: Any) -> RunResult:
    """Blocking form of `run_plan_async` (same options); call it where no loop is running."""
    if _loop_is_running():
        raise RuntimeError(
            "run_plan() was called inside a running event loop; await run_plan_async"
        )
    return asyncio.run(run_plan_async(plan, **options))


async def run_steps_async(
    steps: Sequence[Step],
    num_records: int,
    *,
    config: RunConfig | None = None,
    sink: Sink | None = None,
    processors: Sequence[Processor] = (),
    row_groups: Sequence[int] | None = None,
    events: EventLog | None = None,
    on_checkpoint: CheckpointHook | None = None,
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
    on_progress: ProgressHook | None = None,
    model_usage: ModelUsageSource | None = None,
) -> RunResult:
    """Generate `num_records` records from `steps`: plans them once (`config.buffer_size`
    records per row group), then runs that plan with `run_plan_async` (same options)."""
    config = config or RunConfig()
    return await run_plan_async(
        build_plan(steps, num_records, config.buffer_size),
        config=config,
        sink=sink,
        processors=processors,
        row_groups=row_groups,
        events=events,
        on_checkpoint=on_checkpoint,
        lifespan=lifespan,
        on_progress=on_progress,
        model_usage=model_usage,
    )


def run_steps(steps: Sequence[Step], num_records: int, **options: Any) -> RunResult:
    """Blocking form of `run_steps_async` (same options); call it where no loop is running."""
    if _loop_is_running():
        raise RuntimeError(
            "run_steps() was called inside a running event loop; await run_steps_async"
        )
    return asyncio.run(run_steps_async(steps, num_records, **options))


def _loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def summarise(engine: EngineCore, sink: Sink) -> RunResult:
    """Freeze what an engine recorded into a `RunResult`."""
    plan = engine.plan
    columns = plan.step_names
    ledger = engine.ledger
    total_per_column = engine.planned_records + engine.cell_delta // max(len(columns), 1)
    never_started = {
        name: total_per_column - ledger.generated[name] - ledger.skipped[name] - ledger.failed[name]
        for name in columns
    }
    return RunResult(
        outcome=engine.run.state,
        engine=engine.engine_name,
        target_records=engine.planned_records,
        actual_records=engine.run.records_written,
        early_shutdown=engine.early_shutdown,
        first_error=None if engine.first_error is None else str(engine.first_error),
        generated_cells={name: ledger.generated[name] for name in columns},
        skipped_cells={name: ledger.skipped[name] for name in columns},
        failed_cells={name: ledger.failed[name] for name in columns},
        never_started_cells=never_started,
        row_groups=tuple(sorted(engine.closed, key=lambda summary: summary.index)),
        file_paths=tuple(sorted(engine.file_paths)),
        events=tuple(engine.events) if engine.events.keeps_events else (),
        task_traces=tuple(engine.traces),
        stats=engine.stats(),
        schema=dict(engine.schema),
        dataset=sink.dataset() if isinstance(sink, MemorySink) else None,
        first_exception=engine.first_error,
    )


def outcome_error(
    result: RunResult, error: BaseException | None, config: RunConfig
) -> RowforgeError | None:
    """What a run with `result` raises (logging what the user must hear), or None: the one
    judgement of a run's outcome, also for a run whose result was put together from several
    engines (`rowforge.distributed`)."""
    return _report(result, error, config)


def _report(
    result: RunResult, error: BaseException | None, config: RunConfig
) -> RowforgeError | None:
    """Log what the user must hear about; return the error to raise, if any.

    An early shutdown always raises `EarlyShutdownError`, whether or not complete rows were
    salvaged (outcome `partial`) or not (`failed`): the engine decided a provider is broken, which
    is not an ordinary drop, so `on_partial` does not apply. Nothing is logged for it here: the
    error is the one place the user reads it (the CLI prints it once).
    """
    if result.early_shutdown and result.outcome in ("partial", "failed"):
        return _early_shutdown_error(result, error)
    if result.outcome == "failed":
        failure = (
            error
            if isinstance(error, DatasetGenerationError)
            else DatasetGenerationError(_failure_message(result, error))
        )
        if failure is not error and error is not None:
            failure.__cause__ = error
        failure.result = result  # type: ignore[attr-defined]
        return failure
    if result.outcome == "partial":
        message = (
            f"partial dataset: target {result.target_records} records, actual "
            f"{result.actual_records}, dropped {result.dropped_records}; reasons: "
            f"{_format_reasons(result)}"
        )
        log.warning("%s", message)
        if config.on_partial == "raise":
            partial = PartialDatasetError(message)
            partial.result = result  # type: ignore[attr-defined]
            return partial
    return None


def _early_shutdown_error(result: RunResult, error: BaseException | None) -> EarlyShutdownError:
    """The engine's verdict plus what was kept: `...; 20 of 80 records were written`."""
    reason = str(error) if error is not None else (result.first_error or "early shutdown")
    if result.actual_records:
        kept = (
            f"{result.actual_records} of {result.target_records} records were written "
            "(complete rows only)"
        )
    else:
        kept = f"no records were written (target {result.target_records})"
    failure = EarlyShutdownError(f"{reason}; {kept}")
    failure.__cause__ = error.__cause__ if isinstance(error, EarlyShutdownError) else error
    failure.result = result  # type: ignore[attr-defined]
    return failure


def _failure_message(result: RunResult, error: BaseException | None) -> str:
    if error is not None:
        return str(error)
    return (
        f"no records were written (target {result.target_records}); reasons: "
        f"{_format_reasons(result)}"
    )


def _format_reasons(result: RunResult) -> str:
    reasons = result.drop_reasons()
    if not reasons:
        return "none recorded"
    return "; ".join(f"{count} x {reason}" for reason, count in sorted(reasons.items()))
