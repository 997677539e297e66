"""An internal error, an early shutdown, an abort: what the user is told, logged and recorded.

Kills survivors of `make mutants` (scheduler, dispatcher.py) in `_internal_error` and
`_end_after_internal_error`: the error raised wraps the bug with it as cause, the log carries
the traceback, the open row groups end with reason "internal error", and when even ending the
run fails that is logged and the internal error is still what is raised. Also (`_begin_drain`,
`_abort`, both engines): the INFO line of an early shutdown, and the reasons the run's `drain`
and `abort` events carry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import DatasetGenerationError, EarlyShutdownError, RateLimitError
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step, run_steps_async
from rowforge.scheduler.dispatcher import AsyncEngine

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
BUG = RuntimeError("planted dispatcher bug")


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def plant(monkeypatch: pytest.MonkeyPatch) -> None:
    """`_apply_success` raises on its 3rd call (the seed batch of row group 0 is the 1st)."""
    real = AsyncEngine._apply_success
    calls = {"n": 0}

    def apply_success(self: AsyncEngine, worker: Any, value: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise BUG
        real(self, worker, value)

    monkeypatch.setattr(AsyncEngine, "_apply_success", apply_success)


async def slow(row: dict[str, Any]) -> int:
    await asyncio.sleep(0.01 * (row["id"] % 4))
    return row["id"]


STEPS = [Step("id", ids, kind="batch"), Step("v", slow, depends_on=["id"])]
# one task at a time: when the bug strikes, the other tasks are still queued, so the row groups
# stay open until the run ends them (with the reason "internal error")
CONFIG = RunConfig(buffer_size=4, engine="async", max_in_flight=1, **FAST)


def test_an_internal_error_is_raised_wrapped_logged_with_its_traceback_and_recorded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plant(monkeypatch)
    with (
        caplog.at_level(logging.ERROR, logger="rowforge"),
        pytest.raises(DatasetGenerationError) as caught,
    ):
        asyncio.run(run_steps_async(STEPS, 8, config=CONFIG))
    assert str(caught.value) == (
        "internal error in rowforge's dispatcher: RuntimeError('planted dispatcher bug')"
    )
    assert caught.value.__cause__ is BUG
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "internal error in the dispatcher"
    assert record.exc_info is not None and record.exc_info[1] is BUG
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed"
    (abort,) = [e for e in result.events if e.machine == "run" and e.trigger == "abort"]
    assert dict(abort.details) == {"reason": "internal error"}
    ended = [
        e for e in result.events
        if e.machine == "row_group" and e.dest in ("failed", "cancelled")
    ]
    assert [(e.ident, e.dest, e.details["reason"]) for e in ended] == [
        (0, "failed", "internal error"),
        (1, "failed", "internal error"),
    ]


def test_when_the_run_cannot_even_be_ended_the_internal_error_is_still_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plant(monkeypatch)

    def cannot_end(self: AsyncEngine, group: Any) -> str:
        raise RuntimeError("cannot end")

    monkeypatch.setattr(AsyncEngine, "_stop_trigger", cannot_end)
    with (
        caplog.at_level(logging.ERROR, logger="rowforge"),
        pytest.raises(DatasetGenerationError) as caught,
    ):
        asyncio.run(run_steps_async(STEPS, 8, config=CONFIG))
    assert caught.value.__cause__ is BUG
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert messages == [
        "internal error in the dispatcher",
        "could not end the run cleanly after an internal error: RuntimeError('cannot end')",
    ]


ENGINES = pytest.mark.parametrize("engine", ["async", "sync"])


@ENGINES
def test_an_early_shutdown_is_logged_as_draining_and_recorded_with_its_reason(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    def fatal(row: dict[str, Any]) -> int:
        raise ValueError("bad request")

    steps = [Step("id", ids, kind="batch"), Step("v", fatal, depends_on=["id"], resource="m")]
    config = RunConfig(buffer_size=2, engine=engine, early_shutdown_window=2, **FAST)
    with (
        caplog.at_level(logging.INFO, logger="rowforge"),
        pytest.raises(EarlyShutdownError) as caught,
    ):
        asyncio.run(run_steps_async(steps, 4, config=config))
    draining = [r.getMessage() for r in caplog.records if r.getMessage().endswith("(draining)")]
    assert draining == [
        "early shutdown: 2 of the last 2 model tasks failed (ValueError x 2; threshold 50%); "
        "last error in step 'v' (model 'm'): ValueError: bad request (draining)"
    ]
    result = caught.value.result  # type: ignore[attr-defined]
    (drain,) = [e for e in result.events if e.machine == "run" and e.trigger == "drain"]
    assert dict(drain.details) == {"reason": "early_shutdown"}


@ENGINES
def test_a_fatal_error_aborts_the_run_with_the_error_as_reason(engine: str) -> None:
    def fail_on_group_1(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.index[0] == 2:
            raise RuntimeError("schema registry unavailable")
        return frame

    processors = [function_processor(fail_on_group_1, "post_batch")]
    config = RunConfig(buffer_size=2, engine=engine, **FAST)
    with pytest.raises(DatasetGenerationError) as caught:
        steps = [Step("id", ids, kind="batch")]
        asyncio.run(run_steps_async(steps, 4, config=config, processors=processors))
    result = caught.value.result  # type: ignore[attr-defined]
    (abort,) = [e for e in result.events if e.machine == "run" and e.trigger == "abort"]
    assert dict(abort.details) == {
        "reason": "DatasetGenerationError: row group 1: post_batch processor 'fail_on_group_1' "
        "failed: RuntimeError: schema registry unavailable"
    }
    (failed,) = [e for e in result.events if e.machine == "row_group" and e.dest == "failed"]
    assert failed.ident == 1
    # (the async engine records str(error), the sync engine describe_error(error))
    assert failed.details["reason"].endswith(
        "row group 1: post_batch processor 'fail_on_group_1' failed: "
        "RuntimeError: schema registry unavailable"
    )


@ENGINES
def test_a_task_always_rate_limited_gets_exactly_max_rate_limit_retries(engine: str) -> None:
    calls: dict[int, int] = {}

    def limited(row: dict[str, Any]) -> int:
        calls[row["id"]] = calls.get(row["id"], 0) + 1
        raise RateLimitError("429 too many requests", retry_after=0)

    steps = [Step("id", ids, kind="batch"), Step("v", limited, depends_on=["id"], resource="m")]
    config = RunConfig(
        buffer_size=2,
        engine=engine,
        max_rate_limit_retries=2,
        no_success_budget_s=30.0,
        disable_early_shutdown=True,
        trace=True,
        **FAST,
    )
    with pytest.raises(DatasetGenerationError) as caught:
        asyncio.run(run_steps_async(steps, 2, config=config))
    assert calls == {0: 3, 1: 3}
    result = caught.value.result  # type: ignore[attr-defined]
    for row in (0, 1):
        traces = [t for t in result.task_traces if t.step == "v" and t.row == row]
        assert [(t.attempt, t.outcome) for t in traces] == [
            (0, "deferred"),
            (1, "deferred"),
            (2, "failed"),
        ]
        assert all(isinstance(t.created, float) and t.created > 0 for t in traces)
        assert [t.created <= t.admitted <= t.started <= t.finished for t in traces] == [True] * 3


def test_a_batch_retry_due_after_every_row_was_dropped_is_settled_not_run() -> None:
    """`judge` (a batch step) is rate limited and waits 0.1 s; meanwhile `check` fails on
    every row, so when the retry is due there is nothing left to judge: it is cancelled
    without a call and the row group ends dropped, an ordinary failed run."""
    judged: list[int] = []

    def judge(frame: pd.DataFrame) -> list[int]:
        judged.append(len(frame))
        if len(judged) == 1:
            raise RateLimitError("429 slow down", retry_after=0.1)
        return [1] * len(frame)

    def check(row: dict[str, Any]) -> int:
        raise ValueError("check rejected the row")

    steps = [
        Step("id", ids, kind="batch"),
        Step("a", lambda row: row["id"], depends_on=["id"]),
        Step("judge", judge, kind="batch", depends_on=["a"]),
        Step("check", check, depends_on=["a"]),
    ]
    config = RunConfig(buffer_size=3, engine="async", trace=True, **FAST)
    with pytest.raises(DatasetGenerationError) as caught:
        asyncio.run(run_steps_async(steps, 3, config=config))
    assert "internal error" not in str(caught.value)
    assert judged == [3], "the retry was never called"
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed"
    assert result.drop_reasons() == {"step 'check' failed: ValueError: check rejected the row": 3}
    retries = [t for t in result.task_traces if t.step == "judge" and t.attempt == 1]
    assert [(t.outcome, t.started) for t in retries] == [("cancelled", 0.0)]
    assert [g.state for g in result.row_groups] == ["dropped"]


def test_a_bug_in_a_due_retrys_bookkeeping_is_an_internal_error_with_it_as_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The retry timer calls `_retry_due` outside any task: a bug there must still end the
    run as an internal error that names it (the bug as cause), not vanish in the event loop."""
    real_retry_due = AsyncEngine._retry_due

    def retry_due(self: AsyncEngine, worker: Any) -> None:
        """The engine's admission queue is per instance: break its `push` once a retry is due."""

        def push(_: Any) -> None:
            raise BUG

        monkeypatch.setattr(self.admission, "push", push)
        real_retry_due(self, worker)

    monkeypatch.setattr(AsyncEngine, "_retry_due", retry_due)
    attempts: list[int] = []

    def flaky(row: dict[str, Any]) -> int:
        attempts.append(row["id"])
        raise RateLimitError("429 slow down", retry_after=0)

    steps = [Step("id", ids, kind="batch"), Step("v", flaky, depends_on=["id"], resource="m")]
    with pytest.raises(DatasetGenerationError) as caught:
        config = RunConfig(buffer_size=1, engine="async", **FAST)
        asyncio.run(run_steps_async(steps, 1, config=config))
    assert caught.value.__cause__ is BUG
    assert "RuntimeError('planted dispatcher bug')" in str(caught.value)
    assert attempts == [0], "the retry's push raised, so the retry never ran"
