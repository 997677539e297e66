"""Survivors of `make mutants` in rowforge.storage.resume_state, killed: what `resume` keeps of
an interrupted build. A file metadata.json does not know yet (the process was killed after the
rename, before metadata.json caught up) is recovered from the file itself (its skipped cells
from the event log); so is one whose count metadata.json has wrong; leftover temporary files
go; an unreadable file is refused naming it; each resume keeps the log before it under the
next free number.

The build is `test_storage_check.py`'s: 30 records, three row groups of 10, row group 0 writes 8
rows, 1 writes 9, 2 writes 8.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.build import build_steps, resume
from rowforge.errors import DatasetGenerationError, RowforgeError
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata
from tests.mutants_killed.test_storage_check import CONFIG, FAST, STEPS, FailingAt, ids

RECOVERED = "unknown (recovered from the file after a crash)"


def forget(output: Path, group: int, **change: Any) -> None:
    """metadata.json as a crash leaves it: row group `group` unknown (or, with `change`, known
    with those keys changed), the run still running."""
    path = output / "metadata.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    if change:
        document["row_groups"][group].update(change)
    else:
        document["row_groups"] = [g for g in document["row_groups"] if g["index"] != group]
    document["outcome"] = "running"
    path.write_text(json.dumps(document), encoding="utf-8")


def group_of(output: Path, index: int) -> dict[str, Any]:
    return next(g for g in read_metadata(output)["row_groups"] if g["index"] == index)


@pytest.mark.parametrize(
    "change",
    [{}, {"records_written": 5, "records_dropped": 5}, {"file": None}],
    ids=["unknown", "count disagrees with the file", "no file recorded"],
)
def test_a_file_metadata_json_does_not_know_is_recovered_from_the_file(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=CONFIG)
    kept = group_of(output, 0)
    forget(output, 1, **change)
    leftover = output / "parquet-files" / ".batch_00002.parquet.tmp"
    leftover.write_bytes(b"half a file")
    resume(output, steps=STEPS, config=CONFIG)
    assert group_of(output, 1) == {
        "index": 1,
        "state": "drained",
        "records_written": 9,
        "records_dropped": 1,
        "drop_reasons": {RECOVERED: 1},
        "skipped_cells": {"double": 1},  # from the log: the file cannot tell
        "file": "parquet-files/batch_00001.parquet",
        "first_record": 10,
        "records_resized": 0,
    }
    assert group_of(output, 0) == kept, "a row group metadata.json knows is kept as it was"
    assert not leftover.exists()
    metadata = read_metadata(output)
    assert (metadata["actual_num_records"], metadata["dropped_records"]) == (25, 5)
    assert metadata["outcome"] == "partial"
    assert metadata["skipped_cells"]["double"] == 5
    assert first_violation(output) is None
    assert sorted(pd.read_parquet(output / "parquet-files").index) == [
        i for i in range(30) if i % 7
    ]


def twice(frame: pd.DataFrame) -> pd.DataFrame:
    doubled = pd.concat([frame, frame])
    doubled["twice"] = range(len(doubled))
    return doubled


def test_a_recovered_row_group_that_grew_has_its_resize_and_no_drops(tmp_path: Path) -> None:
    steps = [
        Step("id", ids, kind="batch"),
        Step("twice", twice, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    config = RunConfig(buffer_size=10, **FAST)
    output = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        build_steps(steps, 30, output, config=config)
        forget(output, 2)
        result = resume(output, steps=steps, config=config)
    recovered = group_of(output, 2)
    # the grown rows start at 40 (row groups 0 and 1 grew to 20 rows each), not at the planned
    # 20: read from the file, so `rowforge check` accepts the resumed output
    assert recovered.pop("first_record") == 40
    assert first_violation(output) is None
    assert result.outcome == read_metadata(output)["outcome"] == "completed"
    assert recovered == {
        "index": 2,
        "state": "drained",
        "records_written": 20,
        "records_dropped": 0,
        "drop_reasons": {},
        "skipped_cells": {},
        "file": "parquet-files/batch_00002.parquet",
        "records_resized": 10,
    }
    metadata = read_metadata(output)
    assert (metadata["actual_num_records"], metadata["resized_records"]) == (60, 30)
    assert metadata["dropped_records"] == 0


def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=CONFIG)
    broken = output / "parquet-files" / "batch_00001.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(RowforgeError) as refused:
        resume(output, steps=STEPS, config=CONFIG)
    assert str(refused.value).startswith(f"{broken}: unreadable Parquet file: ")
    assert refused.value.__cause__ is not None


def test_each_resume_keeps_the_log_before_it_under_the_next_number(tmp_path: Path) -> None:
    output = tmp_path / "out"
    processor = FailingAt(10)
    with pytest.raises(DatasetGenerationError):
        build_steps(STEPS, 30, output, config=CONFIG, processors=[processor])
    first_log = (output / "events.jsonl").read_text(encoding="utf-8")
    with pytest.raises(DatasetGenerationError):
        resume(output, steps=STEPS, config=CONFIG, processors=[processor])
    second_log = (output / "events.jsonl").read_text(encoding="utf-8")
    processor.first = None
    resume(output, steps=STEPS, config=CONFIG, processors=[processor])
    assert sorted(p.name for p in output.glob("events*.jsonl")) == [
        "events-0001.jsonl",
        "events-0002.jsonl",
        "events.jsonl",
    ]
    assert (output / "events-0001.jsonl").read_text(encoding="utf-8") == first_log
    assert (output / "events-0002.jsonl").read_text(encoding="utf-8") == second_log
    assert read_metadata(output)["outcome"] == "partial"


def test_a_resume_without_an_event_log_starts_a_new_one_and_archives_nothing(
    tmp_path: Path,
) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=CONFIG)
    forget(output, 1)
    (output / "events.jsonl").unlink()
    resume(output, steps=STEPS, config=CONFIG)
    assert sorted(p.name for p in output.glob("events*.jsonl")) == ["events.jsonl"]


def drop_write_event(log: Path, group: int) -> None:
    lines = log.read_text(encoding="utf-8").splitlines()
    kept = [
        line
        for line in lines
        if not (
            (event := json.loads(line))["machine"] == "row_group"
            and event["id"] == group
            and event["trigger"] == "write"
        )
    ]
    assert len(kept) == len(lines) - 1
    log.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def test_skipped_cells_are_recovered_from_an_archived_log(tmp_path: Path) -> None:
    """An earlier resume archived the log and was killed before it first wrote metadata.json:
    the row group's write event is in events-0001.jsonl only."""
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=CONFIG)
    forget(output, 1)
    (output / "events.jsonl").rename(output / "events-0001.jsonl")
    resume(output, steps=STEPS, config=CONFIG)
    assert group_of(output, 1)["skipped_cells"] == {"double": 1}


