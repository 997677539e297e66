"""The run, row-group and worker machines composed, explored breadth-first (issue 10, item 5).

Theory of operation
-------------------
A composed state is one run subject, `row_groups` row-group subjects and, per row group,
`workers` worker *slots*, plus the counters the guards read: the run's live workers, unadmitted
and open row groups and records written; per row group its live workers, surviving rows,
incomplete rows, whether its seed steps are done, whether every batch step and processor returned
the rows it was given (the `row_count_unchanged` evidence) and whether a fatal error was recorded
against it; per worker whether it holds its leases and whether its asyncio task is still running.
A slot is `IDLE` when no live worker occupies it (never created, or its worker was drained and the
slot may take the next attempt); otherwise it holds one worker in a worker-spec state. The
workers of one row group are interchangeable, so slots are kept sorted.

There is no engine "mode": the run machine's own state is the engine's state, and the engine's
decisions are the sets `scheduler/core.py` derives from the tables (`RUN_ADMITTING`,
`RUN_DRAINING`, `RUN_STOPPING`, `RUN_ABORTABLE`, `RUN_INTERRUPTIBLE`, `GROUP_SEEDING`,
`GROUP_OPEN`). Besides the machines, the model keeps three facts of `AsyncEngine.execute`: an
internal error was recorded (`_internal_error`), the run's task was cancelled, and `execute` has
returned (or raised) - after which nothing moves.

Every move is an *action*: an environment event that mirrors something the engine does
(`scheduler/dispatcher.py`, `scheduler/core.py`), usually firing spec transitions together with
the counter updates the engine performs with them, in the engine's order. Transitions come from
`SPECS`: an action names only the trigger the engine fires; the edge, its destination and its
guards are looked up in the loaded spec, so a `fire` happens only when the spec has the edge from
the subject's current state AND its guards hold on the composed counters (an engine `fire` that
raises `GuardRejected` is modelled as the action not being possible). Where the engine offers
candidates and lets the guards choose (`ReferenceMachine.pick`, `finish`, `can_finish`), the model
does the same with the same candidates; two enabled candidates is the engine's `SpecError`, which
the exploration reports as `AMBIGUOUS_PICK` in every reachable state where the engine could ask.
Where the engine asks a guard itself (`_advance` waits for `no_live_workers`; `_check_row_contract`
asks `row_count_unchanged`), the model asks the same guard of its table, so a mutated guard
table changes the engine's decision too. The guard predicates are the only hand-written part
(`model_guards`, each mapped to its engine guard in `scheduler/subjects.py`).

Granularity: by default a worker's outcome is settled as the engine settles it, in one
synchronous done callback (`_settle_worker`): its task is done, outcome, lease release,
`release`. The callback is also tried without the lease release and before the task is done
(bugs only the `leases_released` and `task_finished` guards can stop). `Config.fine` makes every
worker transition, the task's end and the lease release separate actions. `_cancel_everything`
settles unstarted workers (queued or backing off, no task) synchronously and only asks started
tasks to stop; each started task then ends in its own later callback, as `cancel`, or as
`succeed`/`fail` when it had finished just before the cancellation reached it.

Modelled engine behaviour (`run` is the run machine's state):

- `execute` fires the run's `start` first; row groups are admitted in plan order while the run
  admits and fewer than `cap` are open (`_admit_row_groups`: the count of unadmitted row groups
  drops, `admit`);
- a worker is created (pending, no leases, no task) in an open row group that has work left
  (seeding with seed steps not done, or running with incomplete rows) while the run admits
  (`_enqueue`, `_schedule_retry`); `_pump` gives it leases and a task; it starts only while the
  run admits (`_execute`, guarded by `leases_held`, tried for every pending worker);
- a success may finish the seed steps (seeding), complete a row (running), do neither, or be a
  batch step returning the wrong number of rows: evidence against `row_count_unchanged`, and when
  that guard then says no, `_abort` of the row group (`_require_batch_rows`);
- a failure may trip early shutdown (`_begin_drain`: `drain`, cancel everything) while the run
  admits, then drops its row, every row (a batch or seed step), or nothing (its row was gone);
  a retry (`defer`) only while the run admits;
- `_advance` on a quiet open row group (its `no_live_workers` holds): while the run stops, the
  guards pick among (`fail`, `cancel`); draining, a seeding row group drops every row and picks
  among (`seeded`, `drop`), a running one drops its incomplete rows and picks among (`salvage`,
  `drop`); otherwise (`seeded`, `drop`) or (`cells_done`, `drop`). `seeded` runs the pre-batch
  processors first: they keep the rows, change them (evidence; `_abort` when the guard says so)
  or raise (`_abort`);
- a checkpoint writes (`_written`: records, then `write`), or its post-batch processors change the
  rows (evidence; the guard decides), or the sink fails: `_abort` then `fail`; a checkpoint task
  cancelled before it ran (run cancelled, internal error) closes by the guards' pick among
  (`fail`, `cancel`); `run_uninterrupted` finishes a write that started;
- `_abort` marks the row group fatal and, from `running`/`draining`, fires `abort` and cancels
  everything; `_close_with` drops every row before its terminal transition;
- the run ends by `_check_finished` (`can_finish`) then `_end` (`finish`: the one terminal edge
  whose guards hold);
- cancellation of the run's task (the only *external* action): `_interrupt` fires `interrupt`
  from `running`/`draining`/`aborting` and cancels everything; once every task is done
  `_end_stopped` closes every open row group by the pick among (`fail`, `cancel`) and ends the run;
- with `Config.internal_errors`, a bug in a callback (`_internal_error`) fires `abort` from
  `running`/`draining`, marks every open row group fatal, and asks tasks (workers, checkpoints)
  to stop without settling queued workers or retry timers; once every task is done
  `_end_stopped` (through `_end_after_internal_error`, or directly when the run's task was
  cancelled) settles those first. A cancellation of the run's task after an internal error
  either reaches `_interrupt` (the task had not resumed from `await self._done` yet) or only
  `_end_stopped` (it had). The exploration found that `_end_stopped` used to skip the settling
  on that second path, which stranded the run; tests/scheduler/test_run_lifecycle_edges.py
  reproduces it on the real engine.

Not modelled: cells (their guards read per-row dependency counters this model folds into
"incomplete rows"); admission caps other than the row-group cap (any queued worker may be
admitted next); `_advance`'s own internal error for a quiet open row group with no edge enabled
(in the model that state is transient: the next worker is a separate action).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import attrs

from rowforge.scheduler.core import (
    GROUP_OPEN,
    GROUP_SEEDING,
    RUN_ABORTABLE,
    RUN_ADMITTING,
    RUN_DRAINING,
    RUN_INTERRUPTIBLE,
    RUN_STOPPING,
)
from rowforge.statemachine import SPECS, TABLES, MachineSpec
from rowforge.statemachine.spec import TransitionSpec

RUN, ROW_GROUP, WORKER = SPECS["run"], SPECS["row_group"], SPECS["worker"]

IDLE = ""  # a slot without a live worker: never created, or its worker drained
RUN_ACTIVE = frozenset(RUN.state_names) - RUN.terminal - {RUN.initial}
WORKER_LIVE = frozenset(WORKER.state_names) - WORKER.terminal
# The states a worker leaves by `release`: its callable (or its cancellation) is over.
WORKER_FINISHED = frozenset(t.source for t in WORKER.transitions if t.trigger == "release")
CHECKPOINTING = "checkpointing"  # the row group's checkpoint task exists: write or fail next
STOP_CANDIDATES = ("fail", "cancel")  # `_stop_trigger`


def run_endings(state: str) -> tuple[str, ...]:
    """What `ReferenceMachine.finish` and `can_finish` offer the run from `state`."""
    return TABLES["run"].endings(state)


class Slot(NamedTuple):
    state: str  # a worker-spec state, or IDLE
    leases: bool  # Worker.has_leases
    task: bool  # Worker.task exists and is not done


class Group(NamedTuple):
    state: str  # the row-group machine's state
    surviving: int  # RowGroup.surviving_rows
    incomplete: int  # RowGroup.incomplete_rows (surviving rows still missing a value)
    seeds_done: bool  # RowGroup.seeds_remaining == 0
    kept: bool  # RowGroup.rows_kept(): every batch step and processor kept the rows
    fatal: bool  # RowGroup.fatal is set
    live: int  # len(RowGroup.live_workers)
    slots: tuple[Slot, ...]  # sorted: the workers of one row group are interchangeable


class State(NamedTuple):
    run: str  # the run machine's state
    target: int  # RunState.target_records
    written: int  # RunState.records_written
    unadmitted: int  # RunState.unadmitted_row_groups
    open_groups: int  # RunState.open_row_groups
    live: int  # RunState.live_workers
    internal_error: bool  # AsyncEngine.internal_error is set
    cancelled: bool  # the run's task was cancelled: `execute` ends through `_end_stopped`
    exited: bool  # `execute` returned or raised
    groups: tuple[Group, ...]


@attrs.frozen
class Config:
    """One small configuration: row groups, worker slots per row group, row-group cap, rows."""

    row_groups: int
    workers: int
    cap: int
    rows: int = 2  # rows per row group: 2 lets salvage and failures keep some and drop some
    fine: bool = False  # every worker transition, task end and lease release its own action
    internal_errors: bool = False  # a callback may hit a bug: `_internal_error`

    def __str__(self) -> str:
        extras = [
            name
            for name, on in (("fine", self.fine), ("internal errors", self.internal_errors))
            if on
        ]
        shape = f"{self.row_groups} rg x {self.workers} w, cap {self.cap}, {self.rows} rows"
        return ", ".join([shape, *extras])

    def initial(self) -> State:
        idle = tuple(Slot(IDLE, False, False) for _ in range(self.workers))
        group = Group(ROW_GROUP.initial, self.rows, self.rows, False, True, False, 0, idle)
        return State(
            RUN.initial,
            self.row_groups * self.rows,
            0,
            self.row_groups,
            0,
            0,
            False,
            False,
            False,
            (group,) * self.row_groups,
        )


Guard = Callable[[Any], bool]
GuardTable = Mapping[str, Mapping[str, Guard]]


def model_guards() -> dict[str, dict[str, Guard]]:
    """The engine's guard predicates (`scheduler/subjects.py`) over the composed counters."""
    return {
        "run": {  # subjects.run_guards(); the subject is the composed State
            "no_live_workers": lambda run: run.live == 0,  # run.live_workers == 0
            "all_row_groups_terminal": lambda run: run.open_groups == 0,  # open_row_groups == 0
            # run.unadmitted_row_groups == 0
            "all_row_groups_admitted": lambda run: run.unadmitted == 0,
            # run.records_written == run.target_records
            "target_reached": lambda run: run.written == run.target,
            "some_rows_written": lambda run: run.written > 0,  # run.records_written > 0
        },
        "row_group": {  # subjects.row_group_guards(); the subject is a Group
            "no_live_workers": lambda group: group.live == 0,  # not group.live_workers
            "row_count_unchanged": lambda group: group.kept,  # group.rows_kept()
            "has_rows": lambda group: group.surviving > 0,  # group.surviving_rows > 0
            "seeds_done": lambda group: group.seeds_done,  # group.seeds_remaining == 0
            "cells_complete": lambda group: group.incomplete == 0,  # incomplete_rows == 0
            "has_fatal_error": lambda group: group.fatal,  # group.fatal is not None
        },
        "worker": {  # subjects.worker_guards(); the subject is a Slot
            "leases_held": lambda worker: worker.leases,  # worker.has_leases
            "leases_released": lambda worker: not worker.leases,  # not worker.has_leases
            # worker.task is None or worker.task.done()
            "task_finished": lambda worker: not worker.task,
        },
    }


