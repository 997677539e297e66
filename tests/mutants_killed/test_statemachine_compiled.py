"""Survivors of `make mutants` in rowforge.statemachine, killed.

Under mutmut every module is imported once, before any mutant is switched on, so code that only
runs at import time (the shipped specs parsed, their tables compiled) never runs mutated. These
tests compile and serialise at test time, so a mutant there changes what they see."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest

from rowforge.statemachine.catalog import SPECS
from rowforge.statemachine.compiled import CompiledEdge, compile_spec
from rowforge.statemachine.events import Event


@pytest.mark.parametrize("name", sorted(SPECS))
def test_compiling_a_spec_gives_one_edge_per_transition_with_its_guards_in_order(
    name: str,
) -> None:
    spec = SPECS[name]
    table = compile_spec(spec)
    assert table.machine == name
    assert set(table.edges) == set(spec.state_names)
    expected = {
        (t.source, t.trigger): CompiledEdge(
            t.dest,
            tuple((g, True) for g in t.conditions) + tuple((g, False) for g in t.unless),
        )
        for t in spec.transitions
    }
    compiled = {
        (source, trigger): edge
        for source, by_trigger in table.edges.items()
        for trigger, edge in by_trigger.items()
    }
    assert compiled == expected


def test_an_event_reads_back_as_written_with_a_tuple_ident_and_its_details() -> None:
    event = Event("cell", (3, "answer"), "generate", "running", "generated", 1.5, {"n": 2})
    line = event.to_json()
    assert Event.from_json(line) == event
    assert list(json.loads(line)) == sorted(json.loads(line)), "keys are written sorted"


def test_an_event_without_details_reads_back_with_empty_details() -> None:
    line = json.dumps(
        {"machine": "run", "id": 0, "trigger": "t", "source": "a", "dest": "b", "time": 2}
    )
    event = Event.from_json(line)
    assert event.details == {}
    assert event.time == 2.0


def test_details_that_json_cannot_hold_are_written_as_their_text() -> None:
    event = Event("run", 0, "t", "a", "b", 0.0, {"path": PurePosixPath("/out")})
    assert json.loads(event.to_json())["details"] == {"path": "/out"}
