"""The directory a run keeps its control files in: the output itself, or a local working copy
of a remote output.

A run appends to events.jsonl and rewrites metadata.json after every row group. Object stores
neither append nor rename, so for a remote output (`s3://...`) those files, with config.yaml,
recipe.json and traces.jsonl, live in a local working copy while the run goes on, written by
the same code and in the same order as for a local output; `publish` then uploads what changed,
metadata.json last. The build publishes after every metadata.json write, so the remote
metadata.json never lists a row group that the remote event log does not cover: the order a
local checkpoint keeps. The Parquet files do not pass through the copy: the sink (and each Ray
worker) writes them to the remote output directly (`OutputFiles.write_parquet`).

Every publish uploads each changed file whole, so a checkpoint costs the size of events.jsonl
and metadata.json, both growing with the run (docs/scaling.md gives the numbers).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from rowforge.storage.location import OutputFiles, local_path
from rowforge.storage.metadata import METADATA_FILE, read_metadata


@attrs.define
class Workspace:
    """Where a run writes its control files (`directory`) and its Parquet files (`files`)."""

    directory: Path
    files: OutputFiles
    _published: dict[str, tuple[int, int]] = attrs.field(factory=dict)
    _removed: set[str] = attrs.field(factory=set)

    @property
    def remote(self) -> bool:
        return not self.files.local

    def metadata(self) -> dict[str, Any]:
        """metadata.json as found here (for a remote output, as downloaded), with errors
        naming the output rather than its working copy."""
        return read_metadata(self.directory, named=self.files.uri)

    def download(self) -> None:
        """Copy the remote output's control files (its top-level files) here, not the
        temporary objects of an upload that never completed (resume deletes those)."""
        for name in self.files.listing():
            if name.startswith("."):
                continue
            target = self.directory / name
            target.write_bytes(self.files.read_bytes(name))
            self._published[name] = _version(target)

    def publish(self) -> None:
        """Upload the control files that changed since the last publish, metadata.json last,
        and remove the remote copies of files removed here (an archived event log's old
        name). A local output has nothing to publish."""
        if not self.remote:
            return
        present = sorted(
            path.name
            for path in self.directory.iterdir()
            if path.is_file() and not path.name.startswith(".")
        )
        for name in sorted(present, key=lambda name: name == METADATA_FILE):
            version = _version(self.directory / name)
            if self._published.get(name) != version:
                self.files.write_bytes(name, (self.directory / name).read_bytes())
                self._published[name] = version
        for name in sorted(set(self._published) - set(present)):
            self.files.delete(name)
            del self._published[name]


def _version(path: Path) -> tuple[int, int]:
    """What tells a changed file from the published one without reading it."""
    status = path.stat()
    return status.st_size, status.st_mtime_ns


@contextlib.contextmanager
def workspace(output: Path | str | OutputFiles, *, existing: bool) -> Iterator[Workspace]:
    """The workspace of `output`. A local output is its own workspace. For a remote one, a
    fresh local working copy, removed on leaving the block; with `existing`, the remote
    output's control files are downloaded into it first (resume, check)."""
    files = OutputFiles.at(output)
    if files.local:
        yield Workspace(local_path(files.uri), files)
        return
    scratch = Path(tempfile.mkdtemp(prefix="rowforge-remote-"))
    try:
        space = Workspace(scratch / "output", files)
        if existing:
            space.directory.mkdir()
            space.download()
        yield space
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
