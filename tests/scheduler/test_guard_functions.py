"""Every guard the engine supplies can be false, and every spec edge keeps its guards.

A guard that can never be false is decoration. For each guard function the engine wires into
its machines (`rowforge.scheduler.subjects`), a test builds a subject that violates it, checks the
predicate says so, and fires a real machine transition that requires it: the machine must refuse
with `GuardRejected` naming that guard and leave the state unchanged. A second test pins the
guards of every edge in `specs/`, so dropping one from a spec fails a test here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from rowforge.errors import GuardRejected
from rowforge.scheduler.ledger import Ledger
from rowforge.scheduler.rowgroup import RowGroup, RowOutput
from rowforge.scheduler.subjects import (
    Cell,
    RunState,
    cell_guards,
    row_group_guards,
    run_guards,
    worker_guards,
)
from rowforge.statemachine import SPECS, TABLES, CompiledMachine, ReferenceMachine


class FakeGroup:
    """The row-group fields the guards read, nothing else; `rows_kept` is the real method."""

    rows_kept = RowGroup.rows_kept

    def __init__(self, **fields: Any) -> None:
        self.ident = 0
        self.state = "pending"
        self.live_workers: set[object] = set()
        self.surviving_rows = 10
        self.seeds_remaining = self.incomplete_rows = 0
        self.outputs = [RowOutput([5, 6], [5, 6])]
        self.fatal: BaseException | None = None
        self.__dict__.update(fields)


class FakeWorker:
    def __init__(self, has_leases: bool, task: Any = None) -> None:
        self.ident = 1
        self.state = "pending"
        self.has_leases = has_leases
        self.task = task


def _unfinished_task() -> asyncio.Future[None]:
    """A future that is not done: the worker's task has not finished."""
    return asyncio.new_event_loop().create_future()


def _run(**fields: int) -> RunState:
    run = RunState(target_records=10, row_groups=0)
    run.records_written = 10
    run.__dict__.update(fields)
    return run


def _no_cell_guards(_cell: Cell) -> bool:
    return True


COUNTED: set[Cell] = set()
LEDGER = Ledger(
    CompiledMachine(TABLES["cell"], cell_guards(_no_cell_guards, COUNTED.__contains__)), COUNTED
)


def _cell(counted: bool = False) -> Cell:
    """A running cell; `counted` puts it in the ledger's counts already (a double count)."""
    cell = Cell(0, 0, "c")
    cell.state = "running"
    if counted:
        LEDGER.count(cell, "generated")
    return cell


def _upstream_pending(cell: Cell) -> bool:
    """The engine's dependency counter says an upstream cell is not generated yet."""
    return False


def _upstream_generated(cell: Cell) -> bool:
    return True


# (machine, guard): (a subject for which the guard is false, one for which it is true)
VIOLATIONS: dict[tuple[str, str], tuple[Callable[[], Any], Callable[[], Any]]] = {
    ("run", "no_live_workers"): (lambda: _run(live_workers=1), _run),
    ("run", "all_row_groups_terminal"): (lambda: _run(open_row_groups=1), _run),
    ("run", "all_row_groups_admitted"): (lambda: _run(unadmitted_row_groups=1), _run),
    ("run", "target_reached"): (lambda: _run(records_written=9), _run),
    ("run", "some_rows_written"): (lambda: _run(records_written=0), _run),
    ("row_group", "no_live_workers"): (lambda: FakeGroup(live_workers={object()}), FakeGroup),
    ("row_group", "row_count_unchanged"): (
        # a processor that reset the index: same count, other record indexes
        lambda: FakeGroup(outputs=[RowOutput([5, 6], [5, 6]), RowOutput([5, 6], [0, 1])]),
        FakeGroup,
    ),
    ("row_group", "has_rows"): (lambda: FakeGroup(surviving_rows=0), FakeGroup),
    ("row_group", "seeds_done"): (lambda: FakeGroup(seeds_remaining=1), FakeGroup),
    ("row_group", "cells_complete"): (lambda: FakeGroup(incomplete_rows=1), FakeGroup),
    ("row_group", "has_fatal_error"): (FakeGroup, lambda: FakeGroup(fatal=RuntimeError("x"))),
    ("worker", "leases_held"): (lambda: FakeWorker(False), lambda: FakeWorker(True)),
    ("worker", "leases_released"): (lambda: FakeWorker(True), lambda: FakeWorker(False)),
    ("worker", "task_finished"): (
        lambda: FakeWorker(False, _unfinished_task()),
        lambda: FakeWorker(False),
    ),
    ("cell", "upstream_generated"): (_cell, _cell),
    ("cell", "not_yet_counted"): (lambda: _cell(counted=True), _cell),
}


def guard_table(machine: str, upstream_ready: Callable[[Cell], bool]) -> dict[str, Any]:
    return {
        "run": run_guards,
        "row_group": row_group_guards,
        "worker": worker_guards,
        "cell": lambda: cell_guards(upstream_ready, LEDGER.has_counted),
    }[machine]()


def test_every_guard_the_engine_supplies_has_a_violation_here() -> None:
    supplied = {
        (machine, guard) for machine in SPECS for guard in guard_table(machine, _upstream_pending)
    }
    assert supplied == set(VIOLATIONS)


@pytest.mark.parametrize(("machine", "guard"), sorted(VIOLATIONS))
def test_each_guard_function_is_false_for_a_violating_subject(machine: str, guard: str) -> None:
    violating, honest = VIOLATIONS[(machine, guard)]
    assert guard_table(machine, _upstream_pending)[guard](violating()) is False
    assert guard_table(machine, _upstream_generated)[guard](honest()) is True


