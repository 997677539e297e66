"""What a run reports: `RowGroupSummary.of` and the figures `RunResult` derives.

Written ahead of `make mutants` over outcome.py, to kill mutants in:
- `RowGroupSummary.of`: every field read from a real `RowGroup`, each with a value no other
  field has (so a field fed from the wrong attribute, or None, shows), and
  `records_dropped = planned + resized - written` with all three non-zero, so a `+`/`-` swap
  changes it; the drop reasons and skipped cells are copies, not the row group's counters;
- `RunResult.resized_records` (a sum with a negative resize in it), `dropped_records`
  (`target + resized - actual`, all three non-zero) and `drop_reasons()` (the same reason
  summed over row groups, a reason of one row group only, counts other than 1 so that a
  default of 1 instead of 0 or `-` instead of `+` shows).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from rowforge.scheduler import RowGroupSummary, RunResult, Step, build_plan
from rowforge.scheduler.ledger import Ledger
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.subjects import Machines
from rowforge.statemachine import EventLog


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def row_group(index: int) -> RowGroup:
    """Row group `index` of a 12-record plan with 4 records per row group."""
    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: 1, depends_on=["id"])]
    plan = build_plan(steps, 12, 4)
    machines = Machines(EventLog(), False, lambda cell: True, lambda cell: False)
    return RowGroup(plan.row_group(index), plan, Ledger(machines.cells, set()))


def test_a_row_group_summary_reads_every_field_of_its_row_group() -> None:
    group = row_group(2)  # records 8..11
    group.state = "drained"
    group.records_resized = 5  # 4 planned + 5 added = 9 rows
    group.rows_written = 6
    group.drop_reasons.update({"step 'v' failed: ValueError: odd": 2, "timeout": 1})
    group.skipped.update({"v": 7})
    summary = RowGroupSummary.of(group)
    assert summary == RowGroupSummary(
        index=2,
        state="drained",
        planned_records=4,
        records_written=6,
        records_dropped=3,
        drop_reasons={"step 'v' failed: ValueError: odd": 2, "timeout": 1},
        skipped_cells={"v": 7},
        first_record=8,
        records_resized=5,
    )
    assert type(summary.drop_reasons) is dict and type(summary.skipped_cells) is dict
    group.drop_reasons["timeout"] += 10
    group.skipped["v"] += 10
    assert summary.drop_reasons["timeout"] == 1 and summary.skipped_cells["v"] == 7, "copies"


def test_a_summary_of_a_row_group_that_lost_rows_to_a_resize_drops_none_of_them() -> None:
    group = row_group(1)
    group.records_resized = -3  # 4 planned, 3 removed: the one row left is written
    group.rows_written = 1
    summary = RowGroupSummary.of(group)
    assert (summary.index, summary.first_record, summary.planned_records) == (1, 4, 4)
    assert (summary.records_resized, summary.records_dropped) == (-3, 0)
    assert summary.drop_reasons == {} and summary.skipped_cells == {}
    assert summary.state == "pending", "the row group's own state, whatever it is"


def group_summary(index: int, resized: int, reasons: dict[str, int]) -> RowGroupSummary:
    return RowGroupSummary(
        index=index,
        state="drained",
        planned_records=10,
        records_written=10 + resized - sum(reasons.values()),
        records_dropped=sum(reasons.values()),
        drop_reasons=reasons,
        skipped_cells={},
        first_record=10 * index,
        records_resized=resized,
    )


def result(*groups: RowGroupSummary, **fields: Any) -> RunResult:
    values: dict[str, Any] = {
        "outcome": "partial",
        "engine": "sync",
        "target_records": 10 * len(groups),
        "actual_records": sum(g.records_written for g in groups),
        "early_shutdown": False,
        "first_error": None,
        "generated_cells": {},
        "skipped_cells": {},
        "failed_cells": {},
        "never_started_cells": {},
        "row_groups": groups,
        "file_paths": (),
        "events": (),
        "task_traces": (),
        "stats": {},
    }
    values.update(fields)
    return RunResult(**values)


def test_resized_records_sum_every_row_groups_resize_negative_ones_included() -> None:
    run = result(group_summary(0, 7, {}), group_summary(1, -2, {}), group_summary(2, 0, {}))
    assert run.resized_records == 5
    assert result().resized_records == 0


def test_dropped_records_are_the_target_plus_the_resize_minus_what_was_written() -> None:
    run = result(group_summary(0, 7, {"timeout": 3}), group_summary(1, -2, {"timeout": 1}))
    assert (run.target_records, run.resized_records, run.actual_records) == (20, 5, 21)
    assert run.dropped_records == 4
    assert result(target_records=9, actual_records=2).dropped_records == 7


def test_drop_reasons_are_summed_over_the_row_groups() -> None:
    run = result(
        group_summary(0, 0, {"timeout": 2, "step 'v' failed: ValueError: odd": 3}),
        group_summary(1, 0, {}),
        group_summary(2, 0, {"timeout": 4, "every row dropped": 1}),
    )
    assert run.drop_reasons() == {
        "timeout": 6,
        "step 'v' failed: ValueError: odd": 3,
        "every row dropped": 1,
    }
    assert result(group_summary(0, 0, {})).drop_reasons() == {}
