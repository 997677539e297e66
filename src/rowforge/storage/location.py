"""Where an output lives: a local directory, or any URI pyarrow's filesystems open (`s3://...`,
`gs://...`, `hdfs://...`).

`OutputFiles` is the one place that reads and writes an output's Parquet files, so the sink,
`resume`, the Ray driver and `rowforge check` work the same on both. The commit of a row group
is the same idea on both: the file is written under a hidden temporary name and moved to its
final name, so a reader sees the whole file or none.

- Local: fsync, `os.replace`, fsync of the directory (a rename is atomic and, after the
  directory's fsync, durable).
- Object stores: an upload becomes visible only when it completes, and the move is a
  server-side copy of the completed temporary object, so the final name appears whole. The
  temporary name carries a random suffix: two workers that both believe they own a row group
  (one presumed dead, re-run elsewhere) never write into the same upload.

Readers skip the hidden names: pyarrow's datasets (and `pd.read_parquet`) ignore names that
start with "." or "_".
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import attrs
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rowforge.errors import ConfigError
from rowforge.storage.durable import fsync_directory

PARQUET_DIR = "parquet-files"


def is_uri(output: Path | str | OutputFiles) -> bool:
    """True for `scheme://...` outputs other than `file://` (which is a local directory), and
    for `OutputFiles` on a filesystem other than the local one."""
    if isinstance(output, OutputFiles):
        return not output.local
    text = str(output)
    return "://" in text and not text.startswith("file://")


def local_path(output: Path | str | OutputFiles) -> Path:
    """A local output's directory (`file://` URIs and local `OutputFiles` included)."""
    text = output.base if isinstance(output, OutputFiles) else str(output)
    return Path(text[len("file://") :]) if text.startswith("file://") else Path(text)


def name_inside(output: Path | str | OutputFiles, relative: str) -> str:
    """`relative` inside `output`, as a user would name it: the local path, or the URI with
    `relative` appended to its path (before any `?options`, which configure the filesystem)."""
    if isinstance(output, OutputFiles):
        output = output.uri
    if not is_uri(output):
        return str(Path(output) / relative)
    location, _, _ = str(output).partition("?")
    return f"{location.rstrip('/')}/{relative}"


def relative_path(row_group: int) -> str:
    """Where a row group's file lives, relative to the output (as metadata.json says)."""
    return f"{PARQUET_DIR}/batch_{row_group:05d}.parquet"