def _edges_requiring(machine: str, guard: str) -> list[Any]:
    return [t for t in SPECS[machine].transitions if guard in t.conditions]


@pytest.mark.parametrize(("machine", "guard"), sorted(VIOLATIONS))
def test_a_machine_refuses_every_edge_whose_guard_a_subject_violates(
    machine: str, guard: str
) -> None:
    violating, _ = VIOLATIONS[(machine, guard)]
    edges = _edges_requiring(machine, guard)
    assert edges, f"{machine}.{guard} guards no edge"
    for edge in edges:
        subject = violating()
        # every other guard passes and every `unless` guard is false: only `guard` can refuse
        guards = {g.name: (lambda _s: True) for g in SPECS[machine].guards}
        for name in edge.unless:
            guards[name] = lambda _s: False
        guards[guard] = guard_table(machine, _upstream_pending)[guard]
        if machine in ("run", "row_group"):
            engine: ReferenceMachine | CompiledMachine = ReferenceMachine(SPECS[machine], guards)
            engine.add(subject)
        else:
            engine = CompiledMachine(TABLES[machine], guards)
        subject.state = edge.source
        with pytest.raises(GuardRejected) as refused:
            engine.fire(subject, edge.trigger)
        assert refused.value.guard == guard
        assert subject.state == edge.source


_TO_END = ("no_live_workers", "all_row_groups_terminal")
_ALL_DONE = (*_TO_END, "all_row_groups_admitted")

PINNED = {
    ("cell", "pending", "start"): (("upstream_generated",), ()),
    ("cell", "running", "generate"): (("not_yet_counted",), ()),
    ("cell", "running", "fail"): (("not_yet_counted",), ()),
    ("cell", "pending", "skip"): (("not_yet_counted",), ()),
    ("cell", "running", "skip"): (("not_yet_counted",), ()),
    ("row_group", "pending", "admit"): ((), ()),
    ("row_group", "seeding", "seeded"): (
        ("no_live_workers", "seeds_done", "row_count_unchanged", "has_rows"),
        (),
    ),
    ("row_group", "running", "cells_done"): (
        ("no_live_workers", "row_count_unchanged", "has_rows", "cells_complete"),
        (),
    ),
    ("row_group", "running", "salvage"): (("no_live_workers", "has_rows"), ()),
    ("row_group", "checkpointing", "write"): (
        ("no_live_workers", "row_count_unchanged", "has_rows"),
        (),
    ),
    ("row_group", "seeding", "drop"): (("no_live_workers",), ("has_rows",)),
    ("row_group", "running", "drop"): (("no_live_workers",), ("has_rows",)),
    ("row_group", "seeding", "fail"): (("no_live_workers", "has_fatal_error"), ()),
    ("row_group", "running", "fail"): (("no_live_workers", "has_fatal_error"), ()),
    ("row_group", "checkpointing", "fail"): (("no_live_workers", "has_fatal_error"), ()),
    ("row_group", "seeding", "cancel"): (("no_live_workers",), ("has_fatal_error",)),
    ("row_group", "running", "cancel"): (("no_live_workers",), ("has_fatal_error",)),
    ("row_group", "checkpointing", "cancel"): (("no_live_workers",), ("has_fatal_error",)),
    ("run", "pending", "start"): ((), ()),
    ("run", "running", "complete"): ((*_ALL_DONE, "target_reached"), ()),
    ("run", "running", "complete_partial"): (
        (*_ALL_DONE, "some_rows_written"),
        ("target_reached",),
    ),
    ("run", "running", "fail_empty"): (_ALL_DONE, ("some_rows_written", "target_reached")),
    ("run", "running", "drain"): ((), ()),
    ("run", "running", "abort"): ((), ()),
    ("run", "draining", "abort"): ((), ()),
    ("run", "running", "interrupt"): ((), ()),
    ("run", "draining", "interrupt"): ((), ()),
    ("run", "aborting", "interrupt"): ((), ()),
    ("run", "draining", "end_partial"): ((*_TO_END, "some_rows_written"), ()),
    ("run", "draining", "end_failed"): (_TO_END, ("some_rows_written",)),
    ("run", "aborting", "fail"): (_TO_END, ()),
    ("run", "cancelling", "cancel"): (_TO_END, ()),
    ("worker", "pending", "start"): (("leases_held",), ()),
    ("worker", "running", "succeed"): ((), ()),
    ("worker", "running", "defer"): ((), ()),
    ("worker", "running", "fail"): ((), ()),
    ("worker", "pending", "cancel"): ((), ()),
    ("worker", "running", "cancel"): ((), ()),
    ("worker", "succeeded", "release"): (("task_finished", "leases_released"), ()),
    ("worker", "deferred", "release"): (("task_finished", "leases_released"), ()),
    ("worker", "failed", "release"): (("task_finished", "leases_released"), ()),
    ("worker", "cancelled", "release"): (("task_finished", "leases_released"), ()),
}


def test_the_guards_of_every_spec_edge_are_pinned() -> None:
    """Changing a spec's guards is a decision: make it here too, on purpose."""
    actual = {
        (name, t.source, t.trigger): (tuple(t.conditions), tuple(t.unless))
        for name, spec in SPECS.items()
        for t in spec.transitions
    }
    assert actual == PINNED
