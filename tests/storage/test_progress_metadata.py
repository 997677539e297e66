"""A build's final progress snapshot says what its metadata.json says (INV-4), however it ended,
and metadata.json's "models" section carries tokens, requests and the retries by cause.

Read the way users read an output: metadata.json from disk after `build` returned or raised.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.api import build
from rowforge.build import build_steps
from rowforge.config.dataset import load_config
from rowforge.errors import DatasetGenerationError
from rowforge.processors import function_processor
from rowforge.progress import ProgressSnapshot
from rowforge.scheduler import RunConfig, Step
from rowforge.scheduler.runner import run_plan_async
from rowforge.storage.metadata import read_metadata
from tests.scheduler.scripted import rate_limited_once

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0, "progress_interval_s": 0.01}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def assert_snapshot_is_metadata(snapshot: ProgressSnapshot, metadata: dict[str, Any]) -> None:
    """What metadata.json records of the run, the final snapshot says too."""
    assert snapshot.final
    assert snapshot.state == metadata["outcome"]
    assert snapshot.records_written == metadata["actual_num_records"]
    assert {s.name: s.skipped for s in snapshot.steps} == metadata["skipped_cells"]
    groups = metadata["row_groups"]
    dropped = sum(group["records_dropped"] for group in groups)
    assert snapshot.records_settled - snapshot.records_written == dropped
    states: dict[str, int] = {}
    for group in groups:
        states[group["state"]] = states.get(group["state"], 0) + 1
    assert {k: v for k, v in snapshot.row_groups.items() if k != "pending"} == states
    pending = metadata["total_num_batches"] - len(groups)
    assert snapshot.row_groups.get("pending", 0) == pending


def test_the_demo_config_reports_tokens_requests_and_latency_per_model(tmp_path: Path) -> None:
    snapshots: list[ProgressSnapshot] = []
    result = build(
        load_config(EXAMPLES / "support_dialogues.yaml"),
        40,
        tmp_path / "out",
        RunConfig(buffer_size=20, max_concurrent_row_groups=2, progress_interval_s=0.05),
        on_progress=snapshots.append,
    )
    metadata = read_metadata(tmp_path / "out")
    final = snapshots[-1]
    assert_snapshot_is_metadata(final, metadata)
    assert result.outcome == final.state
    models = metadata["models"]
    assert set(models) == {m.alias for m in final.models} == {"writer", "judge"}
    for model in final.models:
        stored = models[model.alias]
        assert model.requests == stored["requests"] > 0
        assert model.prompt_tokens == stored["prompt_tokens"] > 0
        assert model.completion_tokens == stored["completion_tokens"] > 0
        assert dict(model.retries) == stored["retries"]
        assert set(stored["latency_ms"]) == {"p50", "p90", "p99", "max"}


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_partial_and_failed_builds_final_snapshots_match_metadata(
    tmp_path: Path, engine: str
) -> None:
    def picky(row: dict[str, Any]) -> int:
        if row["id"] % 4 == 1:
            raise ValueError("refused")
        return row["id"]

    steps = [Step("id", ids, kind="batch"), Step("v", picky, depends_on=["id"])]
    config = RunConfig(buffer_size=4, engine=engine, **FAST)
    partial: list[ProgressSnapshot] = []
    build_steps(steps, 12, tmp_path / "partial", config=config, on_progress=partial.append)
    metadata = read_metadata(tmp_path / "partial")
    assert metadata["outcome"] == "partial"
    assert_snapshot_is_metadata(partial[-1], metadata)

    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.index[0] >= 4:
            raise RuntimeError("processor bug")
        return frame

    failed: list[ProgressSnapshot] = []
    with pytest.raises(DatasetGenerationError):
        build_steps(
            steps,
            12,
            tmp_path / "failed",
            config=config,
            processors=[function_processor(broken, "post_batch", "broken")],
            on_progress=failed.append,
        )
    metadata = read_metadata(tmp_path / "failed")
    assert metadata["outcome"] == "failed"
    assert_snapshot_is_metadata(failed[-1], metadata)


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_cancelled_builds_final_snapshot_matches_metadata(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(row: dict[str, Any]) -> int:
        if row["id"] >= 4:
            await asyncio.Event().wait()  # row group 0 is written, row group 1 hangs
        return row["id"]

    steps = [Step("id", ids, kind="batch"), Step("v", slow, depends_on=["id"])]
    config = RunConfig(buffer_size=4, engine=engine, max_concurrent_row_groups=1, **FAST)
    snapshots: list[ProgressSnapshot] = []

    def run_plan_cancelled(plan: Any, **options: Any) -> Any:
        """`run_plan`, cancelled (as Ctrl-C does) once the first row group is written."""

        async def main() -> Any:
            task = asyncio.create_task(run_plan_async(plan, **options))
            while not any(s.records_written for s in snapshots):
                await asyncio.sleep(0.01)
            task.cancel()
            return await task

        return asyncio.run(main())

    # the module, not `rowforge.build` (the package exports the function `build` under that name)
    monkeypatch.setattr(importlib.import_module("rowforge.build"), "run_plan", run_plan_cancelled)
    with pytest.raises(asyncio.CancelledError):
        build_steps(steps, 12, tmp_path / "out", config=config, on_progress=snapshots.append)
    metadata = read_metadata(tmp_path / "out")
    assert metadata["outcome"] == "cancelled"
    assert snapshots[-1].records_written == metadata["actual_num_records"] == 4
    assert_snapshot_is_metadata(snapshots[-1], metadata)


def test_retries_by_cause_reach_metadata_models(tmp_path: Path) -> None:
    steps = rate_limited_once("m")
    build_steps(steps, 6, tmp_path / "out", config=RunConfig(buffer_size=3, **FAST))
    assert read_metadata(tmp_path / "out")["models"] == {"m": {"retries": {"rate_limit": 6}}}
