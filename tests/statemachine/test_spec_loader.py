"""Loader tests: one bad spec per rejection rule, each checking what the message names."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rowforge.errors import SpecError
from rowforge.statemachine import SPECS, SPECS_DIR, load_spec

GOOD: dict[str, Any] = {
    "name": "door",
    "description": "A door.",
    "initial": "closed",
    "terminal": ["gone"],
    "states": [
        {"name": "closed", "description": "Shut."},
        {"name": "open", "description": "Open."},
        {"name": "gone", "description": "Removed."},
    ],
    "guards": {"unlocked": {"description": "Not locked.", "invariant": "INV-1"}},
    "transitions": [
        {
            "trigger": "open",
            "source": "closed",
            "dest": "open",
            "conditions": ["unlocked"],
            "description": "Open it.",
        },
        {"trigger": "close", "source": "open", "dest": "closed", "description": "Close it."},
        {
            "trigger": "remove",
            "source": ["open", "closed"],
            "dest": "gone",
            "description": "Take it away.",
        },
    ],
}


def write(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "door.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def mutated(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD)
    spec.update(changes)
    return spec


def rejected(tmp_path: Path, spec: dict[str, Any]) -> str:
    path = write(tmp_path, spec)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert str(path) in message, "the message must name the file"
    return message


def test_a_good_spec_loads_and_expands_multi_source_transitions(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.initial == "closed"
    assert [(t.trigger, t.source) for t in spec.transitions if t.trigger == "remove"] == [
        ("remove", "open"),
        ("remove", "closed"),
    ]


def test_unknown_guard_names_file_transition_and_guard(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    spec["transitions"][0]["conditions"] = ["unlokced"]
    message = rejected(tmp_path, spec)
    assert "transition 'open' (closed -> open)" in message
    assert "unknown guard 'unlokced'" in message


def test_unknown_state_in_a_transition_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    spec["transitions"][1]["dest"] = "ajar"
    message = rejected(tmp_path, spec)
    assert "transition 'close'" in message and "unknown state 'ajar'" in message


def test_duplicate_trigger_from_one_source_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    spec["transitions"].append(
        {"trigger": "open", "source": "closed", "dest": "gone", "description": "Again."}
    )
    message = rejected(tmp_path, spec)
    assert "duplicate trigger 'open' from state 'closed'" in message


def test_unreachable_state_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    spec["states"].append({"name": "attic", "description": "Never visited."})
    spec["transitions"].append(
        {"trigger": "remove", "source": "attic", "dest": "gone", "description": "Out."}
    )
    message = rejected(tmp_path, spec)
    assert "state 'attic' is unreachable" in message


def test_terminal_state_with_outgoing_transition_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    spec["transitions"].append(
        {"trigger": "restore", "source": "gone", "dest": "closed", "description": "Back."}
    )
    message = rejected(tmp_path, spec)
    assert "terminal state 'gone' has an outgoing transition 'restore'" in message


def test_state_without_path_to_a_terminal_state_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    spec["states"].append({"name": "stuck", "description": "A trap."})
    spec["transitions"].append(
        {"trigger": "jam", "source": "open", "dest": "stuck", "description": "Jams."}
    )
    message = rejected(tmp_path, spec)
    assert "non-terminal state 'stuck' has no path to a terminal state" in message


def test_missing_initial_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    del spec["initial"]
    assert "missing 'initial'" in rejected(tmp_path, spec)


def test_initial_that_is_not_a_state_is_rejected(tmp_path: Path) -> None:
    assert "initial state 'shut' is not a declared state" in rejected(
        tmp_path, mutated(initial="shut")
    )


def test_missing_description_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    del spec["transitions"][1]["description"]
    assert "transition 'close': missing or empty 'description'" in rejected(tmp_path, spec)


def test_misspelt_transition_key_is_rejected(tmp_path: Path) -> None:
    spec = copy.deepcopy(GOOD)
    spec["transitions"][1]["condition"] = ["unlocked"]
    assert "unknown keys ['condition']" in rejected(tmp_path, spec)


def test_the_shipped_specs_load_with_the_architecture_vocabulary() -> None:
    assert set(SPECS) == {"run", "row_group", "worker", "cell"}
    row_group = SPECS["row_group"]
    assert {
        "pending",
        "seeding",
        "running",
        "checkpointing",
        "drained",
        "dropped",
        "failed",
    } <= set(row_group.state_names)
    assert (SPECS_DIR / "run.yaml").is_file()


@pytest.mark.parametrize("machine", ["run", "row_group"])
def test_every_entry_to_a_terminal_state_requires_no_live_workers(machine: str) -> None:
    """INV-2 is structural: no transition reaches a terminal state without the guard."""
    spec = SPECS[machine]
    for transition in spec.transitions:
        if transition.dest in spec.terminal and transition.trigger != "abort":
            assert "no_live_workers" in transition.conditions, transition.label


def test_leaving_seeding_and_checkpointing_forward_requires_unchanged_row_count() -> None:
    """INV-5: the only forward exits of seeding and checkpointing check the row count."""
    spec = SPECS["row_group"]
    assert "row_count_unchanged" in spec.edge("seeding", "seeded").conditions  # type: ignore[union-attr]
    assert "row_count_unchanged" in spec.edge("checkpointing", "write").conditions  # type: ignore[union-attr]


def test_a_cell_skip_requires_not_yet_counted() -> None:
    """INV-4: a cell's skip is guarded, and skipped is terminal, so a second skip is illegal."""
    spec = SPECS["cell"]
    for source in ("pending", "running"):
        assert "not_yet_counted" in spec.edge(source, "skip").conditions  # type: ignore[union-attr]
    assert "skipped" in spec.terminal
