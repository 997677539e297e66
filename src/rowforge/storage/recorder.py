"""`MetadataRecorder`: keeps an output's metadata.json current while a run goes on.

metadata.json is rewritten (atomically) at the start of a run, after every row group ends and
at the end, from the row groups kept from an earlier run (resume) plus this run's. The schema it
records is the one every file is written with (`RunSchema`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.metadata import (
    METADATA_FILE,
    RowGroupRecord,
    RunIdentity,
    render_metadata,
    write_json_atomic,
)


def now() -> str:
    """The current UTC time as metadata.json writes it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class MetadataRecorder:
    """Keeps metadata.json current: at the start, after each checkpoint, at the end. The
    `schema` it records is the one every file is written with."""

    def __init__(
        self,
        output_dir: Path,
        identity: RunIdentity,
        engine: str,
        kept: Sequence[RowGroupRecord],
        schema: RunSchema,
    ) -> None:
        self.path = output_dir / METADATA_FILE
        self.identity = identity
        self.engine = engine
        self.kept = list(kept)
        self.schema = schema
        self.records: list[RowGroupRecord] = []  # this run's ended row groups, as last written

    def write(
        self,
        records: Sequence[RowGroupRecord],
        outcome: str,
        *,
        early_shutdown: bool = False,
        first_error: str | None = None,
        finished: bool = False,
    ) -> None:
        self.records = list(records)
        document = render_metadata(
            self.identity,
            engine=self.engine,
            outcome=outcome,
            row_groups=self.kept + self.records,
            schema=self.schema.describe(),
            early_shutdown=early_shutdown,
            first_error=first_error,
            finished_at=now() if finished else None,
        )
        write_json_atomic(self.path, document)
