"""The run, row-group and worker machines composed, explored breadth-first (issue 10, item 5).

Theory of operation
-------------------
A composed state is one run subject, `row_groups` row-group subjects and, per row group,
`workers` worker *slots*, plus the counters the guards read: the run's live workers, open row
groups and records written; per row group its live workers, rows and surviving rows; per worker
whether it holds its leases. A slot is `IDLE` when no live worker occupies it (never created, or
its worker was drained and the slot may take the next attempt); otherwise it holds one worker in
a worker-spec state. The workers of one row group are interchangeable, so slots are kept sorted.

Every move is an *action*: an environment event that mirrors something the engine does
(`scheduler/dispatcher.py`, `scheduler/core.py`, `scheduler/sync_engine.py`), usually firing a
spec transition of one subject together with the counter updates the engine performs with it,
in the engine's order (updates the engine makes before `fire` are applied before the guards are
read). Transitions come from `SPECS`: an action names only the trigger the engine fires; the edge,
its destination and its guards are looked up in the loaded spec, so an action is enabled only
when the spec has the edge from the subject's current state AND its guards (conditions true,
unless false) hold on the composed counters. Nothing here retypes a transition table; the guard
predicates are the only hand-written part (`model_guards`, each mapped to its engine guard).

When the environment may act is the engine's *reason* to act (its mode, an outcome that arrived,
the plan). Where the engine also checks the very counter a guard reads (`_advance` returns while
a row group has live workers; `_check_finished` waits for no open row group and no live worker;
`_advance` drops rather than salvages an empty row group), that check is left to the guard: the
exploration asks whether the guards alone keep the properties, and the mutated guard tables show
that they are what does. Actions that change several subjects at once in the engine (a mode
change cancelling every worker) are split into one action per transition; the extra
interleavings only add behaviours.

Granularity: by default a worker's outcome is settled as the engine settles it, in one
synchronous callback (`_settle_worker`, `_settle_unstarted`): outcome, lease release, `release`.
The callback is also tried without the lease release (a bug only the `leases_released` guard can
stop). `Config.fine` makes every worker transition and the lease release separate actions.

Modelled engine behaviour (`mode` is `AsyncEngine.mode`; `run` the run machine's state):

- row groups are admitted in plan order, in `normal` mode, while fewer than `cap` are open;
- a worker is created (pending, no leases) in an open (`seeding`/`running`) row group with
  surviving rows in `normal` mode and admitted (leases acquired) the same way (`_pump`); it
  starts, succeeds, defers or fails only in `normal` mode: a change of mode cancels every live
  worker at once (`_cancel_everything`), so afterwards a started task can only end cancelled and
  a task that had not started never starts;
- a failure drops its row (a batch step's: every row), or nothing when its row was dropped
  already, and may trip early shutdown (`_apply_failure` -> `_begin_drain`);
- a worker is cancelled when the mode is not `normal`, or once a row of its row group was
  dropped (`_cancel_row`, an obsolete worker settled unstarted);
- a fatal error (a pre-batch processor, a batch step's malformed output) marks its row group and
  switches to `aborting`; open row groups then close `fail` (the marked one) or `cancel`; a
  checkpoint whose sink or post-batch processor fails closes its row group `fail` in any mode;
- a checkpoint that succeeds writes in any mode (`threads.run_uninterrupted` finishes the write
  through cancellation); only a checkpoint task cancelled before it ran ends `cancel`;
- `_close_with` drops every row before the terminal transition (`drop_all`), `_written` adds the
  rows to the run's count before `write`, `_close` decrements the open row groups after it;
- the run fires `drain` when `_begin_drain` or `_abort` leaves `normal` mode, ends by `_end`'s
  choice of trigger once nothing is left to admit, and on cancellation (an external request)
  fires `cancel` after `_end_cancelled` closed every open row group;
- with `Config.internal_errors`, a bug in a worker's callback (`_internal_error`, mode `broken`)
  ends through `_end_broken`: `drain` if still running, `fail` for every open row group, then
  `end_failed`.

Not modelled: cells (their guards read per-row dependency counters this model folds into
"surviving rows") and admission caps other than the row-group cap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import attrs

from rowforge.scheduler.dispatcher import _OPEN as ENGINE_OPEN  # the row groups `_advance` moves
from rowforge.statemachine import SPECS, MachineSpec
from rowforge.statemachine.spec import TransitionSpec

RUN, ROW_GROUP, WORKER = SPECS["run"], SPECS["row_group"], SPECS["worker"]

IDLE = ""  # a slot without a live worker: never created, or its worker drained
RUN_ACTIVE = frozenset(RUN.state_names) - RUN.terminal - {RUN.initial}
WORKER_LIVE = frozenset(WORKER.state_names) - WORKER.terminal
# The states a worker leaves by `release`: its callable (or its cancellation) is over.
WORKER_FINISHED = frozenset(t.source for t in WORKER.transitions if t.trigger == "release")
CHECKPOINTING = "checkpointing"  # the row group's checkpoint task exists: write or fail next
MODES = ("normal", "draining", "aborting", "cancelling", "broken")  # AsyncEngine.mode


class Slot(NamedTuple):
    state: str  # a worker-spec state, or IDLE
    leases: bool  # Worker.has_leases


class Group(NamedTuple):
    state: str  # the row-group machine's state
    surviving: int  # RowGroup.surviving_rows
    num_rows: int  # RowGroup.num_rows
    expected_rows: int  # RowGroup.expected_rows
    fatal: bool  # RowGroup.fatal is set, or its checkpoint failed
    live: int  # len(RowGroup.live_workers)
    slots: tuple[Slot, ...]  # sorted: the workers of one row group are interchangeable


class State(NamedTuple):
    run: str  # the run machine's state
    mode: str  # the engine's mode
    drain_due: bool  # the engine fired (or will fire) the run's `drain` for this mode change
    target: int  # RunState.target_records
    written: int  # RunState.records_written
    open_groups: int  # RunState.open_row_groups
    live: int  # RunState.live_workers
    groups: tuple[Group, ...]


@attrs.frozen
class Config:
    """One small configuration: row groups, worker slots per row group, row-group cap, rows."""

    row_groups: int
    workers: int
    cap: int
    rows: int = 2  # rows per row group: 2 lets salvage and failures keep some and drop some
    fine: bool = False  # every worker transition, and the lease release, its own action
    internal_errors: bool = False  # a worker's callback may hit a bug: mode `broken`
    # The engine's `_end_cancelled` closes every open row group before it cancels the run. With
    # False the run's `cancel` is tried as soon as the run's TaskGroup is done with its workers.
    close_groups_before_run_cancel: bool = True

    def __str__(self) -> str:
        extras = [
            name
            for name, on in (
                ("fine", self.fine),
                ("internal errors", self.internal_errors),
                ("run cancel before its row groups", not self.close_groups_before_run_cancel),
            )
            if on
        ]
        shape = f"{self.row_groups} rg x {self.workers} w, cap {self.cap}, {self.rows} rows"
        return ", ".join([shape, *extras])

    def initial(self) -> State:
        idle = tuple(Slot(IDLE, False) for _ in range(self.workers))
        group = Group(ROW_GROUP.initial, self.rows, self.rows, self.rows, False, 0, idle)
        return State(
            RUN.initial,
            "normal",
            False,
            self.row_groups * self.rows,
            0,
            0,
            0,
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
            # run.records_written == run.target_records
            "target_reached": lambda run: run.written == run.target,
            "some_rows_written": lambda run: run.written > 0,  # run.records_written > 0
        },
        "row_group": {  # subjects.row_group_guards(); the subject is a Group
            "no_live_workers": lambda group: group.live == 0,  # not group.live_workers
            # group.num_rows == group.expected_rows
            "row_count_unchanged": lambda group: group.num_rows == group.expected_rows,
            "has_rows": lambda group: group.surviving > 0,  # group.surviving_rows > 0
        },
        "worker": {  # subjects.worker_guards(); the subject is a Slot
            "leases_held": lambda worker: worker.leases,  # worker.has_leases
            "leases_released": lambda worker: not worker.leases,  # not worker.has_leases
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


def _abort(s: State) -> State:
    """`_abort`: `normal` and `draining` become `aborting`, but only leaving `normal` fires the
    run's `drain` (`previous == "normal"`); `aborting`, `cancelling` and `broken` stay."""
    if s.mode in ("aborting", "cancelling", "broken"):
        return s
    return s._replace(mode="aborting", drain_due=s.drain_due or s.mode == "normal")


