"""One integration test per failure mode the async engine must rule out.

Each asserts the exact outcome and counts, and that no step starts after the run returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import (
    DatasetGenerationError,
    DatasetProcessingError,
    EarlyShutdownError,
    PartialDatasetError,
    RateLimitError,
    RetryableError,
)
from rowforge.scheduler import RunConfig, Step, build_plan, run_steps, run_steps_async
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.statemachine import SPECS, EventLog, replay
from rowforge.storage import MemorySink, ParquetSink

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


class CallLog:
    """Counts step calls with timestamps, to prove nothing starts after a run returns."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    def record(self, name: str) -> None:
        self.calls.append((name, time.monotonic()))

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)

    def after(self, moment: float) -> list[tuple[str, float]]:
        return [call for call in self.calls if call[1] > moment]


def cell(log: CallLog, name: str, behaviour: Callable[[dict[str, Any]], Any]) -> Any:
    async def step(row: dict[str, Any]) -> Any:
        log.record(name)
        try:
            result = behaviour(row)
            if asyncio.iscoroutine(result):
                result = await result
            log.finished.append(name)
            return result
        except asyncio.CancelledError:
            log.cancelled.append(name)
            raise

    return step


def seed_ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


async def assert_quiet_after_return(log: CallLog, returned_at: float) -> None:
    await asyncio.sleep(0.05)
    assert log.after(returned_at) == [], "a step started after the run returned (INV-2)"


def test_plan_rejects_cycles_unknown_dependencies_and_duplicates() -> None:
    from rowforge.errors import ConfigError

    def fn(row: dict[str, Any]) -> int:
        return 1

    with pytest.raises(ConfigError, match=r"dependency cycle: (a -> b -> a|b -> a -> b)"):
        build_plan([Step("a", fn, depends_on=["b"]), Step("b", fn, depends_on=["a"])], 1, 1)
    with pytest.raises(ConfigError, match="step 'b' depends on unknown step 'z'"):
        build_plan([Step("a", fn), Step("b", fn, depends_on=["z"])], 1, 1)
    with pytest.raises(ConfigError, match="duplicate step name 'a'"):
        build_plan([Step("a", fn), Step("a", fn)], 1, 1)
    with pytest.raises(ConfigError, match="num_records must be a positive integer"):
        build_plan([Step("a", fn)], 0, 1)


def test_non_retryable_cell_failure_drops_the_row_and_skips_its_cells_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = CallLog()

    def b(row: dict[str, Any]) -> Any:
        if row["id"] == 3:
            raise ValueError("bad input")
        return row["id"] * 10

    steps = [
        Step("id", seed_ids, kind="batch"),
        Step("b", cell(log, "b", b), depends_on=["id"]),
        Step("c", cell(log, "c", lambda row: row["b"] + 1), depends_on=["b"]),
    ]
    config = RunConfig(buffer_size=5, **FAST)
    with caplog.at_level(logging.WARNING, logger="rowforge"):
        result = run_steps(steps, 10, config=config)
    assert result.outcome == "partial"
    assert result.actual_records == 9
    assert list(result.dataset.index) == [0, 1, 2, 4, 5, 6, 7, 8, 9]  # type: ignore[union-attr]
    assert result.failed_cells == {"id": 0, "b": 1, "c": 0}
    assert result.skipped_cells == {"id": 0, "b": 0, "c": 1}
    assert result.generated_cells == {"id": 10, "b": 9, "c": 9}
    assert log.count("c") == 9, "a dropped row is never generated downstream (INV-9)"
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "target 10 records, actual 9, dropped 1" in warning
    assert "step 'b' failed: ValueError: bad input" in warning


