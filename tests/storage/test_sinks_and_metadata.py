"""Sinks and metadata: failed writes leave nothing behind; both engines write one contract."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from rowforge.build import build_steps
from rowforge.errors import DatasetGenerationError
from rowforge.scheduler import RunConfig, Step
from rowforge.statemachine import SPECS, read_jsonl, replay
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def double(row: dict[str, Any]) -> int:
    if row["id"] % 9 == 4:
        raise ValueError("refused")
    return row["id"] * 2


STEPS = [
    Step("id", ids, kind="batch"),
    Step("double", double, depends_on=["id"]),
    Step("label", lambda row: f"#{row['double']}", depends_on=["double"]),
]


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_failing_write_fails_the_run_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    real_write = pq.write_table

    def disk_full_on_group_1(table: Any, where: Any, **options: Any) -> None:
        if table.num_rows and table.column("id")[0].as_py() == 5:
            where.write(b"PAR1 half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(table, where, **options)

    monkeypatch.setattr(pq, "write_table", disk_full_on_group_1)
    config = RunConfig(engine=engine, buffer_size=5, max_concurrent_row_groups=1, **FAST)  # type: ignore[arg-type]
    with pytest.raises(DatasetGenerationError) as caught:
        build_steps(STEPS, 20, tmp_path, config=config)
    assert "row group 1: writing to the sink failed: OSError" in str(caught.value)
    assert "No space left on device" in str(caught.value)
    files = sorted(p.name for p in (tmp_path / "parquet-files").iterdir())
    assert files == ["batch_00000.parquet"], "no partial or temporary file remains"
    metadata = read_metadata(tmp_path)
    assert metadata["outcome"] == "failed"
    assert "writing to the sink failed" in metadata["first_error"]
    assert [g["state"] for g in metadata["row_groups"]] == ["drained", "failed"]
    assert first_violation(tmp_path) is None


def test_both_engines_write_the_same_metadata(tmp_path: Path) -> None:
    documents = {}
    for engine in ("async", "sync"):
        config = RunConfig(engine=engine, buffer_size=6, **FAST)  # type: ignore[arg-type]
        build_steps(STEPS, 20, tmp_path / engine, config=config, dataset_name="parity")
        documents[engine] = read_metadata(tmp_path / engine)
        assert first_violation(tmp_path / engine) is None
    for document in documents.values():
        for volatile in ("engine", "started_at", "finished_at"):
            document.pop(volatile)
    assert documents["async"] == documents["sync"]
    document = documents["async"]
    assert document["outcome"] == "partial"
    assert document["target_num_records"] == 20
    assert document["actual_num_records"] == 20 - 2
    assert document["total_num_batches"] == 4
    assert document["skipped_cells"] == {"id": 0, "double": 0, "label": 2}
    assert document["schema"] == {"id": "int64", "double": "int64", "label": "large_string"}
    frames_equal = [
        pd.read_parquet(tmp_path / engine / "parquet-files") for engine in ("async", "sync")
    ]
    pd.testing.assert_frame_equal(*frames_equal)


def test_metadata_lists_every_contract_key(tmp_path: Path) -> None:
    build_steps(STEPS, 4, tmp_path, config=RunConfig(**FAST))
    keys = set(json.loads((tmp_path / "metadata.json").read_text()))
    assert keys >= {
        "schema_version",
        "engine",
        "dataset_name",
        "target_num_records",
        "actual_num_records",
        "buffer_size",
        "total_num_batches",
        "num_completed_batches",
        "file_paths",
        "schema",
        "outcome",
        "early_shutdown",
        "first_error",
        "dropped_records",
        "skipped_cells",
        "row_groups",
        "config_hash",
        "started_at",
        "finished_at",
    }


def test_events_and_traces_are_written_and_replay(tmp_path: Path) -> None:
    build_steps(STEPS, 10, tmp_path, config=RunConfig(trace=True, buffer_size=4, **FAST))
    events = read_jsonl(tmp_path / "events.jsonl")
    final = replay(events, SPECS)
    assert final[("run", "run")] == "partial"
    assert {e.machine for e in events} == {"run", "row_group", "worker", "cell"}
    traces = (tmp_path / "traces.jsonl").read_text().splitlines()
    assert len(traces) == 3 + 10 + 9  # seed batches, double per row, label per surviving row


def test_check_reports_the_first_violation(tmp_path: Path) -> None:
    build_steps(STEPS, 10, tmp_path, config=RunConfig(buffer_size=5, **FAST))
    assert first_violation(tmp_path) is None
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["source"] = "pending"
    (tmp_path / "events.jsonl").write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    problem = first_violation(tmp_path)
    assert problem is not None and problem.startswith("events.jsonl: event")
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "parquet-files" / "batch_00001.parquet").unlink()
    problem = first_violation(tmp_path)
    assert problem is not None and "batch_00001.parquet: listed in metadata.json" in problem