Update = Callable[[State, Group], tuple[State, Group]]


class _Env:
    """The actions of one configuration under one guard table."""

    def __init__(self, config: Config, guards: GuardTable) -> None:
        self.config = config
        self.run_guards = guards["run"]
        self.group_guards = guards["row_group"]
        self.worker_guards = guards["worker"]
        self.worker_memo: dict[tuple[Slot, str, bool], tuple[tuple[Edge, ...], Slot] | None] = {}

    def steps(self, s: State) -> Iterator[Step]:
        yield from self.run_steps(s)
        for index, group in enumerate(s.groups):
            yield from self.group_steps(s, index, group)
            for slot in sorted(set(group.slots)):
                yield from self.worker_steps(s, index, group, slot)

    # -- firing ------------------------------------------------------------------------------

    def fire_run(self, s: State, trigger: str) -> Iterator[Step]:
        transition = _edge(RUN, s.run, trigger)
        if transition is None or not _passes(transition, self.run_guards, s):
            return
        yield Step(f"run {trigger}", (edge_key(RUN, transition),), s._replace(run=transition.dest))

    def fire_group(
        self, s: State, index: int, trigger: str, before: Update | None = None, label: str = ""
    ) -> Iterator[Step]:
        """Fire `trigger` on row group `index`; `before` applies the engine's updates that
        precede `fire`. A terminal destination closes the row group (`_close`)."""
        group = s.groups[index]
        transition = _edge(ROW_GROUP, group.state, trigger)
        if transition is None:
            return
        if before is not None:
            s, group = before(s, group)
        if not _passes(transition, self.group_guards, group):
            return
        group = group._replace(state=transition.dest)
        if transition.dest in ROW_GROUP.terminal:
            s = s._replace(open_groups=s.open_groups - 1)
        yield Step(
            label or f"row group {index} {trigger}",
            (edge_key(ROW_GROUP, transition),),
            _with_group(s, index, group),
        )

    def fire_worker(
        self,
        s: State,
        index: int,
        slot: Slot,
        trigger: str,
        after: Update | None = None,
        label: str = "",
        release_leases: bool = True,
    ) -> Step | None:
        """Fire `trigger` on one worker of row group `index`; `after` applies the engine's
        updates that follow it. Reaching a terminal state drains the worker (`_drain`)."""
        key = (slot, trigger, release_leases)
        if key in self.worker_memo:
            fired = self.worker_memo[key]
        else:
            fired = self.worker_memo[key] = self.worker_transitions(slot, trigger, release_leases)
        if fired is None:
            return None
        edges, new = fired
        group = s.groups[index]
        if new.state in WORKER.terminal:
            # The slot frees up; a worker drained while holding leases stays visible (INV-3).
            new = new if new.leases else Slot(IDLE, False)
            s = s._replace(live=s.live - 1)
            group = group._replace(live=group.live - 1)
        group = _with_slot(group, slot, new)
        if after is not None:
            s, group = after(s, group)
        label = label or f"row group {index} worker {slot.state} {trigger}"
        if not release_leases:
            label += " (leases not released)"
        return Step(label, edges, _with_group(s, index, group))

    def worker_transitions(
        self, slot: Slot, trigger: str, release_leases: bool
    ) -> tuple[tuple[Edge, ...], Slot] | None:
        """What `trigger` does to one worker: the edges fired and its new slot, or None.

        Unless `config.fine` is set, an outcome (succeed, defer, fail, cancel) is settled in one
        callback: the outcome, `admission.release` (skipped when `release_leases` is False),
        then `release`.
        """
        transition = _edge(WORKER, slot.state, trigger)
        if transition is None or not _passes(transition, self.worker_guards, slot):
            return None
        edges = [edge_key(WORKER, transition)]
        new = Slot(transition.dest, slot.leases)
        if not self.config.fine and new.state in WORKER_FINISHED:
            if release_leases:
                new = Slot(new.state, False)
            release = _edge(WORKER, new.state, "release")
            if release is None or not _passes(release, self.worker_guards, new):
                return None
            edges.append(edge_key(WORKER, release))
            new = Slot(release.dest, new.leases)
        elif not release_leases:
            return None  # only a settling callback releases leases
        return tuple(edges), new

    def settle(
        self,
        s: State,
        index: int,
        slot: Slot,
        trigger: str,
        after: Update | None = None,
        label: str = "",
    ) -> Iterator[Step]:
        """A worker's outcome, settled (and, holding leases, settled without releasing them)."""
        if _edge(WORKER, slot.state, trigger) is None:
            return
        step = self.fire_worker(s, index, slot, trigger, after, label)
        if step is not None:
            yield step
        if slot.leases and not self.config.fine:
            step = self.fire_worker(s, index, slot, trigger, after, label, False)
            if step is not None:
                yield step

    # -- the run -----------------------------------------------------------------------------

    def run_steps(self, s: State) -> Iterator[Step]:
        mode = s.mode
        yield from self.fire_run(s, "start")  # execute(): before anything else happens
        if s.run not in RUN_ACTIVE:
            return
        # _begin_drain / _abort fire `drain` as they leave normal mode; _end_broken if running.
        if (s.drain_due and mode in ("draining", "aborting")) or mode == "broken":
            yield from self.fire_run(s, "drain")
        # _check_finished, then _end picks the trigger: nothing is left to admit, or the mode is
        # not normal. (_check_finished also waits for no open row group and no live worker: left
        # to the guards.)
        if mode == "normal":
            if all(g.state != ROW_GROUP.initial for g in s.groups):
                if s.written == s.target:
                    yield from self.fire_run(s, "complete")
                else:
                    yield from self.fire_run(s, "complete_partial" if s.written else "fail_empty")
        elif mode == "draining":
            yield from self.fire_run(s, "end_partial" if s.written else "end_failed")
        elif mode in ("aborting", "broken"):
            yield from self.fire_run(s, "end_failed")
        else:  # cancelling: _end_cancelled, once the run's TaskGroup has awaited every task
            closed = all(
                g.state == ROW_GROUP.initial or g.state in ROW_GROUP.terminal for g in s.groups
            )
            if closed or not self.config.close_groups_before_run_cancel:
                yield from self.fire_run(s, "cancel")
        # The run's task is cancelled (Ctrl-C, task.cancel()): _cancel_everything("cancelling").
        if mode != "cancelling":
            cancelling = s._replace(mode="cancelling", drain_due=False)
            yield Step("cancellation requested", (), cancelling, True)
        # A bug in a worker's done callback or retry timer: _internal_error.
        if (
            self.config.internal_errors
            and mode in ("normal", "draining", "aborting")
            and s.live > 0
        ):
            yield Step("internal error in the dispatcher", (), s._replace(mode="broken"))

    # -- row groups --------------------------------------------------------------------------

    def group_steps(self, s: State, index: int, group: Group) -> Iterator[Step]:
        mode, state = s.mode, group.state
        engine_open = state in ENGINE_OPEN

        def drop_all(s: State, g: Group) -> tuple[State, Group]:  # _close_with
            return s, g._replace(surviving=0)

        # _admit_row_groups: in plan order, in normal mode, below the row-group cap.
        if (
            state == ROW_GROUP.initial
            and mode == "normal"
            and s.run in RUN_ACTIVE
            and all(g.state != ROW_GROUP.initial for g in s.groups[:index])
            and s.open_groups < self.config.cap
        ):

            def opened(s: State, g: Group) -> tuple[State, Group]:  # _open_group
                return s._replace(open_groups=s.open_groups + 1), g

            yield from self.fire_group(s, index, "admit", opened)
        if engine_open and mode == "normal":
            # _advance: the seed steps are done and the pre-batch processors passed; every
            # surviving row is complete; every row was dropped.
            yield from self.fire_group(s, index, "seeded")
            yield from self.fire_group(s, index, "cells_done")
            if group.surviving == 0:
                yield from self.fire_group(s, index, "drop", drop_all)
            if not group.fatal:
                # A pre-batch processor raised, or a batch step's output was malformed: _abort.
                fatal = _with_group(_abort(s), index, group._replace(fatal=True))
                yield Step(f"row group {index} fatal error", (), fatal)
        if engine_open and mode == "draining":
            # _advance in draining mode: seeding is dropped; running keeps its complete rows
            # (drop_incomplete) and salvages them, or is dropped when none is complete.
            yield from self.fire_group(s, index, "drop", drop_all)
            for kept in range(group.surviving + 1):

                def keep(s: State, g: Group, kept: int = kept) -> tuple[State, Group]:
                    return s, g._replace(surviving=kept)

                label = f"row group {index} salvage keeping {kept} rows"
                yield from self.fire_group(s, index, "salvage", keep, label)
        if engine_open and mode in ("aborting", "cancelling"):
            # _advance in aborting/cancelling mode; _end_cancelled cancels whatever is left.
            if group.fatal:
                yield from self.fire_group(s, index, "fail", drop_all)
            if not group.fatal or mode == "cancelling":
                yield from self.fire_group(s, index, "cancel", drop_all)
        if engine_open and mode == "broken":
            yield from self.fire_group(s, index, "fail", drop_all)  # _end_broken
        if state == CHECKPOINTING and group.fatal:
            yield from self.fire_group(s, index, "fail", drop_all)  # its checkpoint failed
        if state == CHECKPOINTING and not group.fatal:
            # _on_checkpoint_done: the rows are on disk ...
            def written(s: State, g: Group) -> tuple[State, Group]:  # _written
                return s._replace(written=s.written + g.surviving), g

            yield from self.fire_group(s, index, "write", written)
            # ... or the sink or a post-batch processor failed: _abort(None), then `fail` ...
            failed = _with_group(_abort(s), index, group._replace(fatal=True))
            yield Step(f"row group {index} checkpoint failed", (), failed)
            if mode == "cancelling":
                # ... or the run was cancelled before the checkpoint task ever ran.
                yield from self.fire_group(s, index, "cancel", drop_all)

    # -- workers -----------------------------------------------------------------------------

    def worker_steps(self, s: State, index: int, group: Group, slot: Slot) -> Iterator[Step]:
        mode, rows = s.mode, self.config.rows
        admissible = mode == "normal" and group.state in ENGINE_OPEN and group.surviving > 0
        if slot.state == IDLE:
            if admissible:  # _enqueue / _schedule_retry -> _new_worker
                created = _with_slot(group, slot, Slot(WORKER.initial, False))
                created = created._replace(live=group.live + 1)
                after = _with_group(s._replace(live=s.live + 1), index, created)
                yield Step(f"row group {index} worker created", (), after)
            return
        if slot.state == WORKER.initial and not slot.leases and admissible:
            # _pump: admission.next_admissible() gives the worker its leases.
            leased = _with_group(s, index, _with_slot(group, slot, Slot(slot.state, True)))
            yield Step(f"row group {index} worker admitted", (), leased)
        if mode == "normal":
            # The task runs (_execute), then returns or raises (_settle_worker). A start is tried
            # for every pending worker: only `leases_held` tells an admitted one from a queued one.
            yield from self.settle(s, index, slot, "start")
            yield from self.settle(s, index, slot, "succeed")
            yield from self.settle(s, index, slot, "defer")
            can_fail = _edge(WORKER, slot.state, "fail") is not None
            for drop in ("none", "row", "all") if can_fail else ():
                if drop == "none" and group.surviving == rows:
                    continue  # no row was dropped before, so the failing row is still there
                if drop != "none" and group.surviving == 0:
                    continue
                for trips in (False, True):

                    def failed(
                        s: State, g: Group, drop: str = drop, trips: bool = trips
                    ) -> tuple[State, Group]:  # _apply_failure, _begin_drain
                        surviving = {"none": g.surviving, "row": g.surviving - 1, "all": 0}[drop]
                        if trips:
                            s = s._replace(mode="draining", drain_due=True)
                        return s, g._replace(surviving=surviving)

                    shutdown = ", early shutdown" if trips else ""
                    label = f"row group {index} worker {slot.state} fail (drops {drop}{shutdown})"
                    yield from self.settle(s, index, slot, "fail", failed, label)
        if mode != "normal" or group.surviving < rows:
            # _cancel_everything, _cancel_row, an obsolete worker settled unstarted.
            yield from self.settle(s, index, slot, "cancel")
        if self.config.fine:
            if slot.state in WORKER_FINISHED and slot.leases:
                # _settle_worker: admission.release(worker) before _drain.
                released = _with_group(s, index, _with_slot(group, slot, Slot(slot.state, False)))
                yield Step(f"row group {index} worker {slot.state} leases released", (), released)
            yield from self.settle(s, index, slot, "release")


