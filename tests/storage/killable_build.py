"""A build that the resume test kills with SIGKILL: `python -m tests.storage.killable_build DIR`."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pandas as pd

from rowforge.build import build_steps
from rowforge.scheduler import RunConfig, Step

NUM_RECORDS = 2000
CONFIG = RunConfig(buffer_size=50, max_in_flight=32, max_concurrent_row_groups=3)


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


async def text(row: dict[str, Any]) -> str:
    await asyncio.sleep(0.01)
    return f"text {row['id']}"


async def length(row: dict[str, Any]) -> int:
    await asyncio.sleep(0.005)
    return len(row["text"])


STEPS = [
    Step("id", ids, kind="batch"),
    Step("text", text, depends_on=["id"], resource="model"),
    Step("length", length, depends_on=["text"], resource="model"),
]

if __name__ == "__main__":
    # Import by module name, so that step functions hash as they do in the test process.
    from tests.storage import killable_build

    build_steps(killable_build.STEPS, NUM_RECORDS, sys.argv[1], config=killable_build.CONFIG)
