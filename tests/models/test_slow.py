"""The slow-request warning: repeated while pending, silent once the request has ended."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from rowforge.models.slow import SlowRequestWarning


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "rowforge" and r.levelno == logging.WARNING
    ]


@pytest.mark.asyncio
async def test_pending_request_warns_every_interval_with_alias_and_elapsed_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")
    with SlowRequestWarning("writer", 0.05) as watch:
        await asyncio.sleep(0.18)
    messages = _warnings(caplog)
    assert 2 <= watch.warnings == len(messages) <= 4
    for message in messages:
        assert re.fullmatch(
            r"model 'writer': request still pending after \d+\.\ds \(warning every 0.05s.*\)",
            message,
        )


@pytest.mark.asyncio
async def test_no_warning_after_the_request_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")
    with SlowRequestWarning("writer", 0.05):
        await asyncio.sleep(0.07)
    assert len(_warnings(caplog)) == 1
    await asyncio.sleep(0.15)
    assert len(_warnings(caplog)) == 1


@pytest.mark.asyncio
async def test_fast_request_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")
    with SlowRequestWarning("writer", 0.05):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert _warnings(caplog) == []


@pytest.mark.asyncio
async def test_timer_is_cancelled_when_the_request_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")
    watches: list[SlowRequestWarning] = []

    async def request() -> None:
        with SlowRequestWarning("judge", 0.05) as watch:
            watches.append(watch)
            await asyncio.sleep(10)

    task = asyncio.create_task(request())
    await asyncio.sleep(0.07)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.15)
    assert watches[0].warnings == 1
    assert len(_warnings(caplog)) == 1


@pytest.mark.asyncio
async def test_timer_is_cancelled_when_the_request_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")
    with pytest.raises(ValueError), SlowRequestWarning("judge", 0.05):
        raise ValueError("boom")
    await asyncio.sleep(0.1)
    assert _warnings(caplog) == []


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_a_slow_request_during_a_run_names_the_model_and_the_column(
    caplog: pytest.LogCaptureFixture, engine: str
) -> None:
    """The step that made the request is named (the scheduler sets it for the call), in both
    engines, and two steps calling at once are told apart."""
    import pandas as pd

    from rowforge.scheduler import RunConfig, Step, run_steps_async

    async def slow_call(row: dict[str, object]) -> int:
        with SlowRequestWarning("writer", 0.03):
            await asyncio.sleep(0.05)
        return 1

    steps = [
        Step("id", lambda frame: list(pd.RangeIndex(len(frame))), kind="batch"),
        Step("reply", slow_call, depends_on=["id"]),
        Step("summary", slow_call, depends_on=["id"]),
    ]
    caplog.set_level(logging.WARNING, logger="rowforge")
    config = RunConfig(buffer_size=1, engine=engine, stall_warning_s=60.0)
    asyncio.run(run_steps_async(steps, 1, config=config))
    columns = sorted(re.findall(r"model 'writer' \(column '(\w+)'\)", " ".join(_warnings(caplog))))
    assert columns == ["reply", "summary"]
