"""Run mutmut over one rowforge package at a time, each with its own focused tests.

    python -m tests.mutants_killed.run_mutmut storage statemachine [--max-children 2] [--rev HEAD]

mutmut reads its settings from `pyproject.toml` in the directory it runs in and keeps its copy of
the code in `mutants/` there. One run over all three packages would run every test that touches a
mutated function (the scheduler's long stateful tests for a storage mutant), so each package gets
its own work directory `mutants/<package>/` (git-ignored): a snapshot of src/, tests/, specs/,
examples/ and docs/ (the working tree, or a commit with --rev) and a pyproject.toml whose
`[tool.mutmut]` names only that package and its tests. The shared settings (what to copy, pytest
flags) are the working tree's `[tool.mutmut]`. Survivors are listed in
mutants/<package>/survivors.txt; `cd mutants/<package> && ../../.venv/bin/mutmut show <name>`
shows one. A run with --only works in mutants/<package>-<file stems>/ instead (e.g.
mutants/scheduler-core/), so each file's results stay while the next file runs.

Subprocess tests (the SIGKILL resume tests) start `python -m ...`: PYTHONPATH points them at the
mutated copy and they inherit MUTANT_UNDER_TEST, so they run the mutant too. CI=true selects the
short hypothesis profile. See docs/mutants.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "mutants"
SNAPSHOT = ("src", "tests", "specs", "examples", "docs", "pyproject.toml")

# package -> (files to mutate, tests to run). mutmut runs, for each mutant, only the tests that
# called the mutated function; all of tests/scheduler takes about 15 s on the 2-core machine, so
# the scheduler package runs it whole. The whole package is some thousands of mutants (hours):
# `--only src/rowforge/scheduler/core.py` runs one file at a time.
PACKAGES: dict[str, tuple[list[str], list[str]]] = {
    "storage": (["src/rowforge/storage/*"], ["tests/storage", "tests/mutants_killed"]),
    "statemachine": (
        ["src/rowforge/statemachine/*"],
        ["tests/statemachine", "tests/mutants_killed"],
    ),
    "scheduler": (["src/rowforge/scheduler/*"], ["tests/scheduler", "tests/mutants_killed"]),
}

# Extra pytest flags per package. A scheduler mutant that stops a row group or a worker from
# ending deadlocks the engine: the test waits, using no CPU (so mutmut's CPU-time limit never
# fires), until pytest-timeout's 120 s. The slowest scheduler test takes 6 s alone, so 30 s still
# leaves room for a loaded machine and makes each deadlocked mutant cost a quarter as much.
PYTEST_ARGS: dict[str, list[str]] = {"scheduler": ["--timeout=30"]}

# Tests that fail under mutmut's wrapping itself, whatever the mutant: mutmut calls every
# function of a mutated module through a trampoline that lives in mutmut's own package, so a
# check of which frame called rowforge (`runner._caller_stacklevel`: the DeprecationWarning
# names the caller's file) sees the trampoline's frame instead. mutmut's clean run would fail,
# so these are deselected when that module is mutated. tests/mutants_killed/
# test_scheduler_runner.py checks the warning's filename only when the module is not wrapped.
BROKEN_BY_TRAMPOLINES: dict[str, list[str]] = {
    "src/rowforge/scheduler/runner.py": [
        "tests/scheduler/test_failure_modes.py"
        "::test_allow_resize_runs_on_the_sync_engine_for_that_run_only",
    ],
}


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def package_pyproject(
    snapshot_text: str,
    only_mutate: list[str],
    tests: list[str],
    extra_pytest_args: Sequence[str] = (),
) -> str:
    """The snapshot's pyproject.toml with a [tool.mutmut] for one package and its tests.

    The shared settings come from the working tree's pyproject.toml."""
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    settings = {
        **base,
        "only_mutate": only_mutate,
        "pytest_add_cli_args": [*base.get("pytest_add_cli_args", []), *extra_pytest_args],
        "pytest_add_cli_args_test_selection": tests,
    }
    section = "[tool.mutmut]\n" + "".join(
        f"{key} = {toml_list(value) if isinstance(value, list) else json.dumps(value)}\n"
        for key, value in settings.items()
    )
    pattern = re.compile(r"^\[tool\.mutmut\]\n(?:(?!^\[).*\n?)*", flags=re.M)
    if pattern.search(snapshot_text):
        return pattern.sub(section + "\n", snapshot_text)
    return snapshot_text.rstrip("\n") + "\n\n" + section


