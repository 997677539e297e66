"""Run the `rowforge` CLI in a subprocess, SIGKILL it at a chosen moment, then judge the directory.

A kill moment is one of:

- `start`: `delay` seconds after metadata.json appears (before the first batch file, usually);
- `time`: `delay` seconds after metadata.json appears, anywhere in the run;
- `tmp`: as soon as the temporary file of a batch is seen while `files` batch files exist
  (the kill lands while that row group is being written: temp file written, not yet renamed);
- `file`: `delay` seconds after the `files`-th batch file appears;
- `end`: right after the last batch file appears (the run is finishing metadata.json);
- `claimed`: as soon as config.yaml appears in the output directory, usually before
  metadata.json does (pass `started=lambda: True`).

For a resume, "after metadata.json appears" is replaced by "after the resume archived the
previous event log" and batch files are counted from those already on disk when it started.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
PARQUET_DIR = "parquet-files"
BATCH_NAME = re.compile(r"batch_\d{5}\.parquet\Z")
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0

#: A build that takes about a second once started: 8 row groups of 50, two dependent LLM columns
#: on a mock model with 10-30 ms latency and 16 parallel requests (latency bound, so it is never
#: faster than that, only slower when the machine is busy).
CRASH_CONFIG = """\
seed: 11
models:
  - alias: writer
    provider: mock
    max_parallel_requests: 16
    mock: {latency_ms: [10, 30], seed: 3}
columns:
  - {type: category, name: topic, values: [billing, shipping, returns]}
  - {type: integer, name: size, low: 1, high: 1000}
  - {type: llm_text, name: question, model: writer, prompt: "Ask about {{ topic }} no. {{ size }}."}
  - {type: llm_text, name: answer, model: writer, prompt: "Answer briefly: {{ question }}"}
"""
TARGET = 400
BUFFER = 50
BATCHES = TARGET // BUFFER


def rowforge_command() -> list[str]:
    """The `rowforge` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("rowforge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rowforge.cli"]


