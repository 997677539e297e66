"""Survivors of `make mutants` in the machines, their tables and the event log, killed.

What a refusal says (the machine, the subject's ident, the trigger, the state, the guard), what the
event log records, and what the table tells the engine about a spec (where a trigger fires from,
where it leads, which edges end a subject)."""

from __future__ import annotations

import gc
import logging
import time
import weakref
from pathlib import Path

import attrs
import pytest
import transitions

from rowforge.errors import GuardRejected, IllegalTransition, SpecError
from rowforge.statemachine import SPECS, TABLES, CompiledMachine, ReferenceMachine
from rowforge.statemachine.building import GuardCheck
from rowforge.statemachine.compiled import CompiledEdge, compile_spec, compile_table
from rowforge.statemachine.events import Event, EventFile, EventLog, read_jsonl, write_jsonl
from rowforge.statemachine.guards import Guard
from rowforge.statemachine.spec import parse_spec
from tests.statemachine.subjects import ScriptedGuards, Thing

KINDS = ["reference", "compiled"]
IDENT = (7, "answer")


def machine(
    kind: str, name: str, log: EventLog | None = None
) -> tuple[ReferenceMachine | CompiledMachine, ScriptedGuards, Thing]:
    spec = SPECS[name]
    guards = ScriptedGuards(spec)
    subject = Thing(IDENT, state=spec.initial)
    if kind == "reference":
        built: ReferenceMachine | CompiledMachine = ReferenceMachine(spec, guards, log)
        built.add(subject)
    else:
        built = CompiledMachine(TABLES[name], guards, log)
    return built, guards, subject


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("trigger", ["generate", "bogus"])
def test_an_illegal_trigger_names_machine_subject_trigger_and_state(
    kind: str, trigger: str
) -> None:
    fired, _, subject = machine(kind, "cell")
    with pytest.raises(IllegalTransition) as caught:
        fired.fire(subject, trigger)
    error = caught.value
    assert (error.machine, error.ident, error.trigger, error.state) == (
        "cell",
        IDENT,
        trigger,
        "pending",
    )
    assert str(error) == (
        f"cell (7, 'answer'): trigger {trigger!r} in state 'pending': "
        "no such transition in the spec"
    )
    assert subject.state == "pending"


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_condition_names_machine_subject_and_guard(kind: str) -> None:
    fired, guards, subject = machine(kind, "cell")
    guards.verdicts["upstream_generated"] = False
    with pytest.raises(GuardRejected) as caught:
        fired.fire(subject, "start")
    error = caught.value
    assert (error.machine, error.ident, error.trigger, error.state) == (
        "cell",
        IDENT,
        "start",
        "pending",
    )
    assert (error.guard, error.expected) == ("upstream_generated", True)
    assert str(error) == (
        "cell (7, 'answer'): trigger 'start' in state 'pending': "
        "guard 'upstream_generated' must be true but was not"
    )
    assert subject.state == "pending"


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_unless_guard_names_the_guard_that_had_to_be_false(kind: str) -> None:
    fired, guards, subject = machine(kind, "row_group")
    guards.verdicts.update({"no_live_workers": True, "has_rows": True})
    fired.fire(subject, "admit")
    with pytest.raises(GuardRejected) as caught:
        fired.fire(subject, "drop")
    error = caught.value
    assert (error.machine, error.ident, error.state) == ("row_group", IDENT, "seeding")
    assert (error.guard, error.expected) == ("has_rows", False)
    assert str(error).endswith("guard 'has_rows' must be false but was not")
    assert subject.state == "seeding"


@pytest.mark.parametrize("kind", KINDS)
def test_guards_are_checked_in_spec_order_and_the_first_failure_is_named(kind: str) -> None:
    fired, guards, subject = machine(kind, "row_group")
    fired.fire(subject, "admit")
    guards.verdicts.update({"seeds_done": False, "has_rows": False})
    with pytest.raises(GuardRejected) as caught:
        fired.fire(subject, "seeded")
    assert caught.value.guard == "seeds_done"


@pytest.mark.parametrize("kind", KINDS)
def test_a_machine_without_a_guard_implementation_is_refused_naming_them(kind: str) -> None:
    guards = ScriptedGuards(SPECS["row_group"])
    del guards["has_rows"], guards["cells_complete"]
    with pytest.raises(SpecError) as caught:
        if kind == "reference":
            ReferenceMachine(SPECS["row_group"], guards)
        else:
            CompiledMachine(TABLES["row_group"], guards)
    assert str(caught.value) == (
        "machine 'row_group': no implementation for guards ['cells_complete', 'has_rows']"
    )


