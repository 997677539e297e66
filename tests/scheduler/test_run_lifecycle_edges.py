"""The run's rarer lifecycle edges, each taken by a real engine (issue 10: every spec edge is
exercised by the suite; `make test` fails otherwise, see tests/edge_coverage.py).

- `interrupt` from `draining` and from `aborting`: the run's task is cancelled while an early
  shutdown or a fatal error is still cancelling workers that take 50 ms to clean up;
- `abort` from `draining`: the checkpoint that salvages complete rows after an early shutdown
  fails in a post-batch processor;
- row group `cancel` from `checkpointing`: the run's task is cancelled just as a checkpoint task
  was created, before it ran, so nothing was written.

Each checks the transition in the event log, the end state, and that no worker outlived the run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import DatasetGenerationError
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step, build_plan
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.statemachine import SPECS, EventLog, replay
from rowforge.storage import MemorySink

from .test_cancellation import (
    EARLY_SHUTDOWN,
    PLANTED,
    PROCESSOR_FAILURE,
    PROCESSORS,
    Probe,
    early_shutdown_steps,
    hang_then_clean_up,
    ids,
    plant_internal_error,
    processor_failure_steps,
)

pytestmark = pytest.mark.timeout(60)


def taken(events: EventLog, machine: str) -> list[tuple[str, str]]:
    return [(e.source, e.trigger) for e in events if e.machine == machine]


async def _cancel_when(engine: AsyncEngine, state: str) -> asyncio.Task[None]:
    task = asyncio.create_task(engine.execute())
    while engine.run.state != state:
        assert not task.done(), f"the run ended without passing through {state!r}"
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return task


def _assert_cancelled_cleanly(engine: AsyncEngine, probe: Probe) -> None:
    assert engine.run.state == "cancelled"
    assert engine.run.live_workers == 0 and engine.admission.balanced
    assert probe.cancelled, "the scenario cancelled no call"
    # The run's cancellation cancels every task again, cleanups included (asyncio's TaskGroup):
    # each cancelled call either finished its cleanup or was interrupted in it, before the end.
    ended = [k for k, _ in probe.cleaned] + probe.interrupted
    assert sorted(ended) == sorted(probe.cancelled)
    assert replay(engine.events, SPECS)[("run", "run")] == "cancelled"


def test_cancelling_a_draining_run_interrupts_the_drain() -> None:
    probe = Probe()
    events = EventLog()

    async def scenario() -> AsyncEngine:
        plan = build_plan(early_shutdown_steps(probe, hang_then_clean_up), 80, 40)
        engine = AsyncEngine(plan, EARLY_SHUTDOWN, MemorySink(), events)
        await _cancel_when(engine, "draining")
        return engine

    engine = asyncio.run(scenario())
    assert ("draining", "interrupt") in taken(events, "run")
    assert taken(events, "run")[-1] == ("cancelling", "cancel")
    _assert_cancelled_cleanly(engine, probe)


def test_cancelling_an_aborting_run_interrupts_the_abort() -> None:
    probe = Probe()
    events = EventLog()

    async def scenario() -> AsyncEngine:
        plan = build_plan(processor_failure_steps(probe, hang_then_clean_up), 8, 4)
        engine = AsyncEngine(
            plan, PROCESSOR_FAILURE, MemorySink(), events, processors=PROCESSORS
        )
        await _cancel_when(engine, "aborting")
        return engine

    engine = asyncio.run(scenario())
    assert ("aborting", "interrupt") in taken(events, "run")
    _assert_cancelled_cleanly(engine, probe)
    # the row group that held the processor error failed; the other was cancelled
    assert sorted(s.state for s in engine.closed) == ["cancelled", "failed"]
    assert "post_batch processor" in str(engine.first_error)


def test_a_failing_salvage_checkpoint_aborts_a_draining_run() -> None:
    probe = Probe()
    events = EventLog()

    def explode(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("disk quota exceeded")

    async def scenario() -> AsyncEngine:
        plan = build_plan(early_shutdown_steps(probe, hang_then_clean_up), 40, 40)
        processors = [function_processor(explode, "post_batch")]
        engine = AsyncEngine(plan, EARLY_SHUTDOWN, MemorySink(), events, processors=processors)
        await engine.execute()
        return engine

    engine = asyncio.run(scenario())
    run = taken(events, "run")
    assert run == [
        ("pending", "start"),
        ("running", "drain"),
        ("draining", "abort"),
        ("aborting", "fail"),
    ]
    assert taken(events, "row_group")[-2:] == [("running", "salvage"), ("checkpointing", "fail")]
    assert engine.run.state == "failed" and engine.run.records_written == 0
    assert isinstance(engine.first_error, DatasetGenerationError)
    assert engine.run.live_workers == 0 and engine.admission.balanced


class CancelledAsACheckpointStarts(AsyncEngine):
    """The run's own task is cancelled (Ctrl-C) in the same loop iteration in which the first
    checkpoint task is created: the cancellation reaches the run first, so the TaskGroup
    cancels the checkpoint task before its first step."""

    outer: asyncio.Task[None] | None = None

    def _start_checkpoint(self, group: RowGroup) -> None:
        assert self.outer is not None
        self.outer.cancel()
        super()._start_checkpoint(group)


def test_a_checkpoint_cancelled_before_it_ran_cancels_its_row_group() -> None:
    events = EventLog()
    sink = MemorySink()

    async def answer(row: dict[str, Any]) -> str:
        return f"answer {row['id']}"

    async def scenario() -> CancelledAsACheckpointStarts:
        steps = [Step("id", ids, kind="batch"), Step("answer", answer, depends_on=["id"])]
        engine = CancelledAsACheckpointStarts(
            build_plan(steps, 8, 4), RunConfig(buffer_size=4, trace=True), sink, events
        )
        engine.outer = asyncio.create_task(engine.execute())
        with pytest.raises(asyncio.CancelledError):
            await engine.outer
        return engine

    engine = asyncio.run(scenario())
    assert ("checkpointing", "cancel") in taken(events, "row_group")
    assert engine.run.state == "cancelled" and engine.run.records_written == 0
    assert sink.dataset().empty
    assert engine.run.live_workers == 0 and engine.admission.balanced


def test_a_cancellation_after_an_internal_error_still_ends_the_run_with_queued_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the composed exploration: after an internal error the engine stops waiting for
    its bookkeeping while workers are still queued; a cancellation that arrives while the
    TaskGroup awaits the cancelled calls used to end the row groups with those queued workers
    still live, so `GuardRejected` replaced the `CancelledError` and the run never ended."""
    probe = Probe()
    events = EventLog()
    plant_internal_error(monkeypatch, on_call=4)  # the batch step "id" is the first success

    async def answer(row: dict[str, Any]) -> Any:
        key = row["id"]
        probe.start(key)
        if key < 3:
            return key
        return await hang_then_clean_up(probe, key)

    async def scenario() -> AsyncEngine:
        steps = [Step("id", ids, kind="batch"), Step("answer", answer, depends_on=["id"])]
        config = RunConfig(buffer_size=10, max_in_flight=2, stall_warning_s=60.0)
        engine = AsyncEngine(build_plan(steps, 10, 10), config, MemorySink(), events)
        task = asyncio.create_task(engine.execute())
        while probe.first_cancel is None:  # the internal error cancelled the parked call
            assert not task.done(), (probe.starts, engine.run.state, engine.first_error)
            await asyncio.sleep(0.001)
        assert engine.internal_error is not None and engine.admission.queued > 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return engine

    engine = asyncio.run(scenario())
    assert engine.run.state == "failed", "the internal error came first: the run failed"
    assert PLANTED in str(engine.first_error)
    assert engine.run.live_workers == 0 and engine.admission.balanced
    assert not engine.groups
    assert replay(events, SPECS)[("run", "run")] == "failed"
