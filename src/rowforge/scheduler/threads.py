"""Blocking work (sink writes) off the event loop, finished even if the run is cancelled.

A write that has started is allowed to finish: abandoning it would leave a thread writing after
`build()` returned (INV-2) and a file whose fate the metadata does not know (INV-7). Cancellation
therefore takes effect when the write is complete; the result is kept, the file is reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_uninterrupted(function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` in the default executor and wait for it, through cancellation."""
    future = asyncio.get_running_loop().run_in_executor(None, function, *args)
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                return future.result()
            continue
