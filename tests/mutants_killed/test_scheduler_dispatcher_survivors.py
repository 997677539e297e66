"""The async engine (dispatcher.py) where the mutmut pass at 18a0f70 left survivors.

Kills, by function of `rowforge.scheduler.dispatcher`:

- `execute`: the reason "run cancelled" of a row group still open when the run's task is
  cancelled; `_last_progress` set when the run starts (the watchdog's reference point).
- `_advance`: the reasons "run aborted" and "early shutdown during seeding"; the message of the
  stuck-row-group internal error (INV-8).
- `_stop_trigger`: when neither `fail` nor `cancel` may fire, `cancel` is fired so that the
  guard's refusal is what is reported.
- `_admit_row_groups`: seed workers are created in declaration order.
- `_enqueue`: a ready list that mixes cells and a seed batch step during seeding; nothing is
  queued for a row that completes once the run drains.
- `_pump`: an obsolete queued worker is settled and the next one is still admitted.
- `_apply_success`: a batch step returning the wrong number of values fails its row group.
- `_schedule_retry`, `_apply_failure`: their DEBUG lines, exact text.
- `_retry_due`: an obsolete retry is settled when due, without waiting for a free slot.
- `_cancel_row`, `_cancel_worker`: a dropped row's backing-off and queued workers are cancelled
  at once; a failed batch cancels the other workers of its row group.
- `_settle_unstarted`: a retry settled unstarted takes its retry-budget entry with it
  (white-box: the entry would otherwise keep its row group alive until the run ends).
- `_internal_error`: an internal error after the run was done does not set `_done` twice.
- `_on_checkpoint_done`: "run cancelled while writing"; an error from the write that is not a
  `DatasetGenerationError` becomes the sink failure naming the row group; a bug there is an
  internal error with the bug as cause; a checkpoint counts as progress.
- `_watch_for_stalls`: the stall warning (text, interval, `>=` boundaries, first warning one
  interval after the start, checks four times per interval but at least every 5 s), on a loop
  whose clock the test drives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import (
    DatasetGenerationError,
    EarlyShutdownError,
    RateLimitError,
    RetryableError,
)
from rowforge.scheduler import RunConfig, RunResult, Step, run_steps_async
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.statemachine import EventLog

FAST: dict[str, Any] = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
BUG = RuntimeError("planted dispatcher bug")

pytestmark = pytest.mark.timeout(60)


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def ended(events: Any) -> list[tuple[Any, str, str]]:
    """(row group, terminal state, reason) of every row group that ended without a write."""
    return [
        (e.ident, e.dest, e.details["reason"])
        for e in events
        if e.machine == "row_group" and e.dest in ("failed", "cancelled", "dropped")
    ]


def run(steps: list[Step], records: int, config: RunConfig, **options: Any) -> RunResult:
    """Run, failing fast (instead of hanging until pytest's timeout) when the run never ends."""

    async def bounded() -> RunResult:
        async with asyncio.timeout(5):
            return await run_steps_async(steps, records, config=config, **options)

    return asyncio.run(bounded())


def failed_run(steps: list[Step], records: int, config: RunConfig, **options: Any) -> RunResult:
    with pytest.raises(DatasetGenerationError) as caught:
        run(steps, records, config, **options)
    return caught.value.result  # type: ignore[attr-defined, no-any-return]


async def hang(row: dict[str, Any]) -> int:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


# -- admission -----------------------------------------------------------------------------


def test_seed_workers_are_created_in_declaration_order_not_alphabetically() -> None:
    """`plan.seed_steps` is a frozenset; the engine orders it by the steps' declaration order,
    so the first seed worker created (ident 1) is `zeta`'s, the first admitted."""
    steps = [Step("zeta", ids, kind="batch"), Step("alpha", ids, kind="batch")]
    config = RunConfig(buffer_size=2, engine="async", max_in_flight=1, trace=True, **FAST)
    result = run(steps, 2, config)
    assert [t.step for t in result.task_traces] == ["zeta", "alpha"]
    starts = [e.ident for e in result.events if e.machine == "worker" and e.trigger == "start"]
    assert starts == [1, 2]


def test_a_seed_batch_step_after_ready_cells_in_the_same_ready_list_still_runs() -> None:
    """`id` makes `c` (cells, not startable while seeding) and `b2` (a seed batch step) ready
    at once, in that order: the cells are skipped for now, `b2` is still queued."""
    steps = [
        Step("id", ids, kind="batch"),
        Step("c", lambda row: row["id"] * 10, depends_on=["id"]),
        Step("b2", lambda frame: list(frame["id"] + 1), kind="batch", depends_on=["id"]),
    ]
    result = run(steps, 2, RunConfig(buffer_size=2, engine="async", **FAST))
    assert result.outcome == "completed"
    assert result.dataset is not None
    assert result.dataset.to_dict("list") == {"id": [0, 1], "c": [0, 10], "b2": [1, 2]}


def test_when_every_row_is_dropped_each_queued_batch_worker_is_settled_unrun() -> None:
    """One task at a time: `check` fails on row 1 (the last surviving row) while `j1` and `j2`
    (batch steps) are queued. Both are obsolete at admission: settled `cancelled` one after the
    other, never called, and the row group ends dropped."""
    called: list[str] = []

    def check(row: dict[str, Any]) -> int:
        raise ValueError("check rejected the row")

    def judge(name: str) -> Any:
        def batch(frame: pd.DataFrame) -> list[int]:
            called.append(name)
            return [1] * len(frame)

        return batch

    steps = [
        Step("id", ids, kind="batch"),
        Step("a", lambda row: row["id"], depends_on=["id"]),
        Step("check", check, depends_on=["a"]),
        Step("j1", judge("j1"), kind="batch", depends_on=["a"]),
        Step("j2", judge("j2"), kind="batch", depends_on=["a"]),
    ]
    config = RunConfig(buffer_size=2, engine="async", max_in_flight=1, trace=True, **FAST)
    result = failed_run(steps, 2, config)
    assert called == []
    assert "internal error" not in str(result.first_error)
    batches = [(t.step, t.outcome, t.started) for t in result.task_traces if t.step[0] == "j"]
    assert batches == [("j1", "cancelled", 0.0), ("j2", "cancelled", 0.0)]
    assert [g.state for g in result.row_groups] == ["dropped"]


# -- outcomes: retries, drops, aborts ------------------------------------------------------


def test_a_retry_and_a_dropped_row_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    def flaky(row: dict[str, Any]) -> int:
        attempts.append(row["id"])
        if len(attempts) == 1:
            raise RateLimitError("429 slow down", retry_after=0)
        raise ValueError("bad request")

    steps = [Step("id", ids, kind="batch"), Step("v", flaky, depends_on=["id"])]
    config = RunConfig(buffer_size=1, engine="async", **FAST)
    with caplog.at_level(logging.DEBUG, logger="rowforge"):
        failed_run(steps, 1, config)
    assert attempts == [0, 0]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug == [
        "retrying v in 0.00s after RateLimitError('429 slow down')",
        "row group 0: step 'v' failed: ValueError: bad request",
    ]


def test_a_batch_step_returning_too_few_values_fails_its_row_group() -> None:
    """The row contract is broken by this row group's batch step: the run aborts and the row
    group holds the fatal error, so it ends `failed`, not `cancelled`."""
    steps = [Step("id", ids, kind="batch"), Step("b", lambda frame: [1], kind="batch")]
    result = failed_run(steps, 2, RunConfig(buffer_size=2, engine="async", **FAST))
    assert ended(result.events) == [(0, "failed", "run aborted")]


def test_an_abort_cancels_the_other_row_groups_with_reason_run_aborted() -> None:
    """Row group 0's batch step breaks the row contract while row group 1's `v` runs."""

    async def v(row: dict[str, Any]) -> int:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def b(frame: pd.DataFrame) -> list[int]:
        return [1] if frame.index[0] == 0 else [1] * len(frame)

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", v, depends_on=["id"]),
        Step("w", lambda row: 1, depends_on=["id"]),
        Step("b", b, kind="batch", depends_on=["w"]),
    ]
    config = RunConfig(buffer_size=2, engine="async", max_concurrent_row_groups=2, **FAST)
    result = failed_run(steps, 4, config)
    assert sorted(ended(result.events)) == [
        (0, "failed", "run aborted"),
        (1, "cancelled", "run aborted"),
    ]


