"""State and transitions shared by the async dispatcher and the sync engine.

Both engines own the same objects (machines, ledger, admission, retry policy, early-shutdown
breaker, run state, row-group summaries) and end a run the same way, so the two cannot drift in
what they record: the sync engine is the async engine's correctness oracle (INV-11).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import pandas as pd
import pyarrow as pa

from rowforge.errors import (
    DatasetGenerationError,
    DatasetProcessingError,
    EarlyShutdownError,
    describe_error,
)
from rowforge.processors import Processor, StageResult, run_stage
from rowforge.progress.counters import RetryCounts
from rowforge.scheduler.admission import Admission
from rowforge.scheduler.calls import count_breach
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.ledger import Ledger
from rowforge.scheduler.outcome import RowGroupSummary
from rowforge.scheduler.plan import Plan, RowGroupPlan, Step
from rowforge.scheduler.retry import ErrorKind, RetryPolicy, classify, failure_label
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.shutdown import EarlyShutdown, ProviderHealth
from rowforge.scheduler.subjects import Cell, Machines, RunState, Worker
from rowforge.scheduler.trace import TaskTrace
from rowforge.statemachine import TABLES, EventLog
from rowforge.storage.sinks import Sink

log = logging.getLogger("rowforge")


def _accounting(group: RowGroup) -> dict[str, Any]:
    """What a row group's terminal event carries so that `rowforge check` can verify INV-2 and
    INV-4 from the event log alone, tracing off: workers created and drained (counted at those
    two moments, not read from the live set the guards use), per column the cells that
    ended generated, skipped and failed, and (`kept_skips`, when there are any) per column the
    skipped cells that written rows keep because the step's skip condition held."""
    cells = {
        name: [sum(1 for cell in column if cell.state == state) for state in _CELL_OUTCOMES]
        for name, column in group.cells.items()
    }
    accounting: dict[str, Any] = {
        "workers_started": group.workers_started,
        "workers_drained": group.workers_drained,
        "cells": cells,
    }
    kept_skips = group.kept_skips()
    if kept_skips:
        accounting["kept_skips"] = kept_skips
    return accounting


_CELL_OUTCOMES = tuple(TABLES["cell"].dest_of(t) for t in ("generate", "skip", "fail"))

# Spec facts the engines act on, read from the tables rather than copied as state names:
# the run admits work in the states early shutdown can still begin from; it drains (salvaging
# complete rows) where a drain can end; it stops (writing nothing more) where a run can be
# failed or cancelled outright. A row group is open to work where it can be seeded or finished.
RUN_ADMITTING = TABLES["run"].sources("drain")
RUN_DRAINING = TABLES["run"].sources("end_partial")
RUN_STOPPING = TABLES["run"].sources("fail", "cancel")
RUN_ABORTABLE = TABLES["run"].sources("abort")
RUN_INTERRUPTIBLE = TABLES["run"].sources("interrupt")
RUN_CANCELLING = TABLES["run"].sources("cancel")
GROUP_SEEDING = TABLES["row_group"].sources("seeded")
GROUP_OPEN = GROUP_SEEDING | TABLES["row_group"].sources("cells_done")


def _arrow_types(frame: pd.DataFrame) -> dict[str, str]:
    return {f.name: str(f.type) for f in pa.Schema.from_pandas(frame, preserve_index=False)}


@attrs.frozen
class Checkpoint:
    """What a checkpoint produced: where the rows went, how many, and their Arrow schema."""

    path: str | None
    rows: int
    schema: dict[str, str]