def mutated(machine: str, guard: str, verdict: bool) -> dict[str, dict[str, Guard]]:
    """The model's guard table with one guard replaced by a constant verdict."""
    table = model_guards()
    assert guard in table[machine], f"{machine} has no guard {guard!r}"
    table[machine][guard] = lambda _subject: verdict
    return table


Edge = tuple[str, str, str]  # (machine, source, trigger)


class Step(NamedTuple):
    label: str  # what happened, for counterexample paths
    edges: tuple[Edge, ...]  # the spec transitions fired, in order
    state: State
    external: bool = False  # a cancellation from outside the run, not the engine's own doing
    broke: tuple[str, ...] = ()  # properties this action itself breaks


def edge_key(machine: MachineSpec, transition: TransitionSpec) -> Edge:
    return (machine.name, transition.source, transition.trigger)


def all_edges() -> set[Edge]:
    """Every edge of every machine in `specs/` (a multi-source entry counts once per source)."""
    return {edge_key(spec, t) for spec in SPECS.values() for t in spec.transitions}


_EDGES = {
    spec.name: {(t.source, t.trigger): t for t in spec.transitions} for spec in SPECS.values()
}


def _edge(machine: MachineSpec, source: str, trigger: str) -> TransitionSpec | None:
    """`machine.edge(source, trigger)`, by dictionary."""
    return _EDGES[machine.name].get((source, trigger))


