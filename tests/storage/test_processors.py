"""Processors: failures raise after cleanup, the row count is a contract, built-ins work."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.build import build_steps, preview_steps
from rowforge.errors import ConfigError, DatasetGenerationError, DatasetProcessingError
from rowforge.processors import (
    DropColumns,
    RenameColumns,
    SchemaTransform,
    function_processor,
)
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def test_a_failing_processor_aborts_the_run_after_cancelling_in_flight_cells(
    tmp_path: Path,
) -> None:
    calls: list[float] = []
    cancelled: list[int] = []

    async def slow_text(row: dict[str, Any]) -> str:
        calls.append(time.monotonic())
        try:
            await asyncio.sleep(0.001 if row["id"] < 20 else 0.02 if row["id"] < 30 else 1.0)
        except asyncio.CancelledError:
            cancelled.append(row["id"])
            raise
        return f"text {row['id']}"

    def explode_on_group_2(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.index[0] == 20:
            raise RuntimeError("schema registry unavailable")
        return frame

    steps = [Step("id", ids, kind="batch"), Step("text", slow_text, depends_on=["id"])]
    config = RunConfig(buffer_size=10, max_concurrent_row_groups=2, **FAST)
    processor = function_processor(explode_on_group_2, "post_batch")
    with pytest.raises(DatasetGenerationError) as caught:
        build_steps(steps, 50, tmp_path, config=config, processors=[processor])
    returned = time.monotonic()
    message = str(caught.value)
    assert "row group 2: post_batch processor 'explode_on_group_2' failed" in message
    assert "RuntimeError: schema registry unavailable" in message
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert cancelled, "row group 3's cells were in flight and were cancelled"
    time.sleep(0.1)
    assert [t for t in calls if t > returned] == [], "no step starts after the raise"

    metadata = read_metadata(tmp_path)
    assert metadata["outcome"] == "failed"
    assert "explode_on_group_2" in metadata["first_error"]
    states = {group["index"]: group["state"] for group in metadata["row_groups"]}
    assert states[0] == states[1] == "drained" and states[2] == "failed"
    for index in (0, 1):
        frame = pd.read_parquet(tmp_path / "parquet-files" / f"batch_{index:05d}.parquet")
        assert list(frame.index) == list(range(index * 10, index * 10 + 10))
    assert first_violation(tmp_path) is None


def test_a_failing_pre_batch_processor_names_its_stage() -> None:
    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise KeyError("topic")

    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"], depends_on=["id"])]
    with pytest.raises(DatasetGenerationError, match="row group 0: pre_batch processor 'broken'"):
        preview_steps(steps, 5, processors=[function_processor(broken, "pre_batch")])


@pytest.mark.parametrize("engine", ["async", "sync"])
@pytest.mark.parametrize("stage", ["pre_batch", "post_batch"])
@pytest.mark.parametrize("change", ["add", "remove"])
def test_a_processor_that_changes_the_row_count_is_rejected(
    engine: str, stage: str, change: str
) -> None:
    """INV-5 on both engines: the sync engine behaves the same way (only steps may resize)."""

    def resize(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([frame, frame.iloc[:1]]) if change == "add" else frame.iloc[1:]

    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"], depends_on=["id"])]
    expected = "4" if change == "add" else "2"
    message = rf"row group 0: {stage} processor 'resize' changed the row count from 3 to {expected}"
    with pytest.raises(DatasetProcessingError, match=message):
        preview_steps(
            steps,
            3,
            config=RunConfig(engine=engine, **FAST),  # type: ignore[arg-type]
            processors=[function_processor(resize, stage)],  # type: ignore[arg-type]
        )


def test_pre_batch_changes_reach_later_steps_and_new_columns_are_kept() -> None:
    def shout(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(topic=frame["topic"].str.upper(), source="seed-v2")

    steps = [
        Step("topic", lambda frame: ["billing"] * len(frame), kind="batch"),
        Step("question", lambda row: f"about {row['topic']}", depends_on=["topic"]),
    ]
    result = preview_steps(steps, 2, processors=[function_processor(shout, "pre_batch")])
    assert result.dataset is not None
    assert list(result.dataset["question"]) == ["about BILLING"] * 2
    assert list(result.dataset["source"]) == ["seed-v2"] * 2


def test_built_in_processors_drop_rename_and_build_json() -> None:
    steps = [
        Step("id", ids, kind="batch"),
        Step("question", lambda row: f'say "{row["id"]}"', depends_on=["id"]),
    ]
    processors = [
        SchemaTransform("messages", [{"role": "user", "content": "{{ question }}"}]),
        DropColumns(["id"]),
        RenameColumns({"question": "prompt"}),
    ]
    result = preview_steps(steps, 3, processors=processors)
    assert result.dataset is not None
    assert list(result.dataset.columns) == ["prompt", "messages"]
    assert json.loads(result.dataset["messages"].iloc[1]) == [
        {"role": "user", "content": 'say "1"'}
    ]


def test_bad_processor_configuration_is_reported() -> None:
    with pytest.raises(ConfigError, match="SchemaTransform 'x': bad template at line 1"):
        SchemaTransform("x", {"a": "{{ unclosed"})
    with pytest.raises(ConfigError, match="stage must be one of"):
        DropColumns(["a"], stage="later")  # type: ignore[arg-type]
    steps = [Step("id", ids, kind="batch")]
    with pytest.raises(DatasetGenerationError, match="'DropColumns' failed: KeyError"):
        preview_steps(steps, 2, processors=[DropColumns(["nope"])])


def test_preview_writes_nothing_and_returns_traces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"], depends_on=["id"])]
    result = preview_steps(steps, 4, config=RunConfig(trace=True))
    assert list(tmp_path.iterdir()) == []
    assert result.dataset is not None and len(result.dataset) == 4
    assert len(result.task_traces) == 5
