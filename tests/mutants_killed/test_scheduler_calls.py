"""Calling a step and checking a batch step's return value, on their own.

Kills survivors of `make mutants` (scheduler, calls.py): a sync step's value returned as is, an
async step's awaited, a DataFrame's own column taken (and a missing one named with the row
group), any other iterable listed, and the row-contract message naming step, counts and row
group.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from rowforge.errors import DatasetProcessingError
from rowforge.scheduler import Step
from rowforge.scheduler.calls import batch_values, call_step, count_breach


def test_call_step_returns_a_sync_value_and_awaits_an_async_one() -> None:
    async def doubled(argument: dict[str, int]) -> int:
        return argument["x"] * 2

    sync = Step("tripled", lambda argument: argument["x"] * 3)
    assert asyncio.run(call_step(sync, {"x": 2})) == 6
    assert asyncio.run(call_step(Step("doubled", doubled), {"x": 2})) == 4


def test_batch_values_takes_the_steps_column_of_a_dataframe() -> None:
    step = Step("judge", lambda frame: frame, kind="batch")
    frame = pd.DataFrame({"other": [9, 9], "judge": [1, 2]}, index=[10, 11])
    assert batch_values(step, 3, frame) == [1, 2]
    assert batch_values(step, 3, pd.Series([4, 5])) == [4, 5]
    assert batch_values(step, 3, (6, 7, 8)) == [6, 7, 8]
    with pytest.raises(DatasetProcessingError) as caught:
        batch_values(step, 3, pd.DataFrame({"other": [1]}))
    assert str(caught.value) == (
        "batch step 'judge' returned a DataFrame without column 'judge' for row group 3"
    )


def test_count_breach_names_the_step_the_counts_and_the_row_group() -> None:
    step = Step("judge", lambda frame: frame, kind="batch")
    assert count_breach(step, 4, 3, 5) == (
        "batch step 'judge' returned 3 rows for row group 4, which has 5; only allow_resize "
        "steps may change the row count, and they run on the sync engine"
    )