class EngineCore:
    """What every engine holds; subclasses decide the order in which work happens.

    `processors` run at their stage for every row group; `row_groups` restricts the run to some
    planned row groups (resume); `on_checkpoint` is called with each row group's summary when
    it ends (the metadata writer hangs here, so both engines write metadata at the same moments;
    it gets only the new summary, so its work does not grow with `closed`).
    """

    engine_name = "core"

    def __init__(
        self,
        plan: Plan,
        config: RunConfig,
        sink: Sink,
        events: EventLog,
        *,
        processors: Sequence[Processor] = (),
        row_groups: Sequence[int] | None = None,
        on_checkpoint: Callable[[RowGroupSummary], None] | None = None,
    ) -> None:
        self.plan = plan
        self.processors = tuple(processors)
        self.todo: deque[int] = deque(
            range(plan.num_row_groups) if row_groups is None else sorted(row_groups)
        )
        self.planned_records = sum(plan.row_group(index).size for index in self.todo)
        self.on_checkpoint = on_checkpoint
        self.schema: dict[str, str] = {}
        self.config = config
        self.sink = sink
        self.events = events
        counted: set[Cell] = set()  # the ledger's, read by the cell guard `not_yet_counted`
        self.machines = Machines(events, config.trace, self._upstream_ready, counted.__contains__)
        self.ledger = Ledger(self.machines.cells, counted)
        self.admission = Admission(plan.steps, config)
        self.retry = RetryPolicy(config)
        self.breaker = EarlyShutdown(config)
        self.health = ProviderHealth(config)
        self.run = RunState(self.planned_records, len(self.todo))
        self.groups: dict[int, RowGroup] = {}
        self.closed: list[RowGroupSummary] = []
        self.file_paths: list[str] = []
        self.traces: list[TaskTrace] = []
        self.early_shutdown = False
        self.first_error: BaseException | None = None
        self.stall_warnings = 0
        self.peak_open_row_groups = 0
        self.cell_delta = 0
        self._next_worker = 0
        self._last_error: tuple[Step, BaseException] | None = None
        # what progress snapshots read (rowforge.scheduler.snapshots), kept as things happen
        self.started = time.monotonic()
        self.retry_counts = RetryCounts()
        self.closed_states: Counter[str] = Counter()
        self.closed_records = 0  # records of ended row groups: written or dropped

    async def execute(self) -> None:
        """Run to a terminal state; each engine decides the order of the work."""
        raise NotImplementedError

    # -- the run's state ---------------------------------------------------------------------

    def _admitting(self) -> bool:
        """The run takes new work (row groups, workers, retries) only in its admitting state."""
        return self.run.state in RUN_ADMITTING

    def _end(self) -> None:
        """End the run: the run machine's guards choose the one terminal edge that holds."""
        self.machines.run.finish(self.run, {"records_written": self.run.records_written})

    # -- row groups ------------------------------------------------------------------------

    def _open_next_group(self) -> RowGroup:
        layout = self.plan.row_group(self.todo.popleft())
        self.run.unadmitted_row_groups -= 1
        return self._open_group(layout)

    def _open_group(self, layout: RowGroupPlan) -> RowGroup:
        group = RowGroup(layout, self.plan, self.ledger)
        self.groups[group.ident] = group
        self.run.open_row_groups += 1
        self.peak_open_row_groups = max(self.peak_open_row_groups, len(self.groups))
        self.machines.row_groups.add(group)
        self.machines.row_groups.fire(group, "admit", {"rows": group.expected_rows})
        return group

    def _close_with(self, group: RowGroup, trigger: str, reason: str) -> None:
        """Settle any unfinished cells, take a terminal transition, forget the row group."""
        group.drop_all(reason)
        self.machines.row_groups.fire(group, trigger, {"reason": reason, **_accounting(group)})
        self._close(group)

    def _close(self, group: RowGroup) -> None:
        del self.groups[group.ident]
        self.ledger.forget(cell for column in group.cells.values() for cell in column)
        self.run.open_row_groups -= 1
        self.cell_delta += group.cell_delta
        self.machines.row_groups.remove(group)
        summary = RowGroupSummary.of(group)
        self.closed.append(summary)
        self.closed_states[summary.state] += 1
        self.closed_records += summary.planned_records + summary.records_resized
        if self.on_checkpoint is not None:
            self.on_checkpoint(summary)

    def _written(self, group: RowGroup, checkpoint: Checkpoint) -> None:
        """The sink confirmed the rows are stored: the row group is drained."""
        group.rows_written = checkpoint.rows
        self.run.records_written += checkpoint.rows
        if checkpoint.path:
            self.file_paths.append(checkpoint.path)
        self.schema = self.schema or checkpoint.schema
        details = {"rows": checkpoint.rows, "path": checkpoint.path, **_accounting(group)}
        self.machines.row_groups.fire(group, "write", details)
        self._close(group)

    # -- processors and checkpoints --------------------------------------------------------

    def _has_stage(self, stage: str) -> bool:
        return any(p.stage == stage for p in self.processors)

    def _pre_batch(self, group: RowGroup) -> None:
        """Run pre-batch processors on the seeded rows; write their changes back (INV-5)."""
        if not self._has_stage("pre_batch"):
            return
        seeded = [s.name for s in self.plan.steps if s.name in self.plan.seed_steps]
        frame = group.frame(seeded)
        result = run_stage(self.processors, "pre_batch", frame, group.ident)
        self._require_rows_kept(group, frame.index, result)
        group.absorb(result.frame)

    def _require_rows_kept(
        self, group: RowGroup, given: Iterable[Any], result: StageResult
    ) -> None:
        """Keep what a stage returned as the row-count guard's evidence; when the guard says
        the rows were not kept, raise `DatasetProcessingError` saying how (INV-5)."""
        group.record_output(given, result.frame.index)
        self._check_row_contract(group, result.breach)

    def _require_batch_rows(
        self, group: RowGroup, step: Step, rows: Sequence[int], values: Sequence[Any]
    ) -> None:
        """A batch step's values are matched to its input rows by position: keep both counts
        as the row-count guard's evidence, and raise when the guard says they differ."""
        group.record_output(range(len(rows)), range(len(values)))
        self._check_row_contract(group, count_breach(step, group.ident, len(values), len(rows)))

    def _check_row_contract(self, group: RowGroup, breach: str | None) -> None:
        """The guard decides; `breach` (the stage's or step's own comparison of the same
        values) says how. The two agree on every input the engines produce; the fallback text
        only covers a guard that refuses on its own."""
        if not self.machines.row_groups.holds(group, "row_count_unchanged"):
            raise DatasetProcessingError(
                breach or f"row group {group.ident}: a step or processor returned other rows"
            )

    def _post_batch(self, row_group: int, frame: pd.DataFrame) -> StageResult:
        """Post-batch processors. Runs in a worker thread."""
        return run_stage(self.processors, "post_batch", frame, row_group)

    def _write_checkpoint(self, row_group: int, frame: pd.DataFrame) -> Checkpoint:
        """The sink. Runs in a worker thread."""
        try:
            path = self.sink.write(row_group, frame)
        except Exception as error:
            raise self._sink_failure(row_group, error) from error
        # The run keeps the first row group's schema (`_written`): infer it only until then.
        schema = {} if self.schema else _arrow_types(frame)
        return Checkpoint(path, len(frame), schema)

    @staticmethod
    def _sink_failure(row_group: int, error: BaseException) -> DatasetGenerationError:
        failure = DatasetGenerationError(
            f"row group {row_group}: writing to the sink failed: {describe_error(error)}"
        )
        failure.__cause__ = error
        return failure

    # -- workers and cells -----------------------------------------------------------------

    def _upstream_ready(self, cell: Cell) -> bool:
        group = self.groups[cell.row_group]
        return group.waiting[cell.column][cell.row] == 0

    def _new_worker(
        self, step: Step, group: RowGroup, row: int | None, attempt: int, now: float
    ) -> Worker:
        self._next_worker += 1
        worker = Worker(self._next_worker, step, group, row, attempt, now)
        group.live_workers.add(worker)
        group.workers_started += 1
        self.run.live_workers += 1
        return worker

    def _drain(self, worker: Worker) -> None:
        """Leases are released; the worker reaches `drained` and stops being live."""
        self.machines.workers.fire(worker, "release")
        worker.row_group.live_workers.discard(worker)
        worker.row_group.workers_drained += 1
        self.run.live_workers -= 1
        if self.config.trace:
            self.traces.append(TaskTrace.of(worker))

    def _start_cells(self, worker: Worker) -> None:
        group, cells = worker.row_group, worker.row_group.cells[worker.step.name]
        rows = (worker.row,) if worker.row is not None else group.rows_for(worker.step.name)
        for row in rows:
            self.machines.cells.fire(cells[row], "start")

    # -- provider health and early shutdown -----------------------------------------------

    def _observe_call(self, worker: Worker, error: BaseException | None, now: float) -> str | None:
        """Feed one finished call of a model step to `health`; log a degraded WARNING when one
        is due. Returns the model (resource) whose no-success budget is now spent, if any."""
        resource = worker.step.resource
        if resource is None:
            return None
        if error is None:
            self.health.succeeded(resource, worker.started, now)
            return None
        if classify(error) is ErrorKind.FATAL:
            return None  # the request's fault (4xx, bad output), not the provider's health
        warning = self.health.rejected(resource, worker.step.name, error, worker.started, now)
        if warning is not None:
            log.warning("%s", warning)
        return resource if self.health.is_exhausted(resource, now) else None

    @property
    def deferred(self) -> int:
        """Retries waiting for their backoff to end."""
        return 0

    def _retry_granted(self, step: Step, kind: ErrorKind) -> None:
        """A retry was scheduled: count it for the step and, by cause, for its model."""
        self.retry_counts.granted(step.name, step.resource, kind is ErrorKind.RATE_LIMIT)

    def _task_succeeded(self, step: Step) -> None:
        """A task ended in success: the breaker hears of it when the step calls a model."""
        if step.resource is not None:
            self.breaker.record(False)

    def _task_failed(self, step: Step, error: BaseException) -> bool:
        """A task failed for good; True when that trips the breaker (model steps only)."""
        self._last_error = (step, error)
        if step.resource is None:
            return False
        return self.breaker.record(True, failure_label(error))

    def _shutdown_error(self) -> EarlyShutdownError:
        """The breaker tripped: name the step, the model and the provider's last error."""
        step, error = self._last_error if self._last_error else (None, None)
        resource = step.resource if step is not None else None
        return self._early_shutdown(
            self.breaker.describe(), step.name if step else "?", resource, error
        )

    def _exhausted_error(self, resource: str) -> EarlyShutdownError:
        """A model's no-success budget is spent: say so, with the statuses it answered."""
        message, step, error = self.health.exhausted_message(resource)
        return self._early_shutdown(message, step, resource, error)

    @staticmethod
    def _early_shutdown(
        reason: str, step: str, resource: str | None, error: BaseException | None
    ) -> EarlyShutdownError:
        cause = EarlyShutdownError(
            f"early shutdown: {reason}; last error in step {step!r} (model {resource!r}): "
            f"{describe_error(error) if error is not None else 'none recorded'}"
        )
        cause.__cause__ = error
        return cause

    # -- the end ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters the tests and benchmarks read (INV-3, INV-10)."""
        return {
            "peak_in_flight": self.admission.peak_in_flight,
            "peak_per_resource": dict(self.admission.peak_per_resource),
            "peak_open_row_groups": self.peak_open_row_groups,
            "leases_balanced": self.admission.balanced,
            "live_workers": self.run.live_workers,
            "workers_created": self._next_worker,
            "stall_warnings": self.stall_warnings,
            "degraded_warnings": self.health.warnings,
            "cell_delta": self.cell_delta,
            "adaptive_limits": {r: a.current for r, a in self.admission.adaptive.items()},
        }
