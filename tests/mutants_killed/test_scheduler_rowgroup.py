"""Pre-batch processors change the seeded rows that the later steps see (`RowGroup.absorb`).

Kills the `RowGroup.absorb` survivors of `make mutants` (scheduler, rowgroup.py): a pre-batch
processor that rewrites a seed column and adds a column of its own must have the cell steps
after it see the rewritten values, and both columns must be written, in both engines. And
(`RowGroup.drop_row`, re-pass at f9a8007): a batch step that was waiting only for a row that
then fails is returned as ready by the drop and runs on the surviving rows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step, run_steps_async

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def shift_and_note(frame: pd.DataFrame) -> pd.DataFrame:
    """A pre-batch processor; it sees only the seed columns, indexed by record index."""
    assert list(frame.columns) == ["id"] and frame.index.name == "record_index", frame
    return frame.assign(id=frame["id"] + 100, note=[f"note {i}" for i in frame.index])


def check_post_batch_input(frame: pd.DataFrame) -> pd.DataFrame:
    """A post-batch processor; it sees every column, the pre-batch one last."""
    assert list(frame.columns) == ["id", "v", "note"], frame
    assert frame.index.name == "record_index", frame
    return frame


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_pre_batch_processor_rewrites_a_seed_column_and_adds_its_own(engine: str) -> None:
    seen: list[int] = []

    def double(row: dict[str, Any]) -> int:
        seen.append(row["id"])
        return row["id"] * 2

    steps = [Step("id", ids, kind="batch"), Step("v", double, depends_on=["id"])]
    config = RunConfig(buffer_size=2, engine=engine, **FAST)
    processors = [
        function_processor(shift_and_note, "pre_batch"),
        function_processor(check_post_batch_input, "post_batch"),
    ]
    result = asyncio.run(run_steps_async(steps, 3, config=config, processors=processors))
    assert result.outcome == "completed"
    assert sorted(seen) == [100, 101, 102]
    frame = result.dataset
    assert list(frame.columns) == ["id", "v", "note"] and frame.index.name == "record_index"
    assert list(frame["id"]) == [100, 101, 102]
    assert list(frame["v"]) == [200, 202, 204]
    assert list(frame["note"]) == ["note 0", "note 1", "note 2"]


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_failed_batch_step_drops_every_row_for_its_reason(engine: str) -> None:
    def judge(frame: pd.DataFrame) -> list[int]:
        if frame.index[0] == 0:
            raise ValueError("the judge rejected the batch")
        return [1] * len(frame)

    steps = [
        Step("id", ids, kind="batch"),
        Step("a", lambda row: row["id"], depends_on=["id"]),
        Step("judge", judge, kind="batch", depends_on=["a"]),
    ]
    config = RunConfig(buffer_size=2, engine=engine, **FAST)
    result = asyncio.run(run_steps_async(steps, 4, config=config))
    assert result.outcome == "partial" and result.actual_records == 2
    reason = "step 'judge' failed: ValueError: the judge rejected the batch"
    assert [dict(g.drop_reasons) for g in result.row_groups] == [{reason: 2}, {}]
    assert result.drop_reasons() == {reason: 2}
    assert result.failed_cells == {"id": 0, "a": 0, "judge": 2}
    assert result.skipped_cells == {"id": 0, "a": 0, "judge": 0}


def test_dropping_a_row_whose_batch_input_is_ready_does_not_start_the_batch_early() -> None:
    """Row 0's `a` is generated, then its `b` fails and drops it: the batch step `judge` (on
    `a`) no longer waits for row 0, but it still waits for row 2's `a`, and sees it."""
    judged: list[list[Any]] = []

    async def a(row: dict[str, Any]) -> int:
        if row["id"] == 2:
            await asyncio.sleep(0.05)
        return row["id"] + 1

    async def b(row: dict[str, Any]) -> int:
        if row["id"] == 0:
            await asyncio.sleep(0.01)
            raise ValueError("b rejected row 0")
        return 0

    def judge(frame: pd.DataFrame) -> list[int]:
        judged.append(frame["a"].tolist())
        return [1] * len(frame)

    steps = [
        Step("id", ids, kind="batch"),
        Step("a", a, depends_on=["id"]),
        Step("b", b, depends_on=["id"]),
        Step("judge", judge, kind="batch", depends_on=["a"]),
    ]
    config = RunConfig(buffer_size=3, engine="async", **FAST)
    result = asyncio.run(run_steps_async(steps, 3, config=config))
    assert judged == [[2, 3]]
    assert result.outcome == "partial" and list(result.dataset.index) == [1, 2]
    assert result.drop_reasons() == {"step 'b' failed: ValueError: b rejected row 0": 1}


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_each_row_group_is_admitted_with_its_planned_row_count(engine: str) -> None:
    steps = [Step("id", ids, kind="batch")]
    config = RunConfig(buffer_size=2, engine=engine, **FAST)
    result = asyncio.run(run_steps_async(steps, 5, config=config))
    admitted = [e for e in result.events if e.machine == "row_group" and e.trigger == "admit"]
    assert [(e.ident, e.details["rows"]) for e in admitted] == [(0, 2), (1, 2), (2, 1)]


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_batch_step_waiting_only_for_a_row_that_fails_runs_once_that_row_is_dropped(
    engine: str,
) -> None:
    """`judge` (a batch step) waits for `a` on every row. Row 0's `a` succeeds first; row 1's
    `a` then fails for good, and that drop is what releases `judge` (`RowGroup.drop_row`
    returns it as ready). It runs once, on the surviving row."""
    judged: list[list[int]] = []

    async def a(row: dict[str, Any]) -> int:
        if row["id"] == 1:
            await asyncio.sleep(0.02)  # row 0 is done before this row fails
            raise ValueError("row 1 refused")
        return row["id"]

    def judge(frame: pd.DataFrame) -> list[int]:
        judged.append(list(frame.index))
        return [10 * value for value in frame["a"]]

    steps = [
        Step("id", ids, kind="batch"),
        Step("a", a, depends_on=["id"]),
        Step("judge", judge, kind="batch", depends_on=["a"]),
    ]
    config = RunConfig(buffer_size=2, engine=engine, **FAST)
    result = asyncio.run(run_steps_async(steps, 2, config=config))
    assert judged == [[0]]
    assert result.outcome == "partial"
    assert result.dataset is not None and result.dataset["judge"].tolist() == [0]
    assert result.drop_reasons() == {"step 'a' failed: ValueError: row 1 refused": 1}
