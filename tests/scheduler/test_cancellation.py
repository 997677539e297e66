"""Liveness and cancellation of the async engine (INV-2), through `run_steps_async` and
`build_steps`.

1. A step that needs ~50 ms to clean up when cancelled: after an early shutdown, a processor
   failure, and the run's task being cancelled (or Ctrl-C during a build), the run returns only
   after every cancelled call finished its cleanup, no cleanup is cut short by a second
   cancellation, and no step call starts afterwards.
2. A step that swallows `CancelledError` and returns a value anyway. The engine's decision
   stands: a worker the engine cancelled ends `cancelled` whatever its coroutine returns, its
   value is discarded (the cell is not generated, the row is not completed or written by it),
   and the run ends, promptly, exactly as if the step had honoured the cancellation (early
   shutdown: the complete rows only; processor failure: `failed`; cancellation: `cancelled`).
3. An internal dispatcher error while workers are queued, backing off or running: the run ends
   `failed` with every worker awaited and settled, `build_steps` records outcome "failed" and the
   error in metadata.json, and `rowforge check` does not pass a run that did not end.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.build import build_steps
from rowforge.errors import DatasetGenerationError, EarlyShutdownError, RetryableError
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, RunResult, Step, build_plan, run_steps_async
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.statemachine import SPECS, EventLog, read_jsonl, replay
from rowforge.storage import MemorySink
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
CLEANUP_S = 0.05
LATE = "late value from a cancelled call"

pytestmark = pytest.mark.timeout(60)


class Probe:
    """What the step calls did, with `time.monotonic()` timestamps."""

    def __init__(self) -> None:
        self.starts: list[tuple[int, float]] = []
        self.cancelled: list[int] = []
        self.cleaned: list[tuple[int, float]] = []
        self.interrupted: list[int] = []
        self.swallowed: list[int] = []
        self.first_cancel: float | None = None

    def start(self, key: int) -> None:
        self.starts.append((key, time.monotonic()))

    def on_cancel(self, key: int) -> None:
        self.cancelled.append(key)
        if self.first_cancel is None:
            self.first_cancel = time.monotonic()

    def started_after(self, moment: float) -> list[int]:
        return [key for key, at in self.starts if at > moment]

    def assert_cleanups_done_before(self, returned: float) -> None:
        assert self.cancelled, "the scenario cancelled no call"
        assert self.interrupted == [], (
            f"calls {sorted(self.interrupted)} were cancelled again during their cleanup"
        )
        assert sorted(key for key, _ in self.cleaned) == sorted(self.cancelled), (
            "every cancelled call finished its cleanup"
        )
        late = [(key, at - returned) for key, at in self.cleaned if at > returned]
        assert late == [], f"cleanups still running after the run returned: {late}"


Behaviour = Callable[[Probe, int], Awaitable[Any]]


async def hang_then_clean_up(probe: Probe, key: int) -> Any:
    """Hangs until cancelled; then takes CLEANUP_S to clean up and re-raises."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        probe.on_cancel(key)
        try:
            await asyncio.sleep(CLEANUP_S)
        except asyncio.CancelledError:
            probe.interrupted.append(key)
            raise
        probe.cleaned.append((key, time.monotonic()))
        raise
    raise AssertionError("unreachable")


