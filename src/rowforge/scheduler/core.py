"""State and transitions shared by the async dispatcher and the sync engine.

Both engines own the same objects (machines, ledger, admission, retry policy, early-shutdown
breaker, run state, row-group summaries) and end a run the same way, so the two cannot drift in
what they record: the sync engine is the async engine's correctness oracle (INV-11).
"""

from __future__ import annotations

import logging
from typing import Any

from rowforge.errors import DatasetGenerationError
from rowforge.scheduler.admission import Admission
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.ledger import Ledger
from rowforge.scheduler.outcome import RowGroupSummary
from rowforge.scheduler.plan import Plan, RowGroupPlan, Step
from rowforge.scheduler.retry import RetryPolicy
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.shutdown import EarlyShutdown
from rowforge.scheduler.subjects import Cell, Machines, RunState, Worker
from rowforge.scheduler.trace import TaskTrace
from rowforge.statemachine import EventLog
from rowforge.storage.sinks import Sink

log = logging.getLogger("rowforge")


class EngineCore:
    """What every engine holds; subclasses decide the order in which work happens."""

    engine_name = "core"

    def __init__(self, plan: Plan, config: RunConfig, sink: Sink, events: EventLog) -> None:
        self.plan = plan
        self.config = config
        self.sink = sink
        self.events = events
        self.machines = Machines(events, config.trace, self._upstream_ready)
        self.ledger = Ledger(self.machines.cells)
        self.admission = Admission(plan.steps, config)
        self.retry = RetryPolicy(config)
        self.breaker = EarlyShutdown(config)
        self.run = RunState(plan.num_records)
        self.groups: dict[int, RowGroup] = {}
        self.closed: list[RowGroupSummary] = []
        self.file_paths: list[str] = []
        self.traces: list[TaskTrace] = []
        self.mode = "normal"
        self.early_shutdown = False
        self.first_error: BaseException | None = None
        self.stall_warnings = 0
        self.peak_open_row_groups = 0
        self.cell_delta = 0
        self._next_worker = 0
        self._last_error: tuple[Step, BaseException] | None = None

    # -- row groups ------------------------------------------------------------------------

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
        self.machines.row_groups.fire(group, trigger, {"reason": reason})
        self._close(group)

    def _close(self, group: RowGroup) -> None:
        del self.groups[group.ident]
        self.run.open_row_groups -= 1
        self.cell_delta += group.cell_delta
        self.machines.row_groups.remove(group)
        self.closed.append(RowGroupSummary.of(group))

    def _written(self, group: RowGroup, rows: int, path: str | None) -> None:
        """The sink confirmed the rows are stored: the row group is drained."""
        group.rows_written = rows
        self.run.records_written += rows
        if path:
            self.file_paths.append(path)
        self.machines.row_groups.fire(group, "write", {"rows": rows, "path": path})
        self._close(group)

    def _sink_failure(self, group: RowGroup, error: BaseException) -> DatasetGenerationError:
        failure = DatasetGenerationError(
            f"row group {group.ident}: writing to the sink failed: {type(error).__name__}: {error}"
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
        self.run.live_workers += 1
        return worker

    def _drain(self, worker: Worker) -> None:
        """Leases are released; the worker reaches `drained` and stops being live."""
        self.machines.workers.fire(worker, "release")
        worker.row_group.live_workers.discard(worker)
        self.run.live_workers -= 1
        if self.config.trace:
            self.traces.append(TaskTrace.of(worker))

    def _start_cells(self, worker: Worker) -> None:
        group, cells = worker.row_group, worker.row_group.cells[worker.step.name]
        rows = (worker.row,) if worker.row is not None else tuple(group.surviving())
        for row in rows:
            self.machines.cells.fire(cells[row], "start")

    # -- early shutdown --------------------------------------------------------------------

    def _shutdown_error(self) -> DatasetGenerationError:
        """Name the step, the resource and the provider's last error (never a bare 'failed')."""
        step, error = self._last_error if self._last_error else (None, None)
        resource = step.resource if step is not None else None
        message = (
            f"early shutdown: {self.breaker.describe()}; last error in step "
            f"{step.name if step else '?'!r} (resource {resource!r}): "
            f"{type(error).__name__}: {error}"
        )
        cause = DatasetGenerationError(message)
        cause.__cause__ = error
        return cause

    # -- the end ---------------------------------------------------------------------------

    def _end(self) -> None:
        written = self.run.records_written
        if self.mode == "normal":
            if written == self.run.target_records:
                trigger = "complete"
            else:
                trigger = "complete_partial" if written else "fail_empty"
        elif self.mode == "draining":
            trigger = "end_partial" if written else "end_failed"
        else:
            trigger = "end_failed"
        self.machines.run.fire(self.run, trigger, {"records_written": written})

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
            "cell_delta": self.cell_delta,
        }