def test_an_early_shutdown_drops_a_seeding_row_group_with_its_own_reason() -> None:
    """Row group 0's `v` fails twice (a full window) while row group 1 is still seeding."""

    async def seed(frame: pd.DataFrame) -> list[int]:
        if frame.index[0] == 2:
            await asyncio.Event().wait()
        return list(frame.index)

    def v(row: dict[str, Any]) -> int:
        raise ValueError("bad request")

    steps = [Step("id", seed, kind="batch"), Step("v", v, depends_on=["id"], resource="m")]
    config = RunConfig(
        buffer_size=2,
        engine="async",
        max_concurrent_row_groups=2,
        early_shutdown_window=2,
        **FAST,
    )
    with pytest.raises(EarlyShutdownError) as caught:
        run(steps, 4, config)
    result = caught.value.result  # type: ignore[attr-defined]
    reasons = result.drop_reasons()
    # Only row group 1 matters here: the async engine drops the row whose failure trips the
    # breaker as "early shutdown" (it drains before dropping that row), the sync engine as the
    # step's failure; pinning either is not this test's business.
    assert sum(reasons.values()) == 4
    assert reasons["early shutdown during seeding"] == 2


def test_a_success_that_lands_after_the_drain_began_queues_nothing() -> None:
    """`v` on rows 0 and 1 finish in the same loop iteration: row 0's failure trips the
    breaker (window 1) and drains the run; row 1's success is then stored, but its downstream
    cell is not queued (the run admits nothing), so the run still ends."""

    async def v(row: dict[str, Any]) -> int:
        if row["id"] == 0:
            raise ValueError("bad request")
        return 1

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", v, depends_on=["id"], resource="m"),
        Step("w", lambda row: 2, depends_on=["v"]),
    ]
    config = RunConfig(buffer_size=2, engine="async", early_shutdown_window=1, **FAST)
    with pytest.raises(EarlyShutdownError) as caught:
        run(steps, 2, config)
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.generated_cells == {"id": 2, "v": 1, "w": 0}
    assert result.drop_reasons() == {
        "step 'v' failed: ValueError: bad request": 1,
        "early shutdown": 1,
    }


