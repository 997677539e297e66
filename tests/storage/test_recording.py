"""Recording a build costs O(1) per checkpoint, and loses nothing when the run ends badly.

events.jsonl is streamed (no event is kept in memory by a build) and must still hold every
transition after a failure or a Ctrl-C; metadata.json is kept from running totals and must
still agree with its own row groups, also across a resume; and the recorder must not walk the
earlier row groups at every checkpoint (which made long runs slow down and grow).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowforge.build import build_steps, resume
from rowforge.errors import DatasetGenerationError
from rowforge.processors import Processor
from rowforge.scheduler import RunConfig, Step
from rowforge.statemachine import Event, EventFile, read_jsonl
from rowforge.statemachine.events import BUFFER_LINES
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import RowGroupRecord, RunIdentity, read_metadata, render_metadata

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
BUFFER = 10
RECORDS = 60  # six row groups


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def double(row: dict[str, Any]) -> int:
    if row["id"] % 9 == 4:  # a failed cell: its row is dropped, `label` is skipped there
        raise ValueError("refused")
    return int(row["id"]) * 2


STEPS = [
    Step("id", ids, kind="batch"),
    Step("double", double, depends_on=["id"]),
    Step("label", lambda row: f"#{row['double']}", depends_on=["double"]),
]


class FailingFrom(Processor):
    """A post-batch processor that fails for the row group starting at record `first`, until
    `first` is set to None (the same processor, by config hash, for a resume)."""

    stage = "post_batch"

    def __init__(self, first: int | None) -> None:
        self.first = first

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.first is not None and frame.index[0] == self.first:
            raise RuntimeError("processor broke")
        return frame


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every event the machines hand to an `EventFile`, as the line it should become."""
    lines: list[str] = []
    real = EventFile._append

    def spy(self: EventFile, event: Event) -> None:
        lines.append(event.to_json())
        real(self, event)

    monkeypatch.setattr(EventFile, "_append", spy)
    return lines


def assert_log_holds(output: Path, lines: list[str], last_run_state: str) -> None:
    on_disk = (output / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert on_disk == lines, "events.jsonl holds every transition, in order, whole lines only"
    runs = [e for e in read_jsonl(output / "events.jsonl") if e.machine == "run"]
    assert runs[-1].dest == last_run_state
    assert first_violation(output) is None


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_failing_build_leaves_every_transition_in_events_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: list[str], engine: str
) -> None:
    # With worker and cell events, a row group of 100 rows records more than a buffer holds, so
    # lines also reach the file between checkpoints.
    monkeypatch.setenv("ROWFORGE_TRACE", "1")
    output = tmp_path / "out"
    config = RunConfig(engine=engine, buffer_size=100, max_concurrent_row_groups=1, **FAST)  # type: ignore[arg-type]
    with pytest.raises(DatasetGenerationError, match="processor broke"):
        build_steps(STEPS, 600, output, config=config, processors=[FailingFrom(300)])
    assert len(recorded) > 3 * BUFFER_LINES
    assert_log_holds(output, recorded, "failed")
    assert read_metadata(output)["outcome"] == "failed"


def test_a_build_interrupted_by_ctrl_c_leaves_every_transition_in_events_jsonl(
    tmp_path: Path, recorded: list[str]
) -> None:
    async def interrupting(row: dict[str, Any]) -> int:
        if row["id"] == 35:  # Ctrl-C while row group 3 is running, outside the step
            asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGINT)
            await asyncio.sleep(5)
        return int(row["id"])

    steps = [Step("id", ids, kind="batch"), Step("value", interrupting, depends_on=["id"])]
    output = tmp_path / "out"
    config = RunConfig(buffer_size=BUFFER, max_concurrent_row_groups=1, **FAST)
    with pytest.raises(KeyboardInterrupt):
        build_steps(steps, RECORDS, output, config=config)
    assert_log_holds(output, recorded, "cancelled")
    metadata = read_metadata(output)
    assert metadata["outcome"] == "cancelled"
    assert metadata["actual_num_records"] == 30, "row groups 0-2 were written before Ctrl-C"


