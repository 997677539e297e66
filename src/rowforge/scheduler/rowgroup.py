"""A row group's buffer: values, cells, row readiness and drops.

Theory of operation
-------------------
A `RowGroup` holds `expected_rows` rows and, per step, a value and a `Cell` per row. For every
step and row it keeps `waiting[step][row]`, the number of the step's direct dependencies not yet
generated for that row. Generating a cell decrements the counters of its downstream steps; a
cell step whose counter reaches zero is *ready for that row* (INV-9: rows advance independently,
not column by column). A batch step is ready when no surviving row still waits for it
(`batch_outstanding[step] == 0`). Each row counts down `batch_outstanding` exactly once, when
it becomes ready for the step or when it is dropped before that, so a batch step becomes ready
once per row group and is never started twice.

Dropping a row skips its unfinished cells exactly once (through the ledger) and releases any batch
step that was only waiting for that row.

A step's skip condition (`Step.skip_when`, and `propagate_skip` from a skipped dependency) is
decided here, when a cell becomes ready, so both engines decide it identically (INV-11): the
cell is skipped once through the ledger, the row keeps the step's `skip_value`, and the skip
counts as settled for the cells downstream, which may skip in turn. While a row group is still
seeding, cell steps wait: their condition is decided in `finish_seeding`, after the pre-batch
processors, so it reads the values the processors left.

The buffer never decides *when* things happen: the dispatcher (async) or the sync engine calls
these methods and drives the machines.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pandas as pd

from rowforge.scheduler.calls import step_failure_reason
from rowforge.scheduler.ledger import Ledger
from rowforge.scheduler.plan import Plan, RowFailed, RowGroupPlan
from rowforge.scheduler.subjects import INITIAL, Cell, Worker
from rowforge.statemachine import TABLES

Ready = tuple[str, int | None]  # (step, row) for a cell step; (step, None) for a batch step

_GENERATED = TABLES["cell"].dest_of("generate")
_GENERATING = TABLES["cell"].sources("generate")
_UNSETTLED = TABLES["cell"].sources("generate", "fail", "skip")  # cells that may still change
_STARTABLE = TABLES["cell"].sources("start")
_SEEDING = TABLES["row_group"].sources("seeded")

log = logging.getLogger("rowforge")


class RowOutput:
    """What a batch step or a processor was given and what it returned, as row keys: record
    indexes for processors (they must keep each row's index and order), positions for batch
    steps (their values are matched by position). The row-count guard compares the two."""

    __slots__ = ("given", "returned")

    def __init__(self, given: Iterable[Any], returned: Iterable[Any]) -> None:
        self.given = tuple(given)
        self.returned = tuple(returned)

    @property
    def kept(self) -> bool:
        return self.given == self.returned


class RowGroup:
    """Mutable state of one open row group; owned by one engine."""

    def __init__(self, layout: RowGroupPlan, plan: Plan, ledger: Ledger) -> None:
        self.ident = layout.index
        self.state = INITIAL["row_group"]
        self.layout = layout
        self.start = layout.start
        self._plan = plan
        self._ledger = ledger
        size = layout.size
        self.expected_rows = size
        self.num_rows = size
        self.values: dict[str, list[Any]] = {c: [None] * size for c in plan.columns}
        self.cells: dict[str, list[Cell]] = {
            s.name: [Cell(layout.index, row, s.name) for row in range(size)] for s in plan.steps
        }
        self.waiting: dict[str, list[int]] = {
            s.name: [len(plan.dependencies[s.name])] * size for s in plan.steps
        }
        self.batch_outstanding: dict[str, int] = {
            s.name: (size if plan.dependencies[s.name] else 0)
            for s in plan.steps
            if s.kind == "batch"
        }
        self.seeds_remaining = len(plan.seed_steps)
        self.row_missing = [len(plan.steps)] * size
        self.incomplete_rows = size
        self.dropped = [False] * size
        self.surviving_rows = size
        self.drop_reasons: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # this row group's skipped cells, per column
        # per row, the steps whose skip condition held there (the row keeps those cells)
        self.skipped_by_condition: list[set[str]] = [set() for _ in range(size)]
        self.live_workers: set[Worker] = set()
        self.workers_started = 0  # counted at creation and at drain, apart from `live_workers`:
        self.workers_drained = 0  # the event log carries them so `check` has its own evidence
        self.rows_written = 0
        self.fatal: BaseException | None = None
        self.cell_delta = 0  # cells added (or removed) by an allow_resize step, sync engine only
        self.records_resized = 0  # rows added (or removed) by allow_resize steps, sync engine only
        self.extras: dict[str, list[Any]] = {}  # columns added by pre-batch processors
        self.outputs: list[RowOutput] = []  # the row-count guard's evidence

    # -- the row contract (INV-5) ------------------------------------------------------------

    def record_output(self, given: Iterable[Any], returned: Iterable[Any]) -> None:
        """Keep what a batch step or processor was given and returned as the guard's evidence."""
        self.outputs.append(RowOutput(given, returned))

    def rows_kept(self) -> bool:
        """Every batch step and processor so far returned exactly the rows it was given."""
        return all(output.kept for output in self.outputs)

    # -- reading ---------------------------------------------------------------------------

    def record_index(self, row: int) -> int:
        return self.start + row

    def surviving(self) -> Iterator[int]:
        return (row for row in range(self.num_rows) if not self.dropped[row])

    def rows_for(self, step: str) -> tuple[int, ...]:
        """The surviving rows a batch step runs on: those whose cell is still to produce (not
        skipped by the step's condition)."""
        cells = self.cells[step]
        return tuple(row for row in self.surviving() if cells[row].state in _UNSETTLED)

    def upstream_values(self, step: str, row: int) -> dict[str, Any]:
        """What a cell step sees: its row's transitive upstream values."""
        return {name: self.values[name][row] for name in self._plan.upstream_columns[step]}

    def batch_input(self, step: str, rows: Sequence[int]) -> pd.DataFrame:
        """What a batch step sees: `rows`, upstream columns, indexed by record index."""
        names = self._plan.upstream_columns[step]
        columns = {name: [self.values[name][r] for r in rows] for name in names}
        return pd.DataFrame(columns, index=pd.Index([self.record_index(r) for r in rows]))

    def kept_skips(self) -> dict[str, int]:
        """Per step, the surviving rows that keep a cell its skip condition skipped: written
        rows hold a generated or such a cell in every column (the trace check's evidence)."""
        counts: Counter[str] = Counter()
        for row in self.surviving():
            counts.update(self.skipped_by_condition[row])
        return dict(counts)

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The surviving rows, indexed by record index: every column (for the sink), or some.

        Columns added by pre-batch processors (`extras`) follow the step columns.
        """
        rows = list(self.surviving())
        names = [*self._plan.columns, *self.extras] if columns is None else list(columns)
        sources = {n: self.values[n] if n in self.values else self.extras[n] for n in names}
        data = {name: [source[r] for r in rows] for name, source in sources.items()}
        index = pd.Index([self.record_index(r) for r in rows], name="record_index")
        return pd.DataFrame(data, index=index)

    def absorb(self, frame: pd.DataFrame) -> None:
        """Take a pre-batch processor's output: changed step columns and new columns.

        Rows are matched by position among the surviving rows (the runner already checked the
        count). Step columns the processor left out keep their values: later steps need them;
        removing columns is what post-batch processors are for.
        """
        rows = list(self.surviving())
        for name in frame.columns:
            target = self.values.get(name)
            if target is None:
                target = self.extras.setdefault(name, [None] * self.num_rows)
            for row, value in zip(rows, frame[name].tolist(), strict=True):
                target[row] = value

    # -- cells -----------------------------------------------------------------------------

    def generate(self, step: str, row: int, value: Any) -> list[Ready]:
        """Store a value, settle its cell, and return what became ready because of it. A step
        with extra columns gives a mapping of its columns (`cell_values` checked it)."""
        columns = self._plan.step(step).extra_columns
        if not columns:
            self.values[step][row] = value
        else:
            for column in (step, *columns):
                self.values[column][row] = value[column]
        self._ledger.settle(self.cells[step][row], "generate")
        ready: list[Ready] = []
        self._settled(step, row, ready)
        return ready

    def _settled(self, step: str, row: int, ready: list[Ready]) -> None:
        """A kept cell of `row` settled (generated, or skipped by its condition): the row is
        one cell closer to complete, and the cells downstream one input closer to ready."""
        self.row_missing[row] -= 1
        if self.row_missing[row] == 0:
            self.incomplete_rows -= 1
        for downstream in self._plan.downstream[step]:
            waiting = self.waiting[downstream]
            waiting[row] -= 1
            if waiting[row] == 0:
                self._became_ready(downstream, row, ready)

    def _skip_by_condition(self, step: str, row: int, ready: list[Ready]) -> None:
        """Skip one cell whose condition held: counted once as skipped, the row keeps it."""
        spec = self._plan.step(step)
        self.values[step][row] = spec.skip_value
        for column in spec.extra_columns:
            self.values[column][row] = None
        self._ledger.settle(self.cells[step][row], "skip")
        self.skipped[step] += 1
        self.skipped_by_condition[row].add(step)
        self._settled(step, row, ready)

    def _skips(self, step: str, row: int) -> bool:
        """Whether `step` skips `row`: a direct dependency skipped there (with
        `propagate_skip`), or the step's condition holds for the row's upstream values."""
        spec = self._plan.step(step)
        skipped_here = self.skipped_by_condition[row]
        if spec.propagate_skip and any(d in skipped_here for d in self._plan.dependencies[step]):
            return True
        if spec.skip_when is None:
            return False
        try:
            return bool(spec.skip_when(self.upstream_values(step, row)))
        except Exception as error:  # a row whose condition cannot be read is skipped, loudly
            log.warning(
                "step %r: skip_when raised for record %d, so the cell is skipped: %s",
                step,
                self.record_index(row),
                error,
            )
            return True

    def generate_batch(self, step: str, rows: Sequence[int], values: Sequence[Any]) -> list[Ready]:
        """Store one value per input row; rows dropped meanwhile keep their skipped cell, and
        a `RowFailed` value drops its row with the step's failure."""
        ready: list[Ready] = []
        cells = self.cells[step]
        for row, value in zip(rows, values, strict=True):
            if cells[row].state not in _GENERATING:
                continue
            if isinstance(value, RowFailed):
                reason = step_failure_reason(self._plan.step(step), value.error)
                ready.extend(self.drop_row(row, reason, failed_step=step))
            else:
                ready.extend(self.generate(step, row, value))
        self._batch_produced(step)
        return ready

    def _batch_produced(self, step: str) -> None:
        """A batch step produced its values: one seed step fewer to wait for (`seeds_done`)."""
        if step in self._plan.seed_steps:
            self.seeds_remaining -= 1

    def _became_ready(self, step: str, row: int, ready: list[Ready]) -> None:
        if step in self.batch_outstanding:
            if self._skips(step, row):
                self._skip_by_condition(step, row, ready)
            self.batch_outstanding[step] -= 1
            if self.batch_outstanding[step] == 0:
                self._batch_step_ready(step, ready)
        elif self.state in _SEEDING:
            ready.append((step, row))  # decided in `finish_seeding`, after pre-batch processors
        elif self._skips(step, row):
            self._skip_by_condition(step, row, ready)
        else:
            ready.append((step, row))

    def _batch_step_ready(self, step: str, ready: list[Ready]) -> None:
        """No surviving row waits for batch step `step` any more: it runs when some row still
        needs it; when its condition skipped every surviving row, it is done without a call."""
        if not self.surviving_rows:
            return
        if self.rows_for(step):
            ready.append((step, None))
        else:
            self._batch_produced(step)

    def finish_seeding(self) -> list[Ready]:
        """Seeding is over (the row group was `seeded`): decide the skip conditions of the
        cells that became ready meanwhile, and return the cells ready to start. No batch step
        can be ready then: one outside seeding has a cell step upstream, which has not run yet;
        it becomes ready in `_became_ready` once no surviving row waits for it."""
        candidates: list[tuple[str, int]] = []
        for step in self._plan.steps:
            if step.kind == "batch":
                continue
            waiting, cells = self.waiting[step.name], self.cells[step.name]
            for row in self.surviving():
                if waiting[row] == 0 and cells[row].state in _STARTABLE:
                    candidates.append((step.name, row))
        # Each candidate's inputs are all generated, so no skip below reaches another candidate.
        ready: list[Ready] = []
        for name, row in candidates:
            if self._skips(name, row):
                self._skip_by_condition(name, row, ready)
            else:
                ready.append((name, row))
        return ready

    # -- drops -----------------------------------------------------------------------------

    def drop_row(self, row: int, reason: str, failed_step: str | None = None) -> list[Ready]:
        """Drop one row: its failed cell fails, every other unfinished cell is skipped once.

        Returns batch steps that became ready because they were only waiting for this row.
        Live workers of the row are the caller's to cancel.
        """
        if self.dropped[row]:
            return []
        self.dropped[row] = True
        self.surviving_rows -= 1
        self.drop_reasons[reason] += 1
        if self.row_missing[row] > 0:
            self.incomplete_rows -= 1
        ready: list[Ready] = []
        for step in self._plan.steps:
            cell = self.cells[step.name][row]
            if cell.state in _UNSETTLED:
                if step.name == failed_step:
                    self._ledger.settle(cell, "fail")
                else:
                    self._ledger.settle(cell, "skip")
                    self.skipped[step.name] += 1
            if (
                step.name in self.batch_outstanding
                and self.waiting[step.name][row] > 0  # each row counts once: here or when ready
            ):
                self.batch_outstanding[step.name] -= 1
                if self.batch_outstanding[step.name] == 0:
                    self._batch_step_ready(step.name, ready)
        return ready

    def drop_all(self, reason: str, failed_step: str | None = None) -> None:
        """Drop every surviving row (a seed or batch step failed, or nothing can be salvaged)."""
        for row in list(self.surviving()):
            self.drop_row(row, reason, failed_step)

    def drop_incomplete(self, reason: str) -> None:
        """Early-shutdown salvage: keep complete rows, drop the rest."""
        for row in list(self.surviving()):
            if self.row_missing[row] > 0:
                self.drop_row(row, reason)

    # -- resize (sync engine only) -----------------------------------------------------------

    def resize(self, step: str, frame: pd.DataFrame, done: Sequence[str]) -> None:
        """Replace the surviving rows by `frame`, the output of an `allow_resize` batch step.

        Only the sync engine calls this (INV-5 forbids resizing in the async engine). `done` are
        the steps already generated; `frame` must carry their columns and `step`'s. The new rows'
        cells for those steps are created generated (a construction, not a transition: they were
        produced by the resizing step) and the ledger is adjusted by the difference in rows, so
        accounting stays exact; `cell_delta` records how many cells the resize added.
        """
        from rowforge.errors import DatasetProcessingError

        produced = [*done, step]
        plan = self._plan
        missing = [
            column
            for name in produced
            for column in plan.step(name).columns
            if column not in frame.columns
        ]
        if missing:
            raise DatasetProcessingError(
                f"allow_resize step {step!r} in row group {self.ident} returned a DataFrame "
                f"without columns {missing}"
            )
        old = list(self.surviving())
        for row in old:
            self._ledger.settle(self.cells[step][row], "generate")
        new = len(frame)
        for name in produced:
            self._ledger.generated[name] += new - len(old)
        steps = self._plan.steps
        self.cell_delta += (new - len(old)) * len(steps)
        self.records_resized += new - len(old)
        for s in steps:
            if s.name in produced:
                for column in s.columns:
                    self.values[column] = list(frame[column])
                cells = [Cell(self.ident, row, s.name) for row in range(new)]
                for cell in cells:
                    cell.state = _GENERATED  # built generated: the resizing step produced it
                self.cells[s.name] = cells
            else:
                for column in s.columns:
                    self.values[column] = [None] * new
                self.cells[s.name] = [Cell(self.ident, row, s.name) for row in range(new)]
                dependencies = plan.dependencies[s.name]
                ready_deps = sum(1 for d in dependencies if d in produced)
                self.waiting[s.name] = [len(dependencies) - ready_deps] * new
        self.extras = {n: list(frame[n]) for n in self.extras if n in frame.columns}
        self.num_rows = self.expected_rows = new
        self._batch_produced(step)
        self.dropped = [False] * new
        self.skipped_by_condition = [set() for _ in range(new)]
        self.surviving_rows = new
        remaining = len(steps) - len(produced)
        self.row_missing = [remaining] * new
        self.incomplete_rows = new if remaining else 0
