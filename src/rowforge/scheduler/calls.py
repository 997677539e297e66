"""Calling a step, and checking what a batch step returned."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from rowforge.errors import DatasetProcessingError, StepOutputError, describe_error
from rowforge.scheduler.plan import RowFailed, Step
from rowforge.step_context import CURRENT_STEP


async def call_step(step: Step, argument: Any) -> Any:
    """Call `step.fn`, awaiting it when it is async. Sync callables run on the loop. The step's
    name is `CURRENT_STEP` meanwhile, so a model client's warnings can name the column."""
    token = CURRENT_STEP.set(step.name)
    try:
        result = step.fn(argument)
        if step.is_async:
            result = await result
    finally:
        CURRENT_STEP.reset(token)
    if step.extra_columns and step.kind == "cell":
        _require_columns(step, result)
    return result


def _require_columns(step: Step, value: Any) -> None:
    """A cell step with extra columns returns a mapping holding each of its columns; anything
    else fails the cell (a broken reply, not a broken run), naming what is missing."""
    if not isinstance(value, Mapping):
        raise StepOutputError(
            f"step {step.name!r} produces columns {list(step.columns)} and must return a "
            f"mapping of them, got {type(value).__name__}"
        )
    missing = [column for column in step.columns if column not in value]
    if missing:
        raise StepOutputError(f"step {step.name!r} returned no value for columns {missing}")


def step_failure_reason(step: Step, error: BaseException) -> str:
    """The drop reason for a cell or batch whose step failed: one wording for both engines, so
    their metadata agree (INV-11)."""
    return f"step {step.name!r} failed: {describe_error(error)}"


def batch_values(step: Step, row_group: int, value: Any) -> list[Any]:
    """A batch step's return value as a list of values, one per row it returned. Whether that
    is one per row it was given is the row-count guard's call (INV-5), see `count_breach`. A
    DataFrame without the step's column raises here: there is nothing to count."""
    if isinstance(value, pd.DataFrame):
        missing = [column for column in step.columns if column not in value.columns]
        if missing:
            raise DatasetProcessingError(
                f"batch step {step.name!r} returned a DataFrame without column "
                f"{', '.join(map(repr, missing))} for row group {row_group}"
            )
        if step.extra_columns:
            records = value[list(step.columns)].to_dict(orient="records")
            own = step.name  # a row failed in the step's own column failed as a whole
            return [r[own] if isinstance(r[own], RowFailed) else r for r in records]
        value = value[step.name]
    elif step.extra_columns:
        raise DatasetProcessingError(
            f"batch step {step.name!r} produces columns {list(step.columns)} and must return "
            f"a DataFrame of them for row group {row_group}, got {type(value).__name__}"
        )
    return list(value)


def count_breach(step: Step, row_group: int, returned: int, given: int) -> str:
    """How a batch step that returned the wrong number of rows broke the row contract."""
    return (
        f"batch step {step.name!r} returned {returned} rows for row group {row_group}, "
        f"which has {given}; only allow_resize steps may change the row count, and they "
        "run on the sync engine"
    )