def totals_problem(metadata: Mapping[str, Any]) -> str | None:
    """The document's totals against sums over its own `row_groups` (None when they agree)."""
    groups = metadata["row_groups"]
    expected = {
        "actual_num_records": sum(g["records_written"] for g in groups),
        "resized_records": sum(g["records_resized"] for g in groups),
        "num_completed_batches": sum(1 for g in groups if g["file"]),
        "file_paths": [g["file"] for g in groups if g["file"]],
        "skipped_cells": {
            column: sum(g["skipped_cells"].get(column, 0) for g in groups)
            for column in metadata["skipped_cells"]
        },
    }
    for key, value in expected.items():
        if metadata[key] != value:
            return f"{key} is {metadata[key]!r}, the row groups sum to {value!r}"
    indexes = [g["index"] for g in groups]
    if indexes != sorted(indexes):
        return f"row_groups out of index order: {indexes}"
    return None


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_metadata_totals_equal_the_sums_over_row_groups_after_a_resume(
    tmp_path: Path, engine: str
) -> None:
    output = tmp_path / "out"
    processor = FailingFrom(30)
    config = RunConfig(engine=engine, buffer_size=BUFFER, max_concurrent_row_groups=1, **FAST)  # type: ignore[arg-type]
    with pytest.raises(DatasetGenerationError):
        build_steps(STEPS, RECORDS, output, config=config, processors=[processor])
    interrupted = read_metadata(output)
    assert interrupted["num_completed_batches"] == 3
    assert totals_problem(interrupted) is None
    processor.first = None
    resume(output, steps=STEPS, config=config, processors=[processor])
    metadata = read_metadata(output)
    assert [g["index"] for g in metadata["row_groups"]] == list(range(RECORDS // BUFFER))
    assert metadata["skipped_cells"]["label"] > 0, "the totals have something to add up"
    assert totals_problem(metadata) is None
    assert metadata["dropped_records"] == sum(g["records_dropped"] for g in metadata["row_groups"])
    assert metadata["dropped_records"] > 0
    assert metadata["outcome"] == "partial"
    assert first_violation(output) is None


def test_a_checkpoint_renders_only_the_row_group_that_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder renders each row group once, when it ends, never the earlier ones again:
    writing metadata.json after row group k used to re-render (and re-sum) all k, so 10^4 row
    groups cost 5 * 10^7 renders and slowed the run down as it went."""
    rendered: list[int] = []
    real = RowGroupRecord.as_json

    def spy(self: RowGroupRecord) -> dict[str, Any]:
        rendered.append(self.index)
        return real(self)

    monkeypatch.setattr(RowGroupRecord, "as_json", spy)
    output = tmp_path / "out"
    build_steps(STEPS, 120, output, config=RunConfig(buffer_size=BUFFER, **FAST))
    assert sorted(rendered) == list(range(12)), "each row group rendered exactly once"
    assert totals_problem(read_metadata(output)) is None


records = st.builds(
    RowGroupRecord,
    index=st.integers(0, 2000),
    state=st.sampled_from(["drained", "dropped", "failed", "cancelled"]),
    records_written=st.integers(0, 50),
    records_dropped=st.integers(0, 50),
    drop_reasons=st.dictionaries(st.sampled_from(["refused", "timeout"]), st.integers(1, 9)),
    skipped_cells=st.dictionaries(st.sampled_from(["a", "b", "z"]), st.integers(1, 9)),
    file=st.none() | st.just("parquet-files/x.parquet"),
    first_record=st.integers(0, 10**6),
    records_resized=st.integers(-5, 5),
)


@given(st.lists(records, max_size=40, unique_by=lambda record: record.index))
def test_the_running_document_agrees_with_its_row_groups_in_any_order(
    groups: list[RowGroupRecord],
) -> None:
    identity = RunIdentity("d", "hash", 1000, 10, 100, ("a", "b"), "2026-01-01T00:00:00Z")
    document = render_metadata(
        identity,
        engine="async",
        outcome="running",
        row_groups=groups,
        schema={"a": "int64"},
        early_shutdown=False,
        first_error=None,
        finished_at=None,
    )
    assert totals_problem(document) is None
    ordered = sorted(groups, key=lambda record: record.index)
    assert document["row_groups"] == [record.as_json() for record in ordered]
    assert document["dropped_records"] == 1000 + document["resized_records"] - sum(
        record.records_written for record in groups
    )
    assert set(document["skipped_cells"]) == {"a", "b"}, "only the run's columns are totalled"


def test_an_event_file_reads_back_what_it_recorded_and_refuses_events_after_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    with EventFile(path, buffer_lines=2) as log:
        recorded = [log.record("row_group", n, "admit", "pending", "seeding") for n in range(5)]
        assert path.read_text(encoding="utf-8").count("\n") == 4, "two full buffers written"
        assert list(log) == recorded and len(log) == 5, "iterating flushes the rest first"
    assert read_jsonl(path) == recorded
    with pytest.raises(ValueError, match="recorded after close"):
        log.record("row_group", 5, "admit", "pending", "seeding")
