"""Sinks receive each finished row group exactly once, from a worker thread.

A sink's `write` either returns after the row group is completely stored or raises; the engine
turns a raise into a failed row group and a failed run, never into silent loss (INV-6, INV-7).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import pandas as pd

from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.location import PARQUET_DIR, OutputFiles, relative_path

__all__ = ["PARQUET_DIR", "MemorySink", "ParquetSink", "Sink", "relative_path"]


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

    `output` is a local directory, a URI of a pyarrow filesystem, or its `OutputFiles`. A
    reader (or a resumed run) sees either the complete file or none at all (see
    `storage.location`). Every file gets the run's one schema (`schema`), so the output reads
    back as one table.
    """

    def __init__(self, output: Path | str | OutputFiles, schema: RunSchema | None = None) -> None:
        self.files = OutputFiles.at(output)
        self.files.make_parquet_dir()
        self.schema = schema if schema is not None else RunSchema()

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        relative = relative_path(row_group)
        self.files.write_parquet(self.schema.table(row_group, frame), relative)
        return relative
