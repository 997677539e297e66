"""Every guard the engine supplies can be false, and every spec edge keeps its guards.

A guard that can never be false is decoration. For each guard function the engine wires into
its machines (`rowforge.scheduler.subjects`), a test builds a subject that violates it, checks the
predicate says so, and fires a real machine transition that requires it: the machine must refuse
with `GuardRejected` naming that guard and leave the state unchanged. A second test pins the
guards of every edge in `specs/`, so dropping one from a spec fails a test here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rowforge.errors import GuardRejected
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
    """The row-group fields the guards read, nothing else."""

    def __init__(self, **fields: Any) -> None:
        self.ident = 0
        self.state = "pending"
        self.live_workers: set[object] = set()
        self.num_rows = self.expected_rows = self.surviving_rows = 10
        self.__dict__.update(fields)


class FakeWorker:
    def __init__(self, has_leases: bool) -> None:
        self.ident = 1
        self.state = "pending"
        self.has_leases = has_leases


def _run(**fields: int) -> RunState:
    run = RunState(target_records=10)
    run.records_written = 10
    run.__dict__.update(fields)
    return run


def _cell(counted: bool = False) -> Cell:
    cell = Cell(0, 0, "c")
    cell.counted = counted
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
    ("run", "target_reached"): (lambda: _run(records_written=9), _run),
    ("run", "some_rows_written"): (lambda: _run(records_written=0), _run),
    ("row_group", "no_live_workers"): (lambda: FakeGroup(live_workers={object()}), FakeGroup),
    ("row_group", "row_count_unchanged"): (lambda: FakeGroup(num_rows=11), FakeGroup),
    ("row_group", "has_rows"): (lambda: FakeGroup(surviving_rows=0), FakeGroup),
    ("worker", "leases_held"): (lambda: FakeWorker(False), lambda: FakeWorker(True)),
    ("worker", "leases_released"): (lambda: FakeWorker(True), lambda: FakeWorker(False)),
    ("cell", "upstream_generated"): (_cell, _cell),
    ("cell", "not_yet_counted"): (lambda: _cell(counted=True), _cell),
}


def guard_table(machine: str, upstream_ready: Callable[[Cell], bool]) -> dict[str, Any]:
    return {
        "run": run_guards,
        "row_group": row_group_guards,
        "worker": worker_guards,
        "cell": lambda: cell_guards(upstream_ready),
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


PINNED = {
    ("cell", "pending", "start"): (("upstream_generated",), ()),
    ("cell", "running", "generate"): (("not_yet_counted",), ()),
    ("cell", "running", "fail"): (("not_yet_counted",), ()),
    ("cell", "pending", "skip"): (("not_yet_counted",), ()),
    ("cell", "running", "skip"): (("not_yet_counted",), ()),
    ("row_group", "pending", "admit"): ((), ()),
    ("row_group", "seeding", "seeded"): (
        ("no_live_workers", "row_count_unchanged", "has_rows"),
        (),
    ),
    ("row_group", "running", "cells_done"): (("no_live_workers", "has_rows"), ()),
    ("row_group", "running", "salvage"): (("no_live_workers", "has_rows"), ()),
    ("row_group", "checkpointing", "write"): (
        ("no_live_workers", "row_count_unchanged", "has_rows"),
        (),
    ),
    ("row_group", "seeding", "drop"): (("no_live_workers",), ("has_rows",)),
    ("row_group", "running", "drop"): (("no_live_workers",), ("has_rows",)),
    ("row_group", "checkpointing", "drop"): (("no_live_workers",), ("has_rows",)),
    ("row_group", "seeding", "fail"): (("no_live_workers",), ()),
    ("row_group", "running", "fail"): (("no_live_workers",), ()),
    ("row_group", "checkpointing", "fail"): (("no_live_workers",), ()),
    ("row_group", "pending", "cancel"): (("no_live_workers",), ()),
    ("row_group", "seeding", "cancel"): (("no_live_workers",), ()),
    ("row_group", "running", "cancel"): (("no_live_workers",), ()),
    ("row_group", "checkpointing", "cancel"): (("no_live_workers",), ()),
    ("run", "pending", "start"): ((), ()),
    ("run", "running", "complete"): (
        ("no_live_workers", "all_row_groups_terminal", "target_reached"),
        (),
    ),
    ("run", "running", "complete_partial"): (
        ("no_live_workers", "all_row_groups_terminal", "some_rows_written"),
        ("target_reached",),
    ),
    ("run", "running", "fail_empty"): (
        ("no_live_workers", "all_row_groups_terminal"),
        ("some_rows_written",),
    ),
    ("run", "running", "drain"): ((), ()),
    ("run", "draining", "end_partial"): (
        ("no_live_workers", "all_row_groups_terminal", "some_rows_written"),
        (),
    ),
    ("run", "draining", "end_failed"): (("no_live_workers", "all_row_groups_terminal"), ()),
    ("run", "pending", "abort"): ((), ()),
    ("run", "pending", "cancel"): (("no_live_workers", "all_row_groups_terminal"), ()),
    ("run", "running", "cancel"): (("no_live_workers", "all_row_groups_terminal"), ()),
    ("run", "draining", "cancel"): (("no_live_workers", "all_row_groups_terminal"), ()),
    ("worker", "pending", "start"): (("leases_held",), ()),
    ("worker", "running", "succeed"): ((), ()),
    ("worker", "running", "defer"): ((), ()),
    ("worker", "running", "fail"): ((), ()),
    ("worker", "pending", "cancel"): ((), ()),
    ("worker", "running", "cancel"): ((), ()),
    ("worker", "succeeded", "release"): (("leases_released",), ()),
    ("worker", "deferred", "release"): (("leases_released",), ()),
    ("worker", "failed", "release"): (("leases_released",), ()),
    ("worker", "cancelled", "release"): (("leases_released",), ()),
}


def test_the_guards_of_every_spec_edge_are_pinned() -> None:
    """Changing a spec's guards is a decision: make it here too, on purpose."""
    actual = {
        (name, t.source, t.trigger): (tuple(t.conditions), tuple(t.unless))
        for name, spec in SPECS.items()
        for t in spec.transitions
    }
    assert actual == PINNED