def start(args: Sequence[str], cwd: Path = ROOT) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*rowforge_command(), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def rowforge(args: Sequence[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*rowforge_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


# --- kill moments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    kind: str
    files: int = 0
    delay: float = 0.0

    def __str__(self) -> str:
        if self.kind in ("start", "time"):
            return f"{self.kind}+{self.delay * 1000:.0f}ms"
        if self.kind == "tmp":
            return f"tmp(after {self.files} files)"
        if self.kind == "file":
            return f"file#{self.files}+{self.delay * 1000:.0f}ms"
        if self.kind == "claimed":
            return "claimed(config.yaml written)"
        return f"end+{self.delay * 1000:.1f}ms"


def draw_moments(seed: int, count: int = 20, batches: int = BATCHES) -> list[Moment]:
    """`count` moments spread over a run of `batches` row groups, reproducible from `seed`."""
    rng = random.Random(seed)
    kinds = ["start", "time", "tmp", "file", "end"]
    moments = []
    for number in range(count):
        kind = kinds[number % len(kinds)]
        if kind == "start":
            moment = Moment(kind, delay=rng.uniform(0.0, 0.1))
        elif kind == "time":
            moment = Moment(kind, delay=rng.uniform(0.1, 0.8))
        elif kind == "tmp":
            moment = Moment(kind, files=rng.randrange(batches))
        elif kind == "file":
            moment = Moment(kind, files=rng.randrange(1, batches), delay=rng.uniform(0.0, 0.05))
        else:
            moment = Moment(kind, files=batches, delay=rng.uniform(0.0, 0.003))
        moments.append(moment)
    return moments


@dataclass
class Kill:
    """What the directory looked like when the SIGKILL was sent (or that it never was)."""

    moment: Moment
    killed: bool
    files_at_kill: int = 0
    temp_at_kill: bool = False
    after_start_s: float = 0.0
    metadata_outcome: str | None = None
    stdout: str = ""
    stderr: str = ""
    attempts: int = 1  # builds started for this moment (one more for each that finished first)

    def __str__(self) -> str:
        if not self.killed:
            return f"{self.moment}: NOT KILLED (finished first)"
        temp = ", temp file present" if self.temp_at_kill else ""
        return (
            f"{self.moment}: killed {self.after_start_s * 1000:.0f}ms after start with "
            f"{self.files_at_kill} batch files{temp}, metadata said {self.metadata_outcome}"
            + (f" (attempt {self.attempts})" if self.attempts > 1 else "")
        )


def batch_files(output: Path) -> list[str]:
    try:
        names = os.listdir(output / PARQUET_DIR)
    except FileNotFoundError:
        return []
    return [name for name in names if BATCH_NAME.match(name)]


def _listing(output: Path) -> tuple[int, bool]:
    try:
        names = os.listdir(output / PARQUET_DIR)
    except FileNotFoundError:
        return 0, False
    files = sum(1 for name in names if BATCH_NAME.match(name))
    return files, any(name.endswith(".tmp") for name in names)


def kill_at(
    process: subprocess.Popen[str],
    output: Path,
    moment: Moment,
    started: Callable[[], bool] | None = None,
    baseline: int = 0,
) -> Kill:
    """Wait until `started()` (default: metadata.json exists), then SIGKILL at `moment`.

    `baseline` batch files already on disk are not counted (a resume starts with some).
    """
    started = started or (lambda: (output / "metadata.json").exists())
    deadline = time.monotonic() + START_TIMEOUT_S
    while not started():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the process ended before it started: {err or out}")
        assert time.monotonic() < deadline, "the process never started"
        time.sleep(0.001)
    begin = time.monotonic()
    fire_at: float | None = begin + moment.delay if moment.kind in ("start", "time") else None
    deadline = begin + RUN_TIMEOUT_S
    while process.poll() is None:
        now = time.monotonic()
        assert now < deadline, f"{moment}: the run did not finish in {RUN_TIMEOUT_S}s"
        files, temp = _listing(output)
        new = files - baseline
        if fire_at is None:
            if moment.kind == "tmp" and temp and new >= moment.files:
                fire_at = now
            elif moment.kind in ("file", "end") and new >= moment.files:
                fire_at = now + moment.delay
            elif moment.kind == "claimed" and (output / "config.yaml").exists():
                fire_at = now
        if fire_at is not None and now >= fire_at:
            os.kill(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            assert process.returncode == -signal.SIGKILL, (process.returncode, err)
            files, temp = _listing(output)
            return Kill(moment, True, files, temp, now - begin, _outcome(output), out, err)
        time.sleep(0.0002 if moment.kind == "claimed" else 0.001)
    out, err = process.communicate()
    files, temp = _listing(output)
    return Kill(moment, False, files, temp, time.monotonic() - begin, _outcome(output), out, err)


def _outcome(output: Path) -> str | None:
    try:
        return str(json.loads((output / "metadata.json").read_text(encoding="utf-8"))["outcome"])
    except (OSError, ValueError, KeyError):
        return None


def resume_started(output: Path, archived_before: int) -> Callable[[], bool]:
    """True once a resume has archived the previous event log (its run has begun)."""

    def started() -> bool:
        return len(list(output.glob("events-*.jsonl"))) > archived_before

    return started


# --- judging a directory -----------------------------------------------------------------------


@dataclass
class Verdict:
    """Counts and the problems found in an output directory that should be complete."""

    rows: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """A comparable form of a cell: arrays and nested structs become lists and dicts."""
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def rows_differing(frame: pd.DataFrame, reference: pd.DataFrame) -> list[int]:
    """Record indexes whose values differ between two datasets (missing counts as differing)."""
    if list(frame.columns) != list(reference.columns):
        return [-1]
    mine = dict(zip(frame.index, map(_plain, frame.to_numpy().tolist()), strict=True))
    theirs = dict(zip(reference.index, map(_plain, reference.to_numpy().tolist()), strict=True))
    return sorted(i for i in mine.keys() | theirs.keys() if mine.get(i) != theirs.get(i))


def judge(
    output: Path,
    target: int,
    reference: pd.DataFrame | None = None,
    *,
    in_process_check: bool = False,
) -> Verdict:
    """Everything the issue asks of a resumed directory, collected rather than raised."""
    verdict = Verdict()
    problems = verdict.problems
    try:
        frame = pd.read_parquet(output / PARQUET_DIR)
    except Exception as error:
        problems.append(f"pd.read_parquet failed: {error!r}")
        verdict.lost = target
        return verdict
    index = list(frame.index)
    distinct = set(index)
    verdict.rows = len(frame)
    verdict.lost = len(set(range(target)) - distinct)
    verdict.duplicated = len(index) - len(distinct)
    if len(frame) != target:
        problems.append(f"{len(frame)} rows, target {target}")
    if not frame.index.is_unique:
        problems.append(f"{verdict.duplicated} duplicated record indexes")
    if sorted(index) != list(range(target)):
        extra = sorted(distinct - set(range(target)))[:5]
        problems.append(
            f"record indexes are not range({target}): lost {verdict.lost}, extra {extra}"
        )
    try:
        table = ds.dataset(output / PARQUET_DIR).to_table()
        if table.num_rows != target:
            problems.append(f"pyarrow dataset holds {table.num_rows} rows")
    except Exception as error:
        problems.append(f"pyarrow.dataset failed: {error!r}")
    for path in sorted((output / PARQUET_DIR).iterdir()):
        if not BATCH_NAME.match(path.name):
            problems.append(f"stray file left in {PARQUET_DIR}: {path.name}")
        try:
            pq.read_table(path)
        except Exception as error:
            problems.append(f"{path.name} unreadable: {error!r}")
    try:
        metadata = json.loads((output / "metadata.json").read_text(encoding="utf-8"))
        if metadata.get("outcome") != "completed":
            problems.append(f"metadata outcome {metadata.get('outcome')!r}")
        if metadata.get("actual_num_records") != target:
            problems.append(f"metadata actual_num_records {metadata.get('actual_num_records')}")
    except Exception as error:
        problems.append(f"metadata.json unreadable: {error!r}")
    if reference is not None and not problems:
        differing = rows_differing(frame, reference)
        if differing:
            problems.append(
                f"{len(differing)} records differ from an uninterrupted run with the same seed "
                f"(first: {differing[:5]})"
            )
    code, said = check_in_process(output) if in_process_check else check_subprocess(output)
    if code != 0 or not said.startswith("OK"):
        problems.append(f"rowforge check exited {code}: {said}".strip())
    return verdict


def check_subprocess(output: Path) -> tuple[int, str]:
    """`rowforge check DIR` in a subprocess: exit code and everything it printed."""
    checked = rowforge(["check", str(output)])
    return checked.returncode, checked.stdout + checked.stderr


_CLI_LOCK = threading.Lock()


def check_in_process(output: Path) -> tuple[int, str]:
    """The same `rowforge check DIR` command run in this process (no interpreter start-up):
    typer's CliRunner swaps sys.stdout, so one at a time."""
    from typer.testing import CliRunner

    from rowforge.cli import app

    with _CLI_LOCK:
        result = CliRunner().invoke(app, ["check", str(output)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 1, f"{result.output} raised {result.exception!r}"
    return result.exit_code, result.output