def test_a_dropped_rows_backing_off_retry_is_cancelled_at_once_and_never_runs() -> None:
    """`v` on row 0 is rate limited for 30 s; meanwhile `w` fails on row 0. The retry is
    cancelled with the row: the run does not wait out the backoff, `v` is called once."""
    calls: list[int] = []

    async def v(row: dict[str, Any]) -> int:
        calls.append(row["id"])
        raise RateLimitError("429 slow down", retry_after=30)

    async def w(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.01)
        raise ValueError("w rejected the row")

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", v, depends_on=["id"], resource="m"),
        Step("w", w, depends_on=["id"]),
    ]
    config = RunConfig(buffer_size=1, engine="async", trace=True, **FAST)
    result = failed_run(steps, 1, config)
    assert calls == [0]
    assert "internal error" not in str(result.first_error)
    retries = [(t.step, t.attempt, t.outcome, t.started) for t in result.task_traces]
    assert ("v", 1, "cancelled", 0.0) in retries
    assert result.drop_reasons() == {"step 'w' failed: ValueError: w rejected the row": 1}


def test_a_cancelled_transient_retry_leaves_no_retry_budget_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """White-box: the engine keeps each queued transient retry's budget used until the retry
    runs or is settled unstarted. `v` fails with a transient error, then `w` drops the row in
    the same loop iteration: the retry is settled while backing off and its entry (which holds
    the worker, and through it the row group) must go with it."""
    engines: list[AsyncEngine] = []
    real_init = AsyncEngine.__init__

    def init(self: AsyncEngine, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        engines.append(self)

    monkeypatch.setattr(AsyncEngine, "__init__", init)

    def v(row: dict[str, Any]) -> int:
        raise RetryableError("503 unavailable", retry_after=30)

    def w(row: dict[str, Any]) -> int:
        raise ValueError("w rejected the row")

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", v, depends_on=["id"]),
        Step("w", w, depends_on=["id"]),
    ]
    config = RunConfig(buffer_size=1, engine="async", trace=True, **FAST)
    result = failed_run(steps, 1, config)
    assert [(t.step, t.attempt, t.outcome) for t in result.task_traces if t.step == "v"] == [
        ("v", 0, "deferred"),
        ("v", 1, "cancelled"),
    ]
    (engine,) = engines
    assert engine._spent == {}


def test_a_dropped_rows_queued_worker_is_taken_out_of_the_queue() -> None:
    """One task at a time: `w` fails on row 0 while `x` on row 0 is still queued."""
    calls: list[str] = []

    def w(row: dict[str, Any]) -> int:
        calls.append("w")
        raise ValueError("w rejected the row")

    def x(row: dict[str, Any]) -> int:
        calls.append("x")
        return 1

    steps = [
        Step("id", ids, kind="batch"),
        Step("w", w, depends_on=["id"]),
        Step("x", x, depends_on=["id"]),
    ]
    config = RunConfig(buffer_size=1, engine="async", max_in_flight=1, trace=True, **FAST)
    result = failed_run(steps, 1, config)
    assert calls == ["w"]
    assert "internal error" not in str(result.first_error)
    assert [(t.step, t.outcome) for t in result.task_traces] == [
        ("id", "succeeded"),
        ("w", "failed"),
        ("x", "cancelled"),
    ]


