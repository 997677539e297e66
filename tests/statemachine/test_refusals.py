"""INV-1 at the machine level: a refused trigger raises a typed error and changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rowforge.errors import GuardRejected, IllegalTransition
from rowforge.statemachine import SPECS, TABLES, CompiledMachine, ReferenceMachine
from tests.statemachine.subjects import ScriptedGuards, Thing, edges_from

KINDS = ["reference", "compiled"]


def make(kind: str, name: str) -> tuple[ReferenceMachine | CompiledMachine, ScriptedGuards, Thing]:
    spec = SPECS[name]
    guards = ScriptedGuards(spec)
    subject = Thing(f"{name}-1", state=spec.initial)
    if kind == "reference":
        machine: ReferenceMachine | CompiledMachine = ReferenceMachine(spec, guards)
        machine.add(subject)
    else:
        machine = CompiledMachine(TABLES[name], guards)
    return machine, guards, subject


def walk(
    draw: st.DrawFn,
    machine: ReferenceMachine | CompiledMachine,
    guards: ScriptedGuards,
    subject: Thing,
    name: str,
) -> None:
    """Take a random number of legal steps (guards set to pass)."""
    spec = SPECS[name]
    for _ in range(draw(st.integers(0, 6))):
        edges = edges_from(spec, subject.state)
        if not edges:
            return
        edge = draw(st.sampled_from(edges))
        guards.allow(edge)
        machine.fire(subject, edge.trigger)


@given(st.data(), st.sampled_from(KINDS), st.sampled_from(sorted(SPECS)))
def test_illegal_trigger_raises_and_leaves_state_unchanged(
    data: st.DataObject, kind: str, name: str
) -> None:
    machine, guards, subject = make(kind, name)
    walk(data.draw, machine, guards, subject, name)
    spec = SPECS[name]
    legal = {t.trigger for t in edges_from(spec, subject.state)}
    illegal = [t for t in [*spec.triggers, "bogus"] if t not in legal]
    trigger = data.draw(st.sampled_from(illegal))
    before = subject.state
    with pytest.raises(IllegalTransition) as caught:
        machine.fire(subject, trigger)
    assert subject.state == before
    assert (caught.value.machine, caught.value.trigger, caught.value.state) == (
        name,
        trigger,
        before,
    )


@given(st.data(), st.sampled_from(KINDS), st.sampled_from(sorted(SPECS)))
def test_rejected_guard_raises_naming_the_guard_and_leaves_state_unchanged(
    data: st.DataObject, kind: str, name: str
) -> None:
    machine, guards, subject = make(kind, name)
    walk(data.draw, machine, guards, subject, name)
    guarded = [t for t in edges_from(SPECS[name], subject.state) if t.conditions or t.unless]
    assume(guarded)
    edge = data.draw(st.sampled_from(guarded))
    guards.allow(edge)
    checks = [(g, True) for g in edge.conditions] + [(g, False) for g in edge.unless]
    failing, wanted = data.draw(st.sampled_from(checks))
    guards.verdicts[failing] = not wanted
    before = subject.state
    with pytest.raises(GuardRejected) as caught:
        machine.fire(subject, edge.trigger)
    assert subject.state == before
    assert caught.value.guard == failing
    assert caught.value.expected is wanted
    assert failing in str(caught.value) and edge.trigger in str(caught.value)
