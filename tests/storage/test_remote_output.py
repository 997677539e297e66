"""Outputs at a URI of pyarrow's filesystems (`s3://...`), against moto's S3 on loopback: the
same dataset, layout and metadata as a local output, the output-directory rules, resume, check,
the CLI, and the commit of a row group on a store without rename (temporary object, then the
move; a failed upload leaves nothing under the final name)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import attrs
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from typer.testing import CliRunner

import rowforge
from rowforge.api import load_config
from rowforge.build import build_steps, resume
from rowforge.cli import app
from rowforge.errors import ConfigError
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation
from rowforge.storage.location import OutputFiles
from rowforge.storage.metadata import read_metadata
from rowforge.storage.workspace import Workspace
from tests.object_store import BUCKET, LocalS3, local_s3

DEMO = Path(str(files("rowforge") / "demo_data" / "support_dialogues.yaml"))
VARYING = {"started_at", "finished_at", "models"}


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    with local_s3() as store:
        yield store


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


STEPS = [
    Step("id", ids, kind="batch"),
    Step("double", lambda row: row["id"] * 2, depends_on=["id"]),
]
CONFIG = RunConfig(buffer_size=10, retry_backoff_s=0.0)


def _remote_frame(s3: LocalS3, uri: str) -> pd.DataFrame:
    files = OutputFiles.at(uri)
    return pd.read_parquet(files.path("parquet-files"), filesystem=files.filesystem).sort_index()


def _remote_metadata(uri: str) -> dict[str, Any]:
    return json.loads(OutputFiles.at(uri).read_bytes("metadata.json"))


def _without(document: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in keys}


def test_a_build_at_an_s3_uri_equals_a_local_build_file_for_file(
    s3: LocalS3, tmp_path: Path
) -> None:
    config = load_config(DEMO)
    uri = s3.uri()
    local = rowforge.build(config, 40, tmp_path / "local", RunConfig(buffer_size=10))
    remote = rowforge.build(config, 40, uri, RunConfig(buffer_size=10))

    assert remote.outcome == local.outcome == "completed"
    pd.testing.assert_frame_equal(remote.load_dataset(), local.load_dataset())
    pd.testing.assert_frame_equal(_remote_frame(s3, uri), local.load_dataset())
    assert _without(_remote_metadata(uri), VARYING) == _without(local.metadata, VARYING)
    on_disk = sorted(
        str(p.relative_to(tmp_path / "local"))
        for p in (tmp_path / "local").rglob("*")
        if p.is_file()
    )
    assert s3.keys(uri) == on_disk  # the same layout, nothing hidden left behind
    assert first_violation(uri) is None
    # pyarrow's dataset reads the URI as a user would
    import pyarrow.dataset as ds

    files = OutputFiles.at(uri)
    table = ds.dataset(files.path("parquet-files"), filesystem=files.filesystem).to_table()
    assert table.num_rows == 40


def test_the_output_rules_hold_at_a_uri(s3: LocalS3) -> None:
    uri = s3.uri()
    build_steps(STEPS, 30, uri, config=CONFIG)
    with pytest.raises(ConfigError, match=r"already holds a rowforge output.*--overwrite.*resume"):
        build_steps(STEPS, 30, uri, config=CONFIG)

    build_steps(STEPS, 12, uri, config=CONFIG, overwrite=True)  # fewer row groups than before
    assert [k for k in s3.keys(uri) if k.startswith("parquet-files/")] == [
        "parquet-files/batch_00000.parquet",
        "parquet-files/batch_00001.parquet",
    ]
    assert read_metadata(uri)["actual_num_records"] == 12
    assert first_violation(uri) is None

    foreign = s3.uri()
    OutputFiles.at(foreign).write_bytes("notes.txt", b"someone else's")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match=r"notes\.txt"):
            build_steps(STEPS, 10, foreign, config=CONFIG, overwrite=overwrite)
    assert s3.keys(foreign) == ["notes.txt"]  # rowforge deletes only what it wrote


def test_an_interrupted_remote_build_resumes_to_the_same_dataset(s3: LocalS3) -> None:
    uri = s3.uri()
    build_steps(STEPS, 40, uri, config=CONFIG)
    original = _remote_frame(s3, uri)
    files = OutputFiles.at(uri)
    files.delete("parquet-files/batch_00002.parquet")  # as if the run died before it
    files.write_bytes("parquet-files/.batch_00003.parquet.0a1b2c.tmp", b"half an upload")
    files.write_bytes(".metadata.json.3d4e5f.tmp", b"half a publish")
    document = _remote_metadata(uri)
    document["outcome"] = "running"
    files.write_bytes("metadata.json", json.dumps(document).encode())

    resume(uri, steps=STEPS, config=CONFIG)

    pd.testing.assert_frame_equal(_remote_frame(s3, uri), original)
    keys = s3.keys(uri)
    assert not [key for key in keys if key.rsplit("/", 1)[-1].startswith(".")]  # leftovers gone
    assert {"events.jsonl", "events-0001.jsonl"} <= set(keys)  # the old log kept, as locally
    assert read_metadata(uri)["outcome"] == "completed"
    assert first_violation(uri) is None


def test_check_names_a_problem_in_a_remote_output(s3: LocalS3) -> None:
    uri = s3.uri()
    build_steps(STEPS, 20, uri, config=CONFIG)
    OutputFiles.at(uri).delete("parquet-files/batch_00001.parquet")
    problem = first_violation(uri)
    assert problem is not None and "parquet-files/batch_00001.parquet" in problem
    empty = s3.uri()
    assert first_violation(empty) == f"{empty}: no metadata.json; not a rowforge output"


def test_a_location_pyarrow_cannot_open_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'nosuch://bucket/x': pyarrow cannot open"):
        build_steps(STEPS, 10, "nosuch://bucket/x", config=CONFIG)
    assert list(tmp_path.iterdir()) == []


class _LocalAsRemote(pafs.FileSystemHandler):  # type: ignore[misc]
    """A local filesystem seen as a remote one that logs its moves and deletions (the commit
    of a remote write) and can refuse the moves."""

    def __init__(self, *, fail_moves: bool = False) -> None:
        self.local = pafs.LocalFileSystem()
        self.fail_moves = fail_moves
        self.log: list[tuple[str, str]] = []

    def __eq__(self, other: object) -> bool:
        return other is self

    def __ne__(self, other: object) -> bool:
        return other is not self

    def get_type_name(self) -> str:
        return "local-as-remote"

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> Any:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> Any:
        return self.local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        self.log.append(("delete", path.rsplit("/", 1)[-1]))
        self.local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        if self.fail_moves:
            raise OSError("the store refused the copy")
        self.log.append(("move", dest.rsplit("/", 1)[-1]))
        self.local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.local.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self.local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return self.local.open_output_stream(path)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        raise NotImplementedError


def test_a_remote_write_whose_commit_fails_leaves_nothing_under_either_name(
    tmp_path: Path,
) -> None:
    files = OutputFiles(
        pafs.PyFileSystem(_LocalAsRemote(fail_moves=True)),
        tmp_path.as_posix(),
        "fake://out",
        local=False,
    )
    files.make_parquet_dir()
    with pytest.raises(OSError, match="refused the copy"):
        files.write_parquet(pa.table({"a": [1, 2]}), "parquet-files/batch_00000.parquet")
    assert list((tmp_path / "parquet-files").iterdir()) == []


def test_the_cli_runs_checks_resumes_and_reports_at_a_uri(s3: LocalS3, tmp_path: Path) -> None:
    uri = s3.uri()
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(DEMO), "-n", "20", "--buffer-size", "10", "-o", uri])
    assert ran.exit_code == 0, ran.output
    prefix = uri.partition("?")[0]
    assert f"parquet:  {prefix}/parquet-files/" in ran.output
    assert f"metadata: {prefix}/metadata.json" in ran.output

    checked = runner.invoke(app, ["check", uri])
    assert checked.exit_code == 0 and f"OK: {uri}" in checked.output

    again = runner.invoke(app, ["run", str(DEMO), "-n", "20", "-o", uri])
    assert again.exit_code == 2 and "already holds a rowforge output" in again.output

    resumed = runner.invoke(app, ["resume", uri])
    assert resumed.exit_code == 0 and "completed: 20 of 20 records" in resumed.output

    reported = runner.invoke(app, ["report", uri])
    assert reported.exit_code == 0, reported.output
    assert f"report: {prefix}/report.html" in reported.output
    page = OutputFiles.at(uri).read_bytes("report.html")
    assert page.startswith(b"<!DOCTYPE html>") or b"<html" in page[:500]


def test_publishing_uploads_what_changed_metadata_last_and_removes_what_went(
    tmp_path: Path,
) -> None:
    store = _LocalAsRemote()
    (tmp_path / "remote").mkdir()
    files = OutputFiles(
        pafs.PyFileSystem(store), (tmp_path / "remote").as_posix(), "fake://out", local=False
    )
    space = Workspace(tmp_path / "copy", files)
    space.directory.mkdir()
    for name in ("metadata.json", "events.jsonl", "config.yaml"):
        (space.directory / name).write_text(name)

    (space.directory / ".metadata.json.tmp").write_text("a write cut short")
    space.publish()
    assert store.log == [  # the hidden temporary file stays here
        ("move", "config.yaml"),
        ("move", "events.jsonl"),
        ("move", "metadata.json"),
    ]
    store.log.clear()
    space.publish()
    assert store.log == []  # nothing changed, nothing uploaded

    (space.directory / "events.jsonl").rename(space.directory / "events-0001.jsonl")
    (space.directory / "metadata.json").write_text("metadata.json, longer now")
    space.publish()
    assert store.log == [
        ("move", "events-0001.jsonl"),
        ("move", "metadata.json"),
        ("delete", "events.jsonl"),
    ]
    assert sorted(p.name for p in (tmp_path / "remote").iterdir()) == [
        "config.yaml",
        "events-0001.jsonl",
        "metadata.json",
    ]


def test_a_remote_build_publishes_metadata_after_every_row_group(s3: LocalS3) -> None:
    """While row group 2 runs (one row group at a time), the store's metadata.json already
    lists row groups 0 and 1: a build that dies now leaves a remote output that resumes."""
    uri = s3.uri()
    seen: list[list[int]] = []

    def look(frame: pd.DataFrame) -> list[int]:
        if frame.index.min() == 20:
            document = _remote_metadata(uri)
            seen.append([group["index"] for group in document["row_groups"]])
        return list(frame.index)

    steps = [Step("id", look, kind="batch")]
    build_steps(steps, 30, uri, config=attrs.evolve(CONFIG, max_concurrent_row_groups=1))
    assert seen == [[0, 1]]


def test_a_filesystem_configured_in_code_is_an_output_too(s3: LocalS3) -> None:
    """`OutputFiles.on(filesystem, base)`: credentials and endpoint given in code, not in the
    environment or the URI; build, load, check and resume take it."""
    filesystem = pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        endpoint_override=s3.endpoint,
        scheme="http",
        region="us-east-1",
    )
    files = OutputFiles.on(filesystem, f"{BUCKET}/in-code/")
    assert files.uri == f"s3://{BUCKET}/in-code"
    built = rowforge.build(load_config(DEMO), 20, files, RunConfig(buffer_size=10))
    assert built.outcome == "completed" and len(built.load_dataset()) == 20
    assert first_violation(files) is None
    files.delete("parquet-files/batch_00000.parquet")
    resumed = rowforge.resume(files)
    pd.testing.assert_frame_equal(resumed.load_dataset(), built.load_dataset())
    assert first_violation(files) is None


def test_a_file_uri_is_a_local_directory(tmp_path: Path) -> None:
    """`file://` names a local directory: written in place (fsync, rename), not through a
    working copy, and named as the path."""
    uri = f"file://{tmp_path / 'out'}"
    files = OutputFiles.at(uri)
    assert files.local and files.base == str(tmp_path / "out")
    build_steps(STEPS, 20, uri, config=CONFIG)
    assert (tmp_path / "out" / "parquet-files" / "batch_00001.parquet").is_file()
    assert first_violation(tmp_path / "out") is None
