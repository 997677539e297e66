"""Progress snapshots: delivered while a run works, and a final one that agrees with the result.

The final snapshot must say what the result (and metadata.json, which is written from the same
row groups) says, for completed, partial, failed and cancelled runs, on both engines: per step,
generated / skipped / failed cells; records written; the run's state. Retries are counted per
step and, by cause, per model.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import DatasetGenerationError
from rowforge.processors import function_processor
from rowforge.progress import ProgressSnapshot
from rowforge.scheduler import RunConfig, RunResult, Step, run_steps_async
from tests.scheduler.scripted import rate_limited_once

ENGINES = pytest.mark.parametrize("engine", ["async", "sync"])
FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def assert_final_matches(snapshot: ProgressSnapshot, result: RunResult) -> None:
    assert snapshot.final
    assert snapshot.state == result.outcome
    assert snapshot.records_written == result.actual_records
    ended = sum(group.planned_records + group.records_resized for group in result.row_groups)
    assert snapshot.records_settled == ended  # rows of row groups never admitted are not
    assert snapshot.in_flight == 0 and snapshot.deferred == 0
    assert {s.name: s.done for s in snapshot.steps} == dict(result.generated_cells)
    assert {s.name: s.skipped for s in snapshot.steps} == dict(result.skipped_cells)
    assert {s.name: s.failed for s in snapshot.steps} == dict(result.failed_cells)
    states: dict[str, int] = {}
    for group in result.row_groups:
        states[group.state] = states.get(group.state, 0) + 1
    pending = snapshot.row_groups.get("pending", 0)
    assert {k: v for k, v in snapshot.row_groups.items() if k != "pending"} == states
    assert pending * 4 >= result.target_records - ended  # buffer_size 4 or more in these tests


def collect(config: RunConfig, steps: list[Step], records: int, **options: Any) -> tuple[
    list[ProgressSnapshot], RunResult | BaseException
]:
    snapshots: list[ProgressSnapshot] = []
    try:
        result: RunResult | BaseException = asyncio.run(
            run_steps_async(steps, records, config=config, on_progress=snapshots.append, **options)
        )
    except DatasetGenerationError as error:
        result = error
    return snapshots, result


@ENGINES
def test_a_completed_runs_final_snapshot_matches_its_result(engine: str) -> None:
    async def slow(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.005)
        return row["id"] * 2

    steps = [Step("id", ids, kind="batch"), Step("v", slow, depends_on=["id"], resource="m")]
    config = RunConfig(
        buffer_size=10,
        engine=engine,
        progress_interval_s=0.01,
        max_parallel_requests={"m": 4},
        **FAST,
    )
    snapshots, result = collect(config, steps, 40)
    assert isinstance(result, RunResult) and result.outcome == "completed"
    assert len(snapshots) >= 3, "snapshots arrive while the run works, not only at the end"
    assert [s.final for s in snapshots].count(True) == 1 and snapshots[-1].final
    assert_final_matches(snapshots[-1], result)
    assert snapshots[-1].records_settled == 40 and "pending" not in snapshots[-1].row_groups
    settled = [s.records_settled for s in snapshots]
    assert settled == sorted(settled), "progress never goes backwards"
    (model,) = snapshots[-1].models
    assert model.alias == "m" and model.in_flight == 0
    assert snapshots[-1].eta_s is None and snapshots[-1].records_per_s > 0


@ENGINES
def test_a_partial_runs_final_snapshot_counts_the_failed_and_skipped_cells(engine: str) -> None:
    def picky(row: dict[str, Any]) -> int:
        if row["id"] % 3 == 0:
            raise ValueError("no multiples of 3")
        return row["id"]

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", picky, depends_on=["id"]),
        Step("w", lambda row: row["v"] + 1, depends_on=["v"]),
    ]
    config = RunConfig(buffer_size=5, engine=engine, progress_interval_s=0.01, **FAST)
    snapshots, result = collect(config, steps, 12)
    assert isinstance(result, RunResult) and result.outcome == "partial"
    final = snapshots[-1]
    assert_final_matches(final, result)
    by_name = {s.name: s for s in final.steps}
    assert (by_name["v"].failed, by_name["w"].skipped) == (4, 4)
    assert all(s.settled == s.total == 12 for s in final.steps)


@ENGINES
def test_a_failed_runs_final_snapshot_matches_the_result_attached_to_the_error(
    engine: str,
) -> None:
    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("processor bug")

    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"], depends_on=["id"])]
    config = RunConfig(buffer_size=4, engine=engine, progress_interval_s=0.01, **FAST)
    processors = [function_processor(broken, "post_batch", "broken")]
    snapshots, error = collect(config, steps, 8, processors=processors)
    assert isinstance(error, DatasetGenerationError)
    result = error.result  # type: ignore[attr-defined]
    assert result.outcome == "failed"
    assert_final_matches(snapshots[-1], result)


@ENGINES
def test_a_cancelled_run_still_delivers_a_final_snapshot_with_every_worker_settled(
    engine: str,
) -> None:
    started = asyncio.Event()

    async def hang(row: dict[str, Any]) -> int:
        started.set()
        await asyncio.Event().wait()
        return 0

    snapshots: list[ProgressSnapshot] = []

    async def main() -> None:
        steps = [Step("id", ids, kind="batch"), Step("v", hang, depends_on=["id"])]
        config = RunConfig(buffer_size=4, engine=engine, progress_interval_s=0.01, **FAST)
        task = asyncio.create_task(
            run_steps_async(steps, 8, config=config, on_progress=snapshots.append)
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    final = snapshots[-1]
    assert final.final and final.state == "cancelled"
    assert final.in_flight == 0 and final.records_written == 0
    assert sum(final.row_groups.values()) == 2
    assert all(s.done + s.skipped + s.failed <= s.total for s in final.steps)


@ENGINES
def test_retries_are_counted_per_step_and_by_cause_per_model(engine: str) -> None:
    steps = rate_limited_once("judge")
    config = RunConfig(buffer_size=3, engine=engine, progress_interval_s=0.01, **FAST)
    snapshots, result = collect(config, steps, 6)
    assert isinstance(result, RunResult) and result.outcome == "completed"
    final = snapshots[-1]
    (v,) = [s for s in final.steps if s.name == "v"]
    assert (v.rate_limited, v.retries) == (6, 0)
    (model,) = final.models
    assert dict(model.retries) == {"rate_limit": 6}


def test_a_progress_callback_that_raises_is_logged_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(snapshot: ProgressSnapshot) -> None:
        raise RuntimeError("display bug")

    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"], depends_on=["id"])]
    config = RunConfig(buffer_size=4, engine="async", progress_interval_s=0.01, **FAST)
    with caplog.at_level(logging.ERROR, logger="rowforge"):
        result = asyncio.run(run_steps_async(steps, 8, config=config, on_progress=broken))
    assert result.outcome == "completed" and result.actual_records == 8
    assert any("on_progress callback raised" in r.getMessage() for r in caplog.records)


def test_a_resized_runs_final_snapshot_counts_the_rows_a_resize_added() -> None:
    """A sync-engine `allow_resize` step doubles every row group: the records settled are the
    planned ones plus the resized ones, as the result counts them."""

    def twice(frame: pd.DataFrame) -> pd.DataFrame:
        doubled = pd.concat([frame, frame]).reset_index(drop=True)
        return doubled.assign(twice=range(len(doubled)))

    steps = [
        Step("id", ids, kind="batch"),
        Step("twice", twice, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    config = RunConfig(buffer_size=4, engine="sync", progress_interval_s=0.01, **FAST)
    snapshots, result = collect(config, steps, 8)
    assert isinstance(result, RunResult) and result.outcome == "completed"
    assert result.resized_records == 8
    assert snapshots[-1].records_settled == 16 == result.actual_records
    assert_final_matches(snapshots[-1], result)
