"""The async engine: one dispatcher per run drives the run, row-group, worker and cell machines.

Theory of operation
-------------------
All state changes happen synchronously on the event loop, in this object, in three places:

1. `_pump` admits queued workers while the caps allow (see `admission`) and starts each as a
   task in the run's `asyncio.TaskGroup`. Nothing is fire-and-forget: the run awaits the group.
2. `_execute` (the worker coroutine) calls the step and returns its value, or the `_FAILED`
   marker with the exception stored on the worker. It never raises, except `CancelledError`.
3. `_on_worker_done` (the task's done callback, so the coroutine has really finished) moves the
   worker to its outcome, releases its leases, drains it, and applies the outcome to the cells:
   store and unlock downstream cells, schedule a retry, or drop the row / row group.

After each of these, `_advance` offers the affected row group the edges that fit the run's
state, and the row-group machine's guards pick the one that holds, if any: `seeding -> running`
when the seed steps are done, `running -> checkpointing` when every surviving row is complete,
`drop` when no row survived, `fail`/`cancel` when the run stops. A checkpoint task then runs the
post-batch processors and writes the rows to the sink.

The run's own state (specs/run.yaml) decides the rest: `running` admits work; `draining` (early
shutdown) admits nothing, cancels every worker and salvages complete rows; `aborting` (a fatal
error: processor, sink, row contract, internal) cancels every worker and writes nothing more;
`cancelling` (the run's task was cancelled) cancels and awaits every worker. The run ends when the
run machine's guards allow an edge into a terminal state, and they choose which (INV-2, INV-6).

Rules not in the specs (flagged for the diagram reader):
- a worker is "live" from creation (queued, backing off or running) until it is drained;
- a completion that arrives for a cell that is already terminal is ignored (its row was dropped);
- when nothing is live in an open row group yet none of its edges may fire, that is an engine
  bug and fails the run loudly instead of hanging (INV-8).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from rowforge.errors import DatasetGenerationError, DatasetProcessingError, describe_error
from rowforge.scheduler.calls import batch_values, call_step, step_failure_reason
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.core import (
    GROUP_OPEN,
    GROUP_SEEDING,
    RUN_ABORTABLE,
    RUN_CANCELLING,
    RUN_DRAINING,
    RUN_INTERRUPTIBLE,
    RUN_STOPPING,
    Checkpoint,
    EngineCore,
)
from rowforge.scheduler.plan import Plan
from rowforge.scheduler.retry import ErrorKind, classify
from rowforge.scheduler.rowgroup import Ready, RowGroup
from rowforge.scheduler.subjects import Worker
from rowforge.scheduler.threads import run_uninterrupted
from rowforge.statemachine import TABLES, EventLog
from rowforge.storage.sinks import Sink

log = logging.getLogger("rowforge")

_FAILED: Any = object()
_CELL_UNSETTLED = TABLES["cell"].sources("skip")
_CELL_GENERATING = TABLES["cell"].sources("generate")


class AsyncEngine(EngineCore):
    """Runs one plan to a terminal run state. Use once."""

    engine_name = "async"

    def __init__(
        self, plan: Plan, config: RunConfig, sink: Sink, events: EventLog, **options: Any
    ) -> None:
        super().__init__(plan, config, sink, events, **options)
        self._timers: dict[Worker, asyncio.TimerHandle] = {}
        self._spent: dict[Worker, float] = {}  # transient retry budget used, per queued retry
        self._checkpoints: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._last_progress = 0.0
        self.internal_error: BaseException | None = None

    # -- the run ---------------------------------------------------------------------------

    async def execute(self) -> None:
        """Run to a terminal state. Returns only after every worker was awaited (INV-2).

        On cancellation every worker is cancelled and awaited, open row groups and the run end
        `cancelled`, and `CancelledError` propagates.
        """
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = loop.create_future()
        self._last_progress = loop.time()
        self.machines.run.add(self.run)
        self.machines.run.fire(self.run, "start")
        try:
            async with asyncio.TaskGroup() as group:
                self._tg = group
                watchdog = group.create_task(self._watch_for_stalls())
                try:
                    self._admit_row_groups()
                    self._pump()
                    self._check_finished()
                    await self._done
                except asyncio.CancelledError:
                    self._interrupt()
                    raise
                finally:
                    watchdog.cancel()
        except asyncio.CancelledError:
            self._end_stopped("run cancelled")
            raise
        if self.internal_error is not None:
            self._end_after_internal_error()
            assert self.first_error is not None
            if self.run.state not in TABLES["run"].terminal:
                raise self.first_error
            return  # ended `failed`: the runner raises first_error with the result attached
        self._end()

    def _end_after_internal_error(self) -> None:
        """Best effort after an internal error; the first error is what the run raises."""
        try:
            self._end_stopped("internal error")
        except Exception as error:  # already failing; keep the first error
            log.error("could not end the run cleanly after an internal error: %r", error)

    def _end_stopped(self, reason: str) -> None:
        """Every task is awaited (INV-2). Workers still queued or backing off never started:
        settle them `cancelled` (an internal error leaves them to this point, since the
        bookkeeping that would have may be what broke). Then end the open row groups (the
        guards pick `fail` for one that holds a fatal error, `cancel` for the others), then the
        run."""
        for worker in self.admission.discard_queued():
            self._settle_unstarted(worker)
        for worker, timer in list(self._timers.items()):
            timer.cancel()
            del self._timers[worker]
            self._settle_unstarted(worker)
        for group in list(self.groups.values()):
            self._close_with(group, self._stop_trigger(group), reason)
        self._end()

    def _stop_trigger(self, group: RowGroup) -> str:
        """`fail` for a row group holding a fatal error, `cancel` otherwise, as the guards pick;
        when neither may fire yet, `cancel`, so that firing it raises the guard's refusal."""
        return self.machines.row_groups.pick(group, ("fail", "cancel")) or "cancel"

    # -- admission of row groups and workers -----------------------------------------------

    def _admit_row_groups(self) -> None:
        cap = self.config.max_concurrent_row_groups
        while self._admitting() and self.todo and len(self.groups) < cap:
            group = self._open_next_group()
            seeds = [
                (name, None) for name in self.plan.seed_steps if group.batch_outstanding[name] == 0
            ]
            self._enqueue(group, sorted(seeds, key=lambda ready: self.plan.columns.index(ready[0])))
            self._advance(group)

    def _enqueue(self, group: RowGroup, ready: list[Ready]) -> None:
        if not self._admitting() or group.state not in GROUP_OPEN:
            return
        for name, row in ready:
            if group.state in GROUP_SEEDING and name not in self.plan.seed_steps:
                continue  # picked up by `finish_seeding` when seeding ends
            assert self._loop is not None
            worker = self._new_worker(self.plan.step(name), group, row, 0, self._loop.time())
            self.admission.push(worker)

    def _pump(self) -> None:
        if not self._admitting():
            return
        assert self._tg is not None and self._loop is not None
        while (worker := self.admission.next_admissible()) is not None:
            if self._obsolete(worker):
                self.admission.release(worker)
                self._settle_unstarted(worker)
                self._advance(worker.row_group)
                continue
            worker.admitted = self._loop.time()
            if worker.attempt == 0:
                self._start_cells(worker)
            task = self._tg.create_task(self._execute(worker))
            worker.task = task
            task.add_done_callback(partial(self._on_worker_done, worker))

    def _obsolete(self, worker: Worker) -> bool:
        group = worker.row_group
        if group.state not in GROUP_OPEN or not group.surviving_rows:
            return True
        if worker.row is None:
            return False
        return group.cells[worker.step.name][worker.row].state not in _CELL_UNSETTLED

    # -- the worker ------------------------------------------------------------------------

    async def _execute(self, worker: Worker) -> Any:
        assert self._loop is not None
        worker.started = self._loop.time()
        self.machines.workers.fire(worker, "start")
        step, group = worker.step, worker.row_group
        try:
            if worker.row is not None:
                argument: Any = group.upstream_values(step.name, worker.row)
            else:
                worker.rows = group.rows_for(step.name)
                argument = group.batch_input(step.name, worker.rows)
            if self.config.task_timeout_s is None:
                return await call_step(step, argument)
            async with asyncio.timeout(self.config.task_timeout_s):
                return await call_step(step, argument)
        except Exception as error:  # classified and acted on in `_on_worker_done`
            worker.error = error
            return _FAILED

    def _on_worker_done(self, worker: Worker, task: asyncio.Task[Any]) -> None:
        try:
            self._settle_worker(worker, task)
        except BaseException as error:  # a bug here must fail the run, not vanish in a log line
            self._internal_error(error)

    def _settle_worker(self, worker: Worker, task: asyncio.Task[Any]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        worker.finished = now
        self._last_progress = now
        kind: ErrorKind | None = None
        delay: float | None = None
        exhausted: str | None = None
        spent = self._spent.pop(worker, 0.0)
        if task.cancelled() or task.cancelling():
            # The engine cancelled it: that decision stands even if the step swallowed the
            # CancelledError and returned (or raised); its value or error is discarded.
            trigger, value = "cancel", None
        else:
            value = task.result()
            if value is _FAILED:
                error = worker.error
                assert error is not None
                kind = classify(error)
                exhausted = self._observe_call(worker, error, now)
                if kind is ErrorKind.RETRYABLE:
                    spent += worker.finished - worker.started
                if self._admitting() and exhausted is None:
                    delay = self.retry.next_delay(
                        kind,
                        error,
                        retries=worker.retries,
                        rate_limited=worker.rate_limited,
                        spent=spent,
                    )
                trigger = "defer" if delay is not None else "fail"
            else:
                self._observe_call(worker, None, now)
                trigger = "succeed"
        worker.outcome = self.machines.workers.fire(worker, trigger)
        self.admission.observe(worker)
        self.admission.release(worker)
        self._drain(worker)

        group = worker.row_group
        if trigger == "succeed":
            self._task_succeeded(worker.step)
            self._apply_success(worker, value)
        elif trigger == "defer":
            assert kind is not None and delay is not None
            self._schedule_retry(worker, kind, delay, spent)
        elif trigger == "fail":
            self._apply_failure(worker, exhausted)
        self._advance(group)
        self._pump()
        self._check_finished()

    def _settle_unstarted(self, worker: Worker) -> None:
        """A worker that never ran (queued, backing off, or obsolete at admission) is cancelled."""
        assert self._loop is not None
        self._spent.pop(worker, None)
        worker.finished = self._loop.time()
        worker.outcome = self.machines.workers.fire(worker, "cancel")
        self._drain(worker)

    # -- outcomes --------------------------------------------------------------------------

    def _apply_success(self, worker: Worker, value: Any) -> None:
        step, group, row = worker.step, worker.row_group, worker.row
        if group.state not in GROUP_OPEN:
            return
        if row is not None:
            if group.cells[step.name][row].state not in _CELL_GENERATING:
                return  # the row was dropped while this worker ran
            self._enqueue(group, group.generate(step.name, row, value))
            return
        try:
            values = batch_values(step, group.ident, value)
            self._require_batch_rows(group, step, worker.rows, values)
        except DatasetProcessingError as error:
            self._abort(group, error)
            return
        ready = group.generate_batch(step.name, worker.rows, values)
        self._enqueue(group, ready)

    def _schedule_retry(self, worker: Worker, kind: ErrorKind, delay: float, spent: float) -> None:
        """Queue the task's next attempt after `delay`; `spent` is its transient budget used."""
        assert self._loop is not None and worker.error is not None
        group = worker.row_group
        if self._obsolete(worker):
            return
        retry = self._new_worker(
            worker.step, group, worker.row, worker.attempt + 1, self._loop.time()
        )
        self._retry_granted(worker.step, kind)
        retry.retries = worker.retries + (kind is ErrorKind.RETRYABLE)
        retry.rate_limited = worker.rate_limited + (kind is ErrorKind.RATE_LIMIT)
        if kind is ErrorKind.RETRYABLE:
            self._spent[retry] = spent + delay
        log.debug("retrying %s in %.2fs after %r", worker.step.name, delay, worker.error)
        self._timers[retry] = self._loop.call_later(delay, self._retry_due, retry)

    def _retry_due(self, worker: Worker) -> None:
        try:
            del self._timers[worker]
            if self._obsolete(worker) or not self._admitting():
                self._settle_unstarted(worker)
                self._advance(worker.row_group)
            else:
                self.admission.push(worker)
                self._pump()
            self._check_finished()
        except BaseException as error:
            self._internal_error(error)

    def _apply_failure(self, worker: Worker, exhausted: str | None = None) -> None:
        """The task failed for good. `exhausted` names a model whose no-success budget this
        failure spent: the run then drains with that reason rather than the breaker's."""
        step, error = worker.step, worker.error
        assert error is not None
        tripped = self._task_failed(step, error)
        self._drop_failed(worker, error)  # first: the failure that trips the breaker is its own
        if exhausted is not None:
            self._begin_drain(self._exhausted_error(exhausted))
        elif tripped:
            self._begin_drain()

    def _drop_failed(self, worker: Worker, error: BaseException) -> None:
        """Drop what a failed task leaves incomplete: its row, or its batch's rows."""
        step, group = worker.step, worker.row_group
        if group.state not in GROUP_OPEN:
            return
        reason = step_failure_reason(step, error)
        if worker.row is not None:
            if group.cells[step.name][worker.row].state not in _CELL_GENERATING:
                return
            ready = group.drop_row(worker.row, reason, failed_step=step.name)
            self._cancel_row(group, worker.row)
            self._enqueue(group, ready)
        else:
            group.drop_all(reason, failed_step=step.name)
            for other in list(group.live_workers):
                self._cancel_worker(other)
        log.debug("row group %d: %s", group.ident, reason)

    def _cancel_row(self, group: RowGroup, row: int) -> None:
        for worker in [w for w in group.live_workers if w.row == row]:
            self._cancel_worker(worker)

    def _cancel_worker(self, worker: Worker) -> None:
        """Cancel a live worker wherever it is; a started one is settled by its done callback."""
        if worker.task is not None:
            worker.task.cancel()
            return
        timer = self._timers.pop(worker, None)
        if timer is not None:
            timer.cancel()
        else:
            self.admission.remove(worker)
        self._settle_unstarted(worker)

    # -- the run's lifecycle ----------------------------------------------------------------

    def _begin_drain(self, cause: DatasetGenerationError | None = None) -> None:
        """Early shutdown: admit nothing new, cancel every worker, then salvage complete rows.

        `cause` defaults to the breaker's verdict. It is raised by the runner at the end, not
        logged here: the user reads it once. Only a running run drains (a stopping one is
        already cancelling everything)."""
        if not self._admitting():
            return
        self.early_shutdown = True
        cause = cause if cause is not None else self._shutdown_error()
        self.first_error = self.first_error or cause
        log.info("%s (draining)", cause)
        self.machines.run.fire(self.run, "drain", {"reason": "early_shutdown"})
        self._cancel_everything()
        for group in list(self.groups.values()):
            self._advance(group)

    def _abort(self, group: RowGroup, error: BaseException) -> None:
        """A fatal error: fail `group`, cancel everything, end the run `failed`."""
        self.first_error = self.first_error or error
        if group.fatal is None:
            group.fatal = error
        if self.run.state not in RUN_ABORTABLE:
            return  # already stopping: the open row groups end through `_advance`
        self.machines.run.fire(self.run, "abort", {"reason": describe_error(error)})
        self._cancel_everything()
        for open_group in list(self.groups.values()):
            self._advance(open_group)

    def _interrupt(self) -> None:
        """The run's task was cancelled: cancel every worker; the TaskGroup awaits them."""
        if self.run.state in RUN_INTERRUPTIBLE:
            self.machines.run.fire(self.run, "interrupt")
        self._cancel_everything()

    def _cancel_everything(self) -> None:
        for worker in self.admission.discard_queued():
            self._settle_unstarted(worker)
        for group in self.groups.values():
            for worker in list(group.live_workers):
                self._cancel_worker(worker)

    def _internal_error(self, error: BaseException) -> None:
        """A bug in rowforge: abort the run, cancel every task, and stop waiting for the
        bookkeeping (which may be what broke): `execute` ends the run once the TaskGroup has
        awaited every task, and raises `DatasetGenerationError`."""
        if self.internal_error is not None:
            return
        log.error("internal error in the dispatcher", exc_info=error)
        wrapped = DatasetGenerationError(f"internal error in rowforge's dispatcher: {error!r}")
        wrapped.__cause__ = error
        self.internal_error = self.first_error = wrapped
        if self.run.state in RUN_ABORTABLE:
            self.machines.run.fire(self.run, "abort", {"reason": "internal error"})
        for group in self.groups.values():
            if group.fatal is None:
                group.fatal = wrapped
            for worker in group.live_workers:
                if worker.task is not None:
                    worker.task.cancel()
        for timer in self._timers.values():
            timer.cancel()
        for task in self._checkpoints:
            task.cancel()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # -- row groups ------------------------------------------------------------------------

    def _advance(self, group: RowGroup) -> None:
        """Offer `group` the edges that fit the run's state; its guards pick the one that holds.

        Nothing moves while the `no_live_workers` guard says no: the completion of its last
        worker calls this again. Once quiet, an open row group with no edge allowed is stuck,
        an engine bug that fails the run instead of hanging (INV-8)."""
        machine = self.machines.row_groups
        if group.state not in GROUP_OPEN or not machine.holds(group, "no_live_workers"):
            return
        if self.run.state in RUN_STOPPING:
            cancelled = self.run.state in RUN_CANCELLING
            reason = "run cancelled" if cancelled else "run aborted"  # the sync engine's words
            self._close_with(group, self._stop_trigger(group), reason)
            return
        draining = self.run.state in RUN_DRAINING
        if group.state in GROUP_SEEDING:
            if draining:
                group.drop_all("early shutdown during seeding")
            candidates = ("seeded", "drop")
        elif draining:
            group.drop_incomplete("early shutdown")
            candidates = ("salvage", "drop")
        else:
            candidates = ("cells_done", "drop")
        chosen = machine.pick(group, candidates)
        if chosen == "drop":
            self._close_with(group, "drop", "early shutdown" if draining else "every row dropped")
        elif chosen == "seeded":
            self._seeded(group)
        elif chosen is not None:
            machine.fire(group, chosen)
            self._start_checkpoint(group)
        else:
            self._internal_error(
                RuntimeError(
                    f"row group {group.ident} is stuck in {group.state!r}: "
                    f"{group.incomplete_rows} incomplete rows and no task left that could "
                    "complete them"
                )
            )

    def _seeded(self, group: RowGroup) -> None:
        """Seeding is over: pre-batch processors, then `seeded` (its guards check what the
        processors returned), then the cells that are ready."""
        try:
            self._pre_batch(group)
        except DatasetGenerationError as error:
            self._abort(group, error)
            return
        self.machines.row_groups.fire(group, "seeded")
        self._enqueue(group, group.finish_seeding())
        self._advance(group)

    def _close(self, group: RowGroup) -> None:
        super()._close(group)
        self._admit_row_groups()
        self._pump()
        self._check_finished()

    def _start_checkpoint(self, group: RowGroup) -> None:
        assert self._tg is not None
        task = self._tg.create_task(self._checkpoint(group))
        self._checkpoints.add(task)
        task.add_done_callback(partial(self._on_checkpoint_done, group))

    async def _checkpoint(self, group: RowGroup) -> Checkpoint | BaseException:
        """Post-batch processors, the row-count guard on what they returned, then the write;
        processors and write run in a thread. Returns its error instead of raising it: a child
        task that raises would make the TaskGroup cancel the whole run on its own."""
        try:
            frame = group.frame()
            if self._has_stage("post_batch"):
                stage = await run_uninterrupted(self._post_batch, group.ident, frame)
                self._require_rows_kept(group, frame.index, stage)
                frame = stage.frame
            return await run_uninterrupted(self._write_checkpoint, group.ident, frame)
        except Exception as error:
            return error

    def _on_checkpoint_done(self, group: RowGroup, task: asyncio.Task[Any]) -> None:
        try:
            self._checkpoints.discard(task)
            assert self._loop is not None
            self._last_progress = self._loop.time()
            outcome = None if task.cancelled() else task.result()
            if outcome is None:
                self._close_with(group, self._stop_trigger(group), "run cancelled while writing")
            elif isinstance(outcome, Checkpoint):
                self._written(group, outcome)
            else:
                error = outcome
                if not isinstance(error, DatasetGenerationError):
                    error = self._sink_failure(group.ident, error)
                self._abort(group, error)  # first: no new row group is admitted by the close
                self._close_with(group, "fail", describe_error(error))  # as the sync engine
            self._check_finished()
        except BaseException as failure:
            self._internal_error(failure)

    def _check_finished(self) -> None:
        """The run is done when the run machine's guards allow it an end (every row group
        admitted or no longer wanted, every one terminal, no live worker)."""
        if self._done is None or self._done.done():
            return
        if self.machines.run.can_finish(self.run):
            self._done.set_result(None)

    # -- liveness --------------------------------------------------------------------------

    async def _watch_for_stalls(self) -> None:
        """INV-8: while work is pending and nothing moves, say what is stuck, once per interval."""
        assert self._loop is not None
        interval = self.config.stall_warning_s
        last_warning = -interval
        while True:
            await asyncio.sleep(min(interval / 4, 5.0))
            now = self._loop.time()
            if now - self._last_progress >= interval and now - last_warning >= interval:
                last_warning = now
                self.stall_warnings += 1
                log.warning(
                    "no progress for %.0fs: %d tasks in flight, %d row groups active, "
                    "%d deferred, %d queued",
                    now - self._last_progress,
                    self.admission.in_flight,
                    len(self.groups),
                    len(self._timers),
                    self.admission.queued,
                )

    @property
    def deferred(self) -> int:
        return len(self._timers)
