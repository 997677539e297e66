"""Transient retries in both engines: `max_retries` and `retry_budget_s` give an exact count.

Kills survivors of `make mutants` (scheduler, sync_engine.py) in `_attempts` (the retry count
and the transient budget spent: failed attempts plus waits) and `_run_group` (the reason a
row group whose every row was dropped ends with). Each step gives up after 200 calls, so a
mutant that never stops retrying fails an assertion instead of hanging.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import DatasetGenerationError, RetryableError
from rowforge.scheduler import RunConfig, Step, run_steps_async

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
ENGINES = pytest.mark.parametrize("engine", ["async", "sync"])


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def run_failing(engine: str, retry_after: float | None, **config: Any) -> list[int]:
    calls: list[int] = []

    def unavailable(row: dict[str, Any]) -> int:
        calls.append(row["id"])
        if len(calls) >= 200:
            return 0
        raise RetryableError("503 service unavailable", retry_after=retry_after)

    steps = [Step("id", ids, kind="batch"), Step("v", unavailable, depends_on=["id"])]
    settings = RunConfig(buffer_size=1, engine=engine, **{**FAST, **config})
    with pytest.raises(DatasetGenerationError) as caught:
        asyncio.run(run_steps_async(steps, 1, config=settings))
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed"
    assert result.drop_reasons() == {"step 'v' failed: RetryableError: 503 service unavailable": 1}
    return calls


@ENGINES
def test_max_retries_allows_exactly_that_many_retries(engine: str) -> None:
    assert len(run_failing(engine, None, max_retries=2, retry_budget_s=5.0)) == 3


@ENGINES
def test_the_retry_budget_counts_the_waits_it_was_asked_for(engine: str) -> None:
    """Each 503 asks for 30 ms, which is granted while budget is left: after the 4th wait 120 ms
    of the 100 ms budget are spent, so the 5th failure is final."""
    assert len(run_failing(engine, 0.03, retry_budget_s=0.1)) == 5


@ENGINES
def test_the_retry_budget_counts_the_time_failed_attempts_took(engine: str) -> None:
    calls: list[int] = []

    async def slow_failure(row: dict[str, Any]) -> int:
        calls.append(row["id"])
        if len(calls) >= 200:
            return 0
        await asyncio.sleep(0.03)
        raise RetryableError("503 service unavailable")

    steps = [Step("id", ids, kind="batch"), Step("v", slow_failure, depends_on=["id"])]
    settings = RunConfig(buffer_size=1, engine=engine, retry_budget_s=0.1, **FAST)
    with pytest.raises(DatasetGenerationError):
        asyncio.run(run_steps_async(steps, 1, config=settings))
    assert 3 <= len(calls) <= 5  # 30 ms each, no wait between: about 0.1 s / 30 ms


@ENGINES
def test_a_row_group_whose_every_row_failed_ends_dropped_for_that_reason(engine: str) -> None:
    def rejected(row: dict[str, Any]) -> int:
        if row["id"] < 2:
            raise ValueError("bad request")
        return row["id"]

    steps = [Step("id", ids, kind="batch"), Step("v", rejected, depends_on=["id"])]
    settings = RunConfig(buffer_size=2, engine=engine, **FAST)
    result = asyncio.run(run_steps_async(steps, 4, config=settings))
    assert result.outcome == "partial"
    dropped = [e for e in result.events if e.machine == "row_group" and e.dest == "dropped"]
    assert [(e.ident, e.details["reason"]) for e in dropped] == [(0, "every row dropped")]


@ENGINES
def test_task_timeout_s_fails_a_slow_call_and_keeps_the_others_values(engine: str) -> None:
    async def answer(row: dict[str, Any]) -> str:
        if row["id"] == 0:
            await asyncio.sleep(5)
        return f"answer {row['id']}"

    def rejected(row: dict[str, Any]) -> str:
        raise ValueError(f"bad request {row['id']}")

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", answer, depends_on=["id"]),
        Step("w", lambda row: f"{row['v']}!", depends_on=["v"]),
    ]
    settings = RunConfig(
        buffer_size=3, engine=engine, task_timeout_s=0.05, max_retries=0, trace=True, **FAST
    )
    result = asyncio.run(run_steps_async(steps, 3, config=settings))
    assert result.outcome == "partial"
    assert list(result.dataset["v"]) == ["answer 1", "answer 2"]
    assert list(result.dataset["w"]) == ["answer 1!", "answer 2!"]
    (failed,) = [t for t in result.task_traces if t.outcome == "failed"]
    assert (failed.step, failed.row) == ("v", 0) and failed.error.startswith("TimeoutError")
    # a failed attempt's trace names its error
    steps = [Step("id", ids, kind="batch"), Step("v", rejected, depends_on=["id"])]
    result = asyncio.run(_failed_run(steps, engine))
    (failed,) = [t for t in result.task_traces if t.outcome == "failed"]
    assert failed.error == "ValueError: bad request 0"


def _failed_run(steps: list[Step], engine: str) -> Any:
    async def run() -> Any:
        try:
            await run_steps_async(steps, 1, config=RunConfig(engine=engine, trace=True, **FAST))
        except DatasetGenerationError as error:
            return error.result  # type: ignore[attr-defined]
        raise AssertionError("the run should fail")

    return run()


def test_record_indexes_continue_across_several_resized_row_groups() -> None:
    def double(frame: pd.DataFrame) -> pd.DataFrame:
        doubled = pd.concat([frame, frame], ignore_index=True)
        doubled["twice"] = range(len(doubled))
        return doubled

    steps = [
        Step("id", ids, kind="batch"),
        Step("twice", double, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    settings = RunConfig(buffer_size=1, engine="sync", **FAST)
    result = asyncio.run(run_steps_async(steps, 3, config=settings))
    assert list(result.dataset.index) == list(range(6))
    assert [g.first_record for g in result.row_groups] == [0, 2, 4]
