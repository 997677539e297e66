"""Functions the Ray tests' configs name as `module:function` (the workers import them), and a
mock server that counts the requests it is answering at once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pandas as pd

from rowforge.models.mock_server import MockServer

GO = "go"


def writer_model(url: str) -> dict[str, Any]:
    """The Ray tests' model: the mock server at `url`, at most 4 requests at once."""
    return {
        "alias": "writer",
        "provider": "openai",
        "model": "mock-1",
        "base_url": url,
        "max_parallel_requests": 4,
        "timeout_s": 20,
    }


async def wait_at_gate(frame: pd.DataFrame) -> list[str]:
    """Row group 1 (records 10..19) says it is waiting (`waiting-<pid>` in the gate directory)
    and waits until the test creates `go`; the other row groups pass at once."""
    gate = Path(str(frame["gate"].iloc[0]))
    if frame.index.min() == 10:
        (gate / f"waiting-{os.getpid()}").touch()
        while not (gate / GO).exists():
            await asyncio.sleep(0.02)
    return [f"r{index}" for index in frame.index]


def fail_in_row_group_2(frame: pd.DataFrame) -> pd.DataFrame:
    """A processor that fails on row group 2 (records 20..29) only."""
    if frame.index.min() == 20:
        raise ValueError("the processor refuses records 20..29")
    return frame


class CountingMockServer(MockServer):
    """`MockServer` that knows how many chat requests it is answering now and at most."""

    in_flight = 0
    peak_in_flight = 0

    async def _answer(self, body: dict[str, Any]) -> Any:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await super()._answer(body)
        finally:
            self.in_flight -= 1


async def ints_then_floats(frame: pd.DataFrame) -> list[Any]:
    """Row group 0 (records 0..9) gives integers; row group 1 waits until the driver lists row
    group 0 in metadata.json (so row group 0's types are the run's, on Ray as locally), then
    gives floats: whole ones, or with `frame["kind"] == "halves"` ones that are not whole."""
    out = Path(str(frame["out"].iloc[0]))
    if frame.index.min() == 0:
        return [int(index) for index in frame.index]
    while '"index": 0' not in _text(out / "metadata.json"):
        await asyncio.sleep(0.02)
    step = 0.5 if frame["kind"].iloc[0] == "halves" else 0.0
    return [float(index) + step for index in frame.index]


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