async def hang_then_swallow(probe: Probe, key: int) -> Any:
    """Hangs until cancelled; then swallows the cancellation and returns a value."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        probe.on_cancel(key)
        probe.swallowed.append(key)
        return LATE
    raise AssertionError("unreachable")


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


async def assert_quiet_after(probe: Probe, returned: float) -> None:
    await asyncio.sleep(0.1)
    assert probe.started_after(returned) == [], "a step call started after the run returned"


# -- scenarios -------------------------------------------------------------------------------


def early_shutdown_steps(probe: Probe, behaviour: Behaviour) -> list[Step]:
    """Rows 0-19 answer; from row 20 even rows are refused (400), odd rows hang."""

    async def answer(row: dict[str, Any]) -> Any:
        key = row["id"]
        probe.start(key)
        if key < 20:
            return f"answer {key}"
        if key % 2 == 0:
            raise ValueError("provider returned 400")
        return await behaviour(probe, key)

    return [
        Step("id", ids, kind="batch"),
        Step("answer", answer, depends_on=["id"], resource="llm"),
    ]


EARLY_SHUTDOWN = RunConfig(
    buffer_size=40,
    max_in_flight=4,
    early_shutdown_window=4,
    early_shutdown_error_rate=0.5,
    max_retries=0,
    trace=True,
    **FAST,
)


def processor_failure_steps(probe: Probe, behaviour: Behaviour) -> list[Step]:
    """Row group 0 (rows 0-3) answers; row group 1 (rows 4-7) hangs."""

    async def answer(row: dict[str, Any]) -> Any:
        key = row["id"]
        probe.start(key)
        if key < 4:
            return f"answer {key}"
        return await behaviour(probe, key)

    return [Step("id", ids, kind="batch"), Step("answer", answer, depends_on=["id"])]


def explode_on_group_0(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.index[0] == 0:
        raise RuntimeError("schema registry unavailable")
    return frame


PROCESSORS = [function_processor(explode_on_group_0, "post_batch")]
PROCESSOR_FAILURE = RunConfig(buffer_size=4, max_concurrent_row_groups=2, trace=True, **FAST)


def hanging_steps(
    probe: Probe, behaviour: Behaviour, then: Callable[[], None] | None = None
) -> list[Step]:
    """Every call hangs; `then` runs once five calls are parked."""

    async def answer(row: dict[str, Any]) -> Any:
        probe.start(row["id"])
        if len(probe.starts) == 5 and then is not None:
            then()
        return await behaviour(probe, row["id"])

    return [Step("id", ids, kind="batch"), Step("answer", answer, depends_on=["id"], resource="m")]


HANGING = RunConfig(buffer_size=10, max_parallel_requests={"m": 5}, trace=True, **FAST)


def cancelled_traces(result: RunResult, keys: list[int]) -> dict[int, str]:
    return {t.row: t.outcome for t in result.task_traces if t.step == "answer" and t.row in keys}


# -- 1. a slow cleanup is awaited -------------------------------------------------------------


def test_early_shutdown_returns_after_every_cancelled_call_cleaned_up() -> None:
    probe = Probe()

    async def scenario() -> None:
        steps = early_shutdown_steps(probe, hang_then_clean_up)
        with pytest.raises(EarlyShutdownError) as caught:
            await run_steps_async(steps, 80, config=EARLY_SHUTDOWN)
        returned = time.monotonic()
        result = caught.value.result  # type: ignore[attr-defined]
        assert result.outcome == "partial" and result.actual_records == 20
        probe.assert_cleanups_done_before(returned)
        assert result.stats["live_workers"] == 0 and result.stats["leases_balanced"]
        await assert_quiet_after(probe, returned)

    asyncio.run(scenario())


def test_processor_failure_returns_after_every_cancelled_call_cleaned_up() -> None:
    probe = Probe()

    async def scenario() -> None:
        steps = processor_failure_steps(probe, hang_then_clean_up)
        with pytest.raises(DatasetGenerationError, match="post_batch processor") as caught:
            await run_steps_async(steps, 8, config=PROCESSOR_FAILURE, processors=PROCESSORS)
        returned = time.monotonic()
        result = caught.value.result  # type: ignore[attr-defined]
        assert result.outcome == "failed"
        assert sorted(probe.cancelled) == [4, 5, 6, 7]
        probe.assert_cleanups_done_before(returned)
        assert result.stats["live_workers"] == 0 and result.stats["leases_balanced"]
        await assert_quiet_after(probe, returned)

    asyncio.run(scenario())


def test_cancelling_the_run_returns_after_every_cancelled_call_cleaned_up() -> None:
    probe = Probe()

    async def scenario() -> None:
        steps = hanging_steps(probe, hang_then_clean_up)
        task = asyncio.create_task(run_steps_async(steps, 30, config=HANGING))
        while len(probe.starts) < 5:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        returned = time.monotonic()
        assert sorted(probe.cancelled) == [0, 1, 2, 3, 4]
        probe.assert_cleanups_done_before(returned)
        await assert_quiet_after(probe, returned)

    asyncio.run(scenario())


def test_cancelling_the_engine_task_settles_every_worker_after_its_cleanup() -> None:
    probe = Probe()

    async def scenario() -> AsyncEngine:
        plan = build_plan(hanging_steps(probe, hang_then_clean_up), 30, 10)
        engine = AsyncEngine(plan, HANGING, MemorySink(), EventLog())
        task = asyncio.create_task(engine.execute())
        while len(probe.starts) < 5:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        probe.assert_cleanups_done_before(time.monotonic())
        return engine

    engine = asyncio.run(scenario())
    assert engine.run.state == "cancelled"
    assert engine.run.live_workers == 0 and engine.admission.balanced
    assert {summary.state for summary in engine.closed} == {"cancelled"}
    assert replay(engine.events, SPECS)[("run", "run")] == "cancelled"


@pytest.mark.parametrize("scenario", ["early_shutdown", "processor_failure", "ctrl_c"])
def test_build_returns_after_every_cancelled_call_cleaned_up(tmp_path: Path, scenario: str) -> None:
    probe = Probe()
    output = tmp_path / "out"

    def interrupt() -> None:  # what Ctrl-C does: SIGINT to the process, outside the step
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGINT)

    if scenario == "early_shutdown":
        expected: type[BaseException] = EarlyShutdownError
        outcome = "partial"
        run = lambda: build_steps(  # noqa: E731
            early_shutdown_steps(probe, hang_then_clean_up), 80, output, config=EARLY_SHUTDOWN
        )
    elif scenario == "processor_failure":
        expected, outcome = DatasetGenerationError, "failed"
        run = lambda: build_steps(  # noqa: E731
            processor_failure_steps(probe, hang_then_clean_up),
            8,
            output,
            config=PROCESSOR_FAILURE,
            processors=PROCESSORS,
        )
    else:
        expected, outcome = KeyboardInterrupt, "cancelled"
        run = lambda: build_steps(  # noqa: E731
            hanging_steps(probe, hang_then_clean_up, then=interrupt), 30, output, config=HANGING
        )
    with pytest.raises(expected):
        run()
    returned = time.monotonic()
    probe.assert_cleanups_done_before(returned)
    metadata = read_metadata(output)
    assert metadata["outcome"] == outcome
    assert metadata["finished_at"] is not None
    assert first_violation(output) is None


# -- 2. a step that swallows the cancellation ------------------------------------------------


def test_early_shutdown_discards_values_of_calls_that_swallowed_their_cancellation() -> None:
    probe = Probe()

    async def scenario() -> None:
        steps = early_shutdown_steps(probe, hang_then_swallow)
        started = time.monotonic()
        with pytest.raises(EarlyShutdownError) as caught:
            await run_steps_async(steps, 80, config=EARLY_SHUTDOWN)
        returned = time.monotonic()
        assert returned - started < 5, "the run ends promptly"
        assert probe.swallowed, "the scenario had calls swallow their cancellation"
        result = caught.value.result  # type: ignore[attr-defined]
        assert result.outcome == "partial"
        assert result.actual_records == 20, "only the rows complete at the shutdown are written"
        assert list(result.dataset.index) == list(range(20))
        assert LATE not in set(result.dataset["answer"])
        assert result.generated_cells["answer"] == 20
        assert set(cancelled_traces(result, probe.swallowed).values()) == {"cancelled"}
        assert result.stats["live_workers"] == 0 and result.stats["leases_balanced"]
        replay(result.events, SPECS)
        await assert_quiet_after(probe, returned)

    asyncio.run(scenario())


def test_processor_failure_with_calls_that_swallow_their_cancellation_fails_promptly() -> None:
    probe = Probe()

    async def scenario() -> None:
        steps = processor_failure_steps(probe, hang_then_swallow)
        started = time.monotonic()
        with pytest.raises(DatasetGenerationError, match="post_batch processor") as caught:
            await run_steps_async(steps, 8, config=PROCESSOR_FAILURE, processors=PROCESSORS)
        returned = time.monotonic()
        assert returned - started < 5, "the run ends promptly"
        assert sorted(probe.swallowed) == [4, 5, 6, 7]
        result = caught.value.result  # type: ignore[attr-defined]
        assert result.outcome == "failed" and result.actual_records == 0
        assert result.generated_cells["answer"] == 4, "swallowed calls generated nothing"
        assert {s.state for s in result.row_groups} == {"failed", "cancelled"}
        assert set(cancelled_traces(result, probe.swallowed).values()) == {"cancelled"}
        assert result.stats["live_workers"] == 0 and result.stats["leases_balanced"]
        await assert_quiet_after(probe, returned)

    asyncio.run(scenario())


def test_cancelling_a_run_whose_calls_swallow_the_cancellation_still_cancels_it() -> None:
    probe = Probe()

    async def scenario() -> AsyncEngine:
        plan = build_plan(hanging_steps(probe, hang_then_swallow), 30, 10)
        engine = AsyncEngine(plan, HANGING, MemorySink(), EventLog())
        task = asyncio.create_task(engine.execute())
        while len(probe.starts) < 5:
            await asyncio.sleep(0.001)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        returned = time.monotonic()
        assert returned - cancelled_at < 2, "the run ends promptly"
        assert sorted(probe.swallowed) == [0, 1, 2, 3, 4]
        await assert_quiet_after(probe, returned)
        return engine

    engine = asyncio.run(scenario())
    assert engine.run.state == "cancelled"
    assert engine.run.live_workers == 0 and engine.admission.balanced
    assert {summary.state for summary in engine.closed} == {"cancelled"}
    assert engine.ledger.generated["answer"] == 0, "swallowed calls generated nothing"
    outcomes = {t.row: t.outcome for t in engine.traces if t.step == "answer" and t.row in range(5)}
    assert outcomes == dict.fromkeys(range(5), "cancelled")
    assert replay(engine.events, SPECS)[("run", "run")] == "cancelled"


def test_ctrl_c_during_a_build_whose_calls_swallow_the_cancellation(tmp_path: Path) -> None:
    probe = Probe()
    output = tmp_path / "out"

    def interrupt() -> None:
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGINT)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        build_steps(
            hanging_steps(probe, hang_then_swallow, then=interrupt), 30, output, config=HANGING
        )
    assert time.monotonic() - started < 5, "the build ends promptly"
    assert sorted(probe.swallowed) == [0, 1, 2, 3, 4]
    metadata = read_metadata(output)
    assert metadata["outcome"] == "cancelled" and metadata["actual_num_records"] == 0
    assert first_violation(output) is None
    workers = [e for e in read_jsonl(output / "events.jsonl") if e.machine == "worker"]
    first_cancel = min(i for i, e in enumerate(workers) if e.dest == "cancelled")
    late = [e for e in workers[first_cancel:] if e.dest == "succeeded"]
    assert late == [], "a worker the engine cancelled ends cancelled, not succeeded"


def test_the_sync_engine_still_cancels_when_a_step_swallows_the_cancellation() -> None:
    """The sync engine awaits steps in the run's own task: a step that swallows the
    CancelledError must not swallow the run's cancellation with it."""
    probe = Probe()

    async def scenario() -> None:
        steps = hanging_steps(probe, hang_then_swallow)
        config = RunConfig(engine="sync", buffer_size=10, **FAST)
        task = asyncio.create_task(run_steps_async(steps, 30, config=config))
        while not probe.starts:
            await asyncio.sleep(0.001)
        cancelled_at = time.monotonic()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        if not done:  # unblock it call by call, so that the test fails instead of hanging
            while not task.done():
                task.cancel()
                await asyncio.sleep(0.01)
            outcome = "cancelled" if task.cancelled() else task.result().outcome
            pytest.fail(
                f"the run ignored its cancellation: it went on calling steps ({len(probe.starts)} "
                f"calls) and ended {outcome!r}"
            )
        assert task.cancelled(), "the run ends cancelled"
        returned = time.monotonic()
        assert returned - cancelled_at < 2, "the run ends promptly"
        assert probe.swallowed == [0]
        assert [key for key, _ in probe.starts] == [0], "no step call after the cancellation"
        await assert_quiet_after(probe, returned)

    asyncio.run(scenario())