def _passes(transition: TransitionSpec, guards: Mapping[str, Guard], subject: Any) -> bool:
    return all(guards[g](subject) for g in transition.conditions) and not any(
        guards[g](subject) for g in transition.unless
    )


def enabled(
    machine: MachineSpec, guards: Mapping[str, Guard], state: str, subject: Any, triggers: Any
) -> list[str]:
    """The candidate triggers with an edge out of `state` whose guards hold on `subject`."""
    found = []
    for trigger in triggers:
        transition = _edge(machine, state, trigger)
        if transition is not None and _passes(transition, guards, subject):
            found.append(trigger)
    return found


class _Ambiguous(Exception):
    """`ReferenceMachine.pick` found two enabled candidates: `SpecError` in the engine."""


def _with_slot(group: Group, old: Slot, new: Slot) -> Group:
    slots = list(group.slots)
    slots[slots.index(old)] = new
    return group._replace(slots=tuple(sorted(slots)))


def _with_group(s: State, index: int, group: Group) -> State:
    groups = list(s.groups)
    groups[index] = group
    return s._replace(groups=tuple(groups))


def _dropped_all(group: Group) -> Group:
    """`RowGroup.drop_all`."""
    return group._replace(surviving=0, incomplete=0)


def _admitting(s: State) -> bool:
    return s.run in RUN_ADMITTING


