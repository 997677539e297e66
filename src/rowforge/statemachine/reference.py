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
  property over it), so compiled and reference machines expose state the same way.

`transitions.AsyncMachine` is never used: it swallows `CancelledError`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import transitions

from rowforge.errors import GuardRejected, IllegalTransition
from rowforge.statemachine.events import EventLog
from rowforge.statemachine.guards import Guards, Subject, check_guards_implemented
from rowforge.statemachine.spec import MachineSpec


class GuardCheck:
    """A `transitions` condition that evaluates one named guard and remembers a refusal.

    `expected` is True for a spec `conditions` entry and False for an `unless` entry; it mirrors
    the `target` transitions gives the condition, so a refusal can be reported precisely.
    """

    __slots__ = ("expected", "name")

    def __init__(self, name: str, expected: bool) -> None:
        self.name = name
        self.expected = expected

    def __call__(self, event: Any) -> bool:
        model: _Model = event.model
        verdict = bool(model.guards[self.name](model.subject))
        if verdict is not self.expected:
            # transitions stops at the first condition that fails; remember which one it was.
            model.rejected_by = self
        return verdict

    def __repr__(self) -> str:
        return f"GuardCheck({self.name!r}, expected={self.expected})"


def build_reference_machine(spec: MachineSpec) -> transitions.Machine:
    """A model-less synchronous `transitions.Machine` equivalent to `spec`."""
    return transitions.Machine(
        model=None,
        states=[state.name for state in spec.states],
        initial=spec.initial,
        transitions=[
            {
                "trigger": t.trigger,
                "source": t.source,
                "dest": t.dest,
                "conditions": [GuardCheck(name, True) for name in t.conditions],
                "unless": [GuardCheck(name, False) for name in t.unless],
            }
            for t in spec.transitions
        ],
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
        name=spec.name,
    )


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
