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

After each of these, `_advance` moves the affected row group forward when its guards allow:
`seeding -> running` when the seed steps are done, `running -> checkpointing` when every
surviving row is complete, then a checkpoint task writes the rows to the sink.

Modes: `normal`; `draining` (early shutdown: admit nothing, cancel every worker, salvage complete
rows); `aborting` (a fatal error: processor, sink, resize, internal; cancel every worker, write
nothing more, fail); `cancelling` (the run's task was cancelled). In every mode a row group
reaches a terminal state only through a guarded transition that requires no live worker (INV-2).

Rules not in the specs (flagged for the diagram reader):
- a worker is "live" from creation (queued, backing off or running) until it is drained;
- a completion that arrives for a cell that is already terminal is ignored (its row was dropped);
- when nothing is live in a running row group yet rows are incomplete, that is an engine bug and
  fails the run loudly instead of hanging (INV-8).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from rowforge.errors import DatasetGenerationError, DatasetProcessingError
from rowforge.scheduler.calls import batch_values, call_step
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.core import Checkpoint, EngineCore, step_failure_reason
from rowforge.scheduler.plan import Plan
from rowforge.scheduler.retry import ErrorKind, classify
from rowforge.scheduler.rowgroup import Ready, RowGroup
from rowforge.scheduler.subjects import Worker
from rowforge.scheduler.threads import run_uninterrupted
from rowforge.statemachine import EventLog
from rowforge.storage.sinks import Sink

log = logging.getLogger("rowforge")

_FAILED: Any = object()
_OPEN = ("seeding", "running")


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
                    self._cancel_everything("cancelling")
                    raise
                finally:
                    watchdog.cancel()
        except asyncio.CancelledError:
            self._end_cancelled()
            raise
        if self.mode == "broken":
            self._end_broken()
            assert self.first_error is not None
            if self.run.state != "failed":
                raise self.first_error
            return  # ended `failed`: the runner raises first_error with the result attached
        self._end()

    def _end_broken(self) -> None:
        """Best effort after an internal error: every task is already awaited (INV-2); workers
        still queued or backing off never started and are settled `cancelled` here."""
        try:
            for worker in self.admission.discard_queued():
                self._settle_unstarted(worker)
            for worker, timer in list(self._timers.items()):
                timer.cancel()
                del self._timers[worker]
                self._settle_unstarted(worker)
            if self.run.state == "running":
                self.machines.run.fire(self.run, "drain", {"reason": "internal_error"})
            for group in list(self.groups.values()):
                self._close_with(group, "fail", "internal error")
            self.machines.run.fire(self.run, "end_failed")
        except Exception as error:  # already failing; keep the first error
            log.error("could not end the run cleanly after an internal error: %r", error)

    def _end_cancelled(self) -> None:
        for group in list(self.groups.values()):
            self._close_with(group, "cancel", "run cancelled")
        self.machines.run.fire(self.run, "cancel")

    # -- admission of row groups and workers -----------------------------------------------

    def _admit_row_groups(self) -> None:
        cap = self.config.max_concurrent_row_groups
        while self.mode == "normal" and self.todo and len(self.groups) < cap:
            group = self._open_group(self.plan.row_group(self.todo.popleft()))
            seeds = [
                (name, None) for name in self.plan.seed_steps if group.batch_outstanding[name] == 0
            ]
            self._enqueue(group, sorted(seeds, key=lambda ready: self.plan.columns.index(ready[0])))
            self._advance(group)

    def _enqueue(self, group: RowGroup, ready: list[Ready]) -> None:
        if self.mode != "normal" or group.state not in _OPEN:
            return
        for name, row in ready:
            if group.state == "seeding" and name not in self.plan.seed_steps:
                continue  # picked up by `ready_cells` when seeding ends
            if row is None:
                if name in group.batch_started:
                    continue
                group.batch_started.add(name)
            assert self._loop is not None
            worker = self._new_worker(self.plan.step(name), group, row, 0, self._loop.time())
            self.admission.push(worker)

    def _pump(self) -> None:
        if self.mode != "normal":
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
        if group.state not in _OPEN or not group.surviving_rows:
            return True
        if worker.row is None:
            return False
        return group.cells[worker.step.name][worker.row].state not in ("pending", "running")

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
                worker.rows = tuple(group.surviving())
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
            worker.outcome, value = "cancelled", None
        else:
            value = task.result()
            if value is _FAILED:
                error = worker.error
                assert error is not None
                kind = classify(error)
                exhausted = self._observe_call(worker, error, now)
                if kind is ErrorKind.RETRYABLE:
                    spent += worker.finished - worker.started
                if self.mode == "normal" and exhausted is None:
                    delay = self.retry.next_delay(
                        kind,
                        error,
                        retries=worker.retries,
                        rate_limited=worker.rate_limited,
                        spent=spent,
                    )
                worker.outcome = "deferred" if delay is not None else "failed"
            else:
                self._observe_call(worker, None, now)
                worker.outcome = "succeeded"
        trigger = {"cancelled": "cancel", "deferred": "defer", "failed": "fail"}.get(
            worker.outcome, "succeed"
        )
        self.machines.workers.fire(worker, trigger)
        self.admission.observe(worker)
        self.admission.release(worker)
        self._drain(worker)

        group = worker.row_group
        if worker.outcome == "succeeded":
            self._task_succeeded(worker.step)
            self._apply_success(worker, value)
        elif worker.outcome == "deferred":
            assert kind is not None and delay is not None
            self._schedule_retry(worker, kind, delay, spent)
        elif worker.outcome == "failed":
            self._apply_failure(worker, exhausted)
        self._advance(group)
        self._pump()
        self._check_finished()

    def _settle_unstarted(self, worker: Worker) -> None:
        """A worker that never ran (queued, backing off, or obsolete at admission) is cancelled."""
        assert self._loop is not None
        self._spent.pop(worker, None)
        worker.finished = self._loop.time()
        worker.outcome = "cancelled"
        self.machines.workers.fire(worker, "cancel")
        self._drain(worker)

    # -- outcomes --------------------------------------------------------------------------

    def _apply_success(self, worker: Worker, value: Any) -> None:
        step, group, row = worker.step, worker.row_group, worker.row
        if group.state not in _OPEN:
            return
        if row is not None:
            if group.cells[step.name][row].state != "running":
                return  # the row was dropped while this worker ran
            self._enqueue(group, group.generate(step.name, row, value))
            return
        try:
            values = batch_values(step, group.ident, value, len(worker.rows))
        except DatasetProcessingError as error:
            self._abort(group, error)
            return
        ready = group.generate_batch(step.name, worker.rows, values)
        if step.name in self.plan.seed_steps:
            group.seeds_remaining -= 1
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
        retry.retries = worker.retries + (kind is ErrorKind.RETRYABLE)
        retry.rate_limited = worker.rate_limited + (kind is ErrorKind.RATE_LIMIT)
        retry.rows = worker.rows
        if kind is ErrorKind.RETRYABLE:
            self._spent[retry] = spent + delay
        log.debug("retrying %s in %.2fs after %r", worker.step.name, delay, worker.error)
        self._timers[retry] = self._loop.call_later(delay, self._retry_due, retry)

    def _retry_due(self, worker: Worker) -> None:
        try:
            del self._timers[worker]
            if self._obsolete(worker) or self.mode != "normal":
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
        step, group, error = worker.step, worker.row_group, worker.error
        assert error is not None
        tripped = self._task_failed(step, error)
        if exhausted is not None:
            self._begin_drain(self._exhausted_error(exhausted))
        elif tripped:
            self._begin_drain()
        if group.state not in _OPEN:
            return
        reason = step_failure_reason(step, error)
        if worker.row is not None:
            if group.cells[step.name][worker.row].state != "running":
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

    # -- modes -----------------------------------------------------------------------------

    def _begin_drain(self, cause: DatasetGenerationError | None = None) -> None:
        """Early shutdown: admit nothing new, cancel every worker, then salvage complete rows.

        `cause` defaults to the breaker's verdict. It is raised by the runner at the end, not
        logged here: the user reads it once."""
        if self.mode != "normal":
            return
        self.early_shutdown = True
        cause = cause if cause is not None else self._shutdown_error()
        self.first_error = self.first_error or cause
        log.info("%s (draining)", cause)
        self._cancel_everything("draining")
        self.machines.run.fire(self.run, "drain", {"reason": "early_shutdown"})
        for group in list(self.groups.values()):
            self._advance(group)

    def _abort(self, group: RowGroup | None, error: BaseException) -> None:
        """A fatal error: fail `group`, cancel everything, end the run `failed`."""
        self.first_error = self.first_error or error
        if group is not None and group.fatal is None:
            group.fatal = error
        previous = self.mode
        if previous in ("aborting", "cancelling", "broken"):
            return  # already ending; `broken` ends through `_end_broken`, which fails every group
        self._cancel_everything("aborting")
        if previous == "normal":
            self.machines.run.fire(self.run, "drain", {"reason": "fatal_error"})
        for open_group in list(self.groups.values()):
            self._advance(open_group)

    def _cancel_everything(self, mode: str) -> None:
        self.mode = mode
        for worker in self.admission.discard_queued():
            self._settle_unstarted(worker)
        for group in self.groups.values():
            for worker in list(group.live_workers):
                self._cancel_worker(worker)

    def _internal_error(self, error: BaseException) -> None:
        """A bug in rowforge: cancel every task, end the run, raise `DatasetGenerationError`."""
        if self.mode == "broken":
            return
        log.error("internal error in the dispatcher", exc_info=error)
        wrapped = DatasetGenerationError(f"internal error in rowforge's dispatcher: {error!r}")
        wrapped.__cause__ = error
        self.first_error = wrapped
        self.mode = "broken"
        for group in self.groups.values():
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
        """Take every row-group transition whose guards now hold."""
        if group.live_workers or group.state not in _OPEN or self.mode == "broken":
            return
        if self.mode in ("aborting", "cancelling"):
            trigger = "fail" if group.fatal is not None else "cancel"
            self._close_with(group, trigger, "run aborted")
            return
        if group.state == "seeding":
            if self.mode == "draining" or not group.surviving_rows:
                self._close_with(group, "drop", "early shutdown during seeding")
                return
            if group.seeds_remaining:
                return
            try:
                self._pre_batch(group)
            except DatasetGenerationError as error:
                self._abort(group, error)
                return
            self.machines.row_groups.fire(group, "seeded")
            self._enqueue(group, group.ready_cells())
            if group.live_workers:
                return
        if self.mode == "draining":
            group.drop_incomplete("early shutdown")
            if group.surviving_rows:
                self.machines.row_groups.fire(group, "salvage")
                self._start_checkpoint(group)
            else:
                self._close_with(group, "drop", "early shutdown")
            return
        if not group.surviving_rows:
            self._close_with(group, "drop", "every row dropped")
        elif group.incomplete_rows == 0:
            self.machines.row_groups.fire(group, "cells_done")
            self._start_checkpoint(group)
        else:
            self._internal_error(
                RuntimeError(
                    f"row group {group.ident} is stuck: {group.incomplete_rows} incomplete rows "
                    "and no task left that could complete them"
                )
            )

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
        """Processors and the write, in a thread. Returns its error instead of raising it: a
        child task that raises would make the TaskGroup cancel the whole run on its own."""
        try:
            return await run_uninterrupted(self._checkpoint_work, group.ident, group.frame())
        except Exception as error:
            return error

    def _on_checkpoint_done(self, group: RowGroup, task: asyncio.Task[Any]) -> None:
        try:
            self._checkpoints.discard(task)
            assert self._loop is not None
            self._last_progress = self._loop.time()
            outcome = None if task.cancelled() else task.result()
            if outcome is None:
                self._close_with(group, "cancel", "run cancelled while writing")
            elif isinstance(outcome, Checkpoint):
                self._written(group, outcome)
            else:
                error = outcome
                if not isinstance(error, DatasetGenerationError):
                    error = self._sink_failure(group.ident, error)
                self._abort(None, error)  # first: no new row group is admitted by the close
                self._close_with(group, "fail", str(error))
            self._check_finished()
        except BaseException as failure:
            self._internal_error(failure)

    def _check_finished(self) -> None:
        if self._done is None or self._done.done():
            return
        more = self.mode == "normal" and bool(self.todo)
        if not more and not self.groups and not self.run.live_workers and not self._checkpoints:
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
