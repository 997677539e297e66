"""Survivors of `make mutants` in rowforge.storage.sinks, arrow_types and resume_state, killed:
a row group whose values do not fit the run's types fails the run naming the row group and the
column (not a missing temporary file), and leaves no file; a post-batch processor that drops
the index's name still gets `record_index` in the files; a metadata.json without `row_groups`
resumes from the files alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.build import build_steps, resume
from rowforge.errors import DatasetGenerationError
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation, record_indexes
from rowforge.storage.metadata import read_metadata
from rowforge.storage.sinks import ParquetSink
from tests.mutants_killed.test_storage_check import CONFIG, FAST, STEPS, ids


def number_then_text(row: dict[str, Any]) -> Any:
    return row["id"] if row["id"] < 10 else f"x{row['id']}"


def test_a_row_group_that_does_not_fit_the_runs_types_fails_naming_it_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    steps = [Step("id", ids, kind="batch"), Step("v", number_then_text, depends_on=["id"])]
    config = RunConfig(buffer_size=10, max_concurrent_row_groups=1, **FAST)
    with pytest.raises(DatasetGenerationError) as failed:
        build_steps(steps, 20, tmp_path, config=config)
    expected = (
        "row group 1: writing to the sink failed: ValueError: row group 1: column 'v' does not "
        "fit the run's type int64: "
    )
    assert str(failed.value).startswith(expected), str(failed.value)
    assert read_metadata(tmp_path)["first_error"].startswith(expected)
    assert sorted(p.name for p in (tmp_path / "parquet-files").iterdir()) == ["batch_00000.parquet"]


def test_files_keep_the_record_index_name_when_a_processor_drops_it(tmp_path: Path) -> None:
    unnamed = function_processor(lambda frame: frame.rename_axis(None), "post_batch")
    build_steps(
        [Step("id", ids, kind="batch")],
        20,
        tmp_path,
        config=RunConfig(buffer_size=10, **FAST),
        processors=[unnamed],
    )
    frame = pd.read_parquet(tmp_path / "parquet-files")
    assert frame.index.name == "record_index"
    assert list(frame.index) == list(range(20))
    assert first_violation(tmp_path) is None


def test_a_metadata_json_without_row_groups_resumes_from_the_files(tmp_path: Path) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=CONFIG)
    (output / "parquet-files" / "batch_00002.parquet").unlink()
    path = output / "metadata.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["row_groups"]
    document["outcome"] = "running"
    path.write_text(json.dumps(document), encoding="utf-8")
    resume(output, steps=STEPS, config=CONFIG)
    groups = read_metadata(output)["row_groups"]
    assert [(g["index"], g["records_written"]) for g in groups] == [(0, 8), (1, 9), (2, 8)]
    assert [g["drop_reasons"] for g in groups[:2]] == [
        {"unknown (recovered from the file after a crash)": 2},
        {"unknown (recovered from the file after a crash)": 1},
    ]
    assert groups[2]["drop_reasons"] == {"step 'picky' failed: ValueError: no sevens": 2}


def test_a_sink_creates_its_directories_and_names_an_unnamed_index_record_index(
    tmp_path: Path,
) -> None:
    output = tmp_path / "new" / "out"
    sink = ParquetSink(output)
    frame = pd.DataFrame({"v": [1, 2]}, index=pd.Index([10, 11]))
    assert sink.write(1, frame) == "parquet-files/batch_00001.parquet"
    stored = pd.read_parquet(output / "parquet-files" / "batch_00001.parquet")
    assert stored.index.name == "record_index"
    assert list(stored.index) == [10, 11]
    assert record_indexes(output / "parquet-files" / "batch_00001.parquet") == [10, 11]
