"""Blocking work (processors, writes) off the event loop, finished even if the run is cancelled.

A write that has started is allowed to finish: abandoning it would leave a thread writing after
`build()` returned (INV-2) and a file whose fate the metadata does not know (INV-7). So
`run_uninterrupted` absorbs a cancellation that arrives while the function runs and returns its
value; the task's `cancelling()` count stays raised. The caller records the result first and
then lets the cancellation take effect: the sync engine raises `CancelledError` when
`cancelling()` grew during the checkpoint, the async engine's checkpoint task ends and the
TaskGroup, already cancelled, unwinds the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_uninterrupted(function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` in the default executor and wait for it, through cancellation.

    Only when the executor itself cancels the work (its future is cancelled) does this raise
    `CancelledError`: there is no result left to wait for."""
    future = asyncio.get_running_loop().run_in_executor(None, function, *args)
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                return future.result()
            continue
