"""metadata.json: one schema, one writer, for both engines (the output contract).

The document is rewritten atomically (temp file, fsync, rename) after every checkpoint and at
the end, so a reader, or `resume` after a crash, always finds a complete document. The keys are
documented in `docs/metadata.md`; `schema_version` changes whenever their meaning does.

The document lists every row group, so it grows with the run, and it is rewritten after every
row group. `MetadataDocument` keeps that rewrite cheap: it adds each row group once, into running
totals and as a JSON item rendered once (one line per row group, kept compactly by
`OrderedItems`), so a rewrite writes the cached items' buffers as they are: no Python code walks
the earlier row groups again and no copy of the lists is made.

The optional "models" section (what each model's requests did: see
`rowforge.models.usage.models_metadata`) is supplied by the run at each write and rendered
then, one line per model alias: O(models), whatever the length of the run. Without it the
document has no "models" key, exactly as before the section existed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from rowforge.errors import RowforgeError
from rowforge.storage.durable import fsync_directory
from rowforge.storage.location import OutputFiles, is_uri, local_path, name_inside
from rowforge.storage.ordered_items import OrderedItems

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


class MetadataDocument:
    """metadata.json of one output, kept current as row groups end.

    Every count is a running total over the row groups added, so they agree:
    `actual_num_records == target_num_records + resized_records - dropped_records`, where
    `resized_records` counts rows that `allow_resize` steps added (negative: removed) and
    `dropped_records` every planned row that was not written (never negative). `row_groups` and
    `file_paths` are ordered by row-group index whatever the order the row groups end in.
    """

    def __init__(self, identity: RunIdentity, engine: str) -> None:
        self.identity = identity
        self.engine = engine
        self.actual_records = 0
        self.resized_records = 0
        self.completed_batches = 0
        self.skipped_cells = dict.fromkeys(identity.columns, 0)
        self._row_groups = OrderedItems()  # by row-group index
        self._files = OrderedItems()  # by the index of the row group written to the file

    def add(self, record: RowGroupRecord) -> None:
        """Count one ended row group and render its entry; O(columns), whatever came before."""
        self.actual_records += record.records_written
        self.resized_records += record.records_resized
        for column, count in record.skipped_cells.items():
            if column in self.skipped_cells:
                self.skipped_cells[column] += count
        self._row_groups.insert(record.index, json.dumps(record.as_json()).encode())
        if record.file:
            self.completed_batches += 1
            self._files.insert(record.index, json.dumps(record.file).encode())

    def render(
        self,
        *,
        outcome: str,
        schema: Mapping[str, str],
        early_shutdown: bool,
        first_error: str | None,
        finished_at: str | None,
        models: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Iterator[bytes | memoryview]:
        """The document, an indented JSON object whose lists hold one item per line, as buffers
        to write one after the other (see `OrderedItems.parts`).

        `models`, when given, becomes the "models" object (after "skipped_cells"), one line per
        alias: `{alias: {"requests": ..., "errors": {...}, "prompt_tokens": ...,
        "completion_tokens": ..., "latency_ms": {...}, "latency_histogram_ms": [...],
        "retries": {"rate_limit": n, "transient": n}, ...}}` (the shape of
        `rowforge.models.usage.models_metadata`; written as given)."""
        identity = self.identity
        head = {
            "schema_version": SCHEMA_VERSION,
            "engine": self.engine,
            "dataset_name": identity.dataset_name,
            "target_num_records": identity.target_num_records,
            "actual_num_records": self.actual_records,
            "buffer_size": identity.buffer_size,
            "total_num_batches": identity.total_num_batches,
            "num_completed_batches": self.completed_batches,
        }
        middle = {
            "schema": dict(schema),
            "outcome": outcome,
            "early_shutdown": early_shutdown,
            "first_error": first_error,
            "dropped_records": identity.target_num_records
            + self.resized_records
            - self.actual_records,
            "resized_records": self.resized_records,
            "skipped_cells": dict(self.skipped_cells),
        }
        tail = {
            "config_hash": identity.config_hash,
            "started_at": identity.started_at,
            "finished_at": finished_at,
        }
        yield f'{{\n{_members(head)},\n  "file_paths": '.encode()
        yield from self._files.parts()
        section = "" if models is None else f",\n{_models_member(models)}"
        yield f',\n{_members(middle)}{section},\n  "row_groups": '.encode()
        yield from self._row_groups.parts()
        yield f",\n{_members(tail)}\n}}\n".encode()


def _members(values: Mapping[str, Any]) -> str:
    """Members of the top-level object, indented like `json.dumps(indent=2)` would."""
    return ",\n".join(
        f"  {json.dumps(key)}: {json.dumps(value, indent=2).replace(chr(10), chr(10) + '  ')}"
        for key, value in values.items()
    )


def _models_member(models: Mapping[str, Mapping[str, Any]]) -> str:
    """The "models" member: an object with one compact line per alias (a model's latency
    histogram would take hundreds of lines indented)."""
    if not models:
        return '  "models": {}'
    lines = ",\n".join(
        f"    {json.dumps(alias)}: {json.dumps(entry)}" for alias, entry in models.items()
    )
    return f'  "models": {{\n{lines}\n  }}'


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
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The metadata document of `row_groups`, parsed: what a preview reports, rendered by the
    one writer a build uses (`MetadataDocument`); `models` as for `MetadataDocument.render`."""
    document = MetadataDocument(identity, engine)
    for record in row_groups:
        document.add(record)
    text = b"".join(
        document.render(
            outcome=outcome,
            schema=schema,
            early_shutdown=early_shutdown,
            first_error=first_error,
            finished_at=finished_at,
            models=models,
        )
    )
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON so that a reader sees the old document or the new one, never half of one."""
    write_atomic(path, [(json.dumps(document, indent=2) + "\n").encode()])


def write_atomic(path: Path, parts: Iterable[bytes | memoryview]) -> None:
    """Write `parts`, one after the other, so that a reader sees the old file or the new one,
    never half of one: a temporary file in the same directory, fsynced, renamed over `path`,
    the directory fsynced."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.writelines(parts)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def read_metadata(
    output_dir: Path | str | OutputFiles, *, named: str | None = None
) -> dict[str, Any]:
    """Load metadata.json of a local or remote output (see `storage.location`), or raise a
    `RowforgeError` saying what is wrong with it; the errors call the output `named` when
    given (a remote output's working copy is read under the output's own name)."""
    shown = named if named is not None else output_dir
    path = name_inside(shown, METADATA_FILE)
    try:
        if is_uri(output_dir):
            text = OutputFiles.at(output_dir).read_bytes(METADATA_FILE).decode("utf-8")
        else:
            text = Path(local_path(output_dir), METADATA_FILE).read_text(encoding="utf-8")
        document: dict[str, Any] = json.loads(text)
    except FileNotFoundError:
        where = shown.uri if isinstance(shown, OutputFiles) else shown
        raise RowforgeError(f"{where}: no {METADATA_FILE}; not a rowforge output") from None
    except json.JSONDecodeError as error:
        raise RowforgeError(f"{path}: unreadable metadata: {error}") from error
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RowforgeError(f"{path}: schema_version {version!r}, expected {SCHEMA_VERSION}")
    return document