def test_seed_failure_drops_the_row_group_and_counts_each_skip_once() -> None:
    calls = CallLog()

    def seed(frame: pd.DataFrame) -> list[int]:
        if frame.index[0] == 4:
            raise ValueError("seed source unavailable")
        return list(frame.index)

    steps = [
        Step("id", seed, kind="batch"),
        Step("a", cell(calls, "a", lambda row: row["id"]), depends_on=["id"]),
        Step("b", cell(calls, "b", lambda row: row["a"]), depends_on=["a"]),
    ]
    result = run_steps(steps, 12, config=RunConfig(buffer_size=4, max_retries=0, **FAST))
    assert result.outcome == "partial"
    assert result.actual_records == 8
    assert result.failed_cells == {"id": 4, "a": 0, "b": 0}
    assert result.skipped_cells == {"id": 0, "a": 4, "b": 4}
    totals = {
        c: result.generated_cells[c] + result.skipped_cells[c] + result.failed_cells[c]
        for c in ("id", "a", "b")
    }
    assert totals == {"id": 12, "a": 12, "b": 12}, "INV-4: each cell counted exactly once"
    states = {summary.index: summary.state for summary in result.row_groups}
    assert states == {0: "drained", 1: "dropped", 2: "drained"}


def test_retryable_errors_are_retried_until_they_succeed() -> None:
    attempts: dict[int, int] = {}

    def flaky(row: dict[str, Any]) -> int:
        attempts[row["id"]] = attempts.get(row["id"], 0) + 1
        if attempts[row["id"]] < 3:
            raise RetryableError("503 service unavailable")
        return row["id"]

    steps = [Step("id", seed_ids, kind="batch"), Step("v", flaky, depends_on=["id"], resource="m")]
    result = run_steps(steps, 6, config=RunConfig(max_retries=2, trace=True, **FAST))
    assert result.outcome == "completed"
    assert set(attempts.values()) == {3}
    outcomes = [t.outcome for t in result.task_traces if t.step == "v"]
    assert outcomes.count("deferred") == 12 and outcomes.count("succeeded") == 6


def test_rate_limits_keep_retrying_and_never_count_as_failures() -> None:
    answers: dict[int, int] = {}

    def limited(row: dict[str, Any]) -> int:
        answers[row["id"]] = answers.get(row["id"], 0) + 1
        if answers[row["id"]] <= 5:
            raise RateLimitError("429 too many requests", retry_after=0)
        return row["id"]

    steps = [Step("id", seed_ids, kind="batch"), Step("v", limited, depends_on=["id"])]
    config = RunConfig(
        max_retries=0, early_shutdown_window=2, early_shutdown_error_rate=0.5, **FAST
    )
    result = run_steps(steps, 10, config=config)
    assert result.outcome == "completed" and not result.early_shutdown
    assert result.failed_cells["v"] == 0


def test_a_provider_that_fails_every_request_ends_the_run_promptly_in_failed() -> None:
    log = CallLog()

    async def down(row: dict[str, Any]) -> Any:
        await asyncio.sleep(0.001)
        raise ConnectionRefusedError("connection refused by provider")

    async def scenario() -> None:
        steps = [
            Step("id", seed_ids, kind="batch"),
            Step("answer", cell(log, "answer", down), depends_on=["id"], resource="llm-a"),
        ]
        config = RunConfig(max_retries=1, max_in_flight=8, early_shutdown_window=10, **FAST)
        with pytest.raises(DatasetGenerationError) as caught:
            await run_steps_async(steps, 10_000, config=config)
        returned = time.monotonic()
        message = str(caught.value)
        assert "early shutdown" in message
        assert "step 'answer'" in message and "model 'llm-a'" in message
        assert "10 of the last 10 model tasks failed (connection error x 10" in message
        assert isinstance(caught.value, EarlyShutdownError)
        assert "ConnectionRefusedError: connection refused by provider" in message
        result = caught.value.result  # type: ignore[attr-defined]
        assert result.outcome == "failed" and result.actual_records == 0
        # Promptly: a full window of failures plus the attempts already in flight, not 10,000.
        assert log.count("answer") <= 2 * (10 + 8)
        await assert_quiet_after_return(log, returned)

    asyncio.run(scenario())