@attrs.frozen
class OutputFiles:
    """An output's files on one pyarrow filesystem: `base` is the output's path on it.

    Pickles (pyarrow filesystems do), so a Ray worker receives it as it is and writes where the
    driver reads. `uri` is the output as the user named it, for messages.
    """

    filesystem: pafs.FileSystem = attrs.field(eq=False)
    base: str
    uri: str
    local: bool

    @classmethod
    def on(cls, filesystem: pafs.FileSystem, base: str) -> OutputFiles:
        """The output at `base` on a filesystem configured in code (credentials, endpoints,
        retry limits that a URI cannot carry), for `rowforge.build(config, n, files)`."""
        local = isinstance(filesystem, pafs.LocalFileSystem)
        base = base.rstrip("/")
        return cls(filesystem, base, base if local else f"{filesystem.type_name}://{base}", local)

    @classmethod
    def at(cls, output: Path | str | OutputFiles) -> OutputFiles:
        """The files of `output`: a local directory, a URI, or `OutputFiles` already (returned
        as they are); a URI pyarrow cannot open is a `ConfigError` naming it and why."""
        if isinstance(output, OutputFiles):
            return output
        if not is_uri(output):
            directory = local_path(output).resolve()
            return cls(pafs.LocalFileSystem(), directory.as_posix(), str(output), local=True)
        uri = str(output)
        try:
            filesystem, base = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowException, ValueError, OSError) as error:
            raise ConfigError(
                f"output {uri!r}: pyarrow cannot open this location ({error}); rowforge writes "
                "to local directories and to the URIs of pyarrow's filesystems (s3://, gs://, "
                "hdfs://)"
            ) from error
        return cls(filesystem, base.rstrip("/"), uri, local=False)

    def path(self, relative: str) -> str:
        """`relative` (a path inside the output) on the filesystem."""
        return f"{self.base}/{relative}" if relative else self.base

    def name(self, relative: str) -> str:
        """`relative` as a user would name it (see `name_inside`)."""
        return name_inside(self.uri, relative)

    def exists(self, relative: str) -> bool:
        info = self.filesystem.get_file_info(self.path(relative))
        return bool(info.type == pafs.FileType.File)

    def listing(self, directory: str = "", *, recursive: bool = False) -> list[str]:
        """The files under `directory` (relative to the output), as relative paths; none if
        it does not exist."""
        selector = pafs.FileSelector(
            self.path(directory), recursive=recursive, allow_not_found=True
        )
        prefix = len(self.base) + 1
        return sorted(
            info.path[prefix:]
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
        )

    def batch_files(self) -> list[str]:
        """The row groups' files present (`parquet-files/batch_*.parquet`), relative."""
        return [
            name
            for name in self.listing(PARQUET_DIR)
            if name.rsplit("/", 1)[-1].startswith("batch_") and name.endswith(".parquet")
        ]

    def remove_leftovers(self) -> None:
        """Delete the temporary files (`.<name>...tmp`) of writes that never completed, a crash
        mid-write: row groups' in parquet-files/, metadata.json's and the logs' beside it."""
        for name in self.listing() + self.listing(PARQUET_DIR):
            base = name.rsplit("/", 1)[-1]
            if base.startswith(".") and base.endswith(".tmp"):
                self.filesystem.delete_file(self.path(name))

    def num_rows(self, relative: str) -> int:
        return int(pq.read_metadata(self.path(relative), filesystem=self.filesystem).num_rows)

    def read_schema(self, relative: str) -> pa.Schema:
        return pq.read_schema(self.path(relative), filesystem=self.filesystem)

    def read_table(self, relative: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.path(relative), columns=columns, filesystem=self.filesystem)

    def make_parquet_dir(self) -> None:
        self.filesystem.create_dir(self.path(PARQUET_DIR), recursive=True)

    def write_parquet(self, table: pa.Table, relative: str) -> None:
        """Write `table` to `relative` so that a reader sees the complete file or none (see
        the module docstring); the temporary file is removed if anything fails."""
        if self.local:
            _write_local(table, Path(self.path(relative)))
            return
        self.write_bytes(relative, _parquet_bytes(table))  # whole: never a partial upload

    def write_bytes(self, relative: str, data: bytes | pa.Buffer) -> None:
        """Replace a remote file by `data`, whole: a temporary name, then the move."""
        final = self.path(relative)
        head, _, tail = final.rpartition("/")
        temporary = f"{head}/.{tail}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            with self.filesystem.open_output_stream(temporary) as stream:
                stream.write(data)
            self.filesystem.move(temporary, final)
        except BaseException:
            _delete_quietly(self.filesystem, temporary)
            raise

    def read_bytes(self, relative: str) -> bytes:
        with self.filesystem.open_input_stream(self.path(relative)) as stream:
            return bytes(stream.read())

    def delete(self, relative: str) -> None:
        self.filesystem.delete_file(self.path(relative))

    def delete_everything(self) -> None:
        """Remove every file of the output (its base stays)."""
        self.filesystem.delete_dir_contents(self.base, missing_dir_ok=True)


def _parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue()


def _write_local(table: pa.Table, final: Path) -> None:
    """A temporary name in the same directory, fsynced, renamed over `final`, the directory
    fsynced (the rename is durable only then); nothing is left at `final` on failure."""
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
    try:
        fsync_directory(final.parent)
    except BaseException:  # the rename may not be durable: the row group is not written
        final.unlink(missing_ok=True)
        raise


def _delete_quietly(filesystem: pafs.FileSystem, path: str) -> None:
    """Never uploaded, or the store is gone: the caller's error says why, not this one."""
    with contextlib.suppress(OSError, pa.ArrowException):
        filesystem.delete_file(path)