# --- the event log -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_transition_is_logged_with_its_subject_edge_and_details(kind: str) -> None:
    log = EventLog()
    fired, _, subject = machine(kind, "cell", log)
    before = time.monotonic()
    assert fired.fire(subject, "start", {"worker": 3}) == "running"
    assert fired.fire(subject, "generate") == "generated"
    after = time.monotonic()
    assert subject.state == "generated"
    events = list(log)
    assert [(e.machine, e.ident, e.trigger, e.source, e.dest, e.details) for e in events] == [
        ("cell", IDENT, "start", "pending", "running", {"worker": 3}),
        ("cell", IDENT, "generate", "running", "generated", {}),
    ]
    assert before <= events[0].time <= events[1].time <= after
    assert len(log) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_trigger_is_not_logged(kind: str) -> None:
    log = EventLog()
    fired, guards, subject = machine(kind, "cell", log)
    guards.verdicts["upstream_generated"] = False
    with pytest.raises(GuardRejected):
        fired.fire(subject, "start")
    with pytest.raises(IllegalTransition):
        fired.fire(subject, "generate")
    assert len(log) == 0


def test_the_log_keeps_each_event_with_its_details() -> None:
    log = EventLog()
    first = log.record("cell", IDENT, "start", "pending", "running", {"worker": 3})
    second = log.record("cell", IDENT, "generate", "running", "generated")
    assert list(log) == [first, second]
    assert (first.details, second.details) == ({"worker": 3}, {})
    assert (second.machine, second.ident, second.trigger, second.source, second.dest) == (
        "cell",
        IDENT,
        "generate",
        "running",
        "generated",
    )


def events() -> list[Event]:
    return [
        Event("cell", (1, "a"), "start", "pending", "running", 1.0, {"worker": 2}),
        Event("run", 0, "start", "pending", "running", 2.5),
    ]


def test_a_log_written_to_a_file_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_jsonl(events(), path)
    assert path.read_text(encoding="utf-8") == "".join(e.to_json() + "\n" for e in events())
    assert read_jsonl(path) == events()


def test_writing_a_log_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_jsonl(events(), path)
    write_jsonl(events()[1:], path)
    assert read_jsonl(path) == events()[1:]


def test_reading_a_log_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    first, second = (e.to_json() for e in events())
    path.write_text(f"\n{first}\n   \n{second}\n\n", encoding="utf-8")
    assert read_jsonl(path) == events()