def test_early_shutdown_drains_workers_writes_complete_rows_and_raises(
    tmp_path: Path,
) -> None:
    log = CallLog()

    async def answer(row: dict[str, Any]) -> Any:
        if row["id"] >= 20:
            if row["id"] % 2:
                await asyncio.Event().wait()  # hangs until cancelled
            raise ValueError("provider returned 400")
        return f"answer {row['id']}"

    async def scenario() -> None:
        steps = [
            Step("id", seed_ids, kind="batch"),
            Step("answer", cell(log, "answer", answer), depends_on=["id"], resource="llm"),
            Step("len", cell(log, "len", lambda row: len(row["answer"])), depends_on=["answer"]),
        ]
        config = RunConfig(
            buffer_size=40,
            max_in_flight=4,
            early_shutdown_window=4,
            early_shutdown_error_rate=0.5,
            max_retries=0,
            **FAST,
        )
        with caplog_warnings() as warnings_seen, pytest.raises(EarlyShutdownError) as caught:
            await run_steps_async(steps, 80, config=config, sink=ParquetSink(tmp_path))
        returned = time.monotonic()
        result = caught.value.result  # type: ignore[attr-defined]
        assert result.outcome == "partial" and result.early_shutdown
        assert result.actual_records == 20
        assert result.first_error and "step 'answer'" in result.first_error
        assert str(caught.value).endswith("; 20 of 80 records were written (complete rows only)")
        written = pd.read_parquet(tmp_path / "parquet-files" / "batch_00000.parquet")
        assert list(written.index) == list(range(20))
        assert written.notna().all().all()
        assert "answer" in log.cancelled, "hung workers were cancelled, not abandoned"
        # The error is raised, not also logged as a partial-dataset WARNING: read once.
        assert not any("partial dataset" in w for w in warnings_seen)
        await assert_quiet_after_return(log, returned)
        summary = [i for i, m in enumerate(warnings_seen) if m.startswith("run partial")]
        assert summary == [len(warnings_seen) - 1], "nothing is logged after the run's summary"

    asyncio.run(scenario())


class caplog_warnings:
    """Collect rowforge INFO and WARNING messages inside an async test."""

    def __enter__(self) -> list[str]:
        self.messages: list[str] = []
        self.handler = logging.Handler(logging.INFO)
        self.level = logging.getLogger("rowforge").level
        logging.getLogger("rowforge").setLevel(logging.INFO)
        self.handler.emit = lambda record: self.messages.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("rowforge").addHandler(self.handler)
        return self.messages

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("rowforge").removeHandler(self.handler)
        logging.getLogger("rowforge").setLevel(self.level)


def test_on_partial_raise_raises_after_writing_what_was_produced(tmp_path: Path) -> None:
    def answer(row: dict[str, Any]) -> Any:
        if row["id"] == 1:
            raise ValueError("refused")
        return row["id"]

    steps = [Step("id", seed_ids, kind="batch"), Step("v", answer, depends_on=["id"])]
    config = RunConfig(on_partial="raise", buffer_size=2, **FAST)
    with pytest.raises(PartialDatasetError, match="target 4 records, actual 3, dropped 1"):
        run_steps(steps, 4, config=config, sink=ParquetSink(tmp_path))
    files = sorted(p.name for p in (tmp_path / "parquet-files").iterdir())
    assert files == ["batch_00000.parquet", "batch_00001.parquet"]
    assert len(pd.read_parquet(tmp_path / "parquet-files" / "batch_00000.parquet")) == 1


