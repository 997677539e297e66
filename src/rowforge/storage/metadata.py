"""metadata.json: one schema, one writer, for both engines (the output contract).

The document is rewritten atomically (temp file, fsync, rename) after every checkpoint and at
the end, so a reader, or `resume` after a crash, always finds a complete document. The keys are
documented in `docs/metadata.md`; `schema_version` changes whenever their meaning does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from rowforge.errors import RowforgeError
from rowforge.storage.durable import fsync_directory

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"


@attrs.frozen
class RowGroupRecord:
    """How one planned row group ended, as metadata.json lists it.

    Its rows carry record indexes in `[first_record, first_record + planned + resized)`; the
    file holds `records_written` of them, each once (`rowforge check` verifies this).
    """

    index: int
    state: str
    records_written: int
    records_dropped: int
    drop_reasons: Mapping[str, int] = attrs.field(factory=dict)
    skipped_cells: Mapping[str, int] = attrs.field(factory=dict)
    file: str | None = None
    first_record: int = 0
    records_resized: int = 0

    @property
    def record_range(self) -> range:
        """The record indexes this row group may hold."""
        size = self.records_written + self.records_dropped
        return range(self.first_record, self.first_record + size)

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "state": self.state,
            "records_written": self.records_written,
            "records_dropped": self.records_dropped,
            "drop_reasons": dict(sorted(self.drop_reasons.items())),
            "skipped_cells": dict(sorted(self.skipped_cells.items())),
            "file": self.file,
            "first_record": self.first_record,
            "records_resized": self.records_resized,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RowGroupRecord:
        return cls(
            index=int(raw["index"]),
            state=str(raw["state"]),
            records_written=int(raw["records_written"]),
            records_dropped=int(raw["records_dropped"]),
            drop_reasons=dict(raw.get("drop_reasons") or {}),
            skipped_cells=dict(raw.get("skipped_cells") or {}),
            file=raw.get("file"),
            first_record=int(raw.get("first_record", 0)),
            records_resized=int(raw.get("records_resized", 0)),
        )


@attrs.frozen
class RunIdentity:
    """What does not change while a run goes on."""

    dataset_name: str
    config_hash: str
    target_num_records: int
    buffer_size: int
    total_num_batches: int
    columns: tuple[str, ...]
    started_at: str


def render_metadata(
    identity: RunIdentity,
    *,
    engine: str,
    outcome: str,
    row_groups: Sequence[RowGroupRecord],
    schema: Mapping[str, str],
    early_shutdown: bool,
    first_error: str | None,
    finished_at: str | None,
) -> dict[str, Any]:
    """The metadata document; every count is derived from `row_groups`, so they agree:
    `actual_num_records == target_num_records + resized_records - dropped_records`, where
    `resized_records` counts rows that `allow_resize` steps added (negative: removed) and
    `dropped_records` every planned row that was not written (never negative)."""
    groups = sorted(row_groups, key=lambda record: record.index)
    actual = sum(record.records_written for record in groups)
    resized = sum(record.records_resized for record in groups)
    skipped = {
        column: sum(record.skipped_cells.get(column, 0) for record in groups)
        for column in identity.columns
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "engine": engine,
        "dataset_name": identity.dataset_name,
        "target_num_records": identity.target_num_records,
        "actual_num_records": actual,
        "buffer_size": identity.buffer_size,
        "total_num_batches": identity.total_num_batches,
        "num_completed_batches": sum(1 for record in groups if record.file),
        "file_paths": [record.file for record in groups if record.file],
        "schema": dict(schema),
        "outcome": outcome,
        "early_shutdown": early_shutdown,
        "first_error": first_error,
        "dropped_records": identity.target_num_records + resized - actual,
        "resized_records": resized,
        "skipped_cells": skipped,
        "row_groups": [record.as_json() for record in groups],
        "config_hash": identity.config_hash,
        "started_at": identity.started_at,
        "finished_at": finished_at,
    }


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON so that a reader sees the old document or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def read_metadata(output_dir: Path) -> dict[str, Any]:
    """Load metadata.json or raise a `RowforgeError` saying what is wrong with the directory."""
    path = Path(output_dir) / METADATA_FILE
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RowforgeError(f"{output_dir}: no {METADATA_FILE}; not a rowforge output") from None
    except json.JSONDecodeError as error:
        raise RowforgeError(f"{path}: unreadable metadata: {error}") from error
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RowforgeError(f"{path}: schema_version {version!r}, expected {SCHEMA_VERSION}")
    return document
