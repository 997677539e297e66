"""INV-7 durability, observed: the system calls that make a written row group survive a crash.

A kill test cannot show data lost in the page cache (the kernel still has it), so these tests
watch the calls instead. `os` is replaced, in `rowforge.storage.location` (the Parquet writes) and
`rowforge.storage.metadata` only, by a recorder that logs every `fsync`, `replace`, `open` and
`close` in order (with the file each descriptor points at, its inode and size), and the engine's
"row group written" report (`EngineCore._written`) is logged in the same sequence. A real
`build_steps` run must then show, for every batch file:

1. the rows went to a temporary name in `parquet-files/`;
2. that file (same inode, its full final size) was fsynced before `os.replace(temp, final)`;
3. `parquet-files/` itself was fsynced after the replace (the rename is durable), and before the
   row group was reported written and before any metadata.json listed the file;

and for every metadata.json write: a temporary file in the same directory, fsynced at its full
size before it is renamed over metadata.json.

A write that fails at any point leaves no temporary file, fails the run naming the row group,
and leaves a directory that `rowforge check` accepts (metadata.json matches the files).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import attrs
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rowforge.build import build_steps
from rowforge.errors import DatasetGenerationError
from rowforge.scheduler import RunConfig, Step
from rowforge.scheduler.core import EngineCore
from rowforge.storage import durable as durable_module
from rowforge.storage import location as location_module
from rowforge.storage import metadata as metadata_module
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
REAL_OS = os


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


STEPS = [
    Step("id", ids, kind="batch"),
    Step("double", lambda row: row["id"] * 2, depends_on=["id"]),
    Step("label", lambda row: f"#{row['double']}", depends_on=["double"]),
]


@attrs.frozen
class Call:
    """One observed call, in the order it happened (across threads)."""

    op: str  # fsync, replace, open, close, reported
    origin: str  # "sink", "metadata" or "engine"
    thread: int
    path: str = ""  # fsync/open/close: the file the descriptor points at; replace: source
    dest: str = ""  # replace only
    inode: int = -1
    size: int = -1
    is_dir: bool = False
    fd: int = -1
    document: Any = None  # replace of metadata.json: the document being installed


class IOLog:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        # Hooks a test can set to make one call fail: fn(path) -> OSError | None
        self.fail_fsync: Any = None
        self.fail_replace: Any = None

    def add(self, call: Call) -> int:
        with self._lock:
            self.calls.append(call)
            return len(self.calls) - 1

    def of(self, op: str, origin: str | None = None) -> list[tuple[int, Call]]:
        return [
            (i, c)
            for i, c in enumerate(self.calls)
            if c.op == op and (origin is None or c.origin == origin)
        ]


class RecordingOS:
    """Stands in for the `os` module inside one rowforge module; records, then delegates."""

    def __init__(self, log: IOLog, origin: str) -> None:
        self._log = log
        self._origin = origin

    def __getattr__(self, name: str) -> Any:
        return getattr(REAL_OS, name)

    def _describe(self, fd: int) -> dict[str, Any]:
        info = REAL_OS.fstat(fd)
        return {
            "path": REAL_OS.readlink(f"/proc/self/fd/{fd}"),
            "inode": info.st_ino,
            "size": info.st_size,
            "is_dir": stat.S_ISDIR(info.st_mode),
            "fd": fd,
        }

    def fsync(self, fd: int) -> None:
        described = self._describe(fd)
        self._log.add(Call("fsync", self._origin, threading.get_ident(), **described))
        if self._log.fail_fsync is not None:
            failure = self._log.fail_fsync(described["path"])
            if failure is not None:
                raise failure
        REAL_OS.fsync(fd)

    def replace(self, source: Any, dest: Any) -> None:
        info = REAL_OS.stat(source)
        document = None
        if Path(dest).name == "metadata.json":
            document = json.loads(Path(source).read_text(encoding="utf-8"))
        self._log.add(
            Call(
                "replace",
                self._origin,
                threading.get_ident(),
                path=str(Path(source).resolve()),
                dest=str(Path(dest).resolve()),
                inode=info.st_ino,
                size=info.st_size,
                document=document,
            )
        )
        if self._log.fail_replace is not None:
            failure = self._log.fail_replace(str(dest))
            if failure is not None:
                raise failure
        REAL_OS.replace(source, dest)

    def open(self, path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = REAL_OS.open(path, flags, *args, **kwargs)
        self._log.add(Call("open", self._origin, threading.get_ident(), fd=fd, **_opened(fd)))
        return fd

    def close(self, fd: int) -> None:
        self._log.add(Call("close", self._origin, threading.get_ident(), fd=fd))
        REAL_OS.close(fd)


def _opened(fd: int) -> dict[str, Any]:
    info = REAL_OS.fstat(fd)
    return {
        "path": REAL_OS.readlink(f"/proc/self/fd/{fd}"),
        "inode": info.st_ino,
        "is_dir": stat.S_ISDIR(info.st_mode),
    }


@pytest.fixture
def io_log(monkeypatch: pytest.MonkeyPatch) -> IOLog:
    log = IOLog()
    monkeypatch.setattr(location_module, "os", RecordingOS(log, "sink"))
    monkeypatch.setattr(metadata_module, "os", RecordingOS(log, "metadata"))
    monkeypatch.setattr(durable_module, "os", RecordingOS(log, "durable"))
    real_written = EngineCore._written

    def reported(self: EngineCore, group: Any, checkpoint: Any) -> None:
        log.add(Call("reported", "engine", threading.get_ident(), path=str(checkpoint.path)))
        real_written(self, group, checkpoint)

    monkeypatch.setattr(EngineCore, "_written", reported)
    return log


def _batch_files(output: Path) -> list[Path]:
    return sorted((output / "parquet-files").glob("batch_*.parquet"))


def _first_listing(log: IOLog, relative: str) -> int | None:
    """Index of the first metadata.json write whose document lists `relative` as a file."""
    for index, call in log.of("replace", "metadata"):
        if call.document is not None and relative in call.document["file_paths"]:
            return index
    return None


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_each_batch_file_is_fsynced_under_a_temp_name_renamed_then_its_directory_fsynced(
    tmp_path: Path, io_log: IOLog, engine: str
) -> None:
    output = tmp_path / "out"
    config = RunConfig(engine=engine, buffer_size=5, max_concurrent_row_groups=2, **FAST)  # type: ignore[arg-type]
    build_steps(STEPS, 20, output, config=config)
    directory = (output / "parquet-files").resolve()
    files = _batch_files(output)
    assert [f.name for f in files] == [f"batch_{i:05d}.parquet" for i in range(4)]
    sink_replaces = io_log.of("replace", "sink")
    assert sorted(Path(c.dest).name for _, c in sink_replaces) == [f.name for f in files], (
        "every batch file is put in place by os.replace, exactly once"
    )
    for final in files:
        relative = f"parquet-files/{final.name}"
        ((at_replace, replace),) = [(i, c) for i, c in sink_replaces if c.dest == str(final)]
        temp = Path(replace.path)
        # 1. written under a temporary name in the same directory, which is gone now
        assert temp.parent == directory, f"{final.name}: temp file outside parquet-files/"
        assert temp.name != final.name, f"{final.name}: written in place, not under a temp name"
        assert not temp.exists()
        assert final.stat().st_ino == replace.inode, "the renamed file is the one now in place"
        # 2. that file, complete, fsynced before the rename
        data_syncs = [
            (i, c)
            for i, c in io_log.of("fsync", "sink")
            if c.inode == replace.inode and not c.is_dir
        ]
        assert data_syncs, f"{final.name}: the data file was never fsynced"
        assert data_syncs[0][0] < at_replace, f"{final.name}: fsynced only after os.replace"
        before = [c for i, c in data_syncs if i < at_replace]
        assert before[-1].path == str(temp), "fsync ran on the temp file's descriptor"
        assert before[-1].size == final.stat().st_size, (
            f"{final.name}: fsync ran before all of the file was written (flush missing?)"
        )
        # 3. the directory fsynced after the rename, in the same write, before anyone hears of it
        next_write = min(
            [
                i
                for i, c in io_log.of("fsync", "sink")
                if i > at_replace and c.thread == replace.thread and not c.is_dir
            ],
            default=len(io_log.calls),
        )
        dir_syncs = [
            i
            for i, c in io_log.of("fsync", "durable")
            if c.is_dir
            and c.path == str(directory)
            and at_replace < i < next_write
            and c.thread == replace.thread
        ]
        assert dir_syncs, f"{final.name}: parquet-files/ was not fsynced after os.replace"
        ((at_report, _),) = [
            (i, c) for i, c in io_log.of("reported", "engine") if c.path == relative
        ]
        assert dir_syncs[0] < at_report, (
            f"{final.name}: row group reported written before its directory entry was durable"
        )
        listed = _first_listing(io_log, relative)
        assert listed is not None, f"metadata.json never listed {relative}"
        assert dir_syncs[0] < listed, (
            f"metadata.json listed {relative} before parquet-files/ was fsynced"
        )
        assert at_report < listed
    # the directory descriptors opened for those fsyncs are closed again
    opened = {c.fd for _, c in io_log.of("open", "durable")}
    closed = {c.fd for _, c in io_log.of("close", "durable")}
    assert opened and opened <= closed
    assert first_violation(output) is None


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_every_metadata_write_is_a_fsynced_temp_file_renamed_over_metadata_json(
    tmp_path: Path, io_log: IOLog, engine: str
) -> None:
    output = tmp_path / "out"
    config = RunConfig(engine=engine, buffer_size=5, **FAST)  # type: ignore[arg-type]
    build_steps(STEPS, 20, output, config=config)
    # write_json_atomic also writes recipe.json; every one of its writes is checked
    atomic = io_log.of("replace", "metadata")
    writes = [(i, c) for i, c in atomic if Path(c.dest).name == "metadata.json"]
    # the claim, the start of the run, one per row group (4), the end
    assert len(writes) >= 1 + 1 + 4 + 1, "every metadata.json write goes through os.replace"
    for at_replace, replace in atomic:
        temp, final = Path(replace.path), Path(replace.dest)
        assert temp.parent == final.parent and temp.name != final.name
        syncs = [
            (i, c)
            for i, c in io_log.of("fsync", "metadata")
            if c.inode == replace.inode and i < at_replace
        ]
        assert syncs, f"{final.name} write #{at_replace}: temp file not fsynced before replace"
        assert syncs[-1][1].path == str(temp)
        assert syncs[-1][1].size == replace.size, "fsync ran before the whole document was written"
        later = [
            i
            for i, c in io_log.of("fsync", "durable")
            if c.is_dir
            and c.path == str(final.parent)
            and i > at_replace
            and c.thread == replace.thread
        ]
        assert later, f"{final.name} write #{at_replace}: its directory not fsynced after replace"
    last = writes[-1][1]
    assert Path(last.dest) == (output / "metadata.json").resolve()
    assert last.document == read_metadata(output), "the last document installed is on disk"
    assert last.document["outcome"] == "completed"
    assert not list(output.glob(".*.tmp"))


def _group_of(where: Any) -> int | None:
    name = Path(str(getattr(where, "name", where))).name
    for index in range(100):
        if f"batch_{index:05d}" in name:
            return index
    return None


FAILURE_POINTS = ["write_table", "fsync", "replace", "directory_fsync"]


@pytest.mark.parametrize("engine", ["async", "sync"])
@pytest.mark.parametrize("point", FAILURE_POINTS)
def test_a_write_failing_at_any_point_leaves_no_temp_file_and_fails_naming_the_row_group(
    tmp_path: Path,
    io_log: IOLog,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    point: str,
) -> None:
    output = tmp_path / "out"
    temp_seen: list[Path] = []
    real_write = pq.write_table

    def write_table(table: Any, where: Any, **options: Any) -> None:
        if _group_of(where) == 2:
            temp_seen.append(Path(where.name))
            if point == "write_table":
                where.write(b"PAR1 half a file")
                raise OSError(errno.ENOSPC, "No space left on device")
        real_write(table, where, **options)

    def fail_fsync(path: str) -> OSError | None:
        if point == "fsync" and _group_of(path) == 2:
            return OSError(errno.EIO, "Input/output error")
        if point == "directory_fsync" and path.endswith("parquet-files") and temp_seen:
            return OSError(errno.EIO, "Input/output error")
        return None

    def fail_replace(dest: str) -> OSError | None:
        if point == "replace" and _group_of(dest) == 2:
            return OSError(errno.EXDEV, "Invalid cross-device link")
        return None

    monkeypatch.setattr(pq, "write_table", write_table)
    io_log.fail_fsync = fail_fsync
    io_log.fail_replace = fail_replace
    config = RunConfig(engine=engine, buffer_size=4, max_concurrent_row_groups=1, **FAST)  # type: ignore[arg-type]
    with pytest.raises(DatasetGenerationError) as caught:
        build_steps(STEPS, 20, output, config=config)
    assert "row group 2: writing to the sink failed: OSError" in str(caught.value)
    assert temp_seen, "row group 2's write was attempted into a temp file"
    assert not any(path.exists() for path in temp_seen), "the temp file was removed"
    leftovers = [p.name for p in (output / "parquet-files").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    metadata = read_metadata(output)
    assert metadata["outcome"] == "failed"
    assert "row group 2: writing to the sink failed" in metadata["first_error"]
    states = {g["index"]: g["state"] for g in metadata["row_groups"]}
    assert states[0] == states[1] == "drained" and states[2] == "failed"
    assert metadata["file_paths"] == [
        "parquet-files/batch_00000.parquet",
        "parquet-files/batch_00001.parquet",
    ]
    # metadata.json matches the files: a file whose rename was not made durable is not left
    # behind unlisted (nor listed: its row group failed)
    verdict = first_violation(output)
    on_disk = [p.name for p in _batch_files(output)]
    assert on_disk == ["batch_00000.parquet", "batch_00001.parquet"], f"rowforge check: {verdict}"
    assert verdict is None
