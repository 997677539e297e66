"""Survivors of `make mutants` in rowforge.storage.check and trace_check, killed: `rowforge check`
names each problem with its whole message, on a fresh output, on a resumed one (two event logs)
and on an output whose metadata.json predates a key.

The output is the one `tests/storage/test_trace_check.py` builds: 30 records in three row groups
of 10; `picky` refuses every multiple of 7 (the row is dropped, `double` skipped), so the run is
partial with 25 records: row group 0 wrote 8 (0 and 7 dropped), 1 wrote 9, 2 wrote 8.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rowforge.build import build_steps, resume
from rowforge.cli import app
from rowforge.errors import DatasetGenerationError
from rowforge.hints import runnable_command
from rowforge.processors import Processor
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation, record_indexes

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
CONFIG = RunConfig(buffer_size=10, early_shutdown_window=1000, max_concurrent_row_groups=1, **FAST)
TERMINAL = ("drained", "dropped", "failed", "cancelled")


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def picky(row: dict[str, int]) -> int:
    if row["id"] % 7 == 0:
        raise ValueError("no sevens")
    return row["id"]


def double(row: dict[str, int]) -> int:
    return 2 * row["picky"]


STEPS = [
    Step("id", ids, kind="batch"),
    Step("picky", picky, depends_on=["id"]),
    Step("double", double, depends_on=["picky"]),
]


class FailingAt(Processor):
    """Fails the row group starting at record `first` until `first` is None (a resume)."""

    stage = "post_batch"

    def __init__(self, first: int | None) -> None:
        self.first = first

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.first is not None and frame.index[0] == self.first:
            raise RuntimeError("processor broke")
        return frame


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("built") / "out"
    build_steps(STEPS, 30, directory, config=CONFIG)
    return directory


@pytest.fixture(scope="module")
def resumed_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Row group 1 failed the first run (its log kept as events-0001.jsonl); resume wrote it."""
    directory = tmp_path_factory.mktemp("resumed") / "out"
    processor = FailingAt(10)
    with pytest.raises(DatasetGenerationError):
        build_steps(STEPS, 30, directory, config=CONFIG, processors=[processor])
    processor.first = None
    resume(directory, steps=STEPS, config=CONFIG, processors=[processor])
    return directory


