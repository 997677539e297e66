"""What an interrupted build left behind: the row groups already written, and its event log.

`resume` generates only the row groups that have no file; these functions tell which ones do,
and keep the interrupted run's event log beside the new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rowforge.errors import RowforgeError
from rowforge.storage.metadata import RowGroupRecord
from rowforge.storage.sinks import PARQUET_DIR, relative_path

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
    output: Path, metadata: Mapping[str, Any], planned: Sequence[tuple[int, int]]
) -> list[RowGroupRecord]:
    """Row groups whose file is on disk and readable; leftovers of a crash are removed.

    `planned[i]` is row group i's (first record index, planned size). The files are the truth
    (each is complete); metadata.json may lag them by one row group after a crash, so a file
    metadata does not know yet is recovered from the file itself.
    """
    directory = output / PARQUET_DIR
    for leftover in directory.glob(".*.tmp"):
        leftover.unlink()
    recorded = {
        int(raw["index"]): RowGroupRecord.from_json(raw) for raw in metadata.get("row_groups", [])
    }
    kept: list[RowGroupRecord] = []
    for index, (start, size) in enumerate(planned):
        path = output / relative_path(index)
        if not path.exists():
            continue
        try:
            rows = pq.read_metadata(path).num_rows
        except Exception as error:
            raise RowforgeError(f"{path}: unreadable Parquet file: {error}") from error
        known = recorded.get(index)
        if known is not None and known.file and known.records_written == rows:
            kept.append(known)
        else:  # written, but the crash came before metadata caught up
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
                    {},
                    relative_path(index),
                    first_record=start,
                    records_resized=rows + dropped - size,
                )
            )
    return kept
