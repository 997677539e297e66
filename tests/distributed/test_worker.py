"""The worker's side of the driver's calls, in-process (the actor is a plain class): replies
lose nothing when the driver never reads one, and a `stop` that Ray starts before `run` wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from rowforge.distributed.worker import RowGroupWorker, WorkerJob, WorkerParts
from rowforge.scheduler import RunConfig, Step, build_plan
from rowforge.storage.location import OutputFiles

CONFIG = RunConfig(buffer_size=5, progress_interval_s=0.01)


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def worker(output: Path) -> RowGroupWorker:
    plan = build_plan([Step("id", ids, kind="batch")], 20, CONFIG.buffer_size)
    return RowGroupWorker(WorkerJob(OutputFiles.at(output), WorkerParts(plan)), CONFIG)


def test_a_reply_the_driver_never_read_is_handed_over_again(tmp_path: Path) -> None:
    async def main() -> None:
        actor = worker(tmp_path)
        running = asyncio.create_task(actor.run([0, 1, 2, 3]))
        await running
        lost = await actor.finished(0)  # the driver's call was cancelled: it never saw these
        assert sorted(i.summary.index for i in lost.items) == [0, 1, 2, 3]
        again = await actor.stop(0)
        assert sorted(i.summary.index for i in again.items) == [0, 1, 2, 3]
        assert again.ended and again.snapshot is not None and again.snapshot.final
        assert (await actor.stop(4)).items == []  # acknowledged: not handed over twice

    asyncio.run(main())


def test_replies_carry_the_engine_s_latest_snapshot(tmp_path: Path) -> None:
    async def main() -> None:
        actor = worker(tmp_path)
        running = asyncio.create_task(actor.run([0, 1]))
        seen, replies = 0, []
        while True:
            reply = await actor.finished(seen)
            seen += len(reply.items)
            replies.append(reply)
            if reply.ended:
                break
        await running
        assert seen == 2
        last = replies[-1].snapshot
        assert last is not None and last.final and last.records_written == 10

    asyncio.run(main())


def test_a_stop_that_runs_before_run_means_nothing_is_generated(tmp_path: Path) -> None:
    async def main() -> None:
        actor = worker(tmp_path)
        reply = await actor.stop(0)
        assert reply.items == [] and reply.ended
        with pytest.raises(asyncio.CancelledError):
            await actor.run([0, 1])

    asyncio.run(main())
    assert not list(tmp_path.glob("parquet-files/*.parquet"))