def test_a_failed_batch_step_cancels_the_other_workers_of_its_row_group() -> None:
    def judge(frame: pd.DataFrame) -> list[int]:
        raise ValueError("judge rejected the batch")

    steps = [
        Step("id", ids, kind="batch"),
        Step("a", lambda row: row["id"], depends_on=["id"]),
        Step("k", hang, depends_on=["id"]),
        Step("judge", judge, kind="batch", depends_on=["a"]),
    ]
    config = RunConfig(buffer_size=2, engine="async", trace=True, **FAST)
    result = failed_run(steps, 2, config)
    assert "internal error" not in str(result.first_error)
    assert [(t.step, t.outcome) for t in result.task_traces if t.step == "k"] == [
        ("k", "cancelled"),
        ("k", "cancelled"),
    ]
    assert result.drop_reasons() == {"step 'judge' failed: ValueError: judge rejected the batch": 2}


def test_an_obsolete_retry_is_settled_when_due_without_waiting_for_a_free_slot() -> None:
    """Row group 0's `judge` (model m, one slot) is rate limited and retries in 10 ms; `check`
    drops every row meanwhile, so the retry is obsolete when due. Row group 1's `judge` holds
    m's only slot for 50 ms then (`check` fails 5 ms in): the retry is settled at once, not
    queued behind it."""

    async def judge(frame: pd.DataFrame) -> list[int]:
        if frame.index[0] == 0:
            raise RateLimitError("429 slow down", retry_after=0.01)
        await asyncio.sleep(0.05)
        return [1] * len(frame)

    async def check(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.005)
        if row["id"] < 2:
            raise ValueError("check rejected the row")
        return 1

    steps = [
        Step("id", ids, kind="batch"),
        Step("a", lambda row: row["id"], depends_on=["id"]),
        Step("check", check, depends_on=["id"]),
        Step("judge", judge, kind="batch", depends_on=["a"], resource="m"),
    ]
    config = RunConfig(
        buffer_size=2,
        engine="async",
        max_concurrent_row_groups=2,
        trace=True,
        max_parallel_requests={"m": 1},
        **FAST,
    )
    result = run(steps, 4, config)
    traces = {(t.row_group, t.step, t.attempt): t for t in result.task_traces}
    retry, busy = traces[0, "judge", 1], traces[1, "judge", 0]
    assert (retry.outcome, retry.started) == ("cancelled", 0.0)
    assert busy.started < retry.finished < busy.finished


# -- cancellation --------------------------------------------------------------------------


def cancelled_run(steps: list[Step], records: int, config: RunConfig, **options: Any) -> EventLog:
    """Start the run, let `cancel` (given the run's task) cancel it, return its events."""
    events = EventLog()

    async def main() -> None:
        task = asyncio.create_task(
            run_steps_async(steps, records, config=config, events=events, **options)
        )
        RUNNING.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task

    RUNNING.clear()
    asyncio.run(main())
    return events


RUNNING: list[asyncio.Task[Any]] = []


def test_a_cancelled_run_ends_a_row_group_with_only_queued_work_as_run_cancelled() -> None:
    """One task at a time: row group 0's `v` runs (and cancels the run) while row group 1's
    seed worker is queued. Row group 0 ends when its worker is settled, row group 1 (nothing
    to settle) when the run ends; both with the reason "run cancelled", as in the sync engine."""

    async def v(row: dict[str, Any]) -> int:
        RUNNING[0].cancel()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    steps = [Step("id", ids, kind="batch"), Step("v", v, depends_on=["id"])]
    config = RunConfig(
        buffer_size=1, engine="async", max_in_flight=1, max_concurrent_row_groups=2, **FAST
    )
    events = cancelled_run(steps, 2, config)
    assert ended(events) == [(0, "cancelled", "run cancelled"), (1, "cancelled", "run cancelled")]
    assert [e.dest for e in events if e.machine == "run"][-1] == "cancelled"


