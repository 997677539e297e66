"""Calling a step, and checking what a batch step returned."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rowforge.errors import DatasetProcessingError
from rowforge.scheduler.plan import Step


async def call_step(step: Step, argument: Any) -> Any:
    """Call `step.fn`, awaiting it when it is async. Sync callables run on the loop."""
    result = step.fn(argument)
    if step.is_async:
        result = await result
    return result


def batch_values(step: Step, row_group: int, value: Any, expected: int) -> list[Any]:
    """Normalise a batch step's return value to one value per row, or raise (INV-5)."""
    if isinstance(value, pd.DataFrame):
        if step.name not in value.columns:
            raise DatasetProcessingError(
                f"batch step {step.name!r} returned a DataFrame without column {step.name!r} "
                f"for row group {row_group}"
            )
        value = value[step.name]
    values = list(value)
    if len(values) != expected:
        raise DatasetProcessingError(
            f"batch step {step.name!r} returned {len(values)} rows for row group {row_group}, "
            f"which has {expected}; only allow_resize steps may change the row count, and they "
            "run on the sync engine"
        )
    return values
