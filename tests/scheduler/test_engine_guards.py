"""The guard implementations the engine itself wires into its machines, on a real engine.

tests/scheduler/test_guard_functions.py checks each guard function with stand-in evidence; the
cell guards get their evidence from the engine (`EngineCore._upstream_ready` reads the row
group's dependency counters, `not_yet_counted` asks the ledger). Here a real engine's own
machines must refuse: a cell whose upstream cell is not generated cannot start, and a cell the
ledger already counted cannot be counted again even on an edge the spec allows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rowforge.errors import DatasetGenerationError, GuardRejected
from rowforge.scheduler import RunConfig, Step, build_plan
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.statemachine import EventLog
from rowforge.storage import MemorySink


def _engine() -> AsyncEngine:
    def first(row: dict[str, Any]) -> int:
        return 1

    def second(row: dict[str, Any]) -> int:
        return row["a"] + 1

    steps = [Step("a", first), Step("b", second, depends_on=["a"])]
    return AsyncEngine(build_plan(steps, 2, 2), RunConfig(buffer_size=2), MemorySink(), EventLog())


def test_a_cell_cannot_start_before_its_upstream_cell_is_generated() -> None:
    engine = _engine()
    group = engine._open_group(engine.plan.row_group(0))
    downstream = group.cells["b"][0]
    assert engine._upstream_ready(downstream) is False
    with pytest.raises(GuardRejected) as refused:
        engine.machines.cells.fire(downstream, "start")
    assert refused.value.guard == "upstream_generated" and downstream.state == "pending"

    engine.machines.cells.fire(group.cells["a"][0], "start")
    group.generate("a", 0, 1)
    assert engine._upstream_ready(downstream) is True
    engine.machines.cells.fire(downstream, "start")
    assert downstream.state == "running"
    # the other row's upstream is still pending: rows advance independently (INV-9)
    assert engine._upstream_ready(group.cells["b"][1]) is False


def test_a_cell_the_ledger_counted_is_refused_even_where_the_spec_has_an_edge() -> None:
    engine = _engine()
    group = engine._open_group(engine.plan.row_group(0))
    cell = group.cells["a"][0]
    engine.machines.cells.fire(cell, "start")
    engine.ledger.count(cell, "generated")  # counted while still running: a double count next
    with pytest.raises(GuardRejected) as refused:
        engine.ledger.settle(cell, "generate")
    assert refused.value.guard == "not_yet_counted" and cell.state == "running"
    assert engine.ledger.generated["a"] == 1


def test_a_worker_whose_task_still_runs_cannot_be_drained() -> None:
    """Settling a started worker as if it never ran (the path for queued workers) would forget
    a task that is still running: the `task_finished` guard refuses its `release`."""
    gate = asyncio.Event()

    async def slow(row: dict[str, Any]) -> int:
        await gate.wait()
        return 1

    async def scenario() -> None:
        steps = [Step("a", slow)]
        engine = AsyncEngine(build_plan(steps, 1, 1), RunConfig(), MemorySink(), EventLog())
        run = asyncio.create_task(engine.execute())
        while not engine.groups or not any(
            w.task is not None for g in engine.groups.values() for w in g.live_workers
        ):
            await asyncio.sleep(0.001)
        (worker,) = [w for g in engine.groups.values() for w in g.live_workers]
        with pytest.raises(GuardRejected) as refused:
            engine._settle_unstarted(worker)
        assert refused.value.guard == "task_finished"
        assert worker in worker.row_group.live_workers, "the worker is still live"
        gate.set()
        # the task's own completion then meets a worker settled by hand: an engine bug, which
        # fails the run loudly instead of losing the worker
        with pytest.raises(DatasetGenerationError, match="internal error"):
            await run

    asyncio.run(scenario())
