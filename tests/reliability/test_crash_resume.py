"""Issue 9, crash and resume: `rowforge run` SIGKILLed at 20 seeded moments, each resumed with
`rowforge resume`, ends with exactly the target rows, unique record indexes equal to
range(target), every file readable, and `rowforge check` OK.

Everything runs through the CLI in subprocesses, as a user would. The kill moments are drawn from
a seeded RNG (see `crash_harness.draw_moments`): before the first batch file, at random times,
while a batch file is being written (its temporary file exists), just after the k-th batch file
appears, and after the last one while the run finishes its metadata. Two cycles run at a time
to keep the file within its time budget on 2 cores; each has its own directory. In those 20
cycles `rowforge check` runs in this process (typer's CliRunner, the same command); the other
tests run it as a subprocess.

Run with `-s` to see the moments and the summary line.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

import rowforge as rowforge_api
from rowforge.scheduler import RunConfig
from tests.reliability.crash_harness import (
    BATCHES,
    BUFFER,
    CRASH_CONFIG,
    PARQUET_DIR,
    ROOT,
    TARGET,
    Kill,
    Moment,
    Verdict,
    batch_files,
    draw_moments,
    judge,
    kill_at,
    resume_started,
    rowforge,
    start,
)

SEED = 9
KILLS = 20
LANES = 3  # cycles at a time: each one mostly waits on interpreter start-up and mock latency
SEED_CONFIG = "examples/text_to_sql.yaml"  # its seed table path is relative to the file


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "crash.yaml"
    path.write_text(CRASH_CONFIG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The dataset of an uninterrupted run (in process: cheaper than one more interpreter); a
    resumed one must be identical (INV-11)."""
    output = tmp_path_factory.mktemp("reference") / "out"
    result = rowforge_api.build(
        rowforge_api.load_config(config_file), TARGET, output, RunConfig(buffer_size=BUFFER)
    )
    assert result.outcome == "completed"
    frame = pd.read_parquet(output / PARQUET_DIR).sort_index()
    assert list(frame.index) == list(range(TARGET))
    return frame


def _run_args(
    config: Path | str, output: Path | str, n: int = TARGET, buffer: int = BUFFER
) -> list[str]:
    return ["run", str(config), "-n", str(n), "-o", str(output), "--buffer-size", str(buffer)]


def _kill_and_resume(
    config: Path, base: Path, moment: Moment, reference: pd.DataFrame
) -> tuple[Kill, Verdict]:
    # A moment near the end can come too late on a busy machine (the build finished before the
    # watcher saw its last file): try it again in a fresh directory, up to 3 times in all.
    for attempt in range(3):
        output = base.with_name(f"{base.name}-{attempt}")
        kill = kill_at(start(_run_args(config, output)), output, moment)
        kill.attempts = attempt + 1
        if kill.killed:
            break
    verdict = Verdict()
    if kill.killed:
        resumed = rowforge(["resume", str(output)])
        if resumed.returncode != 0 or "rowforge resume: completed: " not in resumed.stderr:
            verdict.problems.append(
                f"rowforge resume exited {resumed.returncode}: {resumed.stdout}{resumed.stderr}"
            )
        verdict = _merge(verdict, judge(output, TARGET, reference, in_process_check=True))
    return kill, verdict


def _merge(first: Verdict, second: Verdict) -> Verdict:
    return Verdict(second.rows, second.lost, second.duplicated, [*first.problems, *second.problems])


def test_sigkill_at_20_seeded_moments_each_resumed_loses_and_duplicates_nothing(
    config_file: Path, reference: pd.DataFrame, tmp_path: Path
) -> None:
    moments = draw_moments(SEED, KILLS)
    with ThreadPoolExecutor(max_workers=LANES) as pool:
        outcomes = list(
            pool.map(
                lambda numbered: _kill_and_resume(
                    config_file, tmp_path / f"kill-{numbered[0]:02d}", numbered[1], reference
                ),
                enumerate(moments),
            )
        )
    killed = sum(kill.killed for kill, _ in outcomes)
    survived = sum(kill.killed and not verdict.problems for kill, verdict in outcomes)
    lost = sum(verdict.lost for _, verdict in outcomes)
    duplicated = sum(verdict.duplicated for _, verdict in outcomes)
    mid_write = sum(kill.temp_at_kill for kill, _ in outcomes)
    before_any_file = sum(kill.killed and kill.files_at_kill == 0 for kill, _ in outcomes)
    for number, (kill, verdict) in enumerate(outcomes):
        print(f"kill {number:2d}: {kill}" + (f" -> {verdict.problems}" if verdict.problems else ""))
    print(
        f"kills survived: {survived}, rows lost: {lost}, rows duplicated: {duplicated} "
        f"(of {killed} kills: {before_any_file} before any batch file, {mid_write} mid-write)"
    )
    failures = [f"{kill}: {verdict.problems}" for kill, verdict in outcomes if verdict.problems]
    assert killed == KILLS, [str(kill) for kill, _ in outcomes if not kill.killed]
    assert not failures, "\n".join(failures)
    assert (survived, lost, duplicated) == (KILLS, 0, 0)
    # The moments did land where they were meant to: before files, mid-write and at the end.
    assert before_any_file >= 1 and mid_write >= 1
    assert any(kill.files_at_kill == BATCHES for kill, _ in outcomes)