class _Env:
    """The actions of one configuration under one guard table."""

    def __init__(self, config: Config, guards: GuardTable) -> None:
        self.config = config
        self.run_guards = guards["run"]
        self.group_guards = guards["row_group"]
        self.worker_guards = guards["worker"]
        self.worker_memo: dict[tuple[Slot, str, bool, bool, bool], Any] = {}

    def steps(self, s: State) -> Iterator[Step]:
        if s.exited or s.run in RUN.terminal:
            return
        yield from self.run_steps(s)
        for index, group in enumerate(s.groups):
            yield from self.group_steps(s, index, group)
            for slot in sorted(set(group.slots)):
                yield from self.worker_steps(s, index, group, slot)

    # -- picking ------------------------------------------------------------------------------

    def pick_group(self, group: Group, candidates: tuple[str, ...]) -> str | None:
        chosen = enabled(ROW_GROUP, self.group_guards, group.state, group, candidates)
        if len(chosen) > 1:
            raise _Ambiguous(chosen)
        return chosen[0] if chosen else None

    def pick_run(self, s: State) -> str | None:
        chosen = enabled(RUN, self.run_guards, s.run, s, run_endings(s.run))
        if len(chosen) > 1:
            raise _Ambiguous(chosen)
        return chosen[0] if chosen else None

    def advance_candidates(self, s: State, group: Group) -> tuple[Group, tuple[str, ...]]:
        """What `_advance` offers a quiet open row group, after the updates it makes first."""
        if s.run in RUN_STOPPING:
            return group, STOP_CANDIDATES
        draining = s.run in RUN_DRAINING
        if group.state in GROUP_SEEDING:
            return (_dropped_all(group) if draining else group), ("seeded", "drop")
        if draining:  # drop_incomplete
            kept = group.surviving - group.incomplete
            return group._replace(surviving=kept, incomplete=0), ("salvage", "drop")
        return group, ("cells_done", "drop")

    def ambiguities(self, s: State) -> Iterator[str]:
        """Where the engine could call `pick` in `s` and two candidates are enabled."""
        if s.run in RUN_ACTIVE and not s.exited:
            if len(enabled(RUN, self.run_guards, s.run, s, run_endings(s.run))) > 1:
                yield f"run in {s.run}"
            for index, group in enumerate(s.groups):
                if group.state in GROUP_OPEN and self.group_guards["no_live_workers"](group):
                    offered, candidates = self.advance_candidates(s, group)
                elif group.state == CHECKPOINTING:
                    offered, candidates = group, STOP_CANDIDATES
                else:
                    continue
                chosen = enabled(ROW_GROUP, self.group_guards, offered.state, offered, candidates)
                if len(chosen) > 1:
                    yield f"row group {index} in {group.state}: {chosen}"

    # -- firing -------------------------------------------------------------------------------

    def fire_run(self, s: State, trigger: str) -> tuple[Edge, State] | None:
        transition = _edge(RUN, s.run, trigger)
        if transition is None or not _passes(transition, self.run_guards, s):
            return None
        return edge_key(RUN, transition), s._replace(run=transition.dest)

    def fire_group(
        self, s: State, index: int, group: Group, trigger: str
    ) -> tuple[Edge, State] | None:
        """Fire `trigger` on row group `index`, whose counters the engine already updated to
        `group`. A terminal destination closes the row group (`_close`)."""
        transition = _edge(ROW_GROUP, group.state, trigger)
        if transition is None or not _passes(transition, self.group_guards, group):
            return None
        group = group._replace(state=transition.dest)
        if transition.dest in ROW_GROUP.terminal:
            s = s._replace(open_groups=s.open_groups - 1)
        return edge_key(ROW_GROUP, transition), _with_group(s, index, group)

    def close_with(
        self, s: State, index: int, trigger: str, group: Group | None = None
    ) -> tuple[Edge, State] | None:
        """`_close_with`: drop every row, then the terminal transition."""
        group = s.groups[index] if group is None else group
        return self.fire_group(s, index, _dropped_all(group), trigger)

    def worker_transitions(
        self, slot: Slot, trigger: str, release_leases: bool, task_done: bool, coarse: bool
    ) -> tuple[tuple[Edge, ...], Slot] | None:
        """What `trigger` does to one worker: the edges fired and its new slot, or None.

        `coarse`: an outcome (succeed, defer, fail, cancel) is settled in one callback: the task
        is done (skipped when `task_done` is False), the outcome, `admission.release` (skipped
        when `release_leases` is False), then `release`.
        """
        key = (slot, trigger, release_leases, task_done, coarse)
        if key in self.worker_memo:
            result: tuple[tuple[Edge, ...], Slot] | None = self.worker_memo[key]
            return result
        result = None
        transition = _edge(WORKER, slot.state, trigger)
        if transition is not None and _passes(transition, self.worker_guards, slot):
            edges = [edge_key(WORKER, transition)]
            task = slot.task or trigger == "start"
            new: Slot | None = Slot(transition.dest, slot.leases, task)
            assert new is not None
            if coarse and new.state in WORKER_FINISHED:
                new = Slot(new.state, new.leases and not release_leases, new.task and not task_done)
                release = _edge(WORKER, new.state, "release")
                if release is None or not _passes(release, self.worker_guards, new):
                    new = None
                else:
                    edges.append(edge_key(WORKER, release))
                    new = Slot(release.dest, new.leases, new.task)
            elif not (release_leases and task_done):
                new = None  # only a settling callback has these bugs
            if new is not None:
                result = tuple(edges), new
        self.worker_memo[key] = result
        return result

    def fire_worker(
        self,
        s: State,
        index: int,
        slot: Slot,
        trigger: str,
        release_leases: bool = True,
        task_done: bool = True,
        coarse: bool | None = None,
    ) -> tuple[tuple[Edge, ...], State] | None:
        """Fire `trigger` on one worker of row group `index`. Reaching a terminal state drains
        the worker (`_drain`): it stops being live, and its slot frees up unless it still holds
        leases or a running task (kept visible for INV-3 and INV-2)."""
        coarse = not self.config.fine if coarse is None else coarse
        fired = self.worker_transitions(slot, trigger, release_leases, task_done, coarse)
        if fired is None:
            return None
        edges, new = fired
        group = s.groups[index]
        if new.state in WORKER.terminal:
            new = new if (new.leases or new.task) else Slot(IDLE, False, False)
            s = s._replace(live=s.live - 1)
            group = group._replace(live=group.live - 1)
        return edges, _with_group(s, index, _with_slot(group, slot, new))

    def cancel_unstarted(self, s: State) -> tuple[tuple[Edge, ...], State] | None:
        """`_cancel_everything`'s synchronous part: every live worker without a task (queued or
        backing off) is settled `cancel` at once; started tasks are only asked to stop."""
        edges: list[Edge] = []
        for index in range(len(s.groups)):
            while True:
                unstarted = [
                    w for w in s.groups[index].slots if w.state == WORKER.initial and not w.task
                ]
                if not unstarted:
                    break
                fired = self.fire_worker(s, index, unstarted[0], "cancel", coarse=True)
                if fired is None:
                    return None  # the engine's fire raises: modelled as not happening
                edges.extend(fired[0])
                s = fired[1]
        return tuple(edges), s

    # -- the engine's run-level operations ------------------------------------------------

    def stop_run(self, s: State, trigger: str) -> tuple[tuple[Edge, ...], State] | None:
        """`_begin_drain` (`drain`), `_abort` (`abort`), `_interrupt` (`interrupt`): fire the
        run's edge, then `_cancel_everything`."""
        fired = self.fire_run(s, trigger)
        if fired is None:
            return None
        cancelled = self.cancel_unstarted(fired[1])
        if cancelled is None:
            return None
        return (fired[0], *cancelled[0]), cancelled[1]

    def abort(self, s: State, index: int) -> tuple[tuple[Edge, ...], State] | None:
        """`_abort(group, error)`: mark the row group fatal; abort a running or draining run."""
        group = s.groups[index]
        s = _with_group(s, index, group._replace(fatal=True))
        if s.run not in RUN_ABORTABLE:
            return (), s
        return self.stop_run(s, "abort")

    def breach(self, s: State, index: int) -> tuple[tuple[Edge, ...], State] | None:
        """A batch step or processor returned other rows: `record_output` keeps the evidence,
        `_check_row_contract` asks the guard and aborts when it says no."""
        group = s.groups[index]._replace(kept=False)
        s = _with_group(s, index, group)
        if self.group_guards["row_count_unchanged"](group):
            return (), s  # the engine goes on as if the rows were kept
        return self.abort(s, index)

    # -- the run -------------------------------------------------------------------------------

    def run_steps(self, s: State) -> Iterator[Step]:
        fired = self.fire_run(s, "start")  # execute(): before anything else happens
        if fired is not None:
            yield Step("run start", (fired[0],), fired[1])
        if s.run not in RUN_ACTIVE:
            return
        # Every task is done and its done callback ran (TaskGroup.__aexit__ returned).
        tasks_done = not any(
            w.task or w.state in WORKER_FINISHED or w.state == "running"
            for g in s.groups
            for w in g.slots
        ) and not any(g.state == CHECKPOINTING for g in s.groups)
        if not s.internal_error and not s.cancelled:
            # _check_finished (can_finish) sets _done; execute then calls _end (finish).
            try:
                ending = self.pick_run(s)
            except _Ambiguous:
                ending = None
            if ending is not None:
                fired = self.fire_run(s, ending)
                assert fired is not None
                broke: tuple[str, ...] = ()
                if s.run in RUN_ADMITTING and s.unadmitted:
                    broke = (ENDED_UNADMITTED,)
                yield Step(
                    f"run {ending}", (fired[0],), fired[1]._replace(exited=True), False, broke
                )
        elif tasks_done:
            yield self.exit_stopped(s)
        if not s.cancelled:
            # The run's task is cancelled (Ctrl-C, task.cancel()).
            interrupted = self.interrupt(s)
            if interrupted is not None:
                label = "cancellation requested: _interrupt"
                yield Step(label, interrupted[0], interrupted[1], True)
            if s.internal_error:
                # It reaches execute in TaskGroup.__aexit__: no _interrupt, only _end_stopped.
                late = s._replace(cancelled=True)
                yield Step("cancellation requested after the internal error", (), late, True)
        # A bug in a worker's or a checkpoint's done callback, or a retry timer: _internal_error.
        callbacks_due = s.live > 0 or any(g.state == CHECKPOINTING for g in s.groups)
        if self.config.internal_errors and not s.internal_error and callbacks_due:
            yield self.internal_error(s)

    def interrupt(self, s: State) -> tuple[tuple[Edge, ...], State] | None:
        if s.run in RUN_INTERRUPTIBLE:
            stopped = self.stop_run(s, "interrupt")
            if stopped is None:
                return None
            edges, s = stopped
        else:
            cancelled = self.cancel_unstarted(s)
            if cancelled is None:
                return None
            edges, s = cancelled
        return edges, s._replace(cancelled=True)

    def internal_error(self, s: State) -> Step:
        edges: tuple[Edge, ...] = ()
        if s.run in RUN_ABORTABLE:
            fired = self.fire_run(s, "abort")
            if fired is not None:
                edges, s = (fired[0],), fired[1]
        groups = tuple(
            g._replace(fatal=True)
            if g.state != ROW_GROUP.initial and g.state not in ROW_GROUP.terminal
            else g
            for g in s.groups
        )
        return Step(
            "internal error in the dispatcher",
            edges,
            s._replace(internal_error=True, groups=groups),
        )

    def exit_stopped(self, s: State) -> Step:
        """Every task is done: `_end_stopped` (through `_end_after_internal_error` unless the
        run's task was cancelled) settles the unstarted workers, closes every open row group by
        the guards' pick among (fail, cancel), then `_end`. An exception on the way leaves the
        run where it is and `execute` raises."""
        edges: list[Edge] = []
        label = "execute ends: " + ("_end_stopped" if s.cancelled else "_end_after_internal_error")
        stranded = s._replace(exited=True)
        cancelled = self.cancel_unstarted(s)
        if cancelled is None:
            return Step(label + " (raised settling workers)", (), stranded)
        edges.extend(cancelled[0])
        s = cancelled[1]
        for index, group in enumerate(s.groups):
            if group.state == ROW_GROUP.initial or group.state in ROW_GROUP.terminal:
                continue
            try:
                trigger = self.pick_group(group, STOP_CANDIDATES)
            except _Ambiguous:
                trigger = None
            closed = None if trigger is None else self.close_with(s, index, trigger)
            if closed is None:
                label += f" (raised closing row group {index})"
                return Step(label, tuple(edges), s._replace(exited=True))
            edges.append(closed[0])
            s = closed[1]
        try:
            ending = self.pick_run(s)
        except _Ambiguous:
            ending = None
        fired = None if ending is None else self.fire_run(s, ending)
        if fired is None:
            return Step(label + " (raised ending the run)", tuple(edges), s._replace(exited=True))
        edges.append(fired[0])
        return Step(f"{label}, run {ending}", tuple(edges), fired[1]._replace(exited=True))

    # -- row groups ----------------------------------------------------------------------------

    def group_steps(self, s: State, index: int, group: Group) -> Iterator[Step]:
        state = group.state
        # _admit_row_groups: in plan order, while the run admits, below the row-group cap.
        if (
            state == ROW_GROUP.initial
            and _admitting(s)
            and all(g.state != ROW_GROUP.initial for g in s.groups[:index])
            and s.open_groups < self.config.cap
        ):
            opened = s._replace(unadmitted=s.unadmitted - 1, open_groups=s.open_groups + 1)
            fired = self.fire_group(opened, index, group, "admit")
            if fired is not None:
                yield Step(f"row group {index} admit", (fired[0],), fired[1])
        if state in GROUP_OPEN and self.group_guards["no_live_workers"](group):
            yield from self.advance(s, index, group)
        if state == CHECKPOINTING:
            yield from self.checkpoint_steps(s, index, group)

    def advance(self, s: State, index: int, group: Group) -> Iterator[Step]:
        """`_advance` on a quiet open row group: the guards pick among the engine's candidates."""
        offered, candidates = self.advance_candidates(s, group)
        try:
            chosen = self.pick_group(offered, candidates)
        except _Ambiguous:
            return  # SpecError; reported by `ambiguities`
        if chosen is None:
            return
        label = f"row group {index} {chosen}"
        if chosen in ("drop", "fail", "cancel"):
            fired = self.close_with(s, index, chosen, offered)
            if fired is not None:
                yield Step(label, (fired[0],), fired[1])
            return
        if chosen != "seeded":  # cells_done, salvage: the checkpoint task starts
            fired = self.fire_group(s, index, offered, chosen)
            if fired is not None:
                yield Step(label, (fired[0],), fired[1])
            return
        # _seeded: pre-batch processors, then `seeded` (its guards read what they returned).
        fired = self.fire_group(s, index, offered, "seeded")
        if fired is not None:
            yield Step(label, (fired[0],), fired[1])
        changed = self.breach(s, index)
        if changed is not None:
            edges, after = changed
            if edges:
                yield Step(f"row group {index} pre-batch processor changed the rows", edges, after)
            else:
                fired = self.fire_group(after, index, after.groups[index], "seeded")
                if fired is not None:
                    label = f"row group {index} seeded after a pre-batch processor changed rows"
                    yield Step(label, (fired[0],), fired[1])
        aborted = self.abort(s, index)
        if aborted is not None:
            yield Step(f"row group {index} pre-batch processor raised", aborted[0], aborted[1])

    def checkpoint_steps(self, s: State, index: int, group: Group) -> Iterator[Step]:
        """`_checkpoint` and `_on_checkpoint_done`."""

        def written(s: State, group: Group, label: str) -> Iterator[Step]:  # _written
            s = s._replace(written=s.written + group.surviving)
            fired = self.fire_group(s, index, group, "write")
            if fired is not None:
                yield Step(label, (fired[0],), fired[1])

        def failed(s: State, label: str) -> Iterator[Step]:  # _abort, then `fail`
            aborted = self.abort(s, index)
            if aborted is None:
                return
            closed = self.close_with(aborted[1], index, "fail")
            if closed is not None:
                yield Step(label, (*aborted[0], closed[0]), closed[1])

        yield from written(s, group, f"row group {index} write")
        changed = group._replace(kept=False)
        if self.group_guards["row_count_unchanged"](changed):
            label = f"row group {index} write after a post-batch processor changed rows"
            yield from written(s, changed, label)
        else:
            label = f"row group {index} post-batch processor changed the rows: fail"
            yield from failed(_with_group(s, index, changed), label)
        yield from failed(s, f"row group {index} checkpoint failed (sink or processor): fail")
        if s.cancelled or s.internal_error:
            # The checkpoint task was cancelled before it ran: _stop_trigger.
            try:
                trigger = self.pick_group(group, STOP_CANDIDATES)
            except _Ambiguous:
                trigger = None
            closed = None if trigger is None else self.close_with(s, index, trigger)
            if closed is not None:
                label = f"row group {index} checkpoint cancelled: {trigger}"
                yield Step(label, (closed[0],), closed[1])

    # -- workers -------------------------------------------------------------------------------

    def worker_steps(self, s: State, index: int, group: Group, slot: Slot) -> Iterator[Step]:
        admitting, rows = _admitting(s), self.config.rows
        is_open = group.state in GROUP_OPEN
        if slot.state == IDLE:
            work = (group.state in GROUP_SEEDING and not group.seeds_done) or (
                group.state not in GROUP_SEEDING and group.incomplete > 0
            )
            if admitting and is_open and group.surviving > 0 and work:
                # _enqueue / _schedule_retry -> _new_worker
                created = _with_slot(group, slot, Slot(WORKER.initial, False, False))
                created = created._replace(live=group.live + 1)
                after = _with_group(s._replace(live=s.live + 1), index, created)
                yield Step(f"row group {index} worker created", (), after)
            return
        unstarted = slot.state == WORKER.initial and not slot.task
        if unstarted and not slot.leases and admitting:
            if is_open and group.surviving > 0:
                # _pump: admission.next_admissible() gives the worker its leases, then a task.
                leased = _with_slot(group, slot, Slot(slot.state, True, True))
                yield Step(f"row group {index} worker admitted", (), _with_group(s, index, leased))
            if not is_open or group.surviving < rows:
                # _pump's obsolete worker, _cancel_row, a batch failure: _settle_unstarted.
                fired = self.fire_worker(s, index, slot, "cancel", coarse=True)
                if fired is not None:
                    yield Step(f"row group {index} unstarted worker cancelled", *fired)
        if admitting:
            # _execute. Tried for every pending worker: only `leases_held` tells an admitted one
            # from a queued one.
            yield from self.settle(s, index, slot, "start")
        if slot.task:
            if slot.state == "running":
                yield from self.outcomes(s, index, group, slot)
            if not admitting or group.surviving < rows or not is_open:
                # _cancel_everything, _internal_error, _cancel_row: the task ends cancelled.
                yield from self.settle(s, index, slot, "cancel")
        if self.config.fine and slot.state in WORKER_FINISHED:
            if slot.task:
                done = _with_slot(group, slot, slot._replace(task=False))
                yield Step(
                    f"row group {index} worker {slot.state} task done",
                    (),
                    _with_group(s, index, done),
                )
            if slot.leases:  # _settle_worker: admission.release(worker) before _drain
                released = _with_slot(group, slot, slot._replace(leases=False))
                label = f"row group {index} worker {slot.state} leases released"
                yield Step(label, (), _with_group(s, index, released))
            yield from self.settle(s, index, slot, "release")

    def outcomes(self, s: State, index: int, group: Group, slot: Slot) -> Iterator[Step]:
        """A started task returns or raises (`_settle_worker`); after a cancellation it may have
        finished just before the cancellation reached it."""
        admitting, rows = _admitting(s), self.config.rows
        is_open = group.state in GROUP_OPEN
        for settled in self.settle(s, index, slot, "succeed"):
            yield settled  # _apply_success does nothing more (closed row group, dropped row)
            if not is_open:
                continue
            after, g = settled.state, settled.state.groups[index]
            if group.state in GROUP_SEEDING and not g.seeds_done:
                done = _with_group(after, index, g._replace(seeds_done=True))
                yield settled._replace(label=settled.label + " (seed steps done)", state=done)
            if group.state not in GROUP_SEEDING and g.incomplete > 0:
                row = _with_group(after, index, g._replace(incomplete=g.incomplete - 1))
                yield settled._replace(label=settled.label + " (row complete)", state=row)
            changed = self.breach(after, index)
            if changed is not None:
                label = settled.label + " (batch step returned the wrong number of rows)"
                yield Step(label, settled.edges + changed[0], changed[1])
        if admitting:
            yield from self.settle(s, index, slot, "defer")
        for drop in ("none", "row", "all"):
            if drop == "none" and is_open and group.surviving == rows:
                continue  # no row was dropped before, so the failing row is still there
            if drop != "none" and (not is_open or group.surviving == 0):
                continue
            if drop == "row" and (group.state in GROUP_SEEDING or group.incomplete == 0):
                continue  # seed steps are batch steps; a failing cell's row is incomplete
            for trips in (False, True) if admitting else (False,):
                for settled in self.settle(s, index, slot, "fail"):
                    edges, after = settled.edges, settled.state
                    if trips:  # _apply_failure -> _begin_drain
                        drained = self.stop_run(after, "drain")
                        if drained is None:
                            continue
                        edges, after = edges + drained[0], drained[1]
                    g = after.groups[index]
                    if drop == "row":
                        g = g._replace(surviving=g.surviving - 1, incomplete=g.incomplete - 1)
                    elif drop == "all":
                        g = _dropped_all(g)
                    shutdown = ", early shutdown" if trips else ""
                    label = f"{settled.label} (drops {drop}{shutdown})"
                    yield Step(label, edges, _with_group(after, index, g))

    def settle(self, s: State, index: int, slot: Slot, trigger: str) -> Iterator[Step]:
        """A worker's transition; an outcome settled in its done callback is also tried
        without the lease release and before its task is done."""
        if _edge(WORKER, slot.state, trigger) is None:
            return
        label = f"row group {index} worker {slot.state} {trigger}"
        fired = self.fire_worker(s, index, slot, trigger)
        if fired is not None:
            yield Step(label, *fired)
        if self.config.fine or trigger == "start":
            return
        if slot.leases:
            fired = self.fire_worker(s, index, slot, trigger, release_leases=False)
            if fired is not None:
                yield Step(label + " (leases not released)", *fired)
        if slot.task:
            fired = self.fire_worker(s, index, slot, trigger, task_done=False)
            if fired is not None:
                yield Step(label + " (before its task is done)", *fired)


