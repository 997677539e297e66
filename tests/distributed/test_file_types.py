"""The driver's lock on a Ray run's column types (`distributed.file_types`): the first file
fixes a column's type, a later file of another type is converted and rewritten, one that does
not convert fails naming the column; and on Ray, a column the config does not type has one
type across workers, as in a local run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rowforge
from rowforge.config.dataset import DatasetConfig
from rowforge.distributed.file_types import FileTypes
from rowforge.errors import DatasetGenerationError
from rowforge.scheduler import RunConfig
from rowforge.storage.check import first_violation
from rowforge.storage.location import OutputFiles, relative_path


def write(output: Path, row_group: int, **columns: Any) -> Path:
    """Row group `row_group`'s file in `output`, as a run writes one: the columns and the
    record index."""
    path = output / relative_path(row_group)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = len(next(iter(columns.values())))
    pq.write_table(pa.table({**columns, "record_index": pa.array(range(size))}), path)
    return path


def test_the_first_file_fixes_the_type_and_a_later_one_is_converted(tmp_path: Path) -> None:
    types = FileTypes()
    write(tmp_path, 0, v=[1, 2])
    later = write(tmp_path, 1, v=[3.0, 4.0])
    types.conform(0, OutputFiles.at(tmp_path))
    types.conform(1, OutputFiles.at(tmp_path))
    assert pq.read_schema(later).field("v").type == pa.int64()
    assert pq.read_table(later).column("v").to_pylist() == [3, 4]
    assert not list(later.parent.glob(".*.tmp"))


def test_a_file_of_the_locked_types_is_left_as_it_is(tmp_path: Path) -> None:
    types = FileTypes()
    write(tmp_path, 0, v=[1])
    types.conform(0, OutputFiles.at(tmp_path))
    same = write(tmp_path, 1, v=[2])
    before = same.stat()
    types.conform(1, OutputFiles.at(tmp_path))
    after = same.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_value_that_does_not_convert_fails_naming_row_group_and_column(tmp_path: Path) -> None:
    types = FileTypes()
    write(tmp_path, 0, v=[1])
    types.conform(0, OutputFiles.at(tmp_path))
    write(tmp_path, 3, v=[2.5])
    with pytest.raises(DatasetGenerationError, match=r"row group 3: column 'v' does not fit"):
        types.conform(3, OutputFiles.at(tmp_path))


def test_an_all_null_column_does_not_lock_its_type(tmp_path: Path) -> None:
    types = FileTypes()
    write(tmp_path, 0, v=pa.nulls(2))
    types.conform(0, OutputFiles.at(tmp_path))
    text = write(tmp_path, 1, v=["x", "y"])
    types.conform(1, OutputFiles.at(tmp_path))
    assert pq.read_schema(text).field("v").type == pa.string()
    write(tmp_path, 2, v=[1])
    with pytest.raises(DatasetGenerationError, match="column 'v'"):  # 1 is not text
        types.conform(2, OutputFiles.at(tmp_path))


def test_a_resume_keeps_the_types_of_the_files_already_written(tmp_path: Path) -> None:
    types = FileTypes(pa.schema([pa.field("v", pa.float64())]))
    ints = write(tmp_path, 5, v=[1, 2])
    types.conform(5, OutputFiles.at(tmp_path))
    assert pq.read_schema(ints).field("v").type == pa.float64()


def _config(out: Path, kind: str) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "columns": [
                {"type": "category", "name": "out", "values": [str(out)]},
                {"type": "category", "name": "kind", "values": [kind]},
                {
                    "type": "custom",
                    "name": "v",
                    "kind": "batch",
                    "depends_on": ["out", "kind"],
                    "function": "tests.distributed.helpers:ints_then_floats",
                },
            ]
        }
    )


@pytest.mark.usefixtures("ray_instance")
def test_on_ray_a_column_keeps_the_first_row_group_s_type_as_locally(tmp_path: Path) -> None:
    """Row group 0 (one worker) gives ints, row group 1 (the other) whole floats: locally the
    second file is written as int64; on Ray the driver converts it so."""
    local, remote = tmp_path / "local", tmp_path / "ray"
    rowforge.build(_config(local, "whole"), 20, local, RunConfig(buffer_size=10))
    ray = RunConfig(buffer_size=10, executor="ray", workers=2)
    rowforge.build(_config(remote, "whole"), 20, remote, ray)
    schemas = {pq.read_schema(f).field("v").type for f in (remote / "parquet-files").iterdir()}
    assert schemas == {pa.int64()}
    theirs = pd.read_parquet(local / "parquet-files").drop(columns="out")
    ours = pd.read_parquet(remote / "parquet-files").drop(columns="out")
    pd.testing.assert_frame_equal(ours, theirs)
    assert first_violation(remote) is None


@pytest.mark.usefixtures("ray_instance")
def test_on_ray_a_row_group_that_does_not_fit_fails_the_run_as_locally(tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    with pytest.raises(DatasetGenerationError, match="column 'v'"):
        rowforge.build(_config(local, "halves"), 20, local, RunConfig(buffer_size=10))
    ray = RunConfig(buffer_size=10, executor="ray", workers=2)
    with pytest.raises(DatasetGenerationError, match=r"row group 1: column 'v' does not fit"):
        rowforge.build(_config(remote, "halves"), 20, remote, ray)
    assert rowforge.api.read_metadata(remote)["outcome"] == "failed"