def test_a_resume_that_is_itself_killed_is_resumed_again(
    config_file: Path, reference: pd.DataFrame, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    kills = [kill_at(start(_run_args(config_file, output)), output, Moment("tmp", files=1))]
    # Two resumes killed in turn: one after it wrote two more files, one mid-write.
    for moment in (Moment("file", files=2, delay=0.01), Moment("tmp", files=1)):
        archived = len(list(output.glob("events-*.jsonl")))
        on_disk = len(batch_files(output))
        process = start(["resume", str(output)])
        kills.append(
            kill_at(process, output, moment, resume_started(output, archived), baseline=on_disk)
        )
    print("\n".join(str(kill) for kill in kills))
    assert all(kill.killed for kill in kills), [str(kill) for kill in kills]
    assert kills[-1].files_at_kill < BATCHES, "the last resume must have had work left"
    resumed = rowforge(["resume", str(output)])
    assert resumed.returncode == 0, resumed.stderr
    assert f"rowforge resume: completed: {TARGET} of {TARGET}" in resumed.stderr, resumed.stderr
    verdict = judge(output, TARGET, reference)
    assert not verdict.problems, verdict.problems
    # Every interrupted run left its own event log, and `check` replayed them all (in judge).
    assert len(list(output.glob("events-*.jsonl"))) == 3


def _finish_after_early_kill(
    config: Path, output: Path, reference: pd.DataFrame
) -> tuple[Kill, list[str], list[str]]:
    """Kill a build as soon as its output directory shows config.yaml, then finish it with
    `rowforge resume`. Returns the kill, what was in the directory then, and the problems.

    The directory must appear whole (config.yaml together with metadata.json): a directory
    with config.yaml alone was once left by such a kill, and no rowforge command accepted it
    (resume: not a rowforge output; run: not empty; run --overwrite: not a rowforge output)."""
    kill = kill_at(
        start(_run_args(config, output)), output, Moment("claimed"), started=lambda: True
    )
    state = sorted(os.listdir(output)) if output.exists() else []
    problems = [] if "metadata.json" in state else [f"config.yaml without metadata.json: {state}"]
    resumed = rowforge(["resume", str(output)])
    if resumed.returncode == 0 and f"completed: {TARGET} of {TARGET}" in resumed.stderr:
        return kill, state, problems + judge(output, TARGET, reference).problems
    problems.append(
        f"killed with {state} in the directory, `rowforge resume` exited "
        f"{resumed.returncode}: {resumed.stderr.strip()}"
    )
    return kill, state, problems


def test_a_build_killed_as_soon_as_its_directory_appears_can_be_resumed(
    config_file: Path, reference: pd.DataFrame, tmp_path: Path
) -> None:
    """A SIGKILL right after the output directory appears: it already holds metadata.json, and
    `resume` finishes the dataset (no directory that must be cleaned up by hand)."""
    with ThreadPoolExecutor(max_workers=LANES) as pool:
        outcomes = list(
            pool.map(
                lambda n: _finish_after_early_kill(config_file, tmp_path / f"early-{n}", reference),
                range(3),
            )
        )
    for kill, state, problems in outcomes:
        print(f"{kill}; directory then: {state}" + (f" -> {problems}" if problems else ""))
    failures = [problem for _, _, problems in outcomes for problem in problems]
    assert not failures, "\n".join(failures)


def _relative_to_root(path: Path) -> str:
    return os.path.relpath(path, ROOT)


def test_seed_dataset_build_killed_then_resumed_from_the_same_cwd(tmp_path: Path) -> None:
    """examples/text_to_sql.yaml has a relative seed path; run and resume from the repo root
    with a relative output path, as a user would."""
    output = tmp_path / "sqlout"
    relative = _relative_to_root(output)
    process = start(_run_args(SEED_CONFIG, relative, n=300, buffer=50), cwd=ROOT)
    kill = kill_at(process, output, Moment("file", files=2))
    print(kill)
    assert kill.killed, kill
    resumed = rowforge(["resume", relative], cwd=ROOT)
    assert resumed.returncode == 0, f"rowforge resume {relative}: {resumed.stderr}"
    assert "rowforge resume: completed: 300 of 300" in resumed.stderr, resumed.stderr
    verdict = judge(output, 300)
    assert not verdict.problems, verdict.problems


def test_seed_dataset_resume_after_deleting_one_batch_file(tmp_path: Path) -> None:
    """The reported bug: run examples/text_to_sql.yaml -n 300 --buffer-size 100 into a relative
    directory, delete one batch file, resume from the same cwd: the same 300 records again."""
    output = tmp_path / "sqlout"
    relative = _relative_to_root(output)
    done = rowforge(_run_args(SEED_CONFIG, relative, n=300, buffer=100), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    original = pd.read_parquet(output / PARQUET_DIR).sort_index()
    (output / PARQUET_DIR / "batch_00001.parquet").unlink()
    resumed = rowforge(["resume", relative], cwd=ROOT)
    assert resumed.returncode == 0, f"rowforge resume {relative}: {resumed.stderr}"
    assert "rowforge resume: completed: 300 of 300" in resumed.stderr, resumed.stderr
    verdict = judge(output, 300, original)
    assert not verdict.problems, verdict.problems