# -- properties ----------------------------------------------------------------------------

TERMINAL_RUN_LIVE_WORKER = "run terminal with a live worker"
TERMINAL_RUN_OPEN_GROUP = "run terminal with an admitted row group open"
TERMINAL_GROUP_LIVE_WORKER = "row group terminal with a live worker"
DRAINED_HOLDING_LEASES = "worker drained holding leases"
DRAINED_TASK_RUNNING = "worker drained while its task runs"
RUNNING_WITHOUT_LEASES = "worker running without leases"
DRAINED_GROUP_EMPTY = "row group drained with no row written"
WRITTEN_ROWS_CHANGED = "rows written after a batch step or processor changed them"
SEEDED_EARLY = "row group past seeding before its seed steps are done"
CHECKPOINT_INCOMPLETE = "row group checkpointed with incomplete rows"
COMPLETED_SHORT = "run completed short of the target"
PARTIAL_NOT_SHORT = "run partial without a shortfall"
ENDED_UNADMITTED = "run ended from running with a row group never admitted"
AMBIGUOUS_PICK = "two candidate edges enabled at once (pick raises SpecError)"
STRANDED = "execute ended with the run not terminal"
DEADLOCK = "deadlock"
CANNOT_FINISH = "cannot finish"
MOVES_AFTER_END = "moves after the run ended"

