"""`MetadataRecorder`: keeps an output's metadata.json current while a run goes on.

metadata.json is rewritten (atomically) at the start of a run, after every row group ends and
at the end. The recorder is handed each row group once, when it ends (`add`), on top of the row
groups kept from an earlier run (resume); it never walks the earlier ones again, so the work per
checkpoint does not grow with the run beyond writing the document itself (see
`storage.metadata.MetadataDocument`). The schema it records is the one every file is written
with (`RunSchema`).

What the models did (metadata.json's "models" section) is not the recorder's to know: the run
sets `models_source`, a callable the recorder asks at every write, so the section is as current
as the counts it sits next to, including in the writes that record a failure or a cancellation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.metadata import (
    METADATA_FILE,
    MetadataDocument,
    RowGroupRecord,
    RunIdentity,
    write_atomic,
)


def now() -> str:
    """The current UTC time as metadata.json writes it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


#: Supplies metadata.json's "models" section: `{alias: {...}}`, the shape of
#: `rowforge.models.usage.models_metadata` (each meter's `as_metadata()` plus "retries" by cause).
ModelsSource = Callable[[], Mapping[str, Mapping[str, Any]]]


class MetadataRecorder:
    """Keeps metadata.json current: at the start, after each checkpoint, at the end. The
    `schema` it records is the one every file is written with.

    `models_source`, when set (here or later, as an attribute), is called at every `write` and
    its result written as the "models" object; it must be cheap (O(models)) and must not raise,
    as it also runs in the write that records a failed run. Unset, the document has no
    "models" key. `written`, when set, is called after every write (a remote output's workspace
    publishes then).
    """

    def __init__(
        self,
        output_dir: Path,
        identity: RunIdentity,
        engine: str,
        kept: Sequence[RowGroupRecord],
        schema: RunSchema,
        *,
        models_source: ModelsSource | None = None,
        written: Callable[[], None] | None = None,
    ) -> None:
        self.path = output_dir / METADATA_FILE
        self.written = written
        self.identity = identity
        self.schema = schema
        self.models_source = models_source
        self.document = MetadataDocument(identity, engine)
        for record in kept:
            self.document.add(record)

    def add(self, record: RowGroupRecord) -> None:
        """One more row group ended; the next `write` lists it."""
        self.document.add(record)

    def write(
        self,
        outcome: str,
        *,
        early_shutdown: bool = False,
        first_error: str | None = None,
        finished: bool = False,
    ) -> None:
        """Replace metadata.json with the document of every row group added so far."""
        text = self.document.render(
            outcome=outcome,
            schema=self.schema.describe(),
            early_shutdown=early_shutdown,
            first_error=first_error,
            finished_at=now() if finished else None,
            models=None if self.models_source is None else self.models_source(),
        )
        write_atomic(self.path, text)
        if self.written is not None:
            self.written()
