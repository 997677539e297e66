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
    """How one row group ended.

    `planned_records + records_resized == records_written + records_dropped`: an
    `allow_resize` step (sync engine only) adds or removes rows (`records_resized`), every
    other missing row is a drop with a reason. The row group's record indexes lie in
    `[first_record, first_record + planned_records + records_resized)`.
    """

    index: int
    state: str
    planned_records: int
    records_written: int
    records_dropped: int
    drop_reasons: Mapping[str, int]
    skipped_cells: Mapping[str, int]
    first_record: int = 0
    records_resized: int = 0

    @classmethod
    def of(cls, group: RowGroup) -> RowGroupSummary:
        planned = group.layout.size
        return cls(
            index=group.ident,
            state=group.state,
            planned_records=planned,
            records_written=group.rows_written,
            records_dropped=planned + group.records_resized - group.rows_written,
            drop_reasons=dict(group.drop_reasons),
            skipped_cells=dict(group.skipped),
            first_record=group.start,
            records_resized=group.records_resized,
        )


@attrs.frozen
class RunResult:
    """The outcome of one run, identical in shape for both engines.

    `first_error` is the text of the run's first error and `first_exception` the error itself.
    `generated_cells + skipped_cells + failed_cells + never_started_cells` is the total number of
    cells (records x columns) per column (INV-4). `events` holds the run's events when its log
    kept them in memory (preview, `run_steps` by default); a build streams them to events.jsonl
    and leaves `events` empty (read the file with `rowforge.statemachine.iter_jsonl`).
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
    #: The first error itself (`first_error` is its text): an embedding host that re-raises or
    #: inspects it (its type, its `__cause__`) needs the object, not a message.
    first_exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def resized_records(self) -> int:
        """Rows added (or removed, if negative) by `allow_resize` steps."""
        return sum(group.records_resized for group in self.row_groups)

    @property
    def dropped_records(self) -> int:
        """Planned rows that were not written (never negative, resizes aside)."""
        return self.target_records + self.resized_records - self.actual_records

    def drop_reasons(self) -> dict[str, int]:
        """Why records are missing, summed over row groups."""
        reasons: dict[str, int] = {}
        for group in self.row_groups:
            for reason, count in group.drop_reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
        return reasons
