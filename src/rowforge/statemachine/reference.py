"""The reference machines: `transitions.Machine` built straight from a spec.

Theory of operation
-------------------
`build_reference_machine(spec)` turns a `MachineSpec` into a synchronous `transitions.Machine`
with `auto_transitions=False` and no models. Guards become `GuardCheck` conditions: each knows its
guard *name* (so the table compiler and error messages can see it) and, when evaluated, looks the
implementation up on the model being triggered.

`ReferenceMachine` wraps that machine for the objects that are few per run (the run itself and its
row groups): `add` registers a subject, `fire` triggers a transition, `remove` forgets a subject
once it is freed so the machine's model list stays as small as the set of open row groups.

Rules that live here rather than in the spec (the diagram script cannot see them):
- a trigger that is not a transition out of the current state raises `IllegalTransition`;
- a guard that says no raises `GuardRejected` naming the guard; `transitions` itself would only
  return False, and a silent False is exactly how engines lose data;
- the subject's own `state` attribute is the single place the state lives (`_Model.state` is a
  property over it), so compiled and reference machines expose state the same way;
- `pick` names the one edge among the engine's candidates whose guards hold, and refuses a
  choice of two: the guards of the edges leaving a state must exclude each other, so that the
  spec, not the order in which code asks, decides what happens; `finish` fires the one allowed
  edge into a terminal state.

`transitions.AsyncMachine` is never used: it swallows `CancelledError`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import transitions

from rowforge.errors import GuardRejected, IllegalTransition, SpecError
from rowforge.statemachine.building import GuardCheck, build_reference_machine
from rowforge.statemachine.compiled import CompiledMachine, compile_table
from rowforge.statemachine.events import EventLog
from rowforge.statemachine.guards import Guards, Subject, check_guards_implemented
from rowforge.statemachine.spec import MachineSpec

__all__ = ["GuardCheck", "ReferenceMachine", "build_reference_machine"]


class _Model:
    """What `transitions` sees: a thin adapter whose `state` is the subject's."""

    def __init__(self, subject: Subject, guards: Guards) -> None:
        self.subject = subject
        self.guards = guards
        self.rejected_by: GuardCheck | None = None

    @property
    def state(self) -> str:
        return self.subject.state

    @state.setter
    def state(self, value: str) -> None:
        self.subject.state = value


class ReferenceMachine:
    """Drives subjects through a spec with `transitions` and records every change in a log."""

    def __init__(self, spec: MachineSpec, guards: Guards, log: EventLog | None = None) -> None:
        used = (g for t in spec.transitions for g in t.conditions + t.unless)
        check_guards_implemented(spec.name, used, guards)
        self.spec = spec
        self._guards = guards
        self._log = log
        self._machine = build_reference_machine(spec)
        self._models: dict[Hashable, _Model] = {}
        # The same edges as a table, to evaluate guards without taking an edge (`refusal`); the
        # differential test proves table and machine agree.
        self._table = CompiledMachine(compile_table(spec.name, self._machine), guards)

    @property
    def table(self) -> CompiledMachine:
        """This machine's edges as a compiled table bound to the same guards."""
        return self._table

    @property
    def machine(self) -> transitions.Machine:
        """The underlying `transitions.Machine` (for table compilation and inspection)."""
        return self._machine

    def add(self, subject: Subject) -> None:
        """Start tracking `subject`; its state is set to the spec's initial state."""
        model = _Model(subject, self._guards)
        self._machine.add_model(model)
        self._models[subject.ident] = model

    def remove(self, subject: Subject) -> None:
        """Stop tracking `subject` (it is freed); its last state stays on the subject."""
        model = self._models.pop(subject.ident)
        self._machine.remove_model(model)
        # transitions binds trigger partials to the model, which point back at it: break the
        # cycle here so a closed row group (and its cells) is freed now, not at the next GC.
        del model.subject

    def fire(self, subject: Subject, trigger: str, details: Mapping[str, Any] | None = None) -> str:
        """Take transition `trigger` or raise; return the new state.

        Raises `IllegalTransition` or `GuardRejected`; in both cases the state is unchanged.
        """
        model = self._models[subject.ident]
        source = subject.state
        if trigger not in self._machine.events:
            raise IllegalTransition(self.spec.name, subject.ident, trigger, source)
        model.rejected_by = None
        try:
            moved = self._machine.events[trigger].trigger(model)
        except transitions.MachineError:
            raise IllegalTransition(self.spec.name, subject.ident, trigger, source) from None
        if not moved:
            check = model.rejected_by
            assert check is not None, "transitions refused without a failing guard"
            raise GuardRejected(
                self.spec.name, subject.ident, trigger, source, check.name, check.expected
            )
        if self._log is not None:
            self._log.record(self.spec.name, subject.ident, trigger, source, subject.state, details)
        return subject.state

    def refusal(self, subject: Subject, trigger: str) -> GuardRejected | None:
        """The first guard that keeps `trigger` from firing now, or None when it may fire."""
        return self._table.refusal(subject, trigger)

    def holds(self, subject: Subject, guard: str) -> bool:
        """Evaluate one of this machine's guards on `subject` (the engine asks the spec's guard
        rather than repeating its test in an `if`)."""
        return bool(self._guards[guard](subject))

    def pick(self, subject: Subject, candidates: tuple[str, ...]) -> str | None:
        """The one candidate trigger whose guards hold now, or None when none may fire yet.

        Two candidates enabled at once is a spec bug (`SpecError`): the guards of the edges the
        engine offers must exclude each other, so the spec, not the order of the candidates,
        decides. A candidate with no edge out of the current state raises `IllegalTransition`.
        """
        permits = self._table.permits
        enabled = [t for t in candidates if permits(subject, t)]
        if len(enabled) > 1:
            raise SpecError(
                f"{self.spec.name} {subject.ident!r} in {subject.state!r}: the guards of "
                f"{enabled} all hold at once; the spec must make them exclude each other"
            )
        return enabled[0] if enabled else None

    def can_finish(self, subject: Subject) -> bool:
        """Whether an edge into a terminal state may fire now. Asked after every task, so it
        stops at the first allowed ending; `finish` refuses two."""
        permits = self._table.permits
        return any(permits(subject, t) for t in self._table.table.endings(subject.state))

    def finish(self, subject: Subject, details: Mapping[str, Any] | None = None) -> str:
        """Take the one edge into a terminal state that the guards allow now; return the state.

        Raises `GuardRejected` (the first ending's refusal) when no ending is allowed yet."""
        endings = self._table.table.endings(subject.state)
        if not endings:
            raise IllegalTransition(self.spec.name, subject.ident, "finish", subject.state)
        trigger = self.pick(subject, endings)
        if trigger is None:
            refused = self.refusal(subject, endings[0])
            assert refused is not None
            raise refused
        return self.fire(subject, trigger, details)