_PAST_SEEDING = frozenset({"running", CHECKPOINTING, "drained"})


def _live(slot: Slot) -> bool:
    return slot.state in WORKER_LIVE


def violations(s: State) -> Iterator[str]:
    """The state properties `s` breaks (deadlock, liveness and picks are the exploration's)."""
    if s.run in RUN.terminal:
        if any(_live(w) for g in s.groups for w in g.slots):
            yield TERMINAL_RUN_LIVE_WORKER  # INV-2
        admitted = [g for g in s.groups if g.state != ROW_GROUP.initial]
        if any(g.state not in ROW_GROUP.terminal for g in admitted):
            yield TERMINAL_RUN_OPEN_GROUP  # INV-2
    elif s.exited:
        yield STRANDED  # INV-2, INV-8: the event log never says how the run ended
    for g in s.groups:
        if g.state in ROW_GROUP.terminal and any(_live(w) for w in g.slots):
            yield TERMINAL_GROUP_LIVE_WORKER  # INV-2
        if any(w.state in WORKER.terminal and w.leases for w in g.slots):
            yield DRAINED_HOLDING_LEASES  # INV-3
        if any(w.state in WORKER.terminal and w.task for w in g.slots):
            yield DRAINED_TASK_RUNNING  # INV-2
        if any(w.state == "running" and not w.leases for w in g.slots):
            yield RUNNING_WITHOUT_LEASES  # INV-10
        if g.state == "drained" and g.surviving == 0:
            yield DRAINED_GROUP_EMPTY  # INV-6: `dropped` is the state for nothing to write
        if g.state == "drained" and not g.kept:
            yield WRITTEN_ROWS_CHANGED  # INV-5
        if g.state in _PAST_SEEDING and not g.seeds_done:
            yield SEEDED_EARLY  # INV-9
        if g.state in (CHECKPOINTING, "drained") and g.incomplete:
            yield CHECKPOINT_INCOMPLETE  # INV-9
    if s.run == "completed" and s.written != s.target:
        yield COMPLETED_SHORT  # INV-6
    if s.run == "partial" and not 0 < s.written < s.target:
        yield PARTIAL_NOT_SHORT  # INV-6


