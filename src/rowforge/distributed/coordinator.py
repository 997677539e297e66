"""The driver side of a Ray run: deal row groups out, collect them as they end, judge the run.

`RayExecutor.run_plan` stands where `run_plan` stands in a local build (`rowforge.build`), with
the same contract: each row group's summary reaches `on_checkpoint` once, after its events are
in the run's log; a completed or partial run returns a `RunResult`; a failed run, an early
shutdown or a partial run with `on_partial="raise"` raises the error a local run raises, with
the result attached; a cancelled run (Ctrl-C) raises `CancelledError`/`KeyboardInterrupt` only
after every worker has stopped. So metadata.json and events.jsonl are written by the same code
as for a local run.

The row groups are dealt out round-robin, once, to `workers` actors; each runs them with its
own engine and reports them as they end (see `distributed.worker`). When a worker's process
dies, its row groups that were not reported go to a new worker in its place, except those
whose file is on disk: a file is written atomically, so it is a finished row group, recovered
from the file as `resume` recovers it. A fatal error in one worker (a processor failure, an
early shutdown) stops the others, as the local engine aborts its other row groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pyarrow as pa

from rowforge.distributed.caps import usable_workers, worker_config
from rowforge.distributed.cluster import ray_session
from rowforge.distributed.file_types import FileTypes
from rowforge.distributed.progress import RunProgress
from rowforge.distributed.usage import merge_models
from rowforge.distributed.worker import (
    Finished,
    PartsSource,
    Reply,
    RowGroupWorker,
    WorkerJob,
    WorkerParts,
    WorkerReport,
)
from rowforge.errors import ConfigError, DatasetGenerationError, EarlyShutdownError, describe_error
from rowforge.processors import Processor
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.outcome import RowGroupSummary, RunResult
from rowforge.scheduler.plan import Plan
from rowforge.scheduler.runner import (
    CheckpointHook,
    ProgressHook,
    config_for,
    deliver_progress,
    outcome_error,
)
from rowforge.scheduler.trace import TaskTrace
from rowforge.statemachine import EventLog
from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.location import OutputFiles, relative_path

log = logging.getLogger("rowforge")

#: How many times one worker's place is filled again after its process died, before the run
#: fails: a worker that dies again and again (out of memory on every row group) is a fault to
#: report, not to retry for ever.
MAX_RESTARTS = 3

#: Ray actor names of rowforge workers: `rowforge-<run>-w<slot>-<incarnation>`.
ACTOR_PREFIX = "rowforge-"

DRAIN = ("drain", "running", "draining")
CANCEL = ("cancel", "cancelling", "cancelled")

RECOVERED = "unknown (recovered from the file after a crash)"


class ReportedSchema(RunSchema):
    """The run's schema as metadata.json records it, learned from the workers' files (the
    driver writes none). A column keeps the first type reported for it."""

    def __init__(self, existing: pa.Schema | None = None) -> None:
        super().__init__(None, existing)
        self._reported: dict[str, str] = {}

    def learn(self, types: Mapping[str, str]) -> None:
        for column, kind in types.items():
            self._reported.setdefault(column, kind)

    def describe(self) -> dict[str, str]:
        return {**self._reported, **super().describe()}


class _WorkerFailed(Exception):
    """A worker's run ended with an error that ends the whole run (it carries the report)."""

    def __init__(self, report: WorkerReport) -> None:
        super().__init__(report.error_message)
        self.report = report