def test_a_log_file_reads_back_as_recorded(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventFile(path) as log:
        log.record("cell", (1, "a"), "start", "pending", "running", {"note": "é"})
        recorded = list(log)
    assert read_jsonl(path) == recorded
    assert recorded[0].details == {"note": "é"}


# --- the reference machine's subjects ----------------------------------------------------------


def test_a_removed_subject_keeps_its_last_state_and_is_no_longer_driven() -> None:
    fired, _, subject = machine("reference", "cell")
    assert isinstance(fired, ReferenceMachine)
    fired.fire(subject, "start")
    fired.remove(subject)
    assert subject.state == "running"
    assert fired.machine.models == []
    with pytest.raises(KeyError):
        fired.fire(subject, "generate")
    assert subject.state == "running"


def test_a_removed_subject_is_freed_without_waiting_for_the_garbage_collector() -> None:
    fired, _, subject = machine("reference", "row_group")
    assert isinstance(fired, ReferenceMachine)
    fired.fire(subject, "admit")
    gone = weakref.ref(subject)
    enabled = gc.isenabled()
    gc.disable()
    try:
        fired.remove(subject)
        del subject
        assert gone() is None, "a removed subject must not be kept alive by a reference cycle"
    finally:
        if enabled:
            gc.enable()


def test_removing_one_subject_leaves_the_others_tracked() -> None:
    spec = SPECS["cell"]
    fired = ReferenceMachine(spec, ScriptedGuards(spec))
    first, second = Thing("a"), Thing("b")
    fired.add(first)
    fired.add(second)
    assert (first.state, second.state) == ("pending", "pending")
    fired.remove(first)
    assert fired.fire(second, "start") == "running"


# --- asking the spec ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_refusal_says_which_guard_blocks_without_taking_the_edge(kind: str) -> None:
    fired, guards, subject = machine(kind, "cell")
    assert fired.refusal(subject, "start") is None
    guards.verdicts["upstream_generated"] = False
    refused = fired.refusal(subject, "start")
    assert isinstance(refused, GuardRejected)
    assert (refused.machine, refused.ident, refused.trigger, refused.state) == (
        "cell",
        IDENT,
        "start",
        "pending",
    )
    assert (refused.guard, refused.expected) == ("upstream_generated", True)
    with pytest.raises(IllegalTransition) as caught:
        fired.refusal(subject, "generate")
    error = caught.value
    assert (error.machine, error.ident, error.trigger, error.state) == (
        "cell",
        IDENT,
        "generate",
        "pending",
    )
    assert subject.state == "pending"


def test_holds_evaluates_one_guard_on_the_subject() -> None:
    fired, guards, subject = machine("reference", "cell")
    assert isinstance(fired, ReferenceMachine)
    guards.verdicts["not_yet_counted"] = False
    assert fired.holds(subject, "not_yet_counted") is False
    assert fired.holds(subject, "upstream_generated") is True
    assert fired.table.name == "cell"


def row_group_running() -> tuple[ReferenceMachine, ScriptedGuards, Thing]:
    fired, guards, subject = machine("reference", "row_group")
    assert isinstance(fired, ReferenceMachine)
    fired.fire(subject, "admit")
    fired.fire(subject, "seeded")
    assert subject.state == "running"
    return fired, guards, subject


def test_pick_names_the_one_enabled_candidate_or_none() -> None:
    fired, guards, subject = row_group_running()
    guards.verdicts.update({"has_rows": True, "has_fatal_error": False})
    assert fired.pick(subject, ("drop", "fail", "cancel")) == "cancel"
    assert fired.pick(subject, ("drop", "fail")) is None
    assert fired.pick(subject, ()) is None


def test_pick_refuses_two_candidates_enabled_at_once() -> None:
    fired, guards, subject = row_group_running()
    guards.verdicts.update({"has_rows": False, "has_fatal_error": False})
    with pytest.raises(SpecError) as caught:
        fired.pick(subject, ("drop", "fail", "cancel"))
    assert str(caught.value) == (
        "row_group (7, 'answer') in 'running': the guards of ['drop', 'cancel'] all hold at "
        "once; the spec must make them exclude each other"
    )


def test_finish_takes_the_one_allowed_ending_and_logs_it() -> None:
    log = EventLog()
    fired, guards, subject = machine("reference", "row_group", log)
    fired.fire(subject, "admit")
    guards.verdicts.update({"has_rows": True, "has_fatal_error": True})
    assert fired.can_finish(subject) is True
    assert fired.finish(subject, {"why": "boom"}) == "failed"
    assert subject.state == "failed"
    last = list(log)[-1]
    assert (last.trigger, last.source, last.dest, last.details) == (
        "fail",
        "seeding",
        "failed",
        {"why": "boom"},
    )


def test_finish_refuses_with_the_first_endings_refusal_while_none_is_allowed() -> None:
    fired, guards, subject = row_group_running()
    guards.verdicts["no_live_workers"] = False
    assert fired.can_finish(subject) is False
    with pytest.raises(GuardRejected) as caught:
        fired.finish(subject)
    error = caught.value
    assert (error.machine, error.ident, error.trigger, error.state) == (
        "row_group",
        IDENT,
        "drop",
        "running",
    )
    assert (error.guard, error.expected) == ("no_live_workers", True)
    assert subject.state == "running"


def test_finish_from_a_state_with_no_ending_is_illegal() -> None:
    fired, _, subject = machine("reference", "worker")
    assert isinstance(fired, ReferenceMachine)
    assert fired.can_finish(subject) is False
    with pytest.raises(IllegalTransition) as caught:
        fired.finish(subject)
    assert (caught.value.machine, caught.value.ident, caught.value.trigger) == (
        "worker",
        IDENT,
        "finish",
    )
    assert caught.value.state == "pending"


# --- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_table_knows_the_initial_and_terminal_states(name: str) -> None:
    table = compile_spec(SPECS[name])
    assert table.initial == SPECS[name].initial
    assert table.terminal == SPECS[name].terminal


def test_sources_are_every_state_a_trigger_fires_from() -> None:
    table = TABLES["worker"]
    assert table.sources("release") == {"succeeded", "deferred", "failed", "cancelled"}
    assert table.sources("start", "cancel") == {"pending", "running"}
    with pytest.raises(SpecError) as caught:
        table.sources("start", "stop", "halt")
    assert str(caught.value) == "worker: no transition is triggered by ['halt', 'stop']"


def test_dest_of_is_the_one_state_a_trigger_leads_to() -> None:
    assert TABLES["worker"].dest_of("release") == "drained"
    assert TABLES["run"].dest_of("interrupt") == "cancelling"
    with pytest.raises(SpecError) as caught:
        TABLES["worker"].dest_of("halt")
    assert str(caught.value) == "worker: trigger 'halt' leads to []"


def test_dest_of_refuses_a_trigger_that_leads_to_several_states() -> None:
    raw = {
        "name": "door",
        "description": "A door.",
        "initial": "closed",
        "terminal": ["gone", "broken"],
        "states": [
            {"name": "closed", "description": "Shut."},
            {"name": "open", "description": "Open."},
            {"name": "gone", "description": "Removed."},
            {"name": "broken", "description": "Broken."},
        ],
        "transitions": [
            {"trigger": "open", "source": "closed", "dest": "open", "description": "Open."},
            {"trigger": "end", "source": "closed", "dest": "gone", "description": "Remove."},
            {"trigger": "end", "source": "open", "dest": "broken", "description": "Break."},
        ],
    }
    table = compile_spec(parse_spec(raw, "door.yaml"))
    with pytest.raises(SpecError) as caught:
        table.dest_of("end")
    assert str(caught.value) == "door: trigger 'end' leads to ['broken', 'gone']"
    assert table.endings("closed") == ("end",)
    assert table.endings("open") == ("end",)


def test_endings_are_the_triggers_into_a_terminal_state_in_spec_order() -> None:
    table = TABLES["row_group"]
    assert table.endings("running") == ("drop", "fail", "cancel")
    assert table.endings("checkpointing") == ("write", "fail", "cancel")
    assert table.endings("pending") == ()
    assert table.endings("drained") == ()


def tiny_machine(**edge: object) -> transitions.Machine:
    return transitions.Machine(
        model=None,
        states=["a", "b"],
        initial="a",
        transitions=[{"trigger": "go", "source": "a", "dest": "b", **edge}],
        auto_transitions=False,
        send_event=True,
    )


def test_compiling_a_machine_keeps_its_initial_state_and_guards() -> None:
    table = compile_table("m", tiny_machine(conditions=[GuardCheck("g", True)]))
    assert (table.machine, table.initial) == ("m", "a")
    assert table.edges == {"a": {"go": CompiledEdge("b", (("g", True),))}, "b": {}}


def test_compiling_refuses_a_condition_that_is_not_a_guard_check() -> None:
    def ready(event: object) -> bool:
        return True

    with pytest.raises(SpecError) as caught:
        compile_table("m", tiny_machine(conditions=[ready]))
    assert str(caught.value) == f"m: condition {ready!r} of 'go' is not a guard check"


def test_compiling_refuses_a_guard_check_whose_verdict_disagrees_with_its_place() -> None:
    with pytest.raises(SpecError) as caught:
        compile_table("m", tiny_machine(unless=[GuardCheck("g", True)]))
    assert str(caught.value) == (
        "m: condition GuardCheck('g', expected=True) of 'go' is not a guard check"
    )


def test_compiling_refuses_two_transitions_for_one_trigger_and_state() -> None:
    built = tiny_machine()
    built.add_transition("go", "a", "a")
    with pytest.raises(SpecError) as caught:
        compile_table("m", built)
    assert str(caught.value) == "m: 2 transitions for 'go' from 'a'"


def test_compiling_refuses_an_internal_transition() -> None:
    with pytest.raises(SpecError) as caught:
        compile_table("m", tiny_machine(dest=None))
    assert str(caught.value) == "m: internal transition 'go' has no dest"


@attrs.define
class Cell:
    """A subject whose guards read its own fields, as the engine's guards do."""

    ident: str
    upstream_ready: bool
    state: str = "pending"


def cell_guards() -> dict[str, Guard]:
    return {
        "upstream_generated": lambda cell: cell.upstream_ready,
        "not_yet_counted": lambda cell: True,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_guards_are_asked_about_the_subject_being_fired(kind: str) -> None:
    ready, waiting = Cell("ready", upstream_ready=True), Cell("waiting", upstream_ready=False)
    if kind == "reference":
        fired: ReferenceMachine | CompiledMachine = ReferenceMachine(SPECS["cell"], cell_guards())
        fired.add(ready)
        fired.add(waiting)
    else:
        fired = CompiledMachine(TABLES["cell"], cell_guards())
    assert fired.refusal(ready, "start") is None
    refused = fired.refusal(waiting, "start")
    assert refused is not None and refused.ident == "waiting"
    with pytest.raises(GuardRejected) as caught:
        fired.fire(waiting, "start")
    assert (caught.value.ident, caught.value.guard) == ("waiting", "upstream_generated")
    assert fired.fire(ready, "start") == "running"
    assert (ready.state, waiting.state) == ("running", "pending")
    if isinstance(fired, ReferenceMachine):
        assert fired.holds(ready, "upstream_generated") is True
        assert fired.holds(waiting, "upstream_generated") is False


def test_the_reference_machines_own_log_names_the_machine(caplog: pytest.LogCaptureFixture) -> None:
    fired, _, subject = machine("reference", "worker")
    with caplog.at_level(logging.INFO, logger="transitions"):
        fired.fire(subject, "start")
    entered = [r.getMessage() for r in caplog.records if r.name.startswith("transitions")]
    assert "worker: Finished processing state running enter callbacks." in entered