def check_counters(s: State) -> None:
    """The counters the model keeps agree with its subjects (a check of the model itself)."""
    assert s.live == sum(g.live for g in s.groups), s
    assert all(g.live == sum(1 for w in g.slots if _live(w)) for g in s.groups), s
    admitted_open = [
        g for g in s.groups if g.state != ROW_GROUP.initial and g.state not in ROW_GROUP.terminal
    ]
    assert s.open_groups == len(admitted_open), s
    assert s.unadmitted == sum(1 for g in s.groups if g.state == ROW_GROUP.initial), s
    assert all(0 <= g.incomplete <= g.surviving for g in s.groups), s


# -- exploration ---------------------------------------------------------------------------


@attrs.define
class Exploration:
    config: Config
    states: int = 0
    transitions: int = 0
    edges: set[Edge] = attrs.Factory(set)
    # property -> the shortest path (action labels) to a state that violates it, and that state
    counterexamples: dict[str, list[str]] = attrs.Factory(dict)
    witnesses: dict[str, State] = attrs.Factory(dict)
    ambiguous: list[str] = attrs.Factory(list)  # where the first ambiguous pick was
    run_outcomes: set[str] = attrs.Factory(set)
    stuck: int = 0  # reachable states from which the run cannot end on its own


def explore(
    config: Config,
    guards: GuardTable | None = None,
    stop_at: frozenset[str] = frozenset(),
    liveness: bool = True,
) -> Exploration:
    """Every composed state reachable from the initial one, breadth-first.

    Records every spec edge fired and, per property, the first (so shortest) counterexample.
    A deadlock is a state whose run is not terminal, and `execute` still running, where nothing
    but an external cancellation request can happen. With `liveness`, also finds the states from
    which no path without a cancellation request ends `execute` (`CANNOT_FINISH`): deadlock
    freedom alone does not rule out a cycle the run never leaves. Stops early at a property of
    `stop_at`.
    """
    env = _Env(config, model_guards() if guards is None else guards)
    result = Exploration(config)
    start = config.initial()
    index: dict[State, int] = {start: 0}
    states = [start]
    parents: list[tuple[int, str] | None] = [None]
    predecessors: list[list[int]] = [[]]
    finished: list[int] = []

    def path_to(number: int) -> list[str]:
        labels: list[str] = []
        link = parents[number]
        while link is not None:
            number, label = link
            labels.append(label)
            link = parents[number]
        return labels[::-1]

    def found(prop: str, number: int) -> bool:
        if prop not in result.counterexamples:
            result.counterexamples[prop] = path_to(number)
            result.witnesses[prop] = states[number]
        return prop in stop_at

    number = 0
    while number < len(states):
        s = states[number]
        check_counters(s)
        stop = False
        for prop in violations(s):
            stop |= found(prop, number)
        for where in env.ambiguities(s):
            if AMBIGUOUS_PICK not in result.counterexamples:
                result.ambiguous.append(where)
            stop |= found(AMBIGUOUS_PICK, number)
        steps = list(env.steps(s))
        if s.run in RUN.terminal or s.exited:
            if s.run in RUN.terminal:
                result.run_outcomes.add(s.run)
            finished.append(number)
            if steps:
                stop |= found(MOVES_AFTER_END, number)
        elif all(step.external for step in steps):
            stop |= found(DEADLOCK, number)
        for step in steps:
            result.transitions += 1
            result.edges.update(step.edges)
            target = index.get(step.state)
            if target is None:
                target = index[step.state] = len(states)
                states.append(step.state)
                parents.append((number, step.label))
                predecessors.append([])
            if liveness and not step.external:
                predecessors[target].append(number)
            for prop in step.broke:
                stop |= found(prop, target)
        if stop:
            result.states = len(states)
            return result
        number += 1
    result.states = len(states)
    if liveness:
        can_finish = set(finished)
        queue = deque(finished)
        while queue:
            for before in predecessors[queue.popleft()]:
                if before not in can_finish:
                    can_finish.add(before)
                    queue.append(before)
        stuck = [n for n in range(len(states)) if n not in can_finish]
        result.stuck = len(stuck)
        if stuck:
            found(CANNOT_FINISH, stuck[0])
    return result


def format_path(path: list[str]) -> str:
    return "\n".join(f"  {n:>3}. {label}" for n, label in enumerate(path, 1))


def describe(result: Exploration) -> str:
    """Every counterexample of an exploration, for a failure message."""
    parts = [f"{result.config}: {result.states} states"]
    for prop, path in result.counterexamples.items():
        parts.append(f"{prop} after {len(path)} actions:\n{format_path(path)}")
        parts.append(f"  state: {result.witnesses[prop]}")
    if result.ambiguous:
        parts.append(f"  ambiguous: {result.ambiguous}")
    return "\n".join(parts)
