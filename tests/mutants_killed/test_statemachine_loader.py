"""Survivors of `make mutants` in the spec loader and the catalog, killed.

The shipped specs are loaded once at import time, which mutmut never runs mutated. These tests
call the loader at test time, on a copy of a shipped spec with one fault, and check the whole
message a spec author reads: the file, the entry at fault and what is wrong with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from rowforge.errors import SpecError
from rowforge.statemachine import catalog
from rowforge.statemachine.catalog import (
    MACHINE_NAMES,
    SPECS,
    SPECS_DIR,
    find_specs_dir,
    load_specs,
)
from rowforge.statemachine.spec import load_spec, parse_spec


def shipped(name: str = "cell") -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((SPECS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return raw


def write(tmp_path: Path, raw: Any, name: str = "cell") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def refusal(tmp_path: Path, raw: Any) -> str:
    path = write(tmp_path, raw)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return str(caught.value).removeprefix(f"{path}: ")


def transition(raw: dict[str, Any], trigger: str) -> dict[str, Any]:
    (entry,) = (t for t in raw["transitions"] if t["trigger"] == trigger)
    return entry


# --- a good spec -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MACHINE_NAMES)
def test_a_copy_of_a_shipped_spec_loads_to_exactly_what_the_catalog_holds(
    tmp_path: Path, name: str
) -> None:
    path = write(tmp_path, shipped(name), name)
    assert load_spec(path) == attrs.evolve(SPECS[name], path=str(path))


def test_names_and_descriptions_are_read_without_surrounding_blanks(tmp_path: Path) -> None:
    raw = shipped()
    raw["name"] = "  cell \n"
    raw["description"] = "\tOne value. "
    raw["states"][0]["description"] = " Waiting. "
    raw["guards"]["not_yet_counted"]["invariant"] = " INV-4 "
    spec = load_spec(write(tmp_path, raw))
    assert (spec.name, spec.description) == ("cell", "One value.")
    assert spec.states[0].description == "Waiting."
    assert {g.name: g.invariant for g in spec.guards}["not_yet_counted"] == "INV-4"


def test_a_single_guard_name_may_be_written_without_a_list(tmp_path: Path) -> None:
    raw = shipped()
    transition(raw, "start")["conditions"] = "upstream_generated"
    transition(raw, "generate")["unless"] = "upstream_generated"
    transition(raw, "skip")["source"] = "pending"
    spec = load_spec(write(tmp_path, raw))
    assert spec.edge("pending", "start").conditions == ("upstream_generated",)  # type: ignore[union-attr]
    generate = spec.edge("running", "generate")
    assert generate is not None and generate.unless == ("upstream_generated",)
    assert spec.edge("running", "skip") is None


def test_a_spec_without_guards_loads_with_none(tmp_path: Path) -> None:
    raw = shipped()
    del raw["guards"]
    for entry in raw["transitions"]:
        entry.pop("conditions", None)
    assert load_spec(write(tmp_path, raw)).guards == ()


def test_a_spec_is_parsed_from_a_document_already_read(tmp_path: Path) -> None:
    spec = parse_spec(shipped(), "where/it/came/from")
    assert spec == attrs.evolve(SPECS["cell"], path="where/it/came/from")
    with pytest.raises(SpecError, match=r"^where/it/came/from: missing or empty 'name'$"):
        parse_spec({**shipped(), "name": ""}, "where/it/came/from")


# --- the file and the top level ----------------------------------------------------------------


def test_a_missing_file_is_refused_naming_it_and_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "cell.yaml"
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}: cannot read spec: [Errno 2]")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_a_file_that_is_not_yaml_is_refused_naming_it_and_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "cell.yaml"
    path.write_text("name: [cell\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}: cannot read spec: ")
    assert isinstance(caught.value.__cause__, yaml.YAMLError)


def test_a_spec_is_read_as_utf8(tmp_path: Path) -> None:
    raw = shipped()
    raw["description"] = "Ein Wert — einmal beendet."
    path = tmp_path / "cell.yaml"
    path.write_bytes(yaml.safe_dump(raw, allow_unicode=True).encode("utf-8"))
    assert load_spec(path).description == "Ein Wert — einmal beendet."


def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, ["cell"]) == "a spec must be a mapping, got list"


def test_unknown_top_level_keys_are_refused_sorted(tmp_path: Path) -> None:
    raw = {**shipped(), "states_": [], "colour": "red"}
    assert refusal(tmp_path, raw) == "unknown top-level keys ['colour', 'states_']"


@pytest.mark.parametrize("value", [None, "", "   ", 3])
def test_a_missing_or_empty_description_is_refused(tmp_path: Path, value: Any) -> None:
    raw = shipped()
    raw["description"] = value
    assert refusal(tmp_path, raw) == "missing or empty 'description'"


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_initial_state_is_refused(tmp_path: Path, value: Any) -> None:
    raw = shipped()
    raw["initial"] = value
    assert refusal(tmp_path, raw) == "missing 'initial' state"
    del raw["initial"]
    assert refusal(tmp_path, raw) == "missing 'initial' state"


def test_an_initial_state_that_is_not_declared_is_refused(tmp_path: Path) -> None:
    raw = {**shipped(), "initial": "waiting"}
    assert refusal(tmp_path, raw) == "initial state 'waiting' is not a declared state"


@pytest.mark.parametrize("key", ["states", "terminal", "transitions"])
@pytest.mark.parametrize("value", [[], {"a": 1}, None])
def test_the_lists_must_be_non_empty_lists(tmp_path: Path, key: str, value: Any) -> None:
    raw = {**shipped(), key: value}
    assert refusal(tmp_path, raw) == f"{key!r} must be a non-empty list"


def test_a_state_declared_twice_is_refused(tmp_path: Path) -> None:
    raw = shipped()
    raw["states"].append({"name": "running", "description": "Again."})
    assert refusal(tmp_path, raw) == "state 'running' is declared twice"


def test_a_terminal_state_that_is_not_declared_is_refused_first_by_name(tmp_path: Path) -> None:
    raw = shipped()
    raw["terminal"] = ["generated", "lost", "done"]
    assert refusal(tmp_path, raw) == "terminal state 'done' is not a declared state"


# --- states and guards -------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["pending", {"description": "No name."}])
def test_a_state_without_a_name_is_refused_showing_the_entry(tmp_path: Path, entry: Any) -> None:
    raw = shipped()
    raw["states"][1] = entry
    assert refusal(tmp_path, raw) == (
        f"every state needs a 'name' and a 'description', got {entry!r}"
    )


def test_a_state_without_a_description_is_refused_naming_the_state(tmp_path: Path) -> None:
    raw = shipped()
    del raw["states"][1]["description"]
    assert refusal(tmp_path, raw) == "state 'running': missing or empty 'description'"


def test_guards_that_are_not_a_mapping_are_refused(tmp_path: Path) -> None:
    raw = {**shipped(), "guards": ["upstream_generated"]}
    assert refusal(tmp_path, raw) == "'guards' must map guard names to their description"


def test_a_guard_without_a_body_is_refused_naming_the_guard(tmp_path: Path) -> None:
    raw = shipped()
    raw["guards"]["not_yet_counted"] = "INV-4"
    assert refusal(tmp_path, raw) == "guard 'not_yet_counted': needs 'description' and 'invariant'"


@pytest.mark.parametrize("key", ["description", "invariant"])
def test_a_guard_missing_a_field_is_refused_naming_guard_and_field(
    tmp_path: Path, key: str
) -> None:
    raw = shipped()
    del raw["guards"]["not_yet_counted"][key]
    assert refusal(tmp_path, raw) == f"guard 'not_yet_counted': missing or empty {key!r}"


# --- transitions -------------------------------------------------------------------------------


def test_a_transition_that_is_not_a_mapping_is_refused_showing_it(tmp_path: Path) -> None:
    raw = shipped()
    raw["transitions"].append("finish")
    assert refusal(tmp_path, raw) == "a transition must be a mapping, got 'finish'"


@pytest.mark.parametrize("trigger", [None, "", 7])
def test_a_transition_without_a_trigger_is_refused(tmp_path: Path, trigger: Any) -> None:
    raw = shipped()
    transition(raw, "generate")["trigger"] = trigger
    assert refusal(tmp_path, raw) == f"transition {trigger!r}: missing 'trigger'"


def test_a_transition_with_unknown_keys_is_refused_naming_them_sorted(tmp_path: Path) -> None:
    raw = shipped()
    transition(raw, "generate").update({"condition": [], "after": "x"})
    assert refusal(tmp_path, raw) == "transition 'generate': unknown keys ['after', 'condition']"


@pytest.mark.parametrize("source", [None, []])
def test_a_transition_without_a_source_is_refused(tmp_path: Path, source: Any) -> None:
    raw = shipped()
    transition(raw, "generate")["source"] = source
    assert refusal(tmp_path, raw) == "transition 'generate': missing 'source'"


@pytest.mark.parametrize("value", [5, ["running", 5], {"running": 1}])
@pytest.mark.parametrize("key", ["source", "conditions", "unless"])
def test_a_name_list_of_the_wrong_shape_is_refused_showing_it(
    tmp_path: Path, key: str, value: Any
) -> None:
    raw = shipped()
    transition(raw, "generate")[key] = value
    assert refusal(tmp_path, raw) == (
        f"transition 'generate': expected a name or a list of names, got {value!r}"
    )


@pytest.mark.parametrize("dest", [None, "", ["generated"]])
def test_a_transition_without_a_dest_is_refused(tmp_path: Path, dest: Any) -> None:
    raw = shipped()
    transition(raw, "generate")["dest"] = dest
    assert refusal(tmp_path, raw) == "transition 'generate': missing 'dest'"


def test_a_transition_without_a_description_is_refused(tmp_path: Path) -> None:
    raw = shipped()
    del transition(raw, "generate")["description"]
    assert refusal(tmp_path, raw) == "transition 'generate': missing or empty 'description'"


@pytest.mark.parametrize(
    ("end", "value"), [("source", ["pending", "waiting"]), ("dest", "waiting")]
)
def test_a_transition_to_or_from_an_unknown_state_is_refused(
    tmp_path: Path, end: str, value: Any
) -> None:
    raw = shipped()
    transition(raw, "skip")[end] = value
    label = "'skip' (waiting -> skipped)" if end == "source" else "'skip' (pending -> waiting)"
    assert refusal(tmp_path, raw) == f"transition {label}: unknown state 'waiting'"


@pytest.mark.parametrize("key", ["conditions", "unless"])
def test_an_unknown_guard_is_refused_listing_the_declared_ones(tmp_path: Path, key: str) -> None:
    raw = shipped()
    transition(raw, "generate")[key] = ["not_yet_counted", "stored"]
    assert refusal(tmp_path, raw) == (
        "transition 'generate' (running -> generated): unknown guard 'stored' "
        "(declared guards: not_yet_counted, upstream_generated)"
    )


def test_an_unknown_guard_in_a_spec_without_guards_says_none_are_declared(tmp_path: Path) -> None:
    raw = shipped()
    del raw["guards"]
    for entry in raw["transitions"]:
        entry.pop("conditions", None)
    transition(raw, "fail")["unless"] = "retryable"
    assert refusal(tmp_path, raw) == (
        "transition 'fail' (running -> failed): unknown guard 'retryable' (declared guards: none)"
    )


# --- the shape of the machine ------------------------------------------------------------------


def test_a_trigger_taken_twice_from_one_state_is_refused_naming_both_dests(
    tmp_path: Path,
) -> None:
    raw = shipped()
    raw["transitions"].append(
        {"trigger": "generate", "source": "running", "dest": "failed", "description": "Again."}
    )
    assert refusal(tmp_path, raw) == (
        "duplicate trigger 'generate' from state 'running' (to 'generated' and to 'failed')"
    )


def test_a_terminal_state_with_a_way_out_is_refused_naming_the_edge(tmp_path: Path) -> None:
    raw = shipped()
    raw["transitions"].append(
        {"trigger": "retry", "source": "failed", "dest": "running", "description": "Again."}
    )
    assert refusal(tmp_path, raw) == (
        "terminal state 'failed' has an outgoing transition 'retry' (failed -> running)"
    )


def test_an_unreachable_state_is_refused_naming_it_and_the_initial_state(tmp_path: Path) -> None:
    raw = shipped()
    raw["states"].insert(2, {"name": "queued", "description": "Never entered."})
    raw["transitions"].append(
        {"trigger": "start", "source": "queued", "dest": "running", "description": "Go."}
    )
    assert refusal(tmp_path, raw) == ("state 'queued' is unreachable from initial state 'pending'")


def test_a_state_reached_only_through_several_steps_is_reachable(tmp_path: Path) -> None:
    raw = shipped()
    raw["states"].insert(2, {"name": "checking", "description": "Two steps away."})
    raw["transitions"].append(
        {"trigger": "check", "source": "running", "dest": "checking", "description": "Check."}
    )
    raw["transitions"].append(
        {"trigger": "pass", "source": "checking", "dest": "generated", "description": "Done."}
    )
    assert load_spec(write(tmp_path, raw)).edge("checking", "pass") is not None


def test_a_trap_state_is_refused_naming_it(tmp_path: Path) -> None:
    raw = shipped()
    raw["states"].insert(2, {"name": "stuck", "description": "No way out."})
    raw["states"].insert(3, {"name": "stuck_too", "description": "Nor here."})
    raw["transitions"].append(
        {"trigger": "jam", "source": "running", "dest": "stuck", "description": "Jams."}
    )
    raw["transitions"].append(
        {"trigger": "jam", "source": "stuck", "dest": "stuck_too", "description": "Worse."}
    )
    assert refusal(tmp_path, raw) == ("non-terminal state 'stuck' has no path to a terminal state")


# --- the catalog -------------------------------------------------------------------------------


def test_the_catalog_loads_every_machine_of_a_directory_in_order(tmp_path: Path) -> None:
    for name in MACHINE_NAMES:
        write(tmp_path, shipped(name), name)
    loaded = load_specs(tmp_path)
    assert list(loaded) == list(MACHINE_NAMES)
    assert loaded == {
        name: attrs.evolve(SPECS[name], path=str(tmp_path / f"{name}.yaml"))
        for name in MACHINE_NAMES
    }


def test_a_spec_file_whose_name_differs_from_its_machine_is_refused(tmp_path: Path) -> None:
    for name in MACHINE_NAMES:
        write(tmp_path, shipped(name), name)
    raw = shipped("worker")
    raw["name"] = "workers"
    path = write(tmp_path, raw, "worker")
    with pytest.raises(SpecError) as caught:
        load_specs(tmp_path)
    assert str(caught.value) == f"{path}: 'name' is 'workers', expected 'worker'"


def test_a_missing_spec_file_stops_the_catalog_naming_it(tmp_path: Path) -> None:
    write(tmp_path, shipped("run"), "run")
    with pytest.raises(SpecError) as caught:
        load_specs(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'row_group.yaml'}: cannot read spec: ")


def layout(root: Path, package: bool, checkout: bool) -> Path:
    """A fake install under `root`; returns where its `catalog.py` would be."""
    module = root / "src" / "rowforge" / "statemachine" / "catalog.py"
    module.parent.mkdir(parents=True)
    if package:
        (root / "src" / "rowforge" / "specs").mkdir()
        (root / "src" / "rowforge" / "specs" / "run.yaml").write_text("name: run\n")
    if checkout:
        (root / "specs").mkdir()
        (root / "specs" / "run.yaml").write_text("name: run\n")
    return module


def test_the_shipped_specs_are_found_from_the_source_checkout() -> None:
    assert find_specs_dir() == SPECS_DIR
    assert sorted(p.name for p in find_specs_dir().glob("*.yaml")) == sorted(
        f"{name}.yaml" for name in MACHINE_NAMES
    )


@pytest.mark.parametrize(
    ("package", "checkout", "found"),
    [
        (True, True, "src/rowforge/specs"),
        (True, False, "src/rowforge/specs"),
        (False, True, "specs"),
    ],
)
def test_the_packaged_specs_come_before_the_checkouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: bool, checkout: bool, found: str
) -> None:
    monkeypatch.setattr(catalog, "__file__", str(layout(tmp_path, package, checkout)))
    assert find_specs_dir() == tmp_path / found


def test_a_specs_directory_without_run_yaml_does_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = layout(tmp_path, package=False, checkout=True)
    (tmp_path / "src" / "rowforge" / "specs").mkdir()
    (tmp_path / "src" / "rowforge" / "specs" / "cell.yaml").write_text("name: cell\n")
    monkeypatch.setattr(catalog, "__file__", str(module))
    assert find_specs_dir() == tmp_path / "specs"


def test_no_specs_directory_is_refused_naming_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = layout(tmp_path, package=False, checkout=False)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "run.yaml").mkdir()  # a directory, not a spec file
    monkeypatch.setattr(catalog, "__file__", str(module))
    with pytest.raises(SpecError) as caught:
        find_specs_dir()
    assert (
        str(caught.value) == f"cannot find the specs directory near {tmp_path / 'src' / 'rowforge'}"
    )


# An ASCII locale with Python's UTF-8 mode and C-locale coercion off: open() without an encoding
# would read and write ASCII here. The locale is read once, in C, so this needs a fresh process;
# it inherits PYTHONPATH and MUTANT_UNDER_TEST, so under mutmut it runs the mutant too.
ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


def run_in_ascii_locale(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **ASCII_LOCALE},
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def test_a_spec_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    raw = shipped()
    raw["description"] = "Ein Wert — einmal beendet."
    path = tmp_path / "cell.yaml"
    path.write_bytes(yaml.safe_dump(raw, allow_unicode=True).encode("utf-8"))
    code = (
        "import sys\nfrom pathlib import Path\nfrom rowforge.statemachine.spec import load_spec\n"
        "print(ascii(load_spec(Path(sys.argv[1])).description))"
    )
    result = run_in_ascii_locale(code, str(path))
    assert result.returncode == 0, result.stderr
    # Loaded here too, so that mutmut (which maps tests to the functions they call in-process)
    # runs this test for the loader's mutants.
    assert result.stdout.strip() == ascii(load_spec(path).description)
    assert load_spec(path).description == "Ein Wert — einmal beendet."
