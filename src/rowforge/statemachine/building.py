"""Building a `transitions.Machine` from a spec: the one place a spec becomes `transitions` edges.

Guards become `GuardCheck` conditions: each knows its guard *name* (so the table compiler and error
messages can see it) and, when evaluated, looks the implementation up on the model being
triggered. Both the reference machines and the compiled tables start from what this builds, so
the two cannot disagree about which edges exist.
"""

from __future__ import annotations

from typing import Any

import transitions

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
        model = event.model  # reference._Model: the subject and its guards
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
