"""`rowforge check DIR`: verify an output directory against the specs and the output contract.

Checks, in order, and reports the first violation:
1. every `events*.jsonl` replays through the specs (INV-1);
2. every row group that reached a terminal state had no live worker then (INV-2), as recorded
   in the transition's details;
3. metadata.json matches the files (INV-7): every listed file exists, is readable and holds the
   listed number of records; no unlisted `batch_*.parquet` file exists; the totals add up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rowforge.errors import ReplayError, RowforgeError
from rowforge.statemachine import SPECS, read_jsonl, replay
from rowforge.storage.metadata import read_metadata
from rowforge.storage.sinks import PARQUET_DIR


def first_violation(output_dir: Path) -> str | None:
    """None when the directory honours the contract, else a sentence naming the problem."""
    output = Path(output_dir)
    try:
        metadata = read_metadata(output)
    except RowforgeError as error:
        return str(error)
    logs = sorted(output.glob("events*.jsonl"))
    if not logs:
        return f"{output}: no events.jsonl"
    terminal = SPECS["row_group"].terminal
    for log in logs:
        events = read_jsonl(log)
        try:
            replay(events, SPECS)
        except ReplayError as error:
            return f"{log.name}: {error}"
        for event in events:
            if event.machine == "row_group" and event.dest in terminal:
                live = event.details.get("live_workers", 0)
                if live:
                    return (
                        f"{log.name}: row group {event.ident} ended {event.dest} "
                        f"with {live} live workers"
                    )
    return _files_match(output, metadata)


def _files_match(output: Path, metadata: dict[str, Any]) -> str | None:
    groups = metadata.get("row_groups")
    if not isinstance(groups, list):
        return "metadata.json: 'row_groups' is missing"
    listed: set[str] = set()
    total = 0
    for group in groups:
        path = group.get("file")
        if not path:
            continue
        listed.add(path)
        try:
            rows = pq.read_metadata(output / path).num_rows
        except Exception as error:
            return f"{path}: listed in metadata.json but unreadable: {error}"
        if rows != group["records_written"]:
            return f"{path}: {rows} records on disk, metadata.json says {group['records_written']}"
        total += rows
    on_disk = {f"{PARQUET_DIR}/{p.name}" for p in (output / PARQUET_DIR).glob("batch_*.parquet")}
    unlisted = sorted(on_disk - listed)
    if unlisted:
        return f"{unlisted[0]}: on disk but not in metadata.json"
    if set(metadata.get("file_paths") or []) != listed:
        return "metadata.json: 'file_paths' disagrees with 'row_groups'"
    claimed = metadata.get("actual_num_records")
    if claimed != total:
        return f"metadata.json: actual_num_records is {claimed}, the files hold {total}"
    return None