class RayExecutor:
    """One build's Ray execution; see the module docstring."""

    def __init__(
        self,
        files: OutputFiles,
        column_types: Mapping[str, pa.DataType] | None,
        existing_schema: pa.Schema | None,
    ) -> None:
        self.files = files
        self.column_types = column_types
        self.existing_schema = existing_schema
        self.schema = ReportedSchema(existing_schema)
        self._file_types = FileTypes(existing_schema)
        self._models: dict[int, dict[str, dict[str, Any]]] = {}  # latest per worker incarnation
        self._accepted: dict[int, RowGroupSummary] = {}
        self._reports: list[WorkerReport] = []
        self._state = "running"  # the run machine's, as the snapshots say it

    def models_metadata(self) -> dict[str, dict[str, Any]]:
        """metadata.json's "models": the workers' sections added up."""
        return merge_models(list(self._models.values()))

    def run_plan(
        self,
        plan: Plan,
        *,
        config: RunConfig,
        processors: Sequence[Processor] = (),
        row_groups: Sequence[int] | None = None,
        events: EventLog,
        on_checkpoint: CheckpointHook,
        lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
        model_meters: Any = None,
        parts: PartsSource | None = None,
        on_progress: ProgressHook | None = None,
    ) -> RunResult:
        """Run `plan` (or its `row_groups`) on Ray; see the module docstring. `parts` says how
        the workers get the plan's steps, processors and lifespan when they cannot travel as
        they are (see `distributed.worker.PartsSource`); None ships them as they are.
        `on_progress` receives the whole run's snapshot (`distributed.progress`) every
        `config.progress_interval_s` and a final one however the run ends, as `run_plan`'s."""
        config = config_for(plan, config)
        if plan.needs_resize:
            raise ConfigError(
                "RunConfig.executor 'ray' cannot run allow_resize steps (a row group's record "
                "indexes would depend on the sizes of the row groups before it); use "
                "executor='local'"
            )
        todo = list(range(plan.num_row_groups) if row_groups is None else sorted(row_groups))
        workers = usable_workers(config)
        if workers < config.workers:
            log.warning(
                "using %d Ray workers instead of %d: the smallest concurrency cap is %d and "
                "every worker needs a share of at least 1",
                workers,
                config.workers,
                workers,
            )
        job = WorkerJob(
            self.files,
            parts or WorkerParts(plan, tuple(processors), lifespan, model_meters),
            self.column_types,
            self.existing_schema,
        )
        shares = [
            attrs.evolve(worker_config(config, workers, i), on_partial="warn")
            for i in range(workers)
        ]
        with ray_session(config.ray_address, num_cpus=None) as ray:
            _check_portable(ray, job)
            return asyncio.run(
                self._coordinate(
                    ray, plan, config, job, shares, todo, events, on_checkpoint, on_progress
                )
            )

    async def _coordinate(
        self,
        ray: Any,
        plan: Plan,
        config: RunConfig,
        job: WorkerJob,
        shares: Sequence[RunConfig],
        todo: Sequence[int],
        events: EventLog,
        on_checkpoint: CheckpointHook,
        on_progress: ProgressHook | None = None,
    ) -> RunResult:
        progress = RunProgress(
            target=sum(plan.row_group(index).size for index in todo),
            row_groups=len(todo),
            steps=plan.step_names,
            models=tuple(dict.fromkeys(s.resource for s in plan.steps if s.resource is not None)),
            sections=self._models,
        )

        async def sample() -> None:
            while on_progress is not None:
                await asyncio.sleep(config.progress_interval_s)
                deliver_progress(on_progress, progress.take(self._state))

        sampler = asyncio.create_task(sample())
        try:
            return await self._coordinate_workers(
                ray, plan, job, shares, todo, events, on_checkpoint, config, progress
            )
        finally:
            sampler.cancel()
            if on_progress is not None:  # however the run ended: the run's totals
                deliver_progress(on_progress, progress.take(self._state, final=True))

    async def _coordinate_workers(
        self,
        ray: Any,
        plan: Plan,
        job: WorkerJob,
        shares: Sequence[RunConfig],
        todo: Sequence[int],
        events: EventLog,
        on_checkpoint: CheckpointHook,
        config: RunConfig,
        progress: RunProgress,
    ) -> RunResult:
        events.record("run", "run", "start", "pending", "running", {"executor": "ray"})
        actor_class = ray.remote(num_cpus=0, max_restarts=0)(RowGroupWorker)
        job_ref = ray.put(job)  # shipped once, shared by every worker (and its replacements)

        def accept(item: Finished, worker: int) -> None:
            if item.summary.state == "drained":  # before metadata.json lists the file
                index = item.summary.index
                self._file_types.conform(index, self.files)
            for event in item.events:
                events._append(event)  # the worker's transitions, with their own times
            self.schema.learn(item.schema)
            self._accepted[item.summary.index] = item.summary
            progress.accepted(item.summary, worker)
            on_checkpoint(item.summary, dict(item.schema))

        def receive(reply: Reply, worker: int) -> None:
            for item in reply.items:
                accept(item, worker)
            self._models[worker] = reply.models
            progress.reported(worker, reply.snapshot)

        incarnations = iter(range(1_000_000))
        run_id = uuid.uuid4().hex[:8]

        async def drive(slot: int, assigned: list[int]) -> None:
            left = list(assigned)
            restarts = 0
            while left:
                number = next(incarnations)
                # named, so an operator (and a test) can find a run's live workers
                name = f"{ACTOR_PREFIX}{run_id}-w{slot}-{number}"
                actor = actor_class.options(name=name).remote(job_ref, shares[slot])
                try:
                    replies = functools.partial(receive, worker=number)
                    report = await _work(ray, actor, left, replies)
                except ray.exceptions.RayActorError as died:
                    if getattr(died, "actor_init_failed", False):  # would fail again anywhere
                        raise DatasetGenerationError(
                            f"a Ray worker could not start: {died}"
                        ) from None
                    restarts += 1
                    left = [index for index in left if index not in self._accepted]
                    for summary in self._recover(plan, left):  # written, not yet reported
                        progress.accepted(summary, None)
                        on_checkpoint(summary, {})
                    left = [index for index in left if index not in self._accepted]
                    if restarts > MAX_RESTARTS:
                        raise DatasetGenerationError(
                            f"Ray worker {slot} died {restarts} times (last: {died}); "
                            f"{len(left)} row groups were not generated"
                        ) from died
                    log.warning(
                        "Ray worker %d died; its %d unfinished row groups run on a new worker",
                        slot,
                        len(left),
                    )
                    continue
                finally:
                    ray.kill(actor)
                    progress.ended(number)
                self._models[number] = report.models
                self._reports.append(report)
                if report.error_type is not None:
                    raise _WorkerFailed(report)
                left = [index for index in left if index not in self._accepted]
                if left:  # the engine ran every row group it was given, or raised
                    raise DatasetGenerationError(
                        f"Ray worker {slot} ended without row groups {left}; this is a bug"
                    )

        try:
            async with asyncio.TaskGroup() as group:
                for slot in range(len(shares)):
                    group.create_task(drive(slot, list(todo[slot :: len(shares)])))
        except BaseExceptionGroup as errors:
            failure = _worker_failure(errors)
            if failure is None:  # not a worker's verdict: the driver could not go on
                error = errors.exceptions[0]
                self._end_run(events, "abort")
                if isinstance(error, DatasetGenerationError):
                    error.result = self._result(  # type: ignore[attr-defined]
                        plan, todo, None, first_error=str(error)
                    )
                raise error from None
        except BaseException:  # cancelled (Ctrl-C): every worker has stopped
            # a row group whose file a worker wrote but whose report did not arrive (its
            # stop failed) is done: recorded from its file, as after a worker's death
            for summary in self._recover(plan, [i for i in todo if i not in self._accepted]):
                progress.accepted(summary, None)
                on_checkpoint(summary, {})
            self._end_run(events, "interrupt")
            raise
        else:
            failure = None
        result = self._result(plan, todo, failure)
        self._end_run(events, _ending(result, failure))
        error = outcome_error(result, _rebuilt_error(failure), config)
        if error is not None:
            raise error
        return result

    def _recover(self, plan: Plan, left: Sequence[int]) -> list[RowGroupSummary]:
        """The row groups of `left` whose file is on disk: the dead worker wrote them before
        it could report them. The file is the truth (it is complete); what it does not say
        (why rows were dropped, skipped cells) is recorded as unknown, as `resume` does."""
        recovered = []
        for index in left:
            if not self.files.exists(relative_path(index)):
                continue
            layout = plan.row_group(index)
            self._file_types.conform(index, self.files)
            rows = self.files.num_rows(relative_path(index))
            dropped = layout.size - rows
            summary = RowGroupSummary(
                index=index,
                state="drained",
                planned_records=layout.size,
                records_written=rows,
                records_dropped=dropped,
                drop_reasons={RECOVERED: dropped} if dropped else {},
                skipped_cells={},
                first_record=layout.start,
            )
            self._accepted[index] = summary
            recovered.append(summary)
        return recovered

    def _result(
        self,
        plan: Plan,
        todo: Sequence[int],
        failure: WorkerReport | None,
        *,
        first_error: str | None = None,
    ) -> RunResult:
        """The run's result over every worker: counts of the row groups that reached the
        driver, cell counts of the workers' reports, the outcome a local run would have."""
        summaries = tuple(sorted(self._accepted.values(), key=lambda s: s.index))
        target = sum(plan.row_group(index).size for index in todo)
        written = sum(s.records_written for s in summaries)
        early = failure is not None and _is_early_shutdown(failure)
        if early:
            outcome = "partial" if written else "failed"
        elif failure is not None or first_error is not None:
            outcome = "failed"
        elif written == target:
            outcome = "completed"
        else:
            outcome = "partial" if written else "failed"
        results = [report.result for report in self._reports]
        columns = plan.step_names
        return RunResult(
            outcome=outcome,
            engine="ray",
            target_records=target,
            actual_records=written,
            early_shutdown=early,
            first_error=first_error if failure is None else failure.result.first_error,
            generated_cells=_sum(results, "generated_cells", columns),
            skipped_cells=_sum(results, "skipped_cells", columns),
            failed_cells=_sum(results, "failed_cells", columns),
            never_started_cells=_sum(results, "never_started_cells", columns),
            row_groups=summaries,
            file_paths=tuple(relative_path(s.index) for s in summaries if s.state == "drained"),
            events=(),
            task_traces=_traces(results),
            stats={"workers": [dict(r.stats) for r in results]},
            schema=self.schema.describe(),
        )

    def _end_run(self, events: EventLog, how: str) -> None:
        """The run machine's last transitions, as the local engine takes them."""
        path = {
            "completed": [("complete", "running", "completed")],
            "partial": [("complete_partial", "running", "partial")],
            "failed": [("fail_empty", "running", "failed")],
            "early_partial": [DRAIN, ("end_partial", "draining", "partial")],
            "early_failed": [DRAIN, ("end_failed", "draining", "failed")],
            "abort": [("abort", "running", "aborting"), ("fail", "aborting", "failed")],
            "interrupt": [("interrupt", "running", "cancelling"), CANCEL],
        }[how]
        for trigger, source, dest in path:
            events.record("run", "run", trigger, source, dest, {"executor": "ray"})
            self._state = dest


