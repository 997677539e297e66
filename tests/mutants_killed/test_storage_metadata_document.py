"""Survivors of `make mutants` in rowforge.storage.metadata, ordered_items and recorder, killed:
metadata.json lists thousands of row groups in index order whatever order they ended in (the
items are kept in chunks of 512, split as they fill), its text is the documented layout (an
indented object whose lists hold one item per line), and the recorder writes what the run is at
(running: no finish time, no early shutdown, no error; finished: a UTC time in milliseconds)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from rowforge.errors import RowforgeError
from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.metadata import (
    METADATA_FILE,
    RowGroupRecord,
    RunIdentity,
    read_metadata,
    render_metadata,
    write_json_atomic,
)
from rowforge.storage.recorder import MetadataRecorder

IDENTITY = RunIdentity("d", "hash", 20_000, 10, 2_000, ("a", "b"), "2026-01-01T00:00:00.000+00:00")


def record(index: int) -> RowGroupRecord:
    """Row group `index`: every third one wrote no file (dropped), the others a file."""
    dropped = index % 3 == 0
    return RowGroupRecord(
        index=index,
        state="dropped" if dropped else "drained",
        records_written=0 if dropped else 9,
        records_dropped=10 if dropped else 1,
        drop_reasons={"refused": 10 if dropped else 1},
        skipped_cells={} if dropped else {"b": 1},
        file=None if dropped else f"parquet-files/batch_{index:05d}.parquet",
        first_record=10 * index,
    )


def rendered(order: list[int]) -> dict[str, Any]:
    return render_metadata(
        IDENTITY,
        engine="async",
        outcome="running",
        row_groups=[record(index) for index in order],
        schema={"a": "int64"},
        early_shutdown=False,
        first_error=None,
        finished_at=None,
    )


def reference_text(document: dict[str, Any]) -> str:
    """The documented layout: `json.dumps(indent=2)` of the object, except that the two lists
    hold one compact item per line."""
    members = []
    for key, value in document.items():
        if key in ("file_paths", "row_groups") and value:
            text = "[\n" + ",\n".join("    " + json.dumps(item) for item in value) + "\n  ]"
        else:
            text = json.dumps(value, indent=2).replace("\n", "\n  ")
        members.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(members) + "\n}\n"


ORDERS = {
    "in order": list(range(1_300)),
    "reversed": list(range(1_299, -1, -1)),
    "shuffled": random.Random(7).sample(range(1_300), 1_300),
    # a resumed run: every other row group kept, then the gaps filled, last to first
    "gaps filled": [*range(0, 1_300, 2), *range(1_299, 0, -2)],
    # 513 kept row groups (0, 2, ..., 1024) fill a chunk and split it; the first gap filled
    # after the split lies between the first two items of the new chunk
    "gaps filled in order": [*range(0, 1_026, 2), *range(1, 1_300, 2), *range(1_026, 1_300, 2)],
}


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_thousands_of_row_groups_are_listed_in_index_order_whatever_order_they_ended_in(
    order: list[int],
) -> None:
    document = rendered(order)
    assert [group["index"] for group in document["row_groups"]] == list(range(1_300))
    assert document["row_groups"] == [record(index).as_json() for index in range(1_300)]
    assert document["file_paths"] == [
        f"parquet-files/batch_{index:05d}.parquet" for index in range(1_300) if index % 3
    ]
    assert document["num_completed_batches"] == len(document["file_paths"]) == 866
    assert document["actual_num_records"] == 866 * 9
    assert document["skipped_cells"] == {"a": 0, "b": 866}
    assert document["dropped_records"] == 20_000 - 866 * 9


def test_metadata_json_is_an_indented_object_whose_lists_hold_one_item_per_line(
    tmp_path: Path,
) -> None:
    schema = RunSchema(existing=pa.schema([("a", pa.int64()), ("b", pa.string())]))
    kept = [record(index) for index in range(600)]
    recorder = MetadataRecorder(tmp_path, IDENTITY, "sync", kept, schema)
    for index in range(1_299, 599, -1):
        recorder.add(record(index))
    recorder.write("partial", early_shutdown=True, first_error="boom", finished=True)
    text = (tmp_path / METADATA_FILE).read_text(encoding="utf-8")
    document = json.loads(text)
    assert text == reference_text(document)
    assert [group["index"] for group in document["row_groups"]] == list(range(1_300))
    assert (document["engine"], document["outcome"]) == ("sync", "partial")
    assert (document["early_shutdown"], document["first_error"]) == (True, "boom")
    assert document["schema"] == {"a": "int64", "b": "string"}


def test_an_empty_run_lists_nothing_in_the_same_layout(tmp_path: Path) -> None:
    MetadataRecorder(tmp_path, IDENTITY, "async", (), RunSchema({})).write("running")
    text = (tmp_path / METADATA_FILE).read_text(encoding="utf-8")
    document = json.loads(text)
    assert text == reference_text(document)
    assert (document["file_paths"], document["row_groups"]) == ([], [])
    assert (document["actual_num_records"], document["num_completed_batches"]) == (0, 0)


def test_a_running_document_has_no_finish_time_no_early_shutdown_and_no_error(
    tmp_path: Path,
) -> None:
    recorder = MetadataRecorder(tmp_path, IDENTITY, "async", [record(1)], RunSchema({}))
    recorder.write("running")
    document = read_metadata(tmp_path)
    assert document["outcome"] == "running"
    assert document["early_shutdown"] is False
    assert document["first_error"] is None
    assert document["finished_at"] is None
    assert document["started_at"] == IDENTITY.started_at


def test_a_finished_document_says_when_in_utc_to_the_millisecond(tmp_path: Path) -> None:
    before = dt.datetime.now(dt.UTC)
    recorder = MetadataRecorder(tmp_path, IDENTITY, "async", [], RunSchema({}))
    recorder.write("cancelled", finished=True)
    after = dt.datetime.now(dt.UTC)
    finished = read_metadata(tmp_path)["finished_at"]
    assert len(finished) == len("2026-01-01T00:00:00.000+00:00"), finished
    assert finished.endswith("+00:00")
    moment = dt.datetime.fromisoformat(finished)
    assert before - dt.timedelta(milliseconds=1) <= moment <= after


def test_an_unreadable_or_foreign_metadata_json_is_refused_saying_what_is_wrong(
    tmp_path: Path,
) -> None:
    with pytest.raises(RowforgeError) as missing:
        read_metadata(tmp_path)
    assert str(missing.value) == f"{tmp_path}: no metadata.json; not a rowforge output"
    path = tmp_path / METADATA_FILE
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(RowforgeError) as unreadable:
        read_metadata(tmp_path)
    assert str(unreadable.value).startswith(f"{path}: unreadable metadata: Expecting")
    assert isinstance(unreadable.value.__cause__, json.JSONDecodeError)
    for version in (2, None):
        path.write_text(json.dumps({"schema_version": version}), encoding="utf-8")
        with pytest.raises(RowforgeError) as foreign:
            read_metadata(tmp_path)
        assert str(foreign.value) == f"{path}: schema_version {version!r}, expected 1"


def test_a_preview_reports_the_run_as_it_ended() -> None:
    document = render_metadata(
        IDENTITY,
        engine="sync",
        outcome="failed",
        row_groups=[record(1)],
        schema={"a": "int64"},
        early_shutdown=True,
        first_error="row group 1: boom",
        finished_at="2026-01-01T00:00:01.000+00:00",
    )
    assert (document["engine"], document["outcome"]) == ("sync", "failed")
    assert (document["early_shutdown"], document["first_error"]) == (True, "row group 1: boom")
    assert document["finished_at"] == "2026-01-01T00:00:01.000+00:00"
    assert document["schema"] == {"a": "int64"}


def test_recipe_json_and_other_documents_are_written_indented_by_two(tmp_path: Path) -> None:
    path = tmp_path / "recipe.json"
    document = {"steps": [{"name": "id", "kind": "batch"}], "config": {"buffer_size": 10}}
    write_json_atomic(path, document)
    assert path.read_text(encoding="utf-8") == json.dumps(document, indent=2) + "\n"
    assert not list(tmp_path.glob(".*.tmp"))
