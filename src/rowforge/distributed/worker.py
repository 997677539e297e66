"""The Ray actor: rowforge's own async engine over the row groups the driver deals it.

A worker is a plain class here; the coordinator turns it into a Ray actor (`ray.remote`) when
it starts one, so this module imports no Ray and stays testable in-process. Every worker gets
the same `WorkerJob` (shipped once, with Ray's cloudpickle) and its own `RunConfig` share of
the caps (`distributed.caps`). The job's parts (plan, processors, lifespan) travel either as
they are (plain steps: the steps and the registry they call travel in one pickle, so the
steps call the registry the worker enters) or as a callable that builds them in the worker.

`run(row_groups)` runs `run_plan_async` in the actor's event loop with a `ParquetSink` on the
run's output directory (files are written where a local run writes them, atomically), the
model registry's lifespan entered in that loop, and an event log that keeps each row group's
transitions until the row group ends. Each ended row group becomes a `Finished` item; the
driver collects them with `finished(seen)` (an async call that waits until a row group ends or
the engine takes a progress snapshot), so metadata.json follows the row groups as they end and
the driver's display follows the engine's snapshots. An item stays in the worker until a later
call's `seen` acknowledges it, so a reply lost to a cancelled call loses nothing. `stop()`
cancels the run and returns only after the engine has awaited every task: after it, the worker
calls no model.

What the driver must hear about comes back as data, never as a log line in the worker (whose
output Ray keeps out of the user's terminal): the run's `RunResult` (without what cannot or
need not travel) and, for a failure, the error's class and message, so the driver raises the
same error a local run raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import attrs
import pyarrow as pa

from rowforge.errors import RowforgeError
from rowforge.models.usage import UsageMeterLike
from rowforge.processors import Processor
from rowforge.progress import ProgressSnapshot
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.outcome import RowGroupSummary, RunResult
from rowforge.scheduler.plan import Plan
from rowforge.scheduler.runner import run_plan_async
from rowforge.statemachine import Event, EventLog
from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.location import OutputFiles
from rowforge.storage.sinks import ParquetSink

#: The models section of metadata.json (`rowforge.models.usage.models_metadata`).
ModelsSection = dict[str, dict[str, Any]]


@attrs.frozen
class WorkerParts:
    """What a worker runs: the plan (its steps), the processors, the lifespan the steps' model
    clients live in and their usage meters (`ModelRegistry.usage`)."""

    plan: Plan
    processors: tuple[Processor, ...] = ()
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None
    model_meters: Callable[[], Mapping[str, UsageMeterLike]] | None = None


#: The parts themselves (pickled as they are), or a picklable callable that builds them in the
#: worker: compiled configs hold objects that do not pickle (Jinja templates), so the API ships
#: the config and compiles it again in each worker (compiling is deterministic: same steps,
#: same plan).
PartsSource = WorkerParts | Callable[[], WorkerParts]


@attrs.frozen
class WorkerJob:
    """What every worker of a run needs, the same for all of them."""

    output: OutputFiles
    parts: PartsSource
    column_types: Mapping[str, pa.DataType] | None = None
    existing_schema: pa.Schema | None = None

    def build_parts(self) -> WorkerParts:
        return self.parts if isinstance(self.parts, WorkerParts) else self.parts()


@attrs.frozen
class Finished:
    """One row group that ended in a worker: its summary, its transitions (admission to the
    terminal one, in order) and the column types of the worker's files so far."""

    summary: RowGroupSummary
    events: tuple[Event, ...]
    schema: Mapping[str, str]


@attrs.frozen
class Reply:
    """What `finished()` and `stop()` hand the driver: the row groups that ended since the
    last reply, whether the run has ended, the engine's latest progress snapshot (None before
    its first) and the worker's models section now."""

    items: list[Finished]
    ended: bool
    snapshot: ProgressSnapshot | None
    models: ModelsSection


@attrs.frozen
class WorkerReport:
    """How a worker's run ended. `error_type`/`error_message` are set when the run raised an
    error that ends the whole run (a processor failure, an early shutdown); a worker whose
    rows were all dropped is not one: the driver judges the run's outcome over all workers."""

    result: RunResult
    models: ModelsSection
    error_type: type[BaseException] | None = None
    error_message: str | None = None


class RowGroupEvents(EventLog):
    """Keeps each row group's transitions until it ends, then hands them over whole.

    Only row-group events travel: the run machine is the driver's (there is one run, however
    many workers), and worker and cell events (tracing) are not collected from Ray workers.
    A row group whose worker dies never reaches the driver's log, so the log never shows a row
    group admitted twice when it is run again elsewhere."""

    keeps_events = False

    def __init__(self) -> None:
        super().__init__()
        self._open: dict[Hashable, list[Event]] = {}

    def _append(self, event: Event) -> None:
        if event.machine == "row_group":
            self._open.setdefault(event.ident, []).append(event)

    def take(self, row_group: int) -> tuple[Event, ...]:
        """The ended row group's transitions; forgotten here."""
        return tuple(self._open.pop(row_group, ()))