# -- 3. an internal dispatcher error ----------------------------------------------------------


PLANTED = "planted dispatcher bug"


def plant_internal_error(monkeypatch: pytest.MonkeyPatch, on_call: int) -> None:
    """`AsyncEngine._apply_success` raises once, on its `on_call`-th call."""
    real = AsyncEngine._apply_success
    calls = {"n": 0}

    def apply_success(self: AsyncEngine, worker: Any, value: Any) -> None:
        calls["n"] += 1
        if calls["n"] == on_call:
            raise RuntimeError(PLANTED)
        real(self, worker, value)

    monkeypatch.setattr(AsyncEngine, "_apply_success", apply_success)


def internal_error_run(probe: Probe, situation: str) -> tuple[list[Step], RunConfig]:
    """Steps and config where the 4th success raises inside the dispatcher while other workers
    are `queued` (max_in_flight=1), `backing_off` (a retry waits 30 s) or `running` (a call is
    parked and needs CLEANUP_S to clean up)."""

    async def answer(row: dict[str, Any]) -> Any:
        key = row["id"]
        probe.start(key)
        if situation == "backing_off" and key == 0:
            raise RetryableError("503 from provider")
        if situation == "running" and key == 9:
            return await hang_then_clean_up(probe, key)
        await asyncio.sleep(0.001)
        return key

    steps = [Step("id", ids, kind="batch"), Step("answer", answer, depends_on=["id"])]
    options: dict[str, Any] = {"buffer_size": 5, "stall_warning_s": 60.0}
    if situation == "queued":
        options.update(max_in_flight=1, retry_backoff_s=0.0)
    elif situation == "backing_off":
        options.update(max_in_flight=2, retry_backoff_s=30.0, max_retries=3)
    else:
        options.update(max_in_flight=10, retry_backoff_s=0.0)
    return steps, RunConfig(**options)


