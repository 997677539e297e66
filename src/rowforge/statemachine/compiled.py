"""The compiled transition table: the reference machine flattened for the hot per-task path.

Theory of operation
-------------------
A run creates 10^5 to 10^6 workers and cells. Registering each with a `transitions.Machine`
(and triggering through its callback machinery) costs tens of microseconds; this module reads the
reference machine once and produces a `TransitionTable`: for each (source, trigger), the dest and
the ordered guard checks (name, expected verdict). `CompiledMachine` binds a table to guard
implementations and fires transitions with two dict lookups and the guard calls.

The table is derived *from the `transitions.Machine`*, not re-read from YAML, so the two cannot
disagree about which edges exist; the differential test in `tests/statemachine` drives both with
the same random triggers and guard outcomes and requires identical states and errors.

Semantics (identical to `ReferenceMachine.fire`): an unknown or illegal trigger raises
`IllegalTransition`; the first guard whose verdict differs from what the edge needs raises
`GuardRejected`; in both cases the subject's state is unchanged.

The table also carries the spec facts the engine needs (the initial state, the terminal states,
where a trigger may fire from), so no state name has to be copied into code by hand. `refusal`
evaluates an edge's guards without taking it; `choose` lets the guards pick the one edge, among
the engine's candidates, that may fire now: the engine says what it wants to happen, the spec's
guards say whether and how.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import transitions

from rowforge.errors import GuardRejected, IllegalTransition, SpecError
from rowforge.statemachine.building import GuardCheck, build_reference_machine
from rowforge.statemachine.events import EventLog
from rowforge.statemachine.guards import Guard, Guards, Subject, check_guards_implemented
from rowforge.statemachine.spec import MachineSpec


@attrs.frozen
class CompiledEdge:
    """Where a trigger leads from one state, and the guards it must pass, in order."""

    dest: str
    checks: tuple[tuple[str, bool], ...]


@attrs.frozen
class TransitionTable:
    """source -> trigger -> edge, for one machine, with the initial and terminal states."""

    machine: str
    initial: str
    edges: Mapping[str, Mapping[str, CompiledEdge]]
    #: States with no way out (the spec loader guarantees these are its `terminal` list).
    terminal: frozenset[str] = attrs.field(init=False)
    _endings: Mapping[str, tuple[str, ...]] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Derived once: the engine asks for endings after every task, so they must not cost a
        # scan of the table each time.
        terminal = frozenset(state for state, by in self.edges.items() if not by)
        endings = {
            state: tuple(t for t, edge in by.items() if edge.dest in terminal)
            for state, by in self.edges.items()
        }
        object.__setattr__(self, "terminal", terminal)
        object.__setattr__(self, "_endings", endings)

    def sources(self, *triggers: str) -> frozenset[str]:
        """Every state from which one of `triggers` may fire; unknown triggers are a bug."""
        found = {state for state, by in self.edges.items() for t in by if t in triggers}
        known = {t for by in self.edges.values() for t in by}
        unknown = sorted(set(triggers) - known)
        if unknown:
            raise SpecError(f"{self.machine}: no transition is triggered by {unknown}")
        return frozenset(found)

    def dest_of(self, trigger: str) -> str:
        """The one state `trigger` leads to from every source; a spec where it leads to several
        has no single answer (`SpecError`)."""
        dests = {by[trigger].dest for by in self.edges.values() if trigger in by}
        if len(dests) != 1:
            raise SpecError(f"{self.machine}: trigger {trigger!r} leads to {sorted(dests)}")
        return dests.pop()

    def endings(self, source: str) -> tuple[str, ...]:
        """The triggers that lead from `source` straight into a terminal state."""
        return self._endings[source]


def compile_table(name: str, machine: transitions.Machine) -> TransitionTable:
    """Flatten a reference `transitions.Machine` into a `TransitionTable`."""
    edges: dict[str, dict[str, CompiledEdge]] = {state: {} for state in machine.states}
    for trigger, event in machine.events.items():
        for source, candidates in event.transitions.items():
            if len(candidates) != 1:
                raise SpecError(
                    f"{name}: {len(candidates)} transitions for {trigger!r} from {source!r}"
                )
            (transition,) = candidates
            checks = []
            for condition in transition.conditions:
                check = condition.func
                if not isinstance(check, GuardCheck) or check.expected is not condition.target:
                    raise SpecError(
                        f"{name}: condition {check!r} of {trigger!r} is not a guard check"
                    )
                checks.append((check.name, check.expected))
            if transition.dest is None:
                raise SpecError(f"{name}: internal transition {trigger!r} has no dest")
            edges[source][trigger] = CompiledEdge(transition.dest, tuple(checks))
    return TransitionTable(name, str(machine.initial), edges)


def compile_spec(spec: MachineSpec) -> TransitionTable:
    """Build the reference machine for `spec` and compile it."""
    return compile_table(spec.name, build_reference_machine(spec))


_BoundEdge = tuple[str, tuple[tuple[Guard, str, bool], ...]]


class CompiledMachine:
    """Fires transitions on many lightweight subjects from a table bound to guard functions."""

    __slots__ = ("_edges", "_log", "name", "table")

    def __init__(self, table: TransitionTable, guards: Guards, log: EventLog | None = None) -> None:
        used = (g for by in table.edges.values() for e in by.values() for g, _ in e.checks)
        check_guards_implemented(table.machine, used, guards)
        self.name = table.machine
        self.table = table
        self._log = log
        self._edges: dict[str, dict[str, _BoundEdge]] = {
            source: {
                trigger: (edge.dest, tuple((guards[g], g, want) for g, want in edge.checks))
                for trigger, edge in by_trigger.items()
            }
            for source, by_trigger in table.edges.items()
        }

    def permits(self, subject: Subject, trigger: str) -> bool:
        """Whether `trigger` may fire now; `IllegalTransition` when it has no edge from here.
        The cheap question the engine asks after every task: no error object is built."""
        source = subject.state
        try:
            _, checks = self._edges[source][trigger]
        except KeyError:
            raise IllegalTransition(self.name, subject.ident, trigger, source) from None
        for guard, _, expected in checks:  # noqa: SIM110  a loop is faster than all(genexpr)
            if bool(guard(subject)) is not expected:
                return False
        return True

    def refusal(self, subject: Subject, trigger: str) -> GuardRejected | None:
        """Why `trigger` may not fire now (the first guard that says no), or None if it may.
        Raises `IllegalTransition` when the trigger has no edge out of the current state."""
        source = subject.state
        try:
            _, checks = self._edges[source][trigger]
        except KeyError:
            raise IllegalTransition(self.name, subject.ident, trigger, source) from None
        for guard, name, expected in checks:
            if bool(guard(subject)) is not expected:
                return GuardRejected(self.name, subject.ident, trigger, source, name, expected)
        return None

    def fire(self, subject: Subject, trigger: str, details: Mapping[str, Any] | None = None) -> str:
        """Take transition `trigger` and return the dest, or raise and change nothing."""
        source = subject.state  # the hot path: `refusal`'s checks, inlined
        try:
            dest, checks = self._edges[source][trigger]
        except KeyError:
            raise IllegalTransition(self.name, subject.ident, trigger, source) from None
        for guard, guard_name, expected in checks:
            if bool(guard(subject)) is not expected:
                raise GuardRejected(self.name, subject.ident, trigger, source, guard_name, expected)
        subject.state = dest
        if self._log is not None:
            self._log.record(self.name, subject.ident, trigger, source, dest, details)
        return dest
