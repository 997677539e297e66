"""What a run reports: per-row-group summaries and the `RunResult`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from rowforge.scheduler.trace import TaskTrace
from rowforge.statemachine import Event

if TYPE_CHECKING:
    import pandas as pd

    from rowforge.scheduler.rowgroup import RowGroup


@attrs.frozen
class RowGroupSummary:
    """How one row group ended."""

    index: int
    state: str
    planned_records: int
    records_written: int
    records_dropped: int
    drop_reasons: Mapping[str, int]
    skipped_cells: Mapping[str, int]

    @classmethod
    def of(cls, group: RowGroup) -> RowGroupSummary:
        return cls(
            index=group.ident,
            state=group.state,
            planned_records=group.expected_rows,
            records_written=group.rows_written,
            records_dropped=group.expected_rows - group.rows_written,
            drop_reasons=dict(group.drop_reasons),
            skipped_cells=dict(group.skipped),
        )


@attrs.frozen
class RunResult:
    """The outcome of one run, identical in shape for both engines.

    `generated_cells + skipped_cells + failed_cells + never_started_cells` is the total number of
    cells (records x columns) per column (INV-4).
    """

    outcome: str
    engine: str
    target_records: int
    actual_records: int
    early_shutdown: bool
    first_error: str | None
    generated_cells: Mapping[str, int]
    skipped_cells: Mapping[str, int]
    failed_cells: Mapping[str, int]
    never_started_cells: Mapping[str, int]
    row_groups: tuple[RowGroupSummary, ...]
    file_paths: tuple[str, ...]
    events: tuple[Event, ...]
    task_traces: tuple[TaskTrace, ...]
    stats: Mapping[str, Any]
    schema: Mapping[str, str] = attrs.field(factory=dict)
    dataset: pd.DataFrame | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def dropped_records(self) -> int:
        return self.target_records - self.actual_records

    def drop_reasons(self) -> dict[str, int]:
        """Why records are missing, summed over row groups."""
        reasons: dict[str, int] = {}
        for group in self.row_groups:
            for reason, count in group.drop_reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
        return reasons