@pytest.fixture
def output(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(built, copy)
    return copy


@pytest.fixture
def resumed(resumed_once: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(resumed_once, copy)
    return copy


def events_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def rewrite_events(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    events = events_of(path)
    change(events)
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")


def rewrite_metadata(output: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = output / "metadata.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")


def terminal_event(events: list[dict[str, Any]], group: int) -> dict[str, Any]:
    return next(
        e
        for e in events
        if e["machine"] == "row_group" and e["id"] == group and e["dest"] in TERMINAL
    )


def set_index(path: Path, index: list[int]) -> None:
    frame = pd.read_parquet(path)
    frame.index = pd.Index(index, name=frame.index.name)
    frame.to_parquet(path)


def batch(output: Path, group: int) -> Path:
    return output / "parquet-files" / f"batch_{group:05d}.parquet"


# -- the directory itself ------------------------------------------------------------------


def test_the_cli_says_ok_for_a_sound_output_and_names_a_violation(output: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["check", str(output)])
    assert (ok.exit_code, ok.output) == (0, f"OK: {output}\n")
    (output / "events.jsonl").unlink()
    bad = runner.invoke(app, ["check", str(output)])
    assert bad.exit_code == 1
    assert f"VIOLATION: {output}: no events.jsonl" in bad.output


def test_a_directory_without_metadata_or_without_event_logs_is_named(tmp_path: Path) -> None:
    assert first_violation(tmp_path) == f"{tmp_path}: no metadata.json; not a rowforge output"
    (tmp_path / "metadata.json").write_text('{"schema_version": 1}', encoding="utf-8")
    (tmp_path / "notes-events.jsonl").write_text("", encoding="utf-8")
    assert first_violation(tmp_path) == f"{tmp_path}: no events.jsonl"


# -- the event logs ------------------------------------------------------------------------


def test_a_log_the_specs_refuse_is_named_with_the_event(output: Path) -> None:
    def forge(events: list[dict[str, Any]]) -> None:
        events[-1]["source"] = "pending"

    rewrite_events(output / "events.jsonl", forge)
    found = first_violation(output)
    assert found is not None and found.startswith("events.jsonl: event 14 (run 'run' "), found


def test_a_row_group_without_cell_outcomes_is_named(output: Path) -> None:
    for cells in (None, {}, [1, 2]):

        def strip(events: list[dict[str, Any]], cells: Any = cells) -> None:
            terminal_event(events, 2)["details"]["cells"] = cells

        rewrite_events(output / "events.jsonl", strip)
        assert first_violation(output) == (
            "events.jsonl: row group 2 ended drained without its cell outcomes"
        )


def test_workers_not_drained_are_counted(output: Path) -> None:
    def undrain(events: list[dict[str, Any]]) -> None:
        details = terminal_event(events, 1)["details"]
        details["workers_started"] = 20
        details["workers_drained"] = 17

    rewrite_events(output / "events.jsonl", undrain)
    assert first_violation(output) == (
        "events.jsonl: row group 1 ended drained with 3 of its 20 workers not drained"
    )


def test_a_worker_count_that_is_not_a_number_is_no_count(output: Path) -> None:
    for key in ("workers_started", "workers_drained"):

        def spoil(events: list[dict[str, Any]], key: str = key) -> None:
            terminal_event(events, 0)["details"][key] = "19"

        rewrite_events(output / "events.jsonl", spoil)
        assert first_violation(output) == (
            "events.jsonl: row group 0 ended drained without a count of its workers"
        )


def test_cell_outcomes_that_do_not_add_up_are_shown(output: Path) -> None:
    def spoil(events: list[dict[str, Any]]) -> None:
        terminal_event(events, 0)["details"]["cells"]["double"] = [8, 1, 0]

    rewrite_events(output / "events.jsonl", spoil)
    assert first_violation(output) == (
        "events.jsonl: row group 0 ended drained with cell outcomes that do not add up to one "
        "row count per column: {'double': 9, 'id': 10, 'picky': 10}"
    )


def test_a_row_group_left_open_while_the_run_ended_is_named(output: Path) -> None:
    def lose(events: list[dict[str, Any]]) -> None:
        events.remove(terminal_event(events, 2))
        events.remove(terminal_event(events, 0))

    rewrite_events(output / "events.jsonl", lose)
    assert first_violation(output) == (
        "events.jsonl: row groups 0, 2 never reached a terminal state"
    )


def test_a_log_without_the_run_is_unfinished(output: Path) -> None:
    def no_run(events: list[dict[str, Any]]) -> None:
        events[:] = [e for e in events if e["machine"] != "run"]

    rewrite_events(output / "events.jsonl", no_run)
    assert first_violation(output) == (
        "events.jsonl: the run did not reach a terminal state, yet metadata.json says 'partial'"
    )


def test_the_run_state_read_is_the_run_machines_not_the_last_row_groups(output: Path) -> None:
    def last_is_a_row_group(events: list[dict[str, Any]]) -> None:
        run_end = events.pop()
        events.insert(len(events) - 1, run_end)

    rewrite_events(output / "events.jsonl", last_is_a_row_group)
    assert first_violation(output) is None


def test_a_resumed_output_with_two_logs_passes_and_each_log_is_checked(resumed: Path) -> None:
    assert sorted(p.name for p in resumed.glob("events*.jsonl")) == [
        "events-0001.jsonl",
        "events.jsonl",
    ]
    assert first_violation(resumed) is None

    def undrain(events: list[dict[str, Any]]) -> None:
        terminal_event(events, 0)["details"]["workers_drained"] -= 1

    rewrite_events(resumed / "events-0001.jsonl", undrain)
    found = first_violation(resumed)
    assert found is not None
    assert found.startswith("events-0001.jsonl: row group 0 ended drained with 1 of its "), found


def test_the_last_run_is_judged_by_the_newest_log(resumed: Path) -> None:
    def no_end(events: list[dict[str, Any]]) -> None:
        events.pop()

    rewrite_events(resumed / "events.jsonl", no_end)
    assert first_violation(resumed) == (
        "events.jsonl: the run did not reach a terminal state, yet metadata.json says 'partial'"
    )


def test_a_row_group_kept_from_an_earlier_run_is_checked_against_that_runs_log(
    resumed: Path,
) -> None:
    def disagree(document: dict[str, Any]) -> None:
        document["row_groups"][0]["state"] = "dropped"

    rewrite_metadata(resumed, disagree)
    assert first_violation(resumed) == (
        "row group 0: metadata.json says 'dropped', the events say 'drained'"
    )


def test_a_row_group_resized_or_without_cells_is_not_held_to_its_planned_rows(
    output: Path,
) -> None:
    def grow(document: dict[str, Any]) -> None:
        document["row_groups"][2]["records_dropped"] += 1
        document["row_groups"][2]["records_resized"] = 1
        document["resized_records"] = 1
        document["dropped_records"] += 1

    rewrite_metadata(output, grow)
    assert first_violation(output) is None

    def no_cells(events: list[dict[str, Any]]) -> None:
        details = terminal_event(events, 0)["details"]
        details["cells"] = {column: [0, 0, 0] for column in details["cells"]}

    rewrite_events(output / "events.jsonl", no_cells)
    rewrite_metadata(output, lambda document: document["row_groups"][0].update(skipped_cells={}))
    assert first_violation(output) == (
        "row group 0: 8 records written but only 0 cells of one column generated (or skipped "
        "by its condition)"
    )


def test_skipped_cells_must_agree_with_metadata(output: Path) -> None:
    def skip(document: dict[str, Any]) -> None:
        document["row_groups"][0]["skipped_cells"] = {"double": 2, "picky": 0}

    rewrite_metadata(output, skip)
    assert first_violation(output) == (
        "row group 0: skipped cells {'double': 2} in the events, "
        "{'double': 2, 'picky': 0} in metadata"
    )


def test_planned_rows_must_agree_with_the_cells(output: Path) -> None:
    def plan_more(document: dict[str, Any]) -> None:
        document["row_groups"][1]["records_dropped"] += 2
        document["dropped_records"] += 2

    rewrite_metadata(output, plan_more)
    assert first_violation(output) == (
        "row group 1: the events account for 10 rows' cells, metadata for 12"
    )


@pytest.mark.parametrize(
    ("outcome", "actual", "problem"),
    [
        ("partial", 30, "metadata.json: outcome 'partial' with 30 of 30 records"),
        ("partial", 0, "metadata.json: outcome 'partial' with 0 of 30 records"),
        ("completed", 29, "metadata.json: outcome 'completed' with 29 of 30 records"),
    ],
)
def test_the_outcome_must_say_what_the_counts_say(
    output: Path, outcome: str, actual: int, problem: str
) -> None:
    def claim(document: dict[str, Any]) -> None:
        document["outcome"] = outcome
        document["actual_num_records"] = actual

    rewrite_metadata(output, claim)
    assert first_violation(output) == problem


def test_the_outcome_counts_the_resized_records(output: Path) -> None:
    def resized(document: dict[str, Any]) -> None:
        document["outcome"] = "completed"
        document["target_num_records"] = 20
        document["resized_records"] = 5

    rewrite_metadata(output, resized)
    found = first_violation(output)
    assert found is not None and not found.startswith("metadata.json: outcome"), found

    def missing(document: dict[str, Any]) -> None:
        del document["resized_records"]
        document["outcome"] = "completed"
        document["target_num_records"] = 25

    rewrite_metadata(output, missing)
    found = first_violation(output)
    assert found is not None and not found.startswith("metadata.json: outcome"), found


# -- metadata.json against the files -------------------------------------------------------


def test_metadata_without_row_groups_is_named(output: Path) -> None:
    rewrite_metadata(output, lambda document: document.pop("row_groups"))
    assert first_violation(output) == "metadata.json: 'row_groups' is missing"


def test_a_file_holding_another_count_is_named_with_both(output: Path) -> None:
    def fewer(document: dict[str, Any]) -> None:
        group = document["row_groups"][1]
        group["records_written"] -= 1
        group["records_dropped"] += 1

    rewrite_metadata(output, fewer)
    assert first_violation(output) == (
        "parquet-files/batch_00001.parquet: 9 records on disk, metadata.json says 8"
    )


def test_an_unreadable_file_is_named_with_the_reason(output: Path) -> None:
    batch(output, 1).write_bytes(b"not parquet")
    found = first_violation(output)
    assert found is not None
    assert found.startswith("parquet-files/batch_00001.parquet: listed in metadata.json but ")
    assert "unreadable: " in found and "Parquet" in found, found


def test_a_file_without_exactly_one_record_index_is_unreadable(output: Path) -> None:
    table = pa.table({"id": [10, 11]})
    pq.write_table(table, batch(output, 1))
    assert first_violation(output) == (
        "parquet-files/batch_00001.parquet: listed in metadata.json but unreadable: "
        "expected one index column (the record index), found []"
    )
    frame = pd.DataFrame({"id": [10, 11], "k": [1, 2]}).set_index(["id", "k"])
    frame.to_parquet(batch(output, 1))
    assert first_violation(output) == (
        "parquet-files/batch_00001.parquet: listed in metadata.json but unreadable: "
        "expected one index column (the record index), found ['id', 'k']"
    )


def test_record_indexes_are_read_in_file_order_from_a_column_or_a_range(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pd.DataFrame({"v": [1, 2, 3]}, index=pd.Index([12, 10, 11], name="record_index")).to_parquet(
        path
    )
    assert record_indexes(path) == [12, 10, 11]
    pd.DataFrame({"v": [1, 2, 3]}, index=pd.RangeIndex(20, 26, 2)).to_parquet(path)
    assert record_indexes(path) == [20, 22, 24]


def test_unlisted_batch_files_are_named_and_other_files_ignored(output: Path) -> None:
    (output / "parquet-files" / "notes.parquet").write_bytes(b"x")
    (output / "batch_00009.parquet").write_bytes(b"x")
    assert first_violation(output) is None
    shutil.copy(batch(output, 2), output / "parquet-files" / "batch_00009.parquet")
    shutil.copy(batch(output, 2), output / "parquet-files" / "batch_00005.parquet")
    assert first_violation(output) == (
        "parquet-files/batch_00005.parquet: on disk but not in metadata.json"
    )


def test_file_paths_must_list_the_row_groups_files(output: Path) -> None:
    rewrite_metadata(output, lambda document: document["file_paths"].pop())
    assert first_violation(output) == "metadata.json: 'file_paths' disagrees with 'row_groups'"
    rewrite_metadata(output, lambda document: document.pop("file_paths"))
    assert first_violation(output) == "metadata.json: 'file_paths' disagrees with 'row_groups'"


def test_the_claimed_total_must_be_what_the_files_hold(output: Path) -> None:
    rewrite_metadata(output, lambda document: document.update(actual_num_records=24))
    assert first_violation(output) == ("metadata.json: actual_num_records is 24, the files hold 25")


def test_a_record_index_in_two_files_is_named_by_the_smallest(output: Path) -> None:
    """metadata.json without `first_record` (written before row groups had one) skips the range
    check; a record index written twice is still found."""

    def older(document: dict[str, Any]) -> None:
        for group in document["row_groups"]:
            del group["first_record"]

    rewrite_metadata(output, older)
    assert first_violation(output) is None
    set_index(batch(output, 2), [9, 8, 5, 4, 30, 31, 32, 33])
    assert first_violation(output) == (
        "parquet-files/batch_00002.parquet: record index 4 also appears in another file"
    )


def test_a_record_index_at_either_end_of_its_row_group_is_inside_it(output: Path) -> None:
    set_index(batch(output, 1), [10, 11, 12, 13, 15, 16, 17, 18, 19])
    assert first_violation(output) is None
    set_index(batch(output, 1), [11, 12, 13, 15, 16, 17, 18, 19, 20])
    assert first_violation(output) == (
        "parquet-files/batch_00001.parquet: record index 20 is outside row group 1's records 10..19"
    )
    set_index(batch(output, 1), [9, 11, 12, 13, 15, 16, 17, 18, 19])
    assert first_violation(output) == (
        "parquet-files/batch_00001.parquet: record index 9 is outside row group 1's records 10..19"
    )


def test_a_repeated_index_in_one_file_is_counted(output: Path) -> None:
    set_index(batch(output, 1), [10, 10, 10, 13, 15, 16, 17, 18, 18])
    assert first_violation(output) == (
        "parquet-files/batch_00001.parquet: 3 record indexes appear more than once in the file"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"dropped_records": "5"},
            "metadata.json: dropped_records is '5'; counts are never negative",
        ),
        (
            {"target_num_records": -1, "outcome": "failed"},
            "metadata.json: target_num_records is -1; counts are never negative",
        ),
        (
            {"dropped_records": 4},
            "metadata.json: actual_num_records 25 != target 30 + resized 0 - dropped 4",
        ),
        (
            {"dropped_records": 3, "resized_records": -1},
            "metadata.json: actual_num_records 25 != target 30 + resized -1 - dropped 3",
        ),
    ],
)
def test_counts_must_be_whole_non_negative_and_add_up(
    output: Path, change: dict[str, Any], problem: str
) -> None:
    rewrite_metadata(output, lambda document: document.update(change))
    assert first_violation(output) == problem


def test_counts_left_out_of_metadata_count_as_zero(output: Path) -> None:
    rewrite_metadata(output, lambda document: document.pop("resized_records"))
    assert first_violation(output) is None
    rewrite_metadata(output, lambda document: document.pop("dropped_records"))
    assert first_violation(output) == (
        "metadata.json: actual_num_records 25 != target 30 + resized 0 - dropped 0"
    )


def test_a_row_group_without_a_file_does_not_end_the_listing(output: Path) -> None:
    """Row group 0 wrote no file (as if all its rows were dropped): the files after it are still
    matched against metadata.json."""

    def without_group_0(document: dict[str, Any]) -> None:
        document["row_groups"][0]["file"] = None
        document["file_paths"].remove("parquet-files/batch_00000.parquet")
        document["actual_num_records"] = 17
        document["dropped_records"] = 13

    batch(output, 0).unlink()
    rewrite_metadata(output, without_group_0)
    assert first_violation(output) is None
    shutil.copy(batch(output, 1), output / "parquet-files" / "batch_00007.parquet")
    assert first_violation(output) == (
        "parquet-files/batch_00007.parquet: on disk but not in metadata.json"
    )


def test_an_outcome_without_a_record_count_counts_none(output: Path) -> None:
    rewrite_metadata(output, lambda document: document.pop("actual_num_records"))
    assert first_violation(output) == "metadata.json: outcome 'partial' with 0 of 30 records"


def test_an_outcome_without_a_target_plans_none(output: Path) -> None:
    rewrite_metadata(output, lambda document: document.pop("target_num_records"))
    assert first_violation(output) == "metadata.json: outcome 'partial' with 25 of 0 records"


def test_one_record_of_many_is_a_partial_outcome(output: Path) -> None:
    rewrite_metadata(output, lambda document: document.update(actual_num_records=1))
    assert first_violation(output) == "metadata.json: actual_num_records is 1, the files hold 25"


def test_a_run_still_running_is_reported_with_what_to_do(output: Path) -> None:
    rewrite_metadata(output, lambda document: document.update(outcome="running"))
    assert first_violation(output) == (
        "metadata.json: the run never finished (outcome 'running'): it was killed or crashed; "
        f"'{runnable_command('resume', '<output directory>')}' finishes it"
    )


def test_a_row_group_with_no_event_in_the_logs_is_not_compared(output: Path) -> None:
    """A row group recovered from its file after a crash that came before its events reached
    the log: metadata.json lists it, no log has a word on it."""

    def forget_group_2(events: list[dict[str, Any]]) -> None:
        events[:] = [e for e in events if not (e["machine"] == "row_group" and e["id"] == 2)]

    rewrite_events(output / "events.jsonl", forget_group_2)
    assert first_violation(output) is None
