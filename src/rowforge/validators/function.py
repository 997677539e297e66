"""A Python function as validator (data-designer's `local_callable`).

`fn(frame) -> frame`: called with a DataFrame of the batch's target columns (indexed by record
index); it returns a DataFrame with one row per record, in the same order, holding a boolean
`is_valid` column and any other columns, and each row becomes that record's output. A sync
function runs in a worker thread (`asyncio.to_thread`: a slow check must not stall the event
loop that drives every other row group); an async one is awaited on the loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from rowforge.models.config import describe
from rowforge.validators.outputs import checked_outputs


def is_async(function: Callable[..., Any]) -> bool:
    """A coroutine function, or an object whose `__call__` is one."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - async callable objects
    )


async def call_function(
    function: Callable[..., Any], frame: pd.DataFrame, schema: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Each record's output from `function(frame)`, checked (`checked_outputs`)."""
    if is_async(function):
        result = await function(frame)
    else:
        result = await asyncio.to_thread(function, frame)
        if inspect.isawaitable(result):  # e.g. a partial of an async function
            result = await result
    if not isinstance(result, pd.DataFrame):
        raise ValueError(f"returned {describe(result)}, not a DataFrame")
    if len(result) != len(frame):
        raise ValueError(f"returned {len(result)} rows for {len(frame)} records")
    if "is_valid" not in result.columns:
        raise ValueError(f"returned a DataFrame without an 'is_valid' column: {list(result)}")
    return checked_outputs(result.to_dict(orient="records"), len(frame), schema)
