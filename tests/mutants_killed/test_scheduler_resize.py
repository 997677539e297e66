"""`allow_resize` steps (sync engine): what a resized run writes, counts and reports.

Kills the `RowGroup.resize` survivors of `make mutants` (scheduler, rowgroup.py): tests/scheduler
resizes only with the last step. Here a resize is followed by a cell step that reads the
resized columns and by a second resize, with a pre-batch processor's column carried through,
so the new rows' values, dependency counters, ledger counts, `cell_delta`/`records_resized`
(accumulated over two resizes), the row groups' terminal events and the refusal of a frame
without the columns already generated are all checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import DatasetProcessingError
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step, run_steps_async

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def tag(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(tag=[f"seed{index}" for index in frame.index])


def double(column: str) -> Any:
    """A resizing batch step: every input row twice, with `column` numbered and a new tag."""

    def resize(frame: pd.DataFrame) -> pd.DataFrame:
        doubled = pd.concat([frame, frame], ignore_index=True)
        doubled[column] = range(len(doubled))
        doubled["tag"] = [f"{column}{n}" for n in range(len(doubled))]
        return doubled

    return resize


def joined(row: dict[str, Any]) -> str:
    return f"{row['id']}-{row['twice']}"


STEPS = [
    Step("id", ids, kind="batch"),
    Step("twice", double("twice"), kind="batch", depends_on=["id"], allow_resize=True),
    Step("after", joined, depends_on=["twice", "id"]),
    Step("again", double("again"), kind="batch", depends_on=["after"], allow_resize=True),
]


def run(steps: list[Step], records: int, **config: Any) -> Any:
    processors = [function_processor(tag, "pre_batch")]
    settings = RunConfig(buffer_size=2, engine="sync", **{**FAST, **config})
    return asyncio.run(run_steps_async(steps, records, config=settings, processors=processors))


def test_a_cell_step_after_a_resize_runs_on_every_new_row_and_a_second_resize_counts_too() -> None:
    result = run(STEPS, 4, trace=True)
    assert result.outcome == "completed" and result.engine == "sync"
    # two row groups of 2 planned rows, each doubled twice: 8 rows each
    assert result.actual_records == 16 and result.resized_records == 12
    assert [(g.index, g.first_record, g.records_resized, g.records_written, g.records_dropped)
            for g in result.row_groups] == [(0, 0, 6, 8, 0), (1, 8, 6, 8, 0)]
    frame = result.dataset
    assert list(frame.index) == list(range(16))
    assert list(frame.columns) == ["id", "twice", "after", "again", "tag"]
    # `after` ran on the 4 rows of the first resize, each seeing its own id and twice
    assert list(frame["after"][:8]) == ["0-0", "1-1", "0-2", "1-3"] * 2
    # row group 1's record indexes (the seed's ids) continue after row group 0's 8 rows
    assert list(frame["after"][8:]) == ["8-0", "9-1", "8-2", "9-3"] * 2
    # the tag column the second resize returned replaced the pre-batch processor's
    assert list(frame["tag"]) == [f"again{n}" for n in range(8)] * 2
    assert list(frame["again"]) == list(range(8)) * 2
    # the ledger counts every cell of every written row, and nothing is left unstarted
    columns = ["id", "twice", "after", "again"]
    assert result.generated_cells == dict.fromkeys(columns, 16)
    assert result.never_started_cells == dict.fromkeys(columns, 0)
    assert result.skipped_cells == dict.fromkeys(columns, 0)
    assert result.failed_cells == dict.fromkeys(columns, 0)
    assert result.stats["cell_delta"] == 48
    # each row group's terminal event counts its cells by outcome
    writes = [e for e in result.events if e.machine == "row_group" and e.trigger == "write"]
    assert [e.details["cells"] for e in writes] == [{c: [8, 0, 0] for c in columns}] * 2
    assert [e.details["rows"] for e in writes] == [8, 8]
    # the cell step's cells after the resize belong to their row group, row and column
    started = sorted(
        e.ident for e in result.events if e.machine == "cell" and e.trigger == "start"
        and e.ident[2] == "after"
    )
    assert started == [(group, row, "after") for group in (0, 1) for row in range(4)]


def test_a_resize_that_keeps_only_some_rows_counts_the_rows_it_removed() -> None:
    def halve(frame: pd.DataFrame) -> pd.DataFrame:
        kept = frame.iloc[:1].reset_index(drop=True)
        return kept.assign(half=[1])

    steps = [
        Step("id", ids, kind="batch"),
        Step("half", halve, kind="batch", depends_on=["id"], allow_resize=True),
        Step("after", lambda row: row["id"] * 10, depends_on=["half"]),
    ]
    result = run(steps, 4)
    assert result.outcome == "completed"
    assert result.actual_records == 2 and result.resized_records == -2
    assert [(g.records_resized, g.records_written) for g in result.row_groups] == [(-1, 1)] * 2
    assert list(result.dataset["after"]) == [0, 10]  # row group 1 now starts at record 1
    assert result.generated_cells == {"id": 2, "half": 2, "after": 2}
    assert result.never_started_cells == {"id": 0, "half": 0, "after": 0}
    assert result.stats["cell_delta"] == -6


def test_a_resize_without_the_columns_already_generated_names_step_row_group_and_columns() -> None:
    def forgetful(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"twice": [1, 2, 3]})

    steps = [
        Step("id", ids, kind="batch"),
        Step("twice", forgetful, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    with pytest.raises(DatasetProcessingError) as caught:
        run(steps, 2)
    assert str(caught.value) == (
        "allow_resize step 'twice' in row group 0 returned a DataFrame without columns ['id']"
    )
    assert caught.value.result.outcome == "failed"  # type: ignore[attr-defined]
