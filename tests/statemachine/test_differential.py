"""The compiled table and the `transitions` reference machine agree on every trigger sequence.

Both machines get the same random triggers (legal, illegal and unknown) with the same random guard
verdicts; after every step they must agree on the outcome (new state, IllegalTransition, or
GuardRejected naming the same guard) and on the subject's state.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rowforge.errors import GuardRejected, IllegalTransition
from rowforge.statemachine import SPECS, TABLES, CompiledMachine, ReferenceMachine
from tests.statemachine.subjects import ScriptedGuards, Thing

MACHINES = sorted(SPECS)


def outcome(machine: ReferenceMachine | CompiledMachine, subject: Thing, trigger: str) -> object:
    try:
        return ("moved", machine.fire(subject, trigger))
    except GuardRejected as refusal:
        return ("guard", refusal.guard, refusal.expected, refusal.state)
    except IllegalTransition as refusal:
        return ("illegal", refusal.state)


@st.composite
def scripts(draw: st.DrawFn) -> tuple[str, list[tuple[str, dict[str, bool]]]]:
    name = draw(st.sampled_from(MACHINES))
    spec = SPECS[name]
    triggers = [*spec.triggers, "no_such_trigger"]
    guard_names = [guard.name for guard in spec.guards]
    verdicts = st.fixed_dictionaries({g: st.booleans() for g in guard_names})
    steps = draw(st.lists(st.tuples(st.sampled_from(triggers), verdicts), max_size=40))
    return name, steps


@given(scripts())
def test_compiled_table_agrees_with_reference_machine(
    script: tuple[str, list[tuple[str, dict[str, bool]]]],
) -> None:
    name, steps = script
    spec = SPECS[name]
    ref_guards, table_guards = ScriptedGuards(spec), ScriptedGuards(spec)
    reference = ReferenceMachine(spec, ref_guards)
    compiled = CompiledMachine(TABLES[name], table_guards)
    ref_subject, table_subject = Thing("ref"), Thing("table", state=spec.initial)
    reference.add(ref_subject)
    assert ref_subject.state == table_subject.state == spec.initial

    for trigger, verdicts in steps:
        ref_guards.verdicts = dict(verdicts)
        table_guards.verdicts = dict(verdicts)
        expected = outcome(reference, ref_subject, trigger)
        actual = outcome(compiled, table_subject, trigger)
        assert actual == expected, f"{name}: {trigger} with {verdicts}"
        assert table_subject.state == ref_subject.state


def test_every_spec_edge_is_in_the_compiled_table_and_nothing_else() -> None:
    for name, spec in SPECS.items():
        expected = {
            (t.source, t.trigger): (
                t.dest,
                tuple((g, True) for g in t.conditions) + tuple((g, False) for g in t.unless),
            )
            for t in spec.transitions
        }
        table = TABLES[name]
        actual = {
            (source, trigger): (edge.dest, edge.checks)
            for source, by_trigger in table.edges.items()
            for trigger, edge in by_trigger.items()
        }
        assert actual == expected, name