def test_cancellation_cancels_and_awaits_every_worker_then_reraises() -> None:
    log = CallLog()

    async def hang(row: dict[str, Any]) -> Any:
        await asyncio.Event().wait()

    async def scenario() -> AsyncEngine:
        steps = [
            Step("id", seed_ids, kind="batch"),
            Step("slow", cell(log, "slow", hang), depends_on=["id"], resource="m"),
        ]
        config = RunConfig(buffer_size=10, max_parallel_requests={"m": 5}, **FAST)
        engine = AsyncEngine(build_plan(steps, 30, 10), config, MemorySink(), EventLog())
        task = asyncio.create_task(engine.execute())
        while log.count("slow") < 5:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        returned = time.monotonic()
        assert sorted(log.cancelled) == ["slow"] * 5
        await assert_quiet_after_return(log, returned)
        return engine

    engine = asyncio.run(scenario())
    assert engine.run.state == "cancelled"
    assert engine.run.live_workers == 0 and engine.admission.balanced
    assert {summary.state for summary in engine.closed} == {"cancelled"}
    assert replay(engine.events, SPECS)[("run", "run")] == "cancelled"


def test_a_batch_step_that_changes_the_row_count_is_rejected() -> None:
    def shrink(frame: pd.DataFrame) -> list[int]:
        return list(frame.index)[:-1]

    steps = [
        Step("id", seed_ids, kind="batch"),
        Step("short", shrink, kind="batch", depends_on=["id"]),
    ]
    with pytest.raises(DatasetProcessingError, match=r"'short' returned 2 rows for row group 0"):
        run_steps(steps, 3, config=RunConfig(**FAST))


def test_stall_watchdog_warns_with_counts_at_most_once_per_interval() -> None:
    async def slow(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.7)
        return 1

    steps = [Step("id", seed_ids, kind="batch"), Step("v", slow, depends_on=["id"])]
    with caplog_warnings() as warnings_seen:
        result = run_steps(steps, 3, config=RunConfig(stall_warning_s=0.2))
    stalls = [w for w in warnings_seen if w.startswith("no progress")]
    assert 1 <= len(stalls) <= 4
    assert "3 tasks in flight, 1 row groups active, 0 deferred, 0 queued" in stalls[0]
    assert result.stats["stall_warnings"] == len(stalls)


def test_task_timeout_turns_a_hung_call_into_a_retryable_error() -> None:
    calls = {"n": 0}

    async def sometimes_hangs(row: dict[str, Any]) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.Event().wait()
        return 7

    steps = [Step("id", seed_ids, kind="batch"), Step("v", sometimes_hangs, depends_on=["id"])]
    result = run_steps(steps, 1, config=RunConfig(task_timeout_s=0.05, **FAST))
    assert result.outcome == "completed" and calls["n"] == 2


def test_caps_of_one_never_deadlock() -> None:
    steps = [
        Step("id", seed_ids, kind="batch"),
        Step("a", lambda row: row["id"], depends_on=["id"], resource="m1"),
        Step("b", lambda row: row["a"], depends_on=["a"], resource="m2"),
        Step("j", lambda frame: list(frame["b"]), kind="batch", depends_on=["b"], resource="m1"),
    ]
    config = RunConfig(
        buffer_size=3,
        max_in_flight=1,
        max_parallel_requests={"m1": 1, "m2": 1},
        max_concurrent_row_groups=1,
        **FAST,
    )
    result = run_steps(steps, 10, config=config)
    assert result.outcome == "completed" and result.actual_records == 10
    assert result.stats["peak_in_flight"] == 1
    assert result.stats["leases_balanced"]


