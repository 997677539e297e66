"""Breadth-first exploration of the composed run, row-group and worker machines (issue 10.5).

`tests/statemachine/composed.py` builds the model from `SPECS` (its docstring says what the
environment may do and why): the engine has no hidden mode any more, the run machine's state is
the engine's state and the guards choose every edge the engine offers. For every small
configuration (1 or 2 row groups, 1 to 3 workers per row group, a row-group cap of 1 or 2; finer
interleavings; internal errors) the whole reachable state space is explored, and:

1. nothing deadlocks: every reachable state whose run is not terminal can move without an
   external cancellation, and from every reachable state `execute` can still end on its own;
2. a terminal run has every worker drained and every admitted row group terminal, and `execute`
   never ends with the run not terminal (but see the finding below);
3. a terminal row group has every worker drained (or never created); leases balance, no worker
   is drained while its task runs, written rows were kept by every batch step and processor, no
   row group passes seeding early or checkpoints incomplete rows, outcomes mean what they say;
4. the engine's `pick` never finds two enabled candidates in a reachable state, and the run's
   terminal edges from each state exclude each other under any guard values;
5. every spec edge is taken somewhere, except the ones `NEVER_TAKEN` lists with the reason
   (only the cell machine's, which the model does not compose).

Then the exploration shows it has teeth: with one guard replaced by a constant, a property breaks
(or spec edges stop being taken) for every guard but the one `UNDETECTED` names, and it finds
the counterexample path. It found one engine bug, now fixed: a cancellation of the run's task
after an internal error could leave the run non-terminal (see
`test_execute_always_ends_the_run_even_after_an_internal_error`).

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
    AMBIGUOUS_PICK,
    CANNOT_FINISH,
    CHECKPOINT_INCOMPLETE,
    COMPLETED_SHORT,
    DEADLOCK,
    DRAINED_GROUP_EMPTY,
    DRAINED_HOLDING_LEASES,
    DRAINED_TASK_RUNNING,
    ENDED_UNADMITTED,
    MOVES_AFTER_END,
    PARTIAL_NOT_SHORT,
    ROW_GROUP,
    RUN,
    RUNNING_WITHOUT_LEASES,
    SEEDED_EARLY,
    STOP_CANDIDATES,
    STRANDED,
    TERMINAL_GROUP_LIVE_WORKER,
    TERMINAL_RUN_LIVE_WORKER,
    TERMINAL_RUN_OPEN_GROUP,
    WRITTEN_ROWS_CHANGED,
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
    run_endings,
)

SHAPES = [(1, 1, 1), (1, 2, 1), (1, 3, 1), (2, 1, 1), (2, 2, 1), (2, 3, 1)]
SHAPES += [(2, 1, 2), (2, 2, 2), (2, 3, 2)]
# Engine granularity: a worker's outcome is settled in one callback, as the engine does.
CONFIGS = [Config(groups, workers, cap) for groups, workers, cap in SHAPES]
# Finer: every worker transition, task end and lease release interleaves with everything else.
FINE = [Config(1, 3, 1, fine=True), Config(2, 2, 1, fine=True), Config(2, 1, 2, fine=True)]
ALL = CONFIGS + FINE
# A bug in a callback: _internal_error, _end_after_internal_error.
INTERNAL = [
    Config(1, 2, 1, internal_errors=True),
    Config(2, 1, 1, internal_errors=True),
    Config(2, 1, 2, internal_errors=True),
]

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
    for live, unadmitted, open_groups, written in itertools.product(
        range(3), range(3), range(3), range(5)
    ):
        state = State("running", 4, written, unadmitted, open_groups, live, False, False, False, ())
        run = RunState(target_records=4, row_groups=unadmitted)
        run.live_workers, run.open_row_groups, run.records_written = live, open_groups, written
        for name, predicate in engine.items():
            assert model["run"][name](state) == predicate(run), (name, state)
    group_model = model["row_group"]
    group_engine: dict[str, EngineGuard] = dict(row_group_guards())
    for live, kept, surviving, incomplete, seeds_done, fatal in itertools.product(
        range(3), (False, True), range(3), range(3), (False, True), (False, True)
    ):
        group = Group("running", surviving, incomplete, seeds_done, kept, fatal, live, ())
        subject = SimpleNamespace(
            live_workers={object() for _ in range(live)},
            rows_kept=lambda kept=kept: kept,
            surviving_rows=surviving,
            seeds_remaining=0 if seeds_done else 2,
            incomplete_rows=incomplete,
            fatal=RuntimeError() if fatal else None,
        )
        for name, predicate in group_engine.items():
            assert group_model[name](group) == predicate(subject), (name, group)
    worker_engine: dict[str, EngineGuard] = dict(worker_guards())
    for leases, task in itertools.product((False, True), (None, False, True)):
        # task: None, a done task, a running task
        handle = None if task is None else SimpleNamespace(done=lambda task=task: not task)
        slot = Slot("pending", leases, bool(task))
        worker = SimpleNamespace(has_leases=leases, task=handle)
        for name, predicate in worker_engine.items():
            assert model["worker"][name](slot) == predicate(worker), (name, leases, task)


# -- (1)-(3) on the real specs ----------------------------------------------------------------


@pytest.mark.parametrize("config", ALL + INTERNAL, ids=str)
def test_no_reachable_state_deadlocks_and_the_run_can_always_end(config: Config) -> None:
    result = explored(config)
    assert DEADLOCK not in result.counterexamples, describe(result)
    assert CANNOT_FINISH not in result.counterexamples, describe(result)
    assert result.stuck == 0
    assert result.run_outcomes == RUN.terminal, "every outcome of the run is reachable"


@pytest.mark.parametrize("config", ALL + INTERNAL, ids=str)
def test_a_terminal_run_has_every_worker_drained_and_every_admitted_row_group_terminal(
    config: Config,
) -> None:
    result = explored(config)
    for prop in (TERMINAL_RUN_LIVE_WORKER, TERMINAL_RUN_OPEN_GROUP, MOVES_AFTER_END):
        assert prop not in result.counterexamples, describe(result)


@pytest.mark.parametrize("config", ALL + INTERNAL, ids=str)
def test_a_terminal_row_group_has_every_worker_drained(config: Config) -> None:
    result = explored(config)
    assert TERMINAL_GROUP_LIVE_WORKER not in result.counterexamples, describe(result)


_STATE_PROPERTIES = (
    DRAINED_HOLDING_LEASES,
    DRAINED_TASK_RUNNING,
    RUNNING_WITHOUT_LEASES,
    DRAINED_GROUP_EMPTY,
    WRITTEN_ROWS_CHANGED,
    SEEDED_EARLY,
    CHECKPOINT_INCOMPLETE,
    COMPLETED_SHORT,
    PARTIAL_NOT_SHORT,
    ENDED_UNADMITTED,
)


@pytest.mark.parametrize("config", ALL + INTERNAL, ids=str)
def test_leases_balance_and_outcomes_mean_what_they_say(config: Config) -> None:
    """INV-3, INV-10, INV-2 (tasks), INV-5, INV-9 and INV-6 as the model sees them."""
    result = explored(config)
    for prop in _STATE_PROPERTIES:
        assert prop not in result.counterexamples, describe(result)


@pytest.mark.parametrize("config", ALL, ids=str)
def test_execute_always_ends_the_run_and_nothing_else_is_violated(config: Config) -> None:
    result = explored(config)
    assert STRANDED not in result.counterexamples, describe(result)
    assert not result.counterexamples, describe(result)


# -- (4) the guards choose: one candidate at a time -------------------------------------------


@pytest.mark.parametrize("config", ALL + INTERNAL, ids=str)
def test_no_reachable_state_offers_two_enabled_candidates(config: Config) -> None:
    """Wherever the engine calls `pick` (`_advance`, `_stop_trigger`, `can_finish`, `finish`) in
    a reachable state, at most one of the candidates it offers is enabled: `pick` never raises
    SpecError."""
    result = explored(config)
    assert AMBIGUOUS_PICK not in result.counterexamples, describe(result)


def _exclusive(machine: str, source: str, triggers: tuple[str, ...]) -> list[tuple[str, str]]:
    """The pairs among `triggers` (edges out of `source`) that some assignment of guard values
    enables together."""
    spec = SPECS[machine]
    edges = {t.trigger: t for t in spec.transitions if t.source == source}
    names = sorted(g.name for g in spec.guards)
    clashes = []
    for a, b in itertools.combinations([t for t in triggers if t in edges], 2):
        for values in itertools.product((False, True), repeat=len(names)):
            holds = dict(zip(names, values, strict=True))

            def passes(trigger: str, holds: dict[str, bool] = holds) -> bool:
                edge = edges[trigger]
                return all(holds[g] for g in edge.conditions) and not any(
                    holds[g] for g in edge.unless
                )

            if passes(a) and passes(b):
                clashes.append((a, b))
                break
    return clashes


def test_the_run_endings_from_each_state_exclude_each_other_under_any_guard_values() -> None:
    """Stronger than the reachable check: whatever the counters, `finish` has one choice."""
    for state in RUN.state_names:
        if state in RUN.terminal:
            continue
        assert _exclusive("run", state, run_endings(state)) == [], state


def test_the_row_group_candidates_the_engine_offers_exclude_each_other() -> None:
    offered = {
        "seeding": [("seeded", "drop"), STOP_CANDIDATES],
        "running": [("cells_done", "drop"), ("salvage", "drop"), STOP_CANDIDATES],
        "checkpointing": [STOP_CANDIDATES],
    }
    for state, candidate_sets in offered.items():
        assert state in ROW_GROUP.state_names
        for candidates in candidate_sets:
            assert _exclusive("row_group", state, candidates) == [], (state, candidates)


# -- (5) edge coverage ------------------------------------------------------------------------

# The cell machine is the one spec the model does not compose. Its guards read per-row dependency
# counters (upstream_generated) and the ledger (not_yet_counted), which the model folds into a
# row group's "incomplete rows"; firing its edges without those guards would claim coverage the
# model does not have. tests/scheduler exercises every cell edge against the real engines.
_CELLS = (
    "cells are not part of the composed model: their guards read per-row dependency counters "
    "and the ledger, which it folds into 'incomplete rows' (tests/scheduler exercises them)"
)
NEVER_TAKEN: dict[tuple[str, str, str], str] = {
    ("cell", "pending", "start"): _CELLS,
    ("cell", "running", "generate"): _CELLS,
    ("cell", "running", "fail"): _CELLS,
    ("cell", "pending", "skip"): _CELLS,
    ("cell", "running", "skip"): _CELLS,
}


def test_every_spec_edge_is_taken_somewhere_or_listed_with_the_reason() -> None:
    taken: set[tuple[str, str, str]] = set()
    for config in ALL + INTERNAL:
        taken |= explored(config).edges
    edges = all_edges()
    assert taken <= edges
    untaken = edges - taken
    unexplained = sorted(untaken - set(NEVER_TAKEN))
    stale = sorted(set(NEVER_TAKEN) - untaken)
    assert not unexplained, f"spec edges no configuration takes; list them with why: {unexplained}"
    assert not stale, f"NEVER_TAKEN lists edges that are taken now (or gone): {stale}"
    assert {machine for machine, _, _ in NEVER_TAKEN} == {"cell"}
    for config in CONFIGS:
        print(f"{config}: {len(explored(config).edges)} of {len(edges)} edges taken")


def test_each_configuration_takes_every_edge_the_smallest_one_does() -> None:
    """A sanity check of the model: more row groups, workers or cap never lose behaviour; and
    the smallest configuration already takes every edge of the composed machines."""
    smallest = explored(CONFIGS[0]).edges
    assert smallest == all_edges() - set(NEVER_TAKEN)
    for config in ALL + INTERNAL:
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


def test_run_all_row_groups_admitted_always_true_ends_the_run_before_admitting_them() -> None:
    result = _mutant("run", "all_row_groups_admitted", True, ENDED_UNADMITTED)
    assert ENDED_UNADMITTED in result.counterexamples, describe(result)


def test_worker_leases_released_always_true_drains_workers_holding_leases() -> None:
    result = _mutant("worker", "leases_released", True, DRAINED_HOLDING_LEASES)
    assert DRAINED_HOLDING_LEASES in result.counterexamples, describe(result)


def test_worker_task_finished_always_true_drains_workers_whose_task_runs() -> None:
    result = _mutant("worker", "task_finished", True, DRAINED_TASK_RUNNING)
    assert DRAINED_TASK_RUNNING in result.counterexamples, describe(result)


def test_row_count_unchanged_always_true_writes_rows_a_processor_changed() -> None:
    """The guard is also the engine's row contract (`_check_row_contract` asks it): without it,
    a batch step or processor that changed the rows goes unnoticed and they are written."""
    result = _mutant("row_group", "row_count_unchanged", True, WRITTEN_ROWS_CHANGED)
    assert WRITTEN_ROWS_CHANGED in result.counterexamples, describe(result)


@pytest.mark.parametrize(
    "guard, prop", [("seeds_done", SEEDED_EARLY), ("cells_complete", CHECKPOINT_INCOMPLETE)]
)
def test_progress_guards_always_true_move_row_groups_on_too_early(guard: str, prop: str) -> None:
    result = _mutant("row_group", guard, True, prop)
    assert prop in result.counterexamples, describe(result)


# Mutations the exploration cannot see, and why. The sweep asserts these stay unseen, so a
# model that learns to see one must move it out of here.
UNDETECTED: dict[tuple[str, str, bool], str] = {
    ("run", "no_live_workers", True): (
        "implied on the engine's paths: every run end needs every row group terminal "
        "(all_row_groups_terminal), a row group ends only through its own no_live_workers, and "
        "the engine creates workers only in open row groups; test_run_no_live_workers_matters_"
        "once_row_groups_may_close_with_live_workers shows the guard is not dead"
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
    makes spec edges unreachable (the coverage check of (5) would fail)."""
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