def test_a_checkpoint_task_cancelled_before_it_started_ends_cancelled_while_writing() -> None:
    """The last cell of row group 0 schedules the run's cancellation just before it returns:
    the checkpoint task created for it is cancelled before it runs, and the row group ends
    `cancelled` with the reason "run cancelled while writing"."""

    async def v(row: dict[str, Any]) -> int:
        asyncio.get_running_loop().call_soon(RUNNING[0].cancel)
        return 1

    steps = [Step("id", ids, kind="batch"), Step("v", v, depends_on=["id"])]
    events = cancelled_run(steps, 1, RunConfig(buffer_size=1, engine="async", **FAST))
    assert ended(events) == [(0, "cancelled", "run cancelled while writing")]


# -- planted bugs: paths only an internal error reaches -------------------------------------


def test_a_stuck_row_group_is_an_internal_error_that_says_what_is_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planted: seeding ends but no ready cell is queued, so nothing can complete the rows."""
    monkeypatch.setattr(RowGroup, "finish_seeding", lambda self: [])
    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: 1, depends_on=["id"])]
    with pytest.raises(DatasetGenerationError) as caught:
        run(steps, 2, RunConfig(buffer_size=2, engine="async", **FAST))
    message = (
        "row group 0 is stuck in 'running': 2 incomplete rows and no task left that could "
        "complete them"
    )
    wrapped = f"internal error in rowforge's dispatcher: RuntimeError({message!r})"
    assert str(caught.value) == wrapped
    assert str(caught.value.__cause__) == message


def test_when_a_bug_leaves_a_worker_live_ending_the_run_reports_the_guards_refusal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Planted: feeding a finished worker to admission raises, before the worker is drained.
    At the end neither `fail` nor `cancel` may fire (a live worker); `cancel` is fired so that
    the log names the guard that refused it."""
    real_init = AsyncEngine.__init__

    def init(self: AsyncEngine, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)

        def observe(worker: Any) -> None:
            raise BUG

        monkeypatch.setattr(self.admission, "observe", observe)

    monkeypatch.setattr(AsyncEngine, "__init__", init)
    steps = [Step("id", ids, kind="batch")]
    with (
        caplog.at_level(logging.ERROR, logger="rowforge"),
        pytest.raises(DatasetGenerationError) as caught,
    ):
        run(steps, 1, RunConfig(buffer_size=1, engine="async", **FAST))
    assert caught.value.__cause__ is BUG
    (record,) = [r for r in caplog.records if r.getMessage().startswith("could not end")]
    assert "GuardRejected" in record.getMessage()
    assert "'cancel'" in record.getMessage()
    assert "no_live_workers" in record.getMessage()


