"""Resume after a crash between a row group's file and the metadata.json that lists it.

The file is the proof the row group was written, so `resume` recovers it from the file. Its
cell outcomes are recovered too, from the interrupted run's event log, where the row group's
terminal event was flushed before metadata.json would have been written: otherwise metadata
would say no cell was skipped while the events say one was, and `rowforge check` would refuse
a correctly resumed output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from rowforge.build import build_steps, resume
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata


def _ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def _double(row: dict[str, Any]) -> int:
    if row["id"] == 5:
        raise ValueError("the model refused row 5")  # not retryable
    return row["id"] * 2


def _plus_one(row: dict[str, Any]) -> int:
    return row["double"] + 1


STEPS = [
    Step("id", _ids, kind="batch"),
    Step("double", _double, depends_on=["id"]),
    Step("plus_one", _plus_one, depends_on=["double"]),
]
CONFIG = RunConfig(buffer_size=4, max_retries=0, retry_backoff_s=0.0)


def _forget_row_group(output: Path, index: int) -> None:
    """What a crash leaves when it comes after row group `index`'s file was renamed into
    place and its terminal event flushed, but before metadata.json listed it."""
    path = output / "metadata.json"
    document = json.loads(path.read_text())
    document["row_groups"] = [g for g in document["row_groups"] if g["index"] != index]
    document["file_paths"] = [p for p in document["file_paths"] if f"{index:05d}" not in p]
    document["outcome"] = "running"
    document["finished_at"] = None
    path.write_text(json.dumps(document))


def test_a_row_group_recovered_from_its_file_keeps_its_skipped_cells(tmp_path: Path) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 12, output, config=CONFIG)
    before = read_metadata(output)
    (group,) = [g for g in before["row_groups"] if g["index"] == 1]
    assert group["skipped_cells"] == {"plus_one": 1}  # row 5 failed in `double`
    _forget_row_group(output, 1)

    result = resume(output, steps=STEPS, config=CONFIG)

    after = read_metadata(output)
    assert result.outcome == after["outcome"] == "partial", "row 5 is missing"
    (recovered,) = [g for g in after["row_groups"] if g["index"] == 1]
    assert recovered["skipped_cells"] == {"plus_one": 1}
    assert after["skipped_cells"] == before["skipped_cells"]
    assert first_violation(output) is None
    assert len(pd.read_parquet(output / "parquet-files")) == 11


def _seed_ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def _grow(frame: pd.DataFrame) -> pd.DataFrame:
    doubled = pd.concat([frame, frame])
    doubled["twice"] = range(len(doubled))
    return doubled


RESIZING = [
    Step("id", _seed_ids, kind="batch"),
    Step("twice", _grow, kind="batch", depends_on=["id"], allow_resize=True),
]


def test_resuming_a_build_whose_row_groups_grew_is_refused_rather_than_repeating_indexes(
    tmp_path: Path,
) -> None:
    """Later row groups' record indexes follow the sizes the earlier ones grew to; a resume
    that regenerated a row group at its planned start would repeat another's indexes."""
    import warnings

    import pytest

    from rowforge.errors import ConfigError

    output = tmp_path / "out"
    config = RunConfig(buffer_size=2, retry_backoff_s=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        build_steps(RESIZING, 6, output, config=config)
        (output / "parquet-files" / "batch_00002.parquet").unlink()
        _forget_row_group(output, 2)
        with pytest.raises(ConfigError, match="allow_resize") as refused:
            resume(output, steps=RESIZING, config=config)
    assert "--overwrite" in str(refused.value)
    assert len(pd.read_parquet(output / "parquet-files")) == 8, "nothing was touched"


def _grow_after_the_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Row group 0 keeps its size; later row groups double."""
    if frame.index[0] == 0:
        return frame.assign(twice=range(len(frame)))
    return _grow(frame)


def test_a_resume_whose_row_groups_grow_ends_completed_with_every_record(tmp_path: Path) -> None:
    """Row group 0 (not resized) was written before the crash, so nothing is refused; the
    resumed row groups grow, and completed means target + resized records, as for a build
    that was never cut."""
    import warnings

    steps = [
        Step("id", _seed_ids, kind="batch"),
        Step("twice", _grow_after_the_first, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    output = tmp_path / "out"
    config = RunConfig(buffer_size=2, retry_backoff_s=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        build_steps(steps, 6, output, config=config)
        for index in (1, 2):
            (output / "parquet-files" / f"batch_{index:05d}.parquet").unlink()
            _forget_row_group(output, index)
        resume(output, steps=steps, config=config)
    metadata = read_metadata(output)
    assert metadata["outcome"] == "completed"
    assert metadata["actual_num_records"] == 10 and metadata["resized_records"] == 4
    assert sorted(pd.read_parquet(output / "parquet-files").index) == list(range(10))
    assert first_violation(output) is None
