"""Spec-edge coverage of the test suite: every edge of every spec must be taken by some test.

A spec edge that no test ever takes is either dead (the engine never needs it: delete it from the
spec) or untested (the engine needs it on a path no test reaches). Both are bugs in the claim that
the specs describe the engine. `make test` sets `ROWFORGE_EDGE_COVERAGE=1`; the suite then records
every transition the machines take in this process (`ReferenceMachine.fire` for runs and row
groups, `CompiledMachine.fire` for workers and cells), and fails at the end of an otherwise
green session, listing each edge that was never taken. Subprocess runs (the CLI tests) are not
seen, so the in-process tests must cover every edge on their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rowforge.statemachine import SPECS, CompiledMachine, ReferenceMachine, Subject

Edge = tuple[str, str, str]  # (machine, source, trigger)

TAKEN: set[Edge] = set()


def spec_edges() -> set[Edge]:
    return {(name, t.source, t.trigger) for name, spec in SPECS.items() for t in spec.transitions}


def _recording(fire: Callable[..., str], machine_of: Callable[[Any], str]) -> Callable[..., str]:
    @functools.wraps(fire)
    def recorded(
        self: Any, subject: Subject, trigger: str, details: Mapping[str, Any] | None = None
    ) -> str:
        source = subject.state
        dest = fire(self, subject, trigger, details)
        TAKEN.add((machine_of(self), source, trigger))
        return dest

    return recorded


def install() -> None:
    """Record every transition taken from now on (idempotent per process)."""
    if getattr(ReferenceMachine.fire, "__wrapped__", None) is not None:
        return
    ReferenceMachine.fire = _recording(  # type: ignore[method-assign]
        ReferenceMachine.fire, lambda machine: machine.spec.name
    )
    CompiledMachine.fire = _recording(  # type: ignore[method-assign]
        CompiledMachine.fire, lambda machine: machine.name
    )


def untaken(taken: Iterable[Edge]) -> list[Edge]:
    return sorted(spec_edges() - set(taken))
