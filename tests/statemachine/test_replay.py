"""INV-1 on disk: a legal run's event log replays to the same final states; a forgery is caught."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rowforge.errors import ReplayError
from rowforge.statemachine import (
    SPECS,
    TABLES,
    CompiledMachine,
    Event,
    EventLog,
    ReferenceMachine,
    read_jsonl,
    replay,
    write_jsonl,
)
from tests.statemachine.subjects import ScriptedGuards, Thing, edges_from


@st.composite
def legal_runs(draw: st.DrawFn) -> tuple[EventLog, dict[tuple[str, str], str]]:
    """Several subjects of every machine, moved by random legal steps, all logged."""
    log = EventLog()
    subjects: list[tuple[str, Thing, ReferenceMachine | CompiledMachine, ScriptedGuards]] = []
    for name, spec in SPECS.items():
        guards = ScriptedGuards(spec)
        if name in ("run", "row_group"):
            reference = ReferenceMachine(spec, guards, log)
            for number in range(draw(st.integers(1, 3))):
                thing = Thing(f"{name}-{number}")
                reference.add(thing)
                subjects.append((name, thing, reference, guards))
        else:
            compiled = CompiledMachine(TABLES[name], guards, log)
            for number in range(draw(st.integers(1, 4))):
                subjects.append((name, Thing(f"{name}-{number}", spec.initial), compiled, guards))
    for _ in range(draw(st.integers(1, 60))):
        name, thing, machine, guards = draw(st.sampled_from(subjects))
        edges = edges_from(SPECS[name], thing.state)
        if edges:
            edge = draw(st.sampled_from(edges))
            guards.allow(edge)
            machine.fire(thing, edge.trigger)
    finals = {(name, str(thing.ident)): thing.state for name, thing, _, _ in subjects}
    return log, finals


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(legal_runs())
def test_a_legal_event_log_replays_to_the_final_states(
    tmp_path: Path, run: tuple[EventLog, dict[tuple[str, str], str]]
) -> None:
    log, finals = run
    path = tmp_path / "events.jsonl"
    write_jsonl(log, path)
    replayed = replay(read_jsonl(path), SPECS)
    moved = {key: state for key, state in finals.items() if key in replayed}
    assert replayed == moved
    untouched = set(finals) - set(replayed)
    assert all(finals[key] == SPECS[key[0]].initial for key in untouched)


@given(legal_runs(), st.data())
def test_a_log_with_one_forged_edge_is_rejected(
    run: tuple[EventLog, dict[tuple[str, str], str]], data: st.DataObject
) -> None:
    events = list(run[0])
    if not events:
        return
    index = data.draw(st.integers(0, len(events) - 1))
    real = events[index]
    forged_dest = data.draw(
        st.sampled_from([s for s in SPECS[real.machine].state_names if s != real.dest])
    )
    events[index] = attrs.evolve(real, dest=forged_dest)
    with pytest.raises(ReplayError) as caught:
        replay(events, SPECS)
    assert f"event {index + 1} " in str(caught.value)


def test_an_event_from_the_wrong_source_state_is_rejected() -> None:
    skipped_start = Event("worker", 7, "succeed", "running", "succeeded", 0.0)
    with pytest.raises(ReplayError, match="subject is in 'pending'"):
        replay([skipped_start], SPECS)


def test_an_event_of_an_unknown_machine_is_rejected() -> None:
    with pytest.raises(ReplayError, match="unknown machine 'kettle'"):
        replay([Event("kettle", 1, "boil", "cold", "hot", 0.0)], SPECS)