def _traces(results: Sequence[RunResult]) -> tuple[TaskTrace, ...]:
    """Every worker's task traces (`trace=True`), by when each attempt finished. A worker that
    died reported none: its row groups' attempts are traced where they ran again. Times are
    each worker's monotonic clock: one clock on one machine, one per node on a cluster."""
    traces = [trace for result in results for trace in result.task_traces]
    return tuple(sorted(traces, key=lambda trace: (trace.finished, trace.created)))


async def _work(
    ray: Any, actor: Any, row_groups: list[int], receive: Callable[[Reply], None]
) -> WorkerReport:
    """Run `row_groups` on `actor`, handing each of its replies (the row groups that ended,
    its latest snapshot) to `receive`. Cancelled (another worker failed, Ctrl-C), it stops the
    actor's run first: the actor's engine has awaited all its tasks before this returns."""
    running = actor.run.remote(row_groups)
    seen = 0  # items received: the actor keeps the others (a cancelled reply loses none)
    try:
        while True:
            reply: Reply = await actor.finished.remote(seen)
            seen += len(reply.items)
            receive(reply)
            if reply.ended:
                break
        report: WorkerReport = await running
        return report
    except asyncio.CancelledError:
        with contextlib.suppress(ray.exceptions.RayError):
            receive(await actor.stop.remote(seen))
        with contextlib.suppress(ray.exceptions.RayError, asyncio.CancelledError):
            await running  # ends cancelled: the engine is done
        raise