def _with_slot(group: Group, old: Slot, new: Slot) -> Group:
    slots = list(group.slots)
    slots[slots.index(old)] = new
    return group._replace(slots=tuple(sorted(slots)))


def _with_group(s: State, index: int, group: Group) -> State:
    groups = list(s.groups)
    groups[index] = group
    return s._replace(groups=tuple(groups))


# -- properties ----------------------------------------------------------------------------

TERMINAL_RUN_LIVE_WORKER = "run terminal with a live worker"
TERMINAL_RUN_OPEN_GROUP = "run terminal with an admitted row group open"
TERMINAL_GROUP_LIVE_WORKER = "row group terminal with a live worker"
DRAINED_HOLDING_LEASES = "worker drained holding leases"
RUNNING_WITHOUT_LEASES = "worker running without leases"
DRAINED_GROUP_EMPTY = "row group drained with no row written"
COMPLETED_SHORT = "run completed short of the target"
PARTIAL_NOT_SHORT = "run partial without a shortfall"
DEADLOCK = "deadlock"
CANNOT_FINISH = "cannot finish"
MOVES_AFTER_END = "moves after the run ended"


def _live(slot: Slot) -> bool:
    return slot.state in WORKER_LIVE


def violations(s: State) -> Iterator[str]:
    """The state properties `s` breaks (deadlock and liveness are the exploration's)."""
    if s.run in RUN.terminal:
        if any(_live(w) for g in s.groups for w in g.slots):
            yield TERMINAL_RUN_LIVE_WORKER  # INV-2
        admitted = [g for g in s.groups if g.state != ROW_GROUP.initial]
        if any(g.state not in ROW_GROUP.terminal for g in admitted):
            yield TERMINAL_RUN_OPEN_GROUP  # INV-2
    for g in s.groups:
        if g.state in ROW_GROUP.terminal and any(_live(w) for w in g.slots):
            yield TERMINAL_GROUP_LIVE_WORKER  # INV-2
        if any(w.state in WORKER.terminal and w.leases for w in g.slots):
            yield DRAINED_HOLDING_LEASES  # INV-3
        if any(w.state == "running" and not w.leases for w in g.slots):
            yield RUNNING_WITHOUT_LEASES  # INV-10
        if g.state == "drained" and g.surviving == 0:
            yield DRAINED_GROUP_EMPTY  # INV-6: `dropped` is the state for nothing to write
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
    assert s.mode in MODES, s


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
    A deadlock is a state whose run is not terminal where nothing but an external cancellation
    request can happen. With `liveness`, also finds the states from which no path without a
    cancellation request reaches a terminal run (`CANNOT_FINISH`): deadlock freedom alone does
    not rule out a cycle the run never leaves. Stops early at a property of `stop_at`.
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
        steps = list(env.steps(s))
        if s.run in RUN.terminal:
            result.run_outcomes.add(s.run)
            finished.append(number)
            if steps:
                stop |= found(MOVES_AFTER_END, number)
        elif all(step.external for step in steps):
            stop |= found(DEADLOCK, number)
        if stop:
            result.states = len(states)
            return result
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
    return "\n".join(parts)