def test_a_big_frontier_on_one_model_does_not_starve_another() -> None:
    started: dict[str, list[float]] = {"gen": [], "judge": []}

    def timed(name: str) -> Any:
        async def step(row: dict[str, Any]) -> int:
            started[name].append(time.monotonic())
            await asyncio.sleep(0.002)
            return 1

        return step

    steps = [
        Step("id", seed_ids, kind="batch"),
        Step("gen", timed("gen"), depends_on=["id"], resource="a"),
        Step("judge", timed("judge"), depends_on=["gen"], resource="b"),
    ]
    config = RunConfig(
        buffer_size=400, max_in_flight=8, max_parallel_requests={"a": 8, "b": 8}, **FAST
    )
    run_steps(steps, 400, config=config)
    # Judges run while generation is still going, instead of after all 400 generations.
    assert min(started["judge"]) < sorted(started["gen"])[len(started["gen"]) // 2]


def test_trace_covers_every_attempt_for_memory_and_parquet_sinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = [
        Step("id", seed_ids, kind="batch"),
        Step("v", lambda row: row["id"], depends_on=["id"]),
    ]
    monkeypatch.setenv("ROWFORGE_TRACE", "1")
    for sink in (MemorySink(), ParquetSink(tmp_path)):
        result = run_steps(steps, 5, config=RunConfig(buffer_size=2, **FAST), sink=sink)
        traces = result.task_traces
        assert sorted(t.row for t in traces if t.step == "v") == [0, 1, 2, 3, 4]
        assert [t.row for t in traces if t.step == "id"] == [None, None, None]
        assert all(t.outcome == "succeeded" and t.finished >= t.started > 0 for t in traces)
        assert any(event.machine == "worker" for event in result.events)
        replay(result.events, SPECS)


def test_allow_resize_runs_on_the_sync_engine_for_that_run_only() -> None:
    def explode(frame: pd.DataFrame) -> pd.DataFrame:
        doubled = pd.concat([frame, frame])
        doubled["twice"] = range(len(doubled))
        return doubled

    resizing = [
        Step("id", seed_ids, kind="batch"),
        Step("twice", explode, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    plain = [Step("id", seed_ids, kind="batch")]
    with pytest.warns(DeprecationWarning, match="allow_resize") as caught:
        resized = run_steps(resizing, 4, config=RunConfig(buffer_size=2, **FAST))
    assert caught[0].filename == __file__, "the warning points at the caller's line"
    assert resized.engine == "sync" and resized.actual_records == 8
    assert list(resized.dataset.index) == list(range(8))  # type: ignore[union-attr]
    assert run_steps(plain, 4, config=RunConfig(**FAST)).engine == "async"


def test_two_concurrent_runs_choose_their_engines_independently() -> None:
    def explode(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([frame, frame]).assign(twice=1)

    async def slow(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.001)
        return 1

    resizing = [
        Step("id", seed_ids, kind="batch"),
        Step("twice", explode, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    plain = [Step("id", seed_ids, kind="batch"), Step("v", slow, depends_on=["id"])]

    async def both() -> tuple[Any, Any]:
        with pytest.warns(DeprecationWarning):
            return await asyncio.gather(
                run_steps_async(resizing, 6, config=RunConfig(**FAST)),
                run_steps_async(plain, 50, config=RunConfig(**FAST)),
            )

    resized, normal = asyncio.run(both())
    assert (resized.engine, resized.actual_records) == ("sync", 12)
    assert (normal.engine, normal.actual_records) == ("async", 50)


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_the_result_keeps_the_first_error_itself_not_only_its_text(engine: str) -> None:
    """An embedding host re-raises or inspects the first error (its type, its cause): the
    result carries the object; `first_error` is its text."""
    from rowforge.processors import function_processor

    bug = RuntimeError("schema registry unavailable")

    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise bug

    steps = [
        Step("id", lambda frame: list(frame.index), kind="batch"),
        Step("v", lambda row: row["id"], depends_on=["id"]),
    ]
    config = RunConfig(buffer_size=4, engine=engine, retry_backoff_s=0.0)
    with pytest.raises(DatasetGenerationError) as caught:
        run_steps(steps, 4, config=config, processors=[function_processor(broken, "post_batch")])
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.first_exception is caught.value
    assert result.first_error == str(caught.value)
    assert caught.value.__cause__ is bug
    clean = run_steps(steps, 4, config=config)
    assert clean.first_exception is None and clean.first_error is None