SITUATIONS = ["queued", "backing_off", "running"]


@pytest.mark.parametrize("situation", SITUATIONS)
def test_internal_error_ends_the_run_failed_with_every_worker_settled(
    monkeypatch: pytest.MonkeyPatch, situation: str
) -> None:
    probe = Probe()
    plant_internal_error(monkeypatch, on_call=4)

    async def scenario() -> None:
        steps, config = internal_error_run(probe, situation)
        started = time.monotonic()
        with pytest.raises(DatasetGenerationError, match="internal error in rowforge") as caught:
            await run_steps_async(steps, 10, config=config)
        returned = time.monotonic()
        assert returned - started < 5
        assert PLANTED in str(caught.value)
        result = getattr(caught.value, "result", None)
        assert result is not None, "the error carries the run's result, like every failure"
        assert result.outcome == "failed"
        assert result.first_error and PLANTED in result.first_error
        assert result.stats["live_workers"] == 0, "every worker was settled"
        assert result.stats["leases_balanced"]
        assert {s.state for s in result.row_groups} <= {"failed", "cancelled", "drained"}
        assert replay(result.events, SPECS)[("run", "run")] == "failed"
        if situation == "running":
            probe.assert_cleanups_done_before(returned)
        await assert_quiet_after(probe, returned)

    asyncio.run(scenario())


