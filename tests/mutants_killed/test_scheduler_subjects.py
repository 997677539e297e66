"""Task traces say what happened to every attempt, including the ones that never ran.

Kills the `Worker.__init__` survivors of `make mutants` (scheduler, subjects.py): a trace's
times are `loop.time()` seconds with 0.0 meaning "never" (`TaskTrace`), so an attempt cancelled
while it was still queued must show 0.0 for admitted and started, every attempt must show when
it was created, a successful one carries no error, and an attempt the sync engine cancels in
the middle of its call is stamped with the moment it ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import DatasetGenerationError, RateLimitError
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step, build_plan, run_steps_async
from rowforge.scheduler.sync_engine import SyncEngine
from rowforge.scheduler.trace import TaskTrace
from rowforge.statemachine import EventLog
from rowforge.storage import MemorySink

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def fail_on_group_0(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.index[0] == 0:
        raise RuntimeError("schema registry unavailable")
    return frame


def assert_times_in_order(trace: TaskTrace) -> None:
    assert isinstance(trace.created, float) and trace.created > 0, trace
    assert trace.created <= trace.admitted <= trace.started <= trace.finished, trace


def test_attempts_cancelled_in_the_queue_are_traced_as_never_admitted_nor_started() -> None:
    """Row group 0 answers at once and its post-batch processor fails the run; row group 1's
    answers share one model slot, so one is running and three are still queued when it does."""

    async def answer(row: dict[str, Any]) -> str:
        if row["id"] >= 4:
            await asyncio.sleep(0.05)
        return f"answer {row['id']}"

    steps = [Step("id", ids, kind="batch"), Step("answer", answer, depends_on=["id"], resource="m")]
    config = RunConfig(
        buffer_size=4,
        max_concurrent_row_groups=2,
        max_parallel_requests={"m": 1},
        trace=True,
        **FAST,
    )
    processors = [function_processor(fail_on_group_0, "post_batch")]

    async def scenario() -> Any:
        with pytest.raises(DatasetGenerationError, match="post_batch processor") as caught:
            await run_steps_async(steps, 8, config=config, processors=processors)
        return caught.value.result  # type: ignore[attr-defined]

    result = asyncio.run(scenario())
    assert result.outcome == "failed"
    traces = result.task_traces
    succeeded = [t for t in traces if t.outcome == "succeeded"]
    assert {t.row for t in succeeded if t.step == "answer"} >= {0, 1, 2, 3}
    for trace in succeeded:
        assert trace.error is None, trace
        assert_times_in_order(trace)
    queued = [t for t in traces if t.outcome == "cancelled" and t.admitted == 0.0]
    assert queued, traces
    for trace in queued:
        assert trace.step == "answer" and trace.row is not None and trace.row >= 4
        assert isinstance(trace.created, float) and trace.created > 0, trace
        assert trace.started == 0.0 and trace.finished >= trace.created, trace
        assert trace.error is None, trace
    # every attempt of row group 1 is accounted for: succeeded, cancelled while running, or
    # cancelled in the queue
    assert sorted(t.row for t in traces if t.step == "answer" and t.row_group == 1) == [4, 5, 6, 7]
    for trace in traces:
        if trace.admitted:
            assert_times_in_order(trace)


def test_a_sync_attempt_cancelled_during_its_call_is_traced_with_the_moment_it_ended() -> None:
    started = asyncio.Event()

    async def hang(row: dict[str, Any]) -> str:
        started.set()
        await asyncio.sleep(60)
        return "never"

    steps = [Step("id", ids, kind="batch"), Step("answer", hang, depends_on=["id"])]
    plan = build_plan(steps, 2, 2)
    config = RunConfig(buffer_size=2, trace=True, **FAST)
    engine = SyncEngine(plan, config, MemorySink(), EventLog())

    async def scenario() -> None:
        task = asyncio.create_task(engine.execute())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    cancelled = [t for t in engine.traces if t.outcome == "cancelled"]
    assert [(t.step, t.row) for t in cancelled] == [("answer", 0)]
    (trace,) = cancelled
    assert_times_in_order(trace)
    assert trace.error is None
    assert engine.run.state == "cancelled"
    ended = [e for e in engine.events if e.machine == "row_group" and e.dest == "cancelled"]
    assert [(e.ident, e.trigger, e.details["reason"]) for e in ended] == [
        (0, "cancel", "run cancelled")
    ]


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_task_may_be_rate_limited_as_often_as_max_rate_limit_retries_allows(engine: str) -> None:
    """The first attempt of a task has had no rate limit before it: with
    `max_rate_limit_retries=1` one 429 is retried and the row is generated."""
    answers: dict[int, int] = {}

    def limited_once(row: dict[str, Any]) -> int:
        answers[row["id"]] = answers.get(row["id"], 0) + 1
        if answers[row["id"]] == 1:
            raise RateLimitError("429 too many requests", retry_after=0)
        return row["id"]

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", limited_once, depends_on=["id"], resource="m"),
    ]
    config = RunConfig(max_rate_limit_retries=1, engine=engine, trace=True, **FAST)
    result = asyncio.run(run_steps_async(steps, 3, config=config))
    assert result.outcome == "completed" and result.actual_records == 3
    assert answers == {0: 2, 1: 2, 2: 2}
    outcomes = [t.outcome for t in result.task_traces if t.step == "v"]
    assert sorted(outcomes) == ["deferred"] * 3 + ["succeeded"] * 3


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_without_tracing_the_event_log_holds_only_run_and_row_group_events(engine: str) -> None:
    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"], depends_on=["id"])]
    quiet = asyncio.run(run_steps_async(steps, 4, config=RunConfig(engine=engine, **FAST)))
    assert {event.machine for event in quiet.events} == {"run", "row_group"}
    traced = asyncio.run(
        run_steps_async(steps, 4, config=RunConfig(engine=engine, trace=True, **FAST))
    )
    assert {event.machine for event in traced.events} == {"run", "row_group", "worker", "cell"}


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_run_that_writes_a_single_record_short_of_its_target_is_partial(engine: str) -> None:
    """`some_rows_written` holds from the first record on: one record of three is a partial
    dataset, not a failed run."""

    def only_row_0(row: dict[str, Any]) -> int:
        if row["id"] != 0:
            raise ValueError(f"provider rejected row {row['id']}")
        return 0

    steps = [Step("id", ids, kind="batch"), Step("v", only_row_0, depends_on=["id"])]
    config = RunConfig(engine=engine, **FAST)
    result = asyncio.run(run_steps_async(steps, 3, config=config))
    assert result.outcome == "partial"
    assert result.actual_records == 1 and result.dropped_records == 2
    assert result.events[-1].machine == "run" and result.events[-1].dest == "partial"
