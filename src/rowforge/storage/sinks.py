"""Sinks receive each finished row group exactly once, from a worker thread.

A sink's `write` either returns after the row group is completely stored or raises; the engine
turns a raise into a failed row group and a failed run, never into silent loss (INV-6, INV-7).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.durable import fsync_directory

PARQUET_DIR = "parquet-files"


def relative_path(row_group: int) -> str:
    """Where a row group's file lives, relative to the output directory (as metadata says)."""
    return f"{PARQUET_DIR}/batch_{row_group:05d}.parquet"


class Sink(Protocol):
    """Stores finished row groups."""

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        """Store `frame` completely (or raise); return where it went, if anywhere."""
        ...


class MemorySink:
    """Keeps row groups in memory; for preview and tests. Writes nothing to disk."""

    def __init__(self) -> None:
        self._frames: dict[int, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        with self._lock:
            if row_group in self._frames:
                raise RuntimeError(f"row group {row_group} written twice")
            self._frames[row_group] = frame
        return None

    def dataset(self) -> pd.DataFrame:
        """All written rows ordered by record index."""
        with self._lock:
            frames = [self._frames[index] for index in sorted(self._frames)]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames).sort_index()


class ParquetSink:
    """One Parquet file per row group under `parquet-files/`, written atomically (INV-7).

    The file is written to a temporary name in the same directory, fsynced, then renamed, so a
    reader (or a resumed run) sees either the complete file or none at all. Every file gets the
    run's one schema (`schema`), so the directory reads back as one table.
    """

    def __init__(self, output_dir: Path, schema: RunSchema | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.directory = self.output_dir / PARQUET_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema if schema is not None else RunSchema()

    def path_for(self, row_group: int) -> Path:
        return self.output_dir / relative_path(row_group)

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        final = self.path_for(row_group)
        write_parquet_atomically(self.schema.table(row_group, frame), final)
        try:
            fsync_directory(self.directory)
        except BaseException:  # the rename may not be durable: the row group is not written
            final.unlink(missing_ok=True)
            raise
        return relative_path(row_group)


def write_parquet_atomically(table: pa.Table, final: Path) -> None:
    """Write `table` to `final` so a reader sees the complete file or none: a temporary name in
    the same directory, fsynced, then renamed over `final` (the temporary file is removed if
    anything fails). The caller fsyncs the directory to make the rename durable."""
    temporary = final.with_name(f".{final.name}.tmp")
    try:
        with temporary.open("wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