def test_run_no_live_workers_matters_once_row_groups_may_close_with_live_workers() -> None:
    """With the row groups' no_live_workers also gone, the run's own no_live_workers is what
    keeps a run from ending with a live worker."""
    table = mutated("row_group", "no_live_workers", True)
    guarded = explore(SWEEP, table, stop_at=frozenset({TERMINAL_RUN_LIVE_WORKER}))
    assert TERMINAL_RUN_LIVE_WORKER not in guarded.counterexamples, describe(guarded)
    table["run"]["no_live_workers"] = lambda _run: True
    result = explore(SWEEP, table, stop_at=frozenset({TERMINAL_RUN_LIVE_WORKER}))
    assert TERMINAL_RUN_LIVE_WORKER in result.counterexamples, describe(result)


# -- findings ---------------------------------------------------------------------------------


def test_run_cancel_requires_its_row_groups_to_be_terminal() -> None:
    """Once a spec gap: run `cancel` was guarded by no_live_workers only, so a cancelled run
    could end with a row group open whenever the engine did not close them first. Every edge
    into a terminal run state now requires all_row_groups_terminal."""
    unguarded = [
        (t.source, t.trigger)
        for t in RUN.transitions
        if t.dest in RUN.terminal and "all_row_groups_terminal" not in t.conditions
    ]
    assert unguarded == []


@pytest.mark.parametrize("config", INTERNAL, ids=str)
def test_execute_always_ends_the_run_even_after_an_internal_error(config: Config) -> None:
    """The exploration found that a cancellation arriving after an internal error, once
    `execute` had resumed from `await self._done`, reached `_end_stopped` with queued workers
    still live: no row-group ending was allowed and the run stayed `aborting`. `_end_stopped`
    now settles unstarted workers first (regression test on the real engine:
    tests/scheduler/test_run_lifecycle_edges.py)."""
    result = explored(config)
    assert STRANDED not in result.counterexamples, describe(result)