@pytest.mark.parametrize("situation", SITUATIONS)
def test_internal_error_during_a_build_is_recorded_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, situation: str
) -> None:
    probe = Probe()
    plant_internal_error(monkeypatch, on_call=4)
    steps, config = internal_error_run(probe, situation)
    output = tmp_path / "out"
    with pytest.raises(DatasetGenerationError, match="internal error in rowforge"):
        build_steps(steps, 10, output, config=config)
    returned = time.monotonic()
    if situation == "running":
        probe.assert_cleanups_done_before(returned)
    metadata = read_metadata(output)
    verdict = first_violation(output)
    ended = metadata["outcome"] == "failed" and metadata["finished_at"] is not None
    assert ended or verdict is not None, (
        f"rowforge check passes a run that did not end: outcome {metadata['outcome']!r}, "
        f"first_error {metadata['first_error']!r}"
    )
    assert metadata["outcome"] == "failed"
    assert metadata["first_error"] is not None and PLANTED in metadata["first_error"]
    assert metadata["finished_at"] is not None
    assert {g["state"] for g in metadata["row_groups"]} <= {"failed", "cancelled", "drained"}
    assert verdict is None
    runs = [e for e in read_jsonl(output / "events.jsonl") if e.machine == "run"]
    assert runs[-1].dest == "failed"


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_cancellation_during_a_checkpoint_write_ends_the_run_cancelled_after_the_write(
    engine: str, tmp_path: Path
) -> None:
    """The write that has started finishes (and is recorded), then the cancellation stands: the
    sync engine used to swallow it there (its checkpoint runs in the run's own task) and went on
    to `completed`."""
    writing = asyncio.Event()
    loop_holder: list[asyncio.AbstractEventLoop] = []

    def slow_write(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.index[0] == 0:
            loop_holder[0].call_soon_threadsafe(writing.set)
            time.sleep(0.3)
        return frame

    def ids(frame: pd.DataFrame) -> list[int]:
        return list(frame.index)

    sink = MemorySink()

    async def scenario() -> None:
        loop_holder.append(asyncio.get_running_loop())
        run = asyncio.create_task(
            run_steps_async(
                [Step("id", ids, kind="batch")],
                30,
                config=RunConfig(
                    engine=engine, buffer_size=10, max_concurrent_row_groups=1, **FAST
                ),  # type: ignore[arg-type]
                processors=[function_processor(slow_write, "post_batch")],
                sink=sink,
            )
        )
        await writing.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert list(sink.dataset().index) == list(range(10)), "the started write finished, no other"


class SlowlyFailingSink(MemorySink):
    """Row group 0's write takes 0.3 s and then fails, like a disk that fills up."""

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        if row_group == 0:
            time.sleep(0.3)
            raise OSError("no space left on device")
        return super().write(row_group, frame)


def test_a_checkpoint_failing_after_an_internal_error_still_ends_the_run_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the composed exploration: after an internal error (mode `broken`), a checkpoint
    already writing in another row group failed; `_abort` then switched to `aborting` without
    the run's `drain`, `_end` fired `end_failed` from `running`, and the run raised
    IllegalTransition instead of the internal error and never ended."""

    async def answer(row: dict[str, Any]) -> int:
        if row["id"] >= 10:  # row group 1 completes while row group 0 is being written
            await asyncio.sleep(0.05)
        return int(row["id"])

    real = AsyncEngine._apply_success

    def apply_success(self: AsyncEngine, worker: Any, value: Any) -> None:
        if worker.row_group.ident == 1 and worker.step.name == "answer":
            raise RuntimeError(PLANTED)
        real(self, worker, value)

    monkeypatch.setattr(AsyncEngine, "_apply_success", apply_success)
    steps = [Step("id", ids, kind="batch"), Step("answer", answer, depends_on=["id"])]
    config = RunConfig(buffer_size=10, max_concurrent_row_groups=2, **FAST)
    with pytest.raises(DatasetGenerationError, match=PLANTED) as raised:
        asyncio.run(run_steps_async(steps, 20, config=config, sink=SlowlyFailingSink()))
    result: RunResult = raised.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed"
    assert result.stats["live_workers"] == 0