def snapshot(work: Path, rev: str | None) -> None:
    """Copy the project into `work` at one moment: commit `rev`, or the working tree if None.

    Other people may be editing the working tree while a run takes its hours; a snapshot keeps
    the code under test and its tests consistent. This directory's own tests (the ones written
    to kill survivors) always come from the working tree."""
    if rev is not None:
        archive = subprocess.run(
            ["git", "archive", rev, *SNAPSHOT], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    else:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z", "--", *SNAPSHOT],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            if (ROOT / name).is_file():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, work / name)
    own = Path(__file__).resolve().parent
    shutil.copytree(
        own, work / own.relative_to(ROOT), dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )


def work_dir(package: str, only: list[str] | None) -> Path:
    """mutants/<package>, or mutants/<package>-<file stems> for a run restricted with --only, so
    that one file's results (and its survivors to re-run) stay while the next file runs."""
    if not only:
        return WORK / package
    stems = "-".join(re.sub(r"[^A-Za-z0-9_]+", "_", Path(glob).stem) for glob in only)
    return WORK / f"{package}-{stems}"


def prepare(
    package: str, only_mutate: list[str], tests: list[str], rev: str | None, work: Path
) -> Path:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    snapshot(work, rev)
    # PYTHONPATH names mutants/src: it must exist before Python starts, or the import system
    # caches it as "not a directory" and keeps loading the unmutated rowforge from the venv.
    (work / "mutants" / "src").mkdir(parents=True)
    pyproject = work / "pyproject.toml"
    pyproject.write_text(
        package_pyproject(
            pyproject.read_text(), only_mutate, tests, PYTEST_ARGS.get(package, [])
        )
    )
    return work


def failing_tests(work: Path, tests: list[str], env: dict[str, str]) -> list[str]:
    """Tests of the snapshot that fail on the unmutated code: mutmut needs a green baseline, and
    a test that already fails says nothing about a mutant, so these are deselected (and named)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *tests],
        cwd=work, env={**env, "PYTHONPATH": str(work / "src")}, capture_output=True, text=True,
    )
    failed = re.findall(r"^FAILED (\S+)", result.stdout, flags=re.M)
    if result.returncode not in (0, 1) or (result.returncode == 1 and not failed):
        print(result.stdout[-3000:], result.stderr[-3000:])
        raise SystemExit(f"the tests {' '.join(tests)} do not run on the unmutated code")
    return failed


def run_package(
    package: str,
    max_children: int,
    rev: str | None,
    only: list[str] | None,
    mutants: Sequence[str] = (),
) -> dict[str, int]:
    only_mutate, tests = PACKAGES[package]
    work = prepare(package, only or only_mutate, tests, rev, work_dir(package, only))
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(work / "mutants" / "src")}
    already_failing = failing_tests(work, tests, env)
    mutated = only or only_mutate
    wrapped = [
        test
        for module, broken in BROKEN_BY_TRAMPOLINES.items()
        if any(fnmatch.fnmatch(module, pattern) for pattern in mutated)
        for test in broken
    ]
    if already_failing:
        print("deselected, failing on the unmutated code:\n  " + "\n  ".join(already_failing))
    if wrapped:
        print("deselected, failing under mutmut's trampolines:\n  " + "\n  ".join(wrapped))
    if already_failing or wrapped:
        deselect = [
            arg for name in [*already_failing, *wrapped] for arg in ("--deselect", name)
        ]
        pyproject = work / "pyproject.toml"
        settings = tomllib.loads(pyproject.read_text())["tool"]["mutmut"]
        pyproject.write_text(
            package_pyproject(
                pyproject.read_text(), settings["only_mutate"], tests,
                extra_pytest_args=[*PYTEST_ARGS.get(package, []), *deselect],
            )
        )
        (work / "deselected.txt").write_text("\n".join([*already_failing, *wrapped]) + "\n")
    mutmut = [sys.executable, "-m", "mutmut"]
    print(f"== mutmut: {package} ({' '.join(only or only_mutate)}; tests: {' '.join(tests)})")
    code = subprocess.call(
        [*mutmut, "run", "--max-children", str(max_children), *mutants], cwd=work, env=env
    )
    if code != 0:
        raise SystemExit(f"mutmut run failed for {package} (exit {code})")
    subprocess.check_call([*mutmut, "export-cicd-stats"], cwd=work, env=env)
    stats: dict[str, int] = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    survivors = subprocess.run(
        [*mutmut, "results"], cwd=work, env=env, capture_output=True, text=True, check=True
    ).stdout
    survivors = "".join(
        line + "\n" for line in survivors.splitlines() if not line.endswith(": not checked")
    )
    (work / "survivors.txt").write_text(survivors)
    print(survivors)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=["storage", "statemachine", "scheduler"])
    parser.add_argument("--max-children", type=int, default=2, help="parallel workers (2 cores)")
    parser.add_argument(
        "--rev", help="test this commit (e.g. HEAD) instead of the working tree as it is now"
    )
    parser.add_argument("--only", nargs="*", help="glob(s) of files to mutate, e.g. src/x/y.py")
    parser.add_argument(
        "--mutants",
        nargs="*",
        default=[],
        help="run only the mutants whose names match these globs, e.g. the functions changed "
        "since a file's last pass: 'rowforge.scheduler.rowgroup.xǁRowGroupǁdrop_row__mutmut_*'",
    )
    args = parser.parse_args()
    summary = {}
    for package in args.packages:
        if package not in PACKAGES:
            parser.error(f"unknown package {package!r}: choose from {', '.join(PACKAGES)}")
        summary[package] = run_package(
            package, args.max_children, args.rev, args.only, args.mutants
        )
    print("== mutation scores")
    for package, s in summary.items():
        tested = s["killed"] + s["survived"] + s["timeout"] + s["suspicious"]
        score = 100 * (s["killed"] + s["timeout"]) / tested if tested else 0.0
        print(
            f"{package}: killed {s['killed']}, survived {s['survived']}, timeout {s['timeout']}, "
            f"suspicious {s['suspicious']}, no tests {s['no_tests']}, total {s['total']} "
            f"-> score {score:.1f}%"
        )


if __name__ == "__main__":
    main()