class RowGroupWorker:
    """One Ray actor's state: the job, its config share, the finished row groups not yet
    collected. Its methods run in the actor's event loop, one `run` at a time."""

    def __init__(self, job: WorkerJob, config: RunConfig) -> None:
        self.job = job
        self.parts = job.build_parts()
        self.config = config
        self._finished: list[Finished] = []  # not yet acknowledged by the driver
        self._acknowledged = 0  # how many items the driver has (dropped from `_finished`)
        self._changed = asyncio.Event()
        self._running = False
        self._ran = False  # a run started (the driver may ask `finished` before it does)
        self._ended = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        self._latest: list[ProgressSnapshot] = []
        self._fresh = False  # a snapshot came since the last reply
        self._stopped = False  # `stop` was called: a `run` that starts later runs nothing

    def pid(self) -> int:
        """The worker's process id (tests kill it)."""
        return os.getpid()

    async def run(self, row_groups: Sequence[int]) -> WorkerReport:
        """Generate `row_groups` into the output directory; see the module docstring."""
        if self._running:
            raise RuntimeError("a worker runs one set of row groups at a time")
        if self._stopped:  # Ray may start an async actor's calls out of order: stop won
            raise asyncio.CancelledError("the driver stopped this worker before its run began")
        self._running, self._ran, self._task = True, True, asyncio.current_task()
        self._ended.clear()
        events = RowGroupEvents()
        schema = RunSchema(self.job.column_types, self.job.existing_schema)
        sink = ParquetSink(self.job.output, schema)

        def checkpointed(summary: RowGroupSummary, _: dict[str, str]) -> None:
            self._finished.append(
                Finished(summary, events.take(summary.index), sink.schema.describe())
            )
            self._changed.set()

        try:
            result = await run_plan_async(
                self.parts.plan,
                config=self.config,
                sink=sink,
                processors=self.parts.processors,
                row_groups=row_groups,
                events=events,
                on_checkpoint=checkpointed,
                lifespan=self.parts.lifespan,
                on_progress=self._progressed,
                model_usage=_usage_of(self.parts.model_meters),
            )
        except RowforgeError as error:
            failed: RunResult | None = getattr(error, "result", None)
            if failed is None:
                raise
            fatal = failed.early_shutdown or failed.first_exception is not None
            return WorkerReport(
                _portable(failed),
                self._models(),
                type(error) if fatal else None,
                str(error) if fatal else None,
            )
        finally:
            self._running = False
            self._ended.set()
            self._changed.set()
        return WorkerReport(_portable(result), self._models())

    async def finished(self, seen: int = 0) -> Reply:
        """The row groups that ended after the first `seen` (the items the driver has
        received), whether the run has ended (nothing more will come) and the latest snapshot.
        Waits for a row group, a new snapshot (the engine takes one every
        `progress_interval_s`) or the end of the run.

        Items are kept until the driver acknowledges them with a later call's `seen`: a reply
        the driver never reads (its call was cancelled by Ctrl-C while the row group's file was
        already written) loses nothing, the next call or `stop` hands the items over again."""
        self._acknowledge(seen)
        while not self._finished and not self._fresh and (self._running or not self._ran):
            self._changed.clear()
            await self._changed.wait()
        return self._reply(not self._running)

    async def stop(self, seen: int = 0) -> Reply:
        """Cancel the run and wait until the engine has awaited all its tasks; reply with the
        row groups that ended after the first `seen` (cancelled ones included) and the
        engine's final snapshot."""
        self._acknowledge(seen)
        self._stopped = True
        if self._running and self._task is not None:
            self._task.cancel()
            await self._ended.wait()
        return self._reply(True)

    def _acknowledge(self, seen: int) -> None:
        del self._finished[: max(0, seen - self._acknowledged)]
        self._acknowledged = max(seen, self._acknowledged)

    def _reply(self, ended: bool) -> Reply:
        self._fresh = False
        snapshot = self._latest[0] if self._latest else None
        return Reply(list(self._finished), ended, snapshot, self._models())

    def _progressed(self, snapshot: ProgressSnapshot) -> None:
        self._latest[:] = [snapshot]
        self._fresh = True
        self._changed.set()

    def _models(self) -> ModelsSection:
        """This worker's models section: its meters and the retries its engine granted."""
        from rowforge.build import _models_metadata

        return _models_metadata(self.parts.model_meters, self._latest)


def _usage_of(meters: Callable[[], Mapping[str, UsageMeterLike]] | None) -> Any:
    """The meters as the engine's snapshots read them (`rowforge.build._usage_of`)."""
    from rowforge.build import _usage_of as usage_of

    return usage_of(meters)


def _portable(result: RunResult) -> RunResult:
    """`result` without what need not travel to the driver: the exception object (its class
    and text travel apart) and the events, which went with the row groups. The task traces
    (`trace=True`) travel: the driver writes every worker's into traces.jsonl."""
    return attrs.evolve(result, first_exception=None, events=(), dataset=None)
