"""The tracked objects of a run and the guards that protect them.

Theory of operation
-------------------
Four kinds of subject, one per machine in `specs/`:

- `RunState` (one per run) and `RowGroup` (one per open row group) are driven by reference
  `transitions` machines: they are few, and their every transition goes to the event log.
- `Worker` (one per task attempt) and `Cell` (one per row and column) are driven by compiled
  tables: they are many. Their transitions are logged only when tracing.

Every guard below is a pure predicate over its subject and names the invariant it enforces. The
dispatcher and the sync engine mutate these objects; nothing else does. Rules that the specs
cannot express are enforced next to the code that needs them and flagged there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rowforge.statemachine import (
    SPECS,
    TABLES,
    CompiledMachine,
    EventLog,
    Guards,
    ReferenceMachine,
)

if TYPE_CHECKING:
    import asyncio

    from rowforge.scheduler.plan import Step
    from rowforge.scheduler.rowgroup import RowGroup


INITIAL = {name: table.initial for name, table in TABLES.items()}


class Worker:
    """One attempt of one task: a cell step on one row, or a batch step on a row group."""

    __slots__ = (
        "admitted",
        "attempt",
        "created",
        "error",
        "finished",
        "has_leases",
        "ident",
        "outcome",
        "rate_limited",
        "resource_lease",
        "retries",
        "row",
        "row_group",
        "rows",
        "started",
        "state",
        "step",
        "task",
    )

    def __init__(
        self,
        ident: int,
        step: Step,
        row_group: RowGroup,
        row: int | None,
        attempt: int,
        created: float,
    ) -> None:
        self.ident = ident
        self.state = INITIAL["worker"]
        self.step = step
        self.row_group = row_group
        self.row = row
        self.attempt = attempt
        self.created = created
        self.admitted = 0.0
        self.started = 0.0
        self.finished = 0.0
        self.has_leases = False
        self.resource_lease: str | None = None
        self.outcome = ""
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None
        self.retries = 0  # earlier retryable failures of this task (rate limits excluded)
        self.rate_limited = 0  # earlier rate-limit answers for this task
        self.rows: tuple[int, ...] = ()  # a batch attempt's input rows, fixed when it starts


class Cell:
    """One (row, column) value's accounting: it ends exactly once (INV-4); the ledger, not the
    cell, knows whether it was counted."""

    __slots__ = ("column", "row", "row_group", "state")

    def __init__(self, row_group: int, row: int, column: str) -> None:
        self.row_group = row_group
        self.row = row
        self.column = column
        self.state = INITIAL["cell"]

    @property
    def ident(self) -> tuple[int, int, str]:
        return (self.row_group, self.row, self.column)


class RunState:
    """The run's own subject; the engine keeps the counters the run guards read."""

    def __init__(self, target_records: int, row_groups: int) -> None:
        self.ident = "run"
        self.state = INITIAL["run"]
        self.target_records = target_records
        self.live_workers = 0
        self.unadmitted_row_groups = row_groups
        self.open_row_groups = 0
        self.records_written = 0


def run_guards() -> dict[str, Callable[[RunState], bool]]:
    return {
        # INV-2: the run never ends while one of its workers is alive.
        "no_live_workers": lambda run: run.live_workers == 0,
        "all_row_groups_terminal": lambda run: run.open_row_groups == 0,
        "all_row_groups_admitted": lambda run: run.unadmitted_row_groups == 0,
        # INV-6: completed means every planned record is on disk, nothing less.
        "target_reached": lambda run: run.records_written == run.target_records,
        "some_rows_written": lambda run: run.records_written > 0,
    }


def row_group_guards() -> dict[str, Callable[[RowGroup], bool]]:
    return {
        # INV-2: a row group ends only after every worker of it was awaited.
        "no_live_workers": lambda group: not group.live_workers,
        # INV-5: every batch step and processor returned the rows it was given (count, and
        # for processors the record indexes in order); read from what they returned.
        "row_count_unchanged": lambda group: group.rows_kept(),
        "has_rows": lambda group: group.surviving_rows > 0,
        "seeds_done": lambda group: group.seeds_remaining == 0,
        "cells_complete": lambda group: group.incomplete_rows == 0,
        "has_fatal_error": lambda group: group.fatal is not None,
    }


def worker_guards() -> dict[str, Callable[[Worker], bool]]:
    return {
        "leases_held": lambda worker: worker.has_leases,  # INV-10
        "leases_released": lambda worker: not worker.has_leases,  # INV-3
        # INV-2: a worker started as a task is drained only once that task is done.
        "task_finished": lambda worker: worker.task is None or worker.task.done(),
    }


def cell_guards(
    upstream_ready: Callable[[Cell], bool], counted: Callable[[Cell], bool]
) -> dict[str, Callable[[Cell], bool]]:
    return {
        "upstream_generated": upstream_ready,  # INV-9
        "not_yet_counted": lambda cell: not counted(cell),  # INV-4, asked of the ledger
    }


class Machines:
    """The four machines of one run, wired to one event log."""

    def __init__(
        self,
        events: EventLog,
        trace: bool,
        upstream_ready: Callable[[Cell], bool],
        counted: Callable[[Cell], bool],
    ) -> None:
        detail_log = events if trace else None
        self.run = ReferenceMachine(SPECS["run"], _guards(run_guards()), events)
        self.row_groups = ReferenceMachine(SPECS["row_group"], _guards(row_group_guards()), events)
        self.workers = CompiledMachine(TABLES["worker"], _guards(worker_guards()), detail_log)
        self.cells = CompiledMachine(
            TABLES["cell"], _guards(cell_guards(upstream_ready, counted)), detail_log
        )


def _guards(table: dict[str, Callable[[Any], bool]]) -> Guards:
    return table
