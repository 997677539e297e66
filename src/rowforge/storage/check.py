"""`rowforge check DIR`: verify an output directory against the specs and the output contract.

Checks, in order, and reports the first violation:
1. the event logs: every `events*.jsonl` replays through the specs (INV-1); every row group
   ended with all its workers drained (INV-2) and cell outcomes that add up (INV-4); the last run
   finished in a terminal state and agrees with metadata.json, outcome included (INV-6). See
   `storage.trace_check`;
2. metadata.json matches the files (INV-7): every listed file exists, is readable and holds the
   listed number of records; no unlisted `batch_*.parquet` file exists; the totals add up
   (`actual = target + resized - dropped`, none negative);
3. the record indexes in the files are exactly those metadata claims: each file's lie in its row
   group's range, and each record index appears once in the whole dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rowforge.errors import RowforgeError
from rowforge.storage.location import OutputFiles
from rowforge.storage.metadata import RowGroupRecord
from rowforge.storage.trace_check import event_violation
from rowforge.storage.workspace import workspace


def first_violation(output_dir: Path | str | OutputFiles) -> str | None:
    """None when the output (a local directory or a URI, see `storage.location`) honours the
    contract, else a sentence naming the problem."""
    try:
        with workspace(output_dir, existing=True) as space:
            metadata = space.metadata()
            # events-0001.jsonl ... events.jsonl (the newest)
            logs = sorted(space.directory.glob("events*.jsonl"))
            if not logs:
                return f"{space.files.uri}: no events.jsonl"
            return event_violation(logs, metadata) or _files_match(space.files, metadata)
    except RowforgeError as error:
        return str(error)


def _files_match(files: OutputFiles, metadata: dict[str, Any]) -> str | None:
    groups = metadata.get("row_groups")
    if not isinstance(groups, list):
        return "metadata.json: 'row_groups' is missing"
    listed: set[str] = set()
    seen: set[int] = set()
    total = 0
    for group in groups:
        path = group.get("file")
        if not path:
            continue
        listed.add(path)
        try:
            rows = files.num_rows(path)
            indexes = record_indexes(path, files)
        except Exception as error:
            return f"{path}: listed in metadata.json but unreadable: {error}"
        if rows != group["records_written"]:
            return f"{path}: {rows} records on disk, metadata.json says {group['records_written']}"
        problem = _indexes_problem(path, indexes, group, seen)
        if problem is not None:
            return problem
        total += rows
    unlisted = sorted(set(files.batch_files()) - listed)
    if unlisted:
        return f"{unlisted[0]}: on disk but not in metadata.json"
    if set(metadata.get("file_paths") or []) != listed:
        return "metadata.json: 'file_paths' disagrees with 'row_groups'"
    claimed = metadata.get("actual_num_records")
    if claimed != total:
        return f"metadata.json: actual_num_records is {claimed}, the files hold {total}"
    return _counts_problem(metadata)


def record_indexes(path: Path | str, files: OutputFiles | None = None) -> list[int]:
    """The record indexes stored in one Parquet file, in file order (reads only the index):
    `path` relative to `files`, or a local file's path."""
    if files is None:
        path = Path(path)
        files = OutputFiles.at(path.parent)
        path = path.name
    schema = files.read_schema(str(path))
    pandas_metadata = schema.pandas_metadata or {}
    index_columns = pandas_metadata.get("index_columns", [])
    if len(index_columns) != 1:
        raise ValueError(f"expected one index column (the record index), found {index_columns}")
    (index,) = index_columns
    if isinstance(index, dict):  # a RangeIndex is stored as metadata only
        return list(range(index["start"], index["stop"], index["step"]))
    column = files.read_table(str(path), columns=[index]).column(0)
    return [int(value) for value in column.to_pylist()]


def _indexes_problem(
    path: str, indexes: list[int], group: dict[str, Any], seen: set[int]
) -> str | None:
    """Each record index once in the dataset, and inside its row group's range."""
    duplicates = len(indexes) - len(set(indexes))
    if duplicates:
        return f"{path}: {duplicates} record indexes appear more than once in the file"
    if "first_record" in group:
        allowed = RowGroupRecord.from_json(group).record_range
        outside = [i for i in indexes if i not in allowed]
        if outside:
            return (
                f"{path}: record index {outside[0]} is outside row group {group['index']}'s "
                f"records {allowed.start}..{allowed.stop - 1}"
            )
    repeated = seen.intersection(indexes)
    if repeated:
        return f"{path}: record index {min(repeated)} also appears in another file"
    seen.update(indexes)
    return None


def _counts_problem(metadata: dict[str, Any]) -> str | None:
    """`actual = target + resized - dropped`, and no count is negative."""
    counts = {
        key: metadata.get(key, 0)
        for key in ("target_num_records", "actual_num_records", "dropped_records")
    }
    for key, value in counts.items():
        if not isinstance(value, int) or value < 0:
            return f"metadata.json: {key} is {value!r}; counts are never negative"
    resized = metadata.get("resized_records", 0)
    expected = counts["target_num_records"] + resized - counts["dropped_records"]
    if counts["actual_num_records"] != expected:
        return (
            f"metadata.json: actual_num_records {counts['actual_num_records']} != "
            f"target {counts['target_num_records']} + resized {resized} - dropped "
            f"{counts['dropped_records']}"
        )
    return None
