"""Breadth-first exploration of the composed run, row-group and worker machines (issue 10.5).

`tests/statemachine/composed.py` builds the model from `SPECS` (its docstring says what the
environment may do and why). For every small configuration (1 or 2 row groups, 1 to 3 workers per
row group, a row-group cap of 1 or 2) the whole reachable state space is explored, and:

1. nothing deadlocks: every reachable state whose run is not terminal can move without an
   external cancellation, and from every reachable state the run can still end on its own;
2. a terminal run has every worker drained and every admitted row group terminal;
3. a terminal row group has every worker drained (or never created);
4. every spec edge is taken somewhere, except the ones `NEVER_TAKEN` lists with the reason.

Then the exploration shows it has teeth: with one guard replaced by a constant, a property breaks
(or spec edges stop being taken) for every guard but the two `UNDETECTED` names, and it finds
the counterexample path. Two findings are pinned by tests named for them: the spec's run `cancel`
does not require the row groups to be terminal (the engine's ordering does), and the engine
strands a run that meets a failing checkpoint after an internal error.

Run with `-s` to see the number of reachable states per configuration and the paths found.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from rowforge.scheduler.subjects import RunState, row_group_guards, run_guards, worker_guards
from rowforge.statemachine import SPECS

from .composed import (
    CANNOT_FINISH,
    COMPLETED_SHORT,
    DEADLOCK,
    DRAINED_GROUP_EMPTY,
    DRAINED_HOLDING_LEASES,
    MOVES_AFTER_END,
    PARTIAL_NOT_SHORT,
    RUN,
    RUNNING_WITHOUT_LEASES,
    TERMINAL_GROUP_LIVE_WORKER,
    TERMINAL_RUN_LIVE_WORKER,
    TERMINAL_RUN_OPEN_GROUP,
    Config,
    Exploration,
    Group,
    Slot,
    State,
    all_edges,
    describe,
    explore,
    format_path,
    model_guards,
    mutated,
)

SHAPES = [(1, 1, 1), (1, 2, 1), (1, 3, 1), (2, 1, 1), (2, 2, 1), (2, 3, 1)]
SHAPES += [(2, 1, 2), (2, 2, 2), (2, 3, 2)]
# Engine granularity: a worker's outcome is settled in one callback, as the engine does.
CONFIGS = [Config(groups, workers, cap) for groups, workers, cap in SHAPES]
# Finer: every worker transition and lease release interleaves with everything else.
FINE = [Config(1, 3, 1, fine=True), Config(2, 2, 1, fine=True), Config(2, 1, 2, fine=True)]
ALL = CONFIGS + FINE

EngineGuard = Callable[[Any], bool]


@functools.cache
def explored(config: Config) -> Exploration:
    result = explore(config)
    print(f"\n{config}: {result.states} reachable states, {result.transitions} transitions")
    return result


def _guard_names(machine: str) -> set[str]:
    return {guard.name for guard in SPECS[machine].guards}


# -- the model's guards are the engine's ------------------------------------------------------


def test_the_model_has_exactly_the_guards_of_the_specs_and_the_engine() -> None:
    table = model_guards()
    engine: dict[str, dict[str, EngineGuard]] = {
        "run": dict(run_guards()),
        "row_group": dict(row_group_guards()),
        "worker": dict(worker_guards()),
    }
    for machine, guards in table.items():
        assert set(guards) == _guard_names(machine) == set(engine[machine]), machine


def test_the_model_guards_agree_with_the_engine_guards_on_the_same_counters() -> None:
    """Each predicate of `model_guards` answers what `scheduler/subjects.py` answers for an
    engine subject holding the same counters."""
    model = model_guards()
    engine: dict[str, EngineGuard] = dict(run_guards())
    for live, open_groups, written in itertools.product(range(3), range(3), range(5)):
        state = State("running", "normal", False, 4, written, open_groups, live, ())
        run = RunState(target_records=4)
        run.live_workers, run.open_row_groups, run.records_written = live, open_groups, written
        for name, predicate in engine.items():
            assert model["run"][name](state) == predicate(run), (name, live, open_groups, written)
    group_model = model["row_group"]
    group_engine: dict[str, EngineGuard] = dict(row_group_guards())
    for live, num_rows, surviving in itertools.product(range(3), range(1, 4), range(3)):
        group = Group("running", surviving, num_rows, 2, False, live, ())
        subject = SimpleNamespace(
            live_workers={object() for _ in range(live)},
            num_rows=num_rows,
            expected_rows=2,
            surviving_rows=surviving,
        )
        for name, predicate in group_engine.items():
            assert group_model[name](group) == predicate(subject), (name, live, num_rows)
    worker_engine: dict[str, EngineGuard] = dict(worker_guards())
    for leases in (False, True):
        for name, predicate in worker_engine.items():
            slot, worker = Slot("pending", leases), SimpleNamespace(has_leases=leases)
            assert model["worker"][name](slot) == predicate(worker), (name, leases)


# -- (1)-(3) on the real specs ----------------------------------------------------------------


@pytest.mark.parametrize("config", ALL, ids=str)
def test_no_reachable_state_deadlocks_and_the_run_can_always_end(config: Config) -> None:
    result = explored(config)
    assert DEADLOCK not in result.counterexamples, describe(result)
    assert CANNOT_FINISH not in result.counterexamples, describe(result)
    assert result.stuck == 0
    assert result.run_outcomes == RUN.terminal, "every outcome of the run is reachable"


@pytest.mark.parametrize("config", ALL, ids=str)
def test_a_terminal_run_has_every_worker_drained_and_every_admitted_row_group_terminal(
    config: Config,
) -> None:
    result = explored(config)
    for prop in (TERMINAL_RUN_LIVE_WORKER, TERMINAL_RUN_OPEN_GROUP, MOVES_AFTER_END):
        assert prop not in result.counterexamples, describe(result)


@pytest.mark.parametrize("config", ALL, ids=str)
def test_a_terminal_row_group_has_every_worker_drained(config: Config) -> None:
    result = explored(config)
    assert TERMINAL_GROUP_LIVE_WORKER not in result.counterexamples, describe(result)


@pytest.mark.parametrize("config", ALL, ids=str)
def test_leases_balance_and_outcomes_mean_what_they_say(config: Config) -> None:
    """INV-3, INV-10 and INV-6 as the model sees them: nothing else is violated either."""
    result = explored(config)
    for prop in (
        DRAINED_HOLDING_LEASES,
        RUNNING_WITHOUT_LEASES,
        DRAINED_GROUP_EMPTY,
        COMPLETED_SHORT,
        PARTIAL_NOT_SHORT,
    ):
        assert prop not in result.counterexamples, describe(result)
    assert not result.counterexamples, describe(result)


# -- (4) edge coverage ------------------------------------------------------------------------

_CELLS = (
    "cells are not part of the composed model: their guards read per-row dependency counters "
    "that it folds into 'surviving rows' (the cell machine is exercised by tests/scheduler)"
)
_NOT_A_SUBJECT = (
    "a row group becomes a subject only when admitted: _open_group adds it and fires `admit` at "
    "once, so the engine never has a pending row group to cancel"
)
_STARTS_AT_ONCE = (
    "execute() adds the run subject and fires `start` with no await in between, so a "
    "cancellation can only reach a running or draining run"
)
NEVER_TAKEN: dict[tuple[str, str, str], str] = {
    ("run", "pending", "abort"): (
        "nothing in the engine fires it: a planning failure is raised before the run starts, "
        "an engine-choice or lifespan failure by run_plan_async before execute() creates the "
        "run subject"
    ),
    ("run", "pending", "cancel"): _STARTS_AT_ONCE,
    ("row_group", "pending", "cancel"): _NOT_A_SUBJECT,
    ("row_group", "checkpointing", "drop"): (
        "the engine drops only seeding or running row groups (_advance, the sync engine's "
        "_run_group); a checkpoint writes every surviving row, since a post-batch processor "
        "that removes rows raises (INV-5) and the row group fails instead"
    ),
    ("cell", "pending", "start"): _CELLS,
    ("cell", "running", "generate"): _CELLS,
    ("cell", "running", "fail"): _CELLS,
    ("cell", "pending", "skip"): _CELLS,
    ("cell", "running", "skip"): _CELLS,
}


def test_every_spec_edge_is_taken_somewhere_or_listed_with_the_reason() -> None:
    taken: set[tuple[str, str, str]] = set()
    for config in ALL:
        taken |= explored(config).edges
    edges = all_edges()
    assert taken <= edges
    untaken = edges - taken
    unexplained = sorted(untaken - set(NEVER_TAKEN))
    stale = sorted(set(NEVER_TAKEN) - untaken)
    assert not unexplained, f"spec edges no configuration takes; list them with why: {unexplained}"
    assert not stale, f"NEVER_TAKEN lists edges that are taken now (or gone): {stale}"
    for config in CONFIGS:
        print(f"{config}: {len(explored(config).edges)} of {len(edges)} edges taken")


def test_each_configuration_takes_every_edge_the_smallest_one_does() -> None:
    """A sanity check of the model: more row groups, workers or cap never lose behaviour."""
    smallest = explored(CONFIGS[0]).edges
    for config in ALL:
        assert smallest <= explored(config).edges, config


# -- teeth: mutated guard tables --------------------------------------------------------------

SWEEP = Config(2, 2, 1)  # small, yet with concurrent workers, two row groups and partial runs


def _mutant(machine: str, guard: str, verdict: bool, stop_at: str) -> Exploration:
    result = explore(SWEEP, mutated(machine, guard, verdict), stop_at=frozenset({stop_at}))
    if stop_at in result.counterexamples:
        print(f"\n{machine}.{guard} always {verdict}: {stop_at} after")
        print(format_path(result.counterexamples[stop_at]))
    return result


def test_row_group_no_live_workers_always_true_ends_row_groups_with_live_workers() -> None:
    result = _mutant("row_group", "no_live_workers", True, TERMINAL_GROUP_LIVE_WORKER)
    assert TERMINAL_GROUP_LIVE_WORKER in result.counterexamples, describe(result)
    path = result.counterexamples[TERMINAL_GROUP_LIVE_WORKER]
    assert any("worker created" in label for label in path), path


def test_run_all_row_groups_terminal_always_true_ends_the_run_with_open_row_groups() -> None:
    result = _mutant("run", "all_row_groups_terminal", True, TERMINAL_RUN_OPEN_GROUP)
    assert TERMINAL_RUN_OPEN_GROUP in result.counterexamples, describe(result)
    witness = result.witnesses[TERMINAL_RUN_OPEN_GROUP]
    assert witness.run in RUN.terminal
    assert witness.open_groups > 0


def test_worker_leases_released_always_true_drains_workers_holding_leases() -> None:
    result = _mutant("worker", "leases_released", True, DRAINED_HOLDING_LEASES)
    assert DRAINED_HOLDING_LEASES in result.counterexamples, describe(result)


# Mutations the exploration cannot see, and why. The sweep asserts these stay unseen, so a
# model that learns to see one must move it out of here.
UNDETECTED: dict[tuple[str, str, bool], str] = {
    ("row_group", "row_count_unchanged", True): (
        "no engine path makes num_rows differ from expected_rows: in the async engine a processor "
        "or batch step that resizes raises first (INV-5), and the sync engine's allow_resize "
        "re-bases expected_rows together with num_rows; the model keeps both at the plan's size"
    ),
    ("run", "no_live_workers", True): (
        "implied on the engine's paths: every run end needs every row group terminal (guarded "
        "by the row groups' no_live_workers), and on cancellation _end_cancelled closes every row "
        "group first; test_run_no_live_workers_matters_once_row_groups_may_stay_open shows it"
    ),
}
GUARDS = [(m, g, v) for m, table in model_guards().items() for g in table for v in (True, False)]


@functools.cache
def _sweep_base() -> Exploration:
    return explore(SWEEP)


@pytest.mark.parametrize("machine, guard, verdict", GUARDS, ids=str)
def test_every_guard_mutation_is_caught_by_a_property_or_lost_edges(
    machine: str, guard: str, verdict: bool
) -> None:
    """Replacing a guard by a constant either breaks a property (a counterexample path) or
    makes spec edges unreachable (the coverage check of (4) would fail)."""
    base = _sweep_base()
    result = explore(SWEEP, mutated(machine, guard, verdict))
    lost = sorted(base.edges - result.edges)
    caught = bool(result.counterexamples) or bool(lost)
    print(f"\n{machine}.{guard} always {verdict}: {sorted(result.counterexamples)}, lost {lost}")
    for prop, path in result.counterexamples.items():
        print(f"  {prop}:\n{format_path(path)}")
    if (machine, guard, verdict) in UNDETECTED:
        assert not caught, "the exploration now sees this mutation: take it out of UNDETECTED"
    else:
        assert caught, f"{machine}.{guard} always {verdict} changes nothing the model checks"


def test_run_cancel_is_kept_from_open_row_groups_by_its_own_guard() -> None:
    """Where nothing closes the row groups before the run's `cancel`, the edge's own
    all_row_groups_terminal is what keeps a cancelled run from leaving a row group open (and
    with it, through the row groups' no_live_workers, a live worker)."""
    config = Config(1, 1, 1, close_groups_before_run_cancel=False)
    assert TERMINAL_RUN_OPEN_GROUP not in explore(config).counterexamples
    result = explore(config, mutated("run", "all_row_groups_terminal", True))
    path = result.counterexamples.get(TERMINAL_RUN_OPEN_GROUP)
    assert path is not None, describe(result)
    print(f"\n{TERMINAL_RUN_OPEN_GROUP}:\n{format_path(path)}")


# -- findings ---------------------------------------------------------------------------------


def test_run_cancel_requires_its_row_groups_to_be_terminal_even_in_another_order() -> None:
    """Once a spec gap: run `cancel` was guarded by no_live_workers only, so property (2) on
    cancellation held only because `_end_cancelled` closes every open row group before firing
    `cancel`. The exploration found the path run start -> admit row group 0 -> cancellation ->
    run cancel, leaving row group 0 seeding. The edge now also requires all_row_groups_terminal:
    without the engine's order, the run cannot end while a row group is open."""
    unguarded = [
        t.source
        for t in RUN.transitions
        if t.trigger == "cancel" and "all_row_groups_terminal" not in t.conditions
    ]
    assert unguarded == []
    result = explore(Config(1, 1, 1, close_groups_before_run_cancel=False))
    assert TERMINAL_RUN_OPEN_GROUP not in result.counterexamples, describe(result)


def test_a_failed_checkpoint_after_an_internal_error_no_longer_strands_the_run() -> None:
    """Once an engine bug: `_abort` treated mode `broken` like `normal`/`draining`. After
    `_internal_error` (mode `broken`), a checkpoint already writing in another row group failed;
    `_abort` switched to `aborting` without firing the run's `drain`, so `_end` fired
    `end_failed` from `running` (no such edge): build() raised IllegalTransition and the run
    never ended. The exploration found it as an 11-step deadlock (run start, admit 0, seeded,
    cells_done, admit 1, worker created, internal error, checkpoint 0 failed, row group 0 fail,
    worker cancelled, row group 1 cancel). `_abort` now leaves `broken` alone."""
    for config in (Config(2, 1, 2, internal_errors=True), Config(2, 1, 1, internal_errors=True)):
        result = explore(config)
        assert not result.counterexamples, describe(result)
