"""What an interrupted build left behind: the row groups already written, and its event log.

`resume` generates only the row groups that have no file; these functions tell which ones do,
and keep the interrupted run's event log beside the new one.

A file metadata.json does not list yet (the crash came between the file and the metadata write)
is recovered from the file, and its cell outcomes from the event log: a row group's terminal
event, which carries them, is flushed before metadata.json is written, so the log knows what the
metadata missed. Without them metadata would claim no skipped cell where the events show one,
and `rowforge check` would refuse a correctly resumed output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from rowforge.errors import RowforgeError
from rowforge.statemachine import iter_jsonl
from rowforge.storage.location import OutputFiles, relative_path
from rowforge.storage.metadata import RowGroupRecord

EVENTS_FILE = "events.jsonl"


def archive_events(output: Path) -> None:
    """Keep the interrupted run's event log as events-NNNN.jsonl; each log replays alone."""
    current = output / EVENTS_FILE
    if not current.exists():
        return
    number = 1
    while (output / f"events-{number:04d}.jsonl").exists():
        number += 1
    current.rename(output / f"events-{number:04d}.jsonl")


def written_row_groups(
    output: Path,
    files: OutputFiles,
    metadata: Mapping[str, Any],
    planned: Sequence[tuple[int, int]],
) -> list[RowGroupRecord]:
    """Row groups whose file is present and readable; leftovers of a crash are removed.

    `output` holds the event logs (the workspace), `files` the Parquet files (the same
    directory for a local output). `planned[i]` is row group i's (first record index, planned
    size). The files are the truth (each is complete); metadata.json may lag them by one row
    group after a crash, so a file metadata does not know yet is recovered from the file itself.
    """
    files.remove_leftovers()
    present = set(files.batch_files())
    recorded = {
        int(raw["index"]): RowGroupRecord.from_json(raw) for raw in metadata.get("row_groups", [])
    }
    kept: list[RowGroupRecord] = []
    logged: dict[int, dict[str, int]] | None = None  # read only when a file must be recovered
    for index, (start, size) in enumerate(planned):
        relative = relative_path(index)
        if relative not in present:
            continue
        try:
            rows = files.num_rows(relative)
        except Exception as error:
            name = files.name(relative)
            raise RowforgeError(f"{name}: unreadable Parquet file: {error}") from error
        known = recorded.get(index)
        if known is not None and known.file and known.records_written == rows:
            kept.append(known)
        else:  # written, but the crash came before metadata caught up
            if logged is None:
                logged = _logged_skips(output)
            dropped = max(size - rows, 0)
            reasons = (
                {"unknown (recovered from the file after a crash)": dropped} if dropped else {}
            )
            kept.append(
                RowGroupRecord(
                    index,
                    "drained",
                    rows,
                    dropped,
                    reasons,
                    logged.get(index, {}),
                    relative_path(index),
                    first_record=_first_record(files, relative, start),
                    records_resized=rows + dropped - size,
                )
            )
    return kept


def _logged_skips(output: Path) -> dict[int, dict[str, int]]:
    """Per written row group, the skipped cells per column its terminal event recorded, from
    the current log and the archived ones (newest last, so the newest word wins)."""
    logs = sorted(output.glob("events-*.jsonl"))
    if (output / EVENTS_FILE).exists():
        logs.append(output / EVENTS_FILE)
    skips: dict[int, dict[str, int]] = {}
    for log in logs:
        for event in iter_jsonl(log):
            cells = event.details.get("cells")
            if event.machine != "row_group" or event.trigger != "write" or cells is None:
                continue
            index = event.ident
            if not isinstance(index, int):
                raise RowforgeError(f"{log}: a row group event names row group {index!r}")
            skips[index] = {column: counts[1] for column, counts in cells.items() if counts[1]}
    return skips


def _first_record(files: OutputFiles, relative: str, planned: int) -> int:
    """Where a recovered file's records start: its lowest record index. An `allow_resize` step
    that grew an earlier row group moved it past its planned start; an empty file keeps it."""
    schema = files.read_schema(relative)
    name = next((n for n in ("record_index", "__index_level_0__") if n in schema.names), None)
    if name is None:
        return planned
    column = files.read_table(relative, columns=[name]).column(0)
    return int(pc.min(column).as_py()) if len(column) else planned