def test_only_a_write_event_tells_the_skipped_cells_of_a_recovered_file(tmp_path: Path) -> None:
    """Row group 1 failed in the first run (its fail event counts the cells of that attempt);
    the resume wrote its file and was killed before the write event reached the log. The
    failed attempt's cells say nothing about the file's rows."""
    output = tmp_path / "out"
    processor = FailingAt(10)
    with pytest.raises(DatasetGenerationError):
        build_steps(STEPS, 30, output, config=CONFIG, processors=[processor])
    processor.first = None
    resume(output, steps=STEPS, config=CONFIG, processors=[processor])
    drop_write_event(output / "events.jsonl", 1)
    forget(output, 1)
    resume(output, steps=STEPS, config=CONFIG, processors=[processor])
    recovered = group_of(output, 1)
    assert (recovered["skipped_cells"], recovered["drop_reasons"]) == ({}, {RECOVERED: 1})


def test_a_log_naming_a_row_group_by_anything_but_its_number_is_refused(tmp_path: Path) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=CONFIG)
    forget(output, 1)
    log = output / "events.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    for event in events:
        if event["machine"] == "row_group" and event["id"] == 2:
            event["id"] = "2"
    log.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    with pytest.raises(RowforgeError) as refused:
        resume(output, steps=STEPS, config=CONFIG)
    assert str(refused.value) == f"{log}: a row group event names row group '2'"
