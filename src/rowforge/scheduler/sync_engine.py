"""The sync engine: column by column within each row group, one task at a time.

Theory of operation
-------------------
The sync engine is the correctness oracle for the async dispatcher (INV-11) and the only engine
that runs `allow_resize` steps. It uses the same plan, machines, ledger, retry policy, breaker and
sinks (through `EngineCore`), but orders work trivially: row groups one after another; inside a
row group, steps in topological order; a cell step row by row. Every task attempt is still a
worker that goes `pending -> running -> ... -> drained`, so the event log, traces and accounting
have the same shape as the async engine's.

It is `async` only so that async step callables can be awaited; it never runs two tasks at once.

Sync-engine specifics (not in the specs):
- an `allow_resize` batch step may return a different number of rows; the row group is re-based
  (`RowGroup.resize`) and later row groups' record indices continue after it;
- early shutdown ends the current row group without salvage: in column order, no row is complete
  until the last column, so there is nothing whole to write.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd

from rowforge.errors import DatasetGenerationError, describe_error
from rowforge.scheduler.calls import batch_values, call_step, step_failure_reason
from rowforge.scheduler.core import (
    GROUP_SEEDING,
    RUN_ABORTABLE,
    RUN_INTERRUPTIBLE,
    Checkpoint,
    EngineCore,
    log,
)
from rowforge.scheduler.plan import Step
from rowforge.scheduler.retry import ErrorKind, classify
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.subjects import Worker
from rowforge.scheduler.threads import run_uninterrupted


class _StepFailed(Exception):
    """A task failed for good (non-retryable, or retries exhausted)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class SyncEngine(EngineCore):
    """Runs one plan sequentially. Use once."""

    engine_name = "sync"
    _backing_off = 0  # tasks sleeping through a retry's backoff (0 or 1: one task at a time)

    @property
    def deferred(self) -> int:
        return self._backing_off

    async def execute(self) -> None:
        """Run to a terminal state; on cancellation end `cancelled` and re-raise."""
        self.machines.run.add(self.run)
        self.machines.run.fire(self.run, "start")
        shift = 0  # how far allow_resize steps moved later record indices
        try:
            while self.todo and self._admitting():
                group = self._open_next_group()
                planned = group.num_rows
                group.start += shift
                await self._run_group(group)
                shift += group.num_rows - planned
        except asyncio.CancelledError:
            if self.run.state in RUN_INTERRUPTIBLE:
                self.machines.run.fire(self.run, "interrupt")
            for group in list(self.groups.values()):
                trigger = self.machines.row_groups.pick(group, ("fail", "cancel"))
                self._close_with(group, trigger or "cancel", "run cancelled")
            self._end()
            raise
        self._end()

    async def _run_group(self, group: RowGroup) -> None:
        done: list[str] = []
        # Seed steps first, as the async engine runs them (still a topological order: a seed
        # step's upstream steps are seed steps), so a seed step declared after a cell step
        # still runs before the row group leaves seeding.
        seeds = [step for step in self.plan.steps if step.name in self.plan.seed_steps]
        rest = [step for step in self.plan.steps if step.name not in self.plan.seed_steps]
        for step in seeds + rest:
            leaving_seeding = group.state in GROUP_SEEDING and step.name not in self.plan.seed_steps
            if leaving_seeding and not self._seeded(group):
                return
            try:
                if step.kind == "batch":
                    await self._run_batch(group, step, done)
                else:
                    await self._run_cells(group, step)
            except DatasetGenerationError as error:
                self._abort(group, error)
                return
            if not self._admitting():  # early shutdown: no row is whole before the last step
                self._close_with(group, "drop", "early shutdown")
                return
            if self.machines.row_groups.pick(group, ("drop",)):  # no row survived
                self._close_with(group, "drop", "every row dropped")
                return
            done.append(step.name)
        if group.state in GROUP_SEEDING and not self._seeded(group):
            return
        self.machines.row_groups.fire(group, "cells_done")
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            checkpoint = await self._checkpoint(group)
        except DatasetGenerationError as error:
            self._abort(group, error)
            return
        self._written(group, checkpoint)
        if task is not None and task.cancelling() > cancels:
            # The run was cancelled during the write: the write finished and is recorded (a
            # started write is never abandoned); now the cancellation takes effect.
            raise asyncio.CancelledError

    async def _checkpoint(self, group: RowGroup) -> Checkpoint:
        """Post-batch processors, the row-count guard on what they returned, then the write."""
        frame = group.frame()
        if self._has_stage("post_batch"):
            stage = await run_uninterrupted(self._post_batch, group.ident, frame)
            self._require_rows_kept(group, frame.index, stage)
            frame = stage.frame
        return await run_uninterrupted(self._write_checkpoint, group.ident, frame)

    def _seeded(self, group: RowGroup) -> bool:
        """Pre-batch processors, then `seeded`. A row group with no row left never gets here:
        `_run_group` closes it after the step that dropped its last row."""
        try:
            self._pre_batch(group)
        except DatasetGenerationError as error:
            self._abort(group, error)
            return False
        self.machines.row_groups.fire(group, "seeded")
        group.finish_seeding()  # decides skip conditions; the steps' order says what runs next
        return True

    async def _run_batch(self, group: RowGroup, step: Step, done: list[str]) -> None:
        rows = group.rows_for(step.name)
        if not rows:
            return  # its skip condition held for every row (`RowGroup._batch_step_ready`)
        try:
            value = await self._attempts(group, step, None, rows)
        except _StepFailed as failure:
            group.drop_all(step_failure_reason(step, failure.error), failed_step=step.name)
            return
        if step.allow_resize and isinstance(value, pd.DataFrame):
            before = group.num_rows
            group.resize(step.name, value, done)
            self.run.target_records += group.num_rows - before  # the resize moved the target
            return
        values = batch_values(step, group.ident, value)
        self._require_batch_rows(group, step, rows, values)
        group.generate_batch(step.name, rows, values)

    async def _run_cells(self, group: RowGroup, step: Step) -> None:
        for row in group.rows_for(step.name):
            if not self._admitting():
                return
            try:
                value = await self._attempts(group, step, row, (row,))
            except _StepFailed as failure:
                group.drop_row(row, step_failure_reason(step, failure.error), failed_step=step.name)
                continue
            group.generate(step.name, row, value)

    async def _attempts(
        self, group: RowGroup, step: Step, row: int | None, rows: tuple[int, ...]
    ) -> Any:
        """Run one task through its attempts; return its value or raise `_StepFailed`."""
        loop = asyncio.get_running_loop()
        retries = rate_limited = attempt = 0
        spent = 0.0  # transient retry budget used
        while True:
            worker = self._new_worker(step, group, row, attempt, loop.time())
            self.admission.push(worker)
            admitted = self.admission.next_admissible()
            assert admitted is worker, "the sync engine runs one task at a time"
            worker.admitted = loop.time()
            if attempt == 0:
                self._start_cells(worker)
            value, error = await self._run_worker(worker, group, step, row, rows)
            now = worker.finished = loop.time()
            exhausted = self._observe_call(worker, error, now)
            if error is None:
                self._finish_worker(worker, "succeed")
                self._task_succeeded(step)
                return value
            kind = classify(error)
            if kind is ErrorKind.RETRYABLE:
                spent += worker.finished - worker.started
            delay = None
            if self._admitting() and exhausted is None:
                delay = self.retry.next_delay(
                    kind, error, retries=retries, rate_limited=rate_limited, spent=spent
                )
            self._finish_worker(worker, "defer" if delay is not None else "fail")
            if delay is None:
                tripped = self._task_failed(step, error)
                if exhausted is not None:
                    self._begin_drain(self._exhausted_error(exhausted))
                elif tripped:
                    self._begin_drain()
                raise _StepFailed(error)
            if kind is ErrorKind.RETRYABLE:
                spent += delay
            retries += kind is ErrorKind.RETRYABLE
            rate_limited += kind is ErrorKind.RATE_LIMIT
            self._retry_granted(step, kind)
            self._backing_off += 1
            try:
                await asyncio.sleep(delay)
            finally:
                self._backing_off -= 1
            attempt += 1

    async def _run_worker(
        self,
        worker: Worker,
        group: RowGroup,
        step: Step,
        row: int | None,
        rows: tuple[int, ...],
    ) -> tuple[Any, BaseException | None]:
        """Call the step once. The caller settles the worker (it needs the outcome first)."""
        worker.started = asyncio.get_running_loop().time()
        self.machines.workers.fire(worker, "start")
        if row is not None:
            argument: Any = group.upstream_values(step.name, row)
        else:
            worker.rows = rows
            argument = group.batch_input(step.name, rows)
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        failure: BaseException | None = None
        try:
            if self.config.task_timeout_s is None:
                value = await call_step(step, argument)
            else:
                async with asyncio.timeout(self.config.task_timeout_s):
                    value = await call_step(step, argument)
        except asyncio.CancelledError:
            self._finish_worker(worker, "cancel")
            raise
        except Exception as error:
            worker.error = error
            value, failure = None, error
        if task is not None and task.cancelling() > cancels:
            # The run was cancelled and the step swallowed the CancelledError (the step runs in
            # the run's own task): the cancellation stands, the value or error is discarded.
            self._finish_worker(worker, "cancel")
            raise asyncio.CancelledError
        return value, failure

    def _finish_worker(self, worker: Worker, trigger: str) -> None:
        if not worker.finished:
            worker.finished = asyncio.get_running_loop().time()
        worker.outcome = self.machines.workers.fire(worker, trigger)
        self.admission.release(worker)
        self._drain(worker)

    def _begin_drain(self, cause: DatasetGenerationError | None = None) -> None:
        """Early shutdown (the breaker's verdict unless `cause` says otherwise); the runner
        raises it at the end, so it is logged here only at INFO."""
        if not self._admitting():
            return
        self.early_shutdown = True
        cause = cause if cause is not None else self._shutdown_error()
        self.first_error = self.first_error or cause
        log.info("%s (draining)", cause)
        self.machines.run.fire(self.run, "drain", {"reason": "early_shutdown"})

    def _abort(self, group: RowGroup, error: BaseException) -> None:
        """A fatal error in `group`: the run aborts, the row group fails, nothing more runs."""
        self.first_error = self.first_error or error
        group.fatal = group.fatal or error
        if self.run.state in RUN_ABORTABLE:
            self.machines.run.fire(self.run, "abort", {"reason": describe_error(error)})
        self._close_with(group, "fail", describe_error(error))
