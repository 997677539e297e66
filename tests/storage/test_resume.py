"""INV-7: a build killed with SIGKILL at random moments resumes to exactly the target rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rowforge.build import build_steps, resume
from rowforge.errors import ConfigError
from rowforge.scheduler import Step
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata
from tests.storage import killable_build

ROOT = Path(__file__).resolve().parents[2]


def start_build(output: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.killable_build", str(output)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_after_start(process: subprocess.Popen[bytes], output: Path, delay: float) -> bool:
    """SIGKILL `delay` seconds after metadata.json appears; False if the build finished first."""
    deadline = time.monotonic() + 30
    while not (output / "metadata.json").exists():
        assert process.poll() is None, "the build died before it started"
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return True


def assert_complete(output: Path) -> None:
    frame = pd.read_parquet(output / "parquet-files")
    assert len(frame) == killable_build.NUM_RECORDS
    assert frame.index.is_unique
    assert sorted(frame.index) == list(range(killable_build.NUM_RECORDS))
    assert (frame["text"] == [f"text {i}" for i in frame.index]).all()
    for path in (output / "parquet-files").iterdir():
        assert path.name.startswith("batch_"), f"leftover {path.name}"
    metadata = read_metadata(output)
    assert metadata["outcome"] == "completed"
    assert metadata["actual_num_records"] == killable_build.NUM_RECORDS
    assert first_violation(output) is None


def test_a_build_killed_at_random_moments_resumes_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    moments = random.Random(7).sample([i / 100 for i in range(5, 120)], 10)
    killed = 0
    for number, delay in enumerate(moments):
        output = tmp_path / f"run-{number}"
        process = start_build(output)
        killed += kill_after_start(process, output, delay)
        # The files are the truth: metadata may lag them by a row group at the moment of a kill.
        on_disk = len(list((output / "parquet-files").glob("batch_*.parquet")))
        result = resume(output)  # steps and config come from the build's recipe.json
        assert result.target_records == killable_build.NUM_RECORDS - 50 * on_disk
        assert_complete(output)
    assert killed >= 8, "most moments must land while the build is running"


def test_resume_refuses_a_changed_configuration_unless_told(tmp_path: Path) -> None:
    build_steps(killable_build.STEPS[:2], 100, tmp_path, config=killable_build.CONFIG)
    changed = [*killable_build.STEPS[:2], Step("extra", lambda row: 1, depends_on=["id"])]
    with pytest.raises(ConfigError, match="the configuration changed since this build started"):
        resume(tmp_path, steps=changed, config=killable_build.CONFIG)
    result = resume(tmp_path)
    assert result.target_records == 0, "a complete build has nothing left to generate"
    (tmp_path / "parquet-files" / "batch_00001.parquet").unlink()
    forced = resume(tmp_path, steps=changed, allow_config_change=True)
    assert forced.actual_records == 50 and "extra" in forced.generated_cells


def test_resume_names_a_step_it_cannot_import(tmp_path: Path) -> None:
    steps = [killable_build.STEPS[0], Step("anonymous", lambda row: 1, depends_on=["id"])]
    build_steps(steps, 10, tmp_path)
    with pytest.raises(ConfigError, match="step 'anonymous' uses a function without an importable"):
        resume(tmp_path)
    assert resume(tmp_path, steps=steps).target_records == 0


def test_resume_regenerates_only_missing_row_groups(tmp_path: Path) -> None:
    build_steps(killable_build.STEPS, 200, tmp_path, config=killable_build.CONFIG)
    kept = tmp_path / "parquet-files" / "batch_00000.parquet"
    before = kept.stat().st_mtime_ns
    (tmp_path / "parquet-files" / "batch_00002.parquet").unlink()
    result = resume(tmp_path)
    assert [group.index for group in result.row_groups] == [2]
    assert kept.stat().st_mtime_ns == before
    assert len(pd.read_parquet(tmp_path / "parquet-files")) == 200
    assert first_violation(tmp_path) is None


def test_ctrl_c_cancels_the_build_records_it_and_resume_finishes(tmp_path: Path) -> None:
    process = start_build(tmp_path)
    deadline = time.monotonic() + 30
    while not list((tmp_path / "parquet-files").glob("batch_*.parquet")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) != 0
    metadata = read_metadata(tmp_path)
    assert metadata["outcome"] == "cancelled"
    assert metadata["finished_at"] is not None
    assert first_violation(tmp_path) is None, "every worker was awaited before the end"
    resume(tmp_path)
    assert_complete(tmp_path)
