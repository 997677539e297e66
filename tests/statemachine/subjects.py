"""Test doubles: a subject with a state, guards whose verdicts a test scripts, legal walks."""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from rowforge.statemachine import MachineSpec
from rowforge.statemachine.guards import Guard
from rowforge.statemachine.spec import TransitionSpec


@attrs.define
class Thing:
    """A tracked subject; machines write `state`."""

    ident: Hashable
    state: str = ""


class ScriptedGuards(dict[str, Guard]):
    """Guard name -> predicate; every predicate answers from `verdicts` (default True)."""

    def __init__(self, spec: MachineSpec) -> None:
        super().__init__()
        self.verdicts: dict[str, bool] = {}
        for guard in spec.guards:
            self[guard.name] = self._predicate(guard.name)

    def _predicate(self, name: str) -> Guard:
        return lambda subject: self.verdicts.get(name, True)

    def allow(self, edge: TransitionSpec) -> None:
        """Set verdicts so that `edge` passes every guard."""
        self.verdicts.update({g: True for g in edge.conditions})
        self.verdicts.update({g: False for g in edge.unless})


def edges_from(spec: MachineSpec, state: str) -> list[TransitionSpec]:
    return [t for t in spec.transitions if t.source == state]
