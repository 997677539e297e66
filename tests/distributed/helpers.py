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