def _check_portable(ray: Any, job: WorkerJob) -> None:
    """Refuse, before any worker starts, a job that cannot travel to the workers: say which
    part, rather than let every worker die in its creation."""
    try:
        ray.cloudpickle.loads(ray.cloudpickle.dumps(job))
    except Exception as error:
        raise ConfigError(
            "RunConfig.executor 'ray' ships the run's steps, processors and model clients to "
            f"the workers with cloudpickle, which failed: {describe_error(error)}. Steps "
            "defined as module-level functions (module:function) travel; objects holding "
            "open resources do not"
        ) from error


def _ending(result: RunResult, failure: WorkerReport | None) -> str:
    """Which of the run machine's endings `_end_run` takes."""
    if result.early_shutdown:
        return "early_partial" if result.outcome == "partial" else "early_failed"
    if failure is not None:
        return "abort"
    return result.outcome


def _worker_failure(errors: BaseExceptionGroup[BaseException]) -> WorkerReport | None:
    """The report of the first worker whose error ends the run, if that is what ended it."""
    for error in errors.exceptions:
        if isinstance(error, _WorkerFailed):
            return error.report
    return None


def _is_early_shutdown(report: WorkerReport) -> bool:
    return report.error_type is not None and issubclass(report.error_type, EarlyShutdownError)


def _rebuilt_error(failure: WorkerReport | None) -> BaseException | None:
    """The worker's error as the driver raises it: same class, same message."""
    if failure is None or failure.error_type is None:
        return None
    if issubclass(failure.error_type, EarlyShutdownError):
        # the worker's message counted only its own records: the driver counts the run's
        return EarlyShutdownError(failure.result.first_error or failure.error_message)
    return failure.error_type(failure.error_message)


def _sum(results: Sequence[RunResult], field: str, columns: Sequence[str]) -> dict[str, int]:
    return {
        column: sum(int(getattr(result, field).get(column, 0)) for result in results)
        for column in columns
    }
