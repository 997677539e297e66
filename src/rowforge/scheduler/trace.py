"""TaskTrace: one record per task execution (attempt), for build and preview alike."""

from __future__ import annotations

import json
from typing import Any

import attrs

from rowforge.errors import describe_error
from rowforge.scheduler.subjects import Worker


@attrs.frozen
class TaskTrace:
    """What happened to one attempt. Times are `loop.time()` seconds; 0.0 means 'never'."""

    task: str
    step: str
    row_group: int
    row: int | None
    attempt: int
    created: float
    admitted: float
    started: float
    finished: float
    outcome: str
    error: str | None

    @classmethod
    def of(cls, worker: Worker) -> TaskTrace:
        row = worker.row
        record = None if row is None else worker.row_group.record_index(row)
        target = "batch" if row is None else f"record {record}"
        return cls(
            task=f"{worker.step.name}[{worker.row_group.ident}:{target}]",
            step=worker.step.name,
            row_group=worker.row_group.ident,
            row=record,
            attempt=worker.attempt,
            created=worker.created,
            admitted=worker.admitted,
            started=worker.started,
            finished=worker.finished,
            outcome=worker.outcome,
            error=None if worker.error is None else describe_error(worker.error),
        )

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)