def test_an_internal_error_after_the_run_was_done_does_not_finish_it_twice(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Planted: the check that finds the run done raises right after it marked it done. The
    internal error is raised, and asyncio reports no exception from a callback."""
    real = AsyncEngine._check_finished

    def check_finished(self: AsyncEngine) -> None:
        real(self)
        if self._done is not None and self._done.done():
            raise BUG

    monkeypatch.setattr(AsyncEngine, "_check_finished", check_finished)
    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: 1, depends_on=["id"])]
    with caplog.at_level(logging.ERROR), pytest.raises(DatasetGenerationError) as caught:
        run(steps, 1, RunConfig(buffer_size=1, engine="async", **FAST))
    assert caught.value.__cause__ is BUG
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_a_write_error_that_escapes_the_sink_wrapper_is_reported_as_a_sink_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planted: the checkpoint write raises a plain OSError instead of the wrapped error."""
    disk_full = OSError("disk full")

    def write_checkpoint(self: AsyncEngine, row_group: int, frame: pd.DataFrame) -> Any:
        raise disk_full

    monkeypatch.setattr(AsyncEngine, "_write_checkpoint", write_checkpoint)
    steps = [Step("id", ids, kind="batch")]
    with pytest.raises(DatasetGenerationError) as caught:
        run(steps, 2, RunConfig(buffer_size=2, engine="async", **FAST))
    assert str(caught.value) == "row group 0: writing to the sink failed: OSError: disk full"
    assert caught.value.__cause__ is disk_full
    result = caught.value.result  # type: ignore[attr-defined]
    assert ended(result.events) == [
        (
            0,
            "failed",
            "DatasetGenerationError: row group 0: writing to the sink failed: OSError: disk full",
        ),
    ]


def test_a_bug_after_a_checkpoint_is_an_internal_error_with_it_as_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def written(self: AsyncEngine, group: Any, checkpoint: Any) -> None:
        raise BUG

    monkeypatch.setattr(AsyncEngine, "_written", written)
    steps = [Step("id", ids, kind="batch")]
    with pytest.raises(DatasetGenerationError) as caught:
        run(steps, 1, RunConfig(buffer_size=1, engine="async", **FAST))
    assert caught.value.__cause__ is BUG
    assert str(caught.value) == (
        "internal error in rowforge's dispatcher: RuntimeError('planted dispatcher bug')"
    )


# -- the stall watchdog, on a clock the test drives ------------------------------------------


class DrivenClock:
    """The run's loop reads its time from here, and the watchdog's `asyncio.sleep` returns only
    when a step grants it a tick (the clock then moves on by the delay asked for). `advance(n)`
    returns once the watchdog has checked for stalls after each of `n` ticks. Nothing else in
    these runs waits on a timer, so the run's times are exact binary fractions."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.delays: list[float] = []
        self._grants: asyncio.Queue[None] = asyncio.Queue()
        self._checked: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, delay: float) -> None:
        if self.delays:  # the check after the previous tick is done
            self._checked.put_nowait(None)
        self.delays.append(delay)
        await self._grants.get()
        self.now += delay

    async def advance(self, ticks: int) -> None:
        for _ in range(ticks):
            self._grants.put_nowait(None)
            await self._checked.get()

    def run(
        self, monkeypatch: pytest.MonkeyPatch, main: Coroutine[Any, Any, RunResult]
    ) -> RunResult:
        monkeypatch.setattr(asyncio, "sleep", self.sleep)
        with asyncio.Runner() as runner:
            monkeypatch.setattr(runner.get_loop(), "time", lambda: self.now)
            return runner.run(main)


def stall_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("no progress")]


def test_a_hang_from_the_start_is_warned_about_once_per_interval_on_the_boundary(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The run starts at t=0.5 and its first task (the seed step) hangs for 8 ticks of 0.25
    (interval 1.0): the watchdog warns at t=1.5 and t=2.5, exactly one interval after the start
    and after its previous warning, and says for how long nothing moved."""
    clock = DrivenClock(0.5)

    async def seed(frame: pd.DataFrame) -> list[int]:
        await clock.advance(8)
        return list(frame.index)

    steps = [Step("id", seed, kind="batch")]
    config = RunConfig(buffer_size=1, engine="async", stall_warning_s=1.0)
    with caplog.at_level(logging.WARNING, logger="rowforge"):
        result = clock.run(monkeypatch, run_steps_async(steps, 1, config=config))
    assert clock.delays[:9] == [0.25] * 9
    assert result.stats["stall_warnings"] == 2
    assert stall_warnings(caplog) == [
        f"no progress for {seconds}s: 1 tasks in flight, 1 row groups active, 0 deferred, 0 queued"
        for seconds in (1, 2)
    ]


@pytest.mark.parametrize(("interval", "delay"), [(24.0, 5.0), (40.0, 5.0)])
def test_the_watchdog_checks_at_least_every_five_seconds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, interval: float, delay: float
) -> None:
    clock = DrivenClock(100.0)

    async def v(row: dict[str, Any]) -> int:
        await clock.advance(5)
        return 1

    steps = [Step("id", ids, kind="batch"), Step("v", v, depends_on=["id"])]
    config = RunConfig(buffer_size=1, engine="async", stall_warning_s=interval)
    with caplog.at_level(logging.WARNING, logger="rowforge"):
        clock.run(monkeypatch, run_steps_async(steps, 1, config=config))
    assert clock.delays[:6] == [delay] * 6
    # 25 s without progress: more than 24 s, less than 40 s
    assert len(stall_warnings(caplog)) == (1 if interval < 25 else 0)


def test_a_checkpoint_counts_as_progress(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One row group at a time; row group 1 is admitted when row group 0's checkpoint is done,
    and its seed step hangs for 4 ticks: one interval after that checkpoint, a warning."""
    clock = DrivenClock(0.5)

    async def seed(frame: pd.DataFrame) -> list[int]:
        if frame.index[0] == 1:
            await clock.advance(4)
        return list(frame.index)

    steps = [Step("id", seed, kind="batch")]
    config = RunConfig(
        buffer_size=1, engine="async", stall_warning_s=1.0, max_concurrent_row_groups=1
    )
    with caplog.at_level(logging.WARNING, logger="rowforge"):
        result = clock.run(monkeypatch, run_steps_async(steps, 2, config=config))
    assert result.actual_records == 2
    assert stall_warnings(caplog) == [
        "no progress for 1s: 1 tasks in flight, 1 row groups active, 0 deferred, 0 queued"
    ]
