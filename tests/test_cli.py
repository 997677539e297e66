"""The `rowforge` command line as a user meets it.

Exit codes: 0 success; 1 a failed run, or a partial one with `--on-partial raise`; 2 bad input.
An error is one paragraph on stderr, without a traceback unless `--debug` is given, in which case
the exception itself propagates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from rowforge.api import preview
from rowforge.config.dataset import load_config
from rowforge.errors import ConfigError, DatasetGenerationError
from rowforge.storage.metadata import read_metadata

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
seed: 3
models:
  - alias: writer
    mock: {latency_ms: [0, 2]}
columns:
  - {type: category, name: colour, values: [red, green, blue]}
  - {type: integer, name: size, low: 1, high: 9}
  - {type: expression, name: label, template: "{{ colour }}-{{ size }}"}
  - {type: llm_text, name: blurb, model: writer, prompt: "Describe a {{ label }} box."}
"""

UNKNOWN_COLUMN = GOOD.replace("{{ colour }}-{{ size }}", "{{ colour }}-{{ missing }}")

REFUSING = """\
models:
  - alias: writer
    mock: {refusal_rate: 1.0}
columns:
  - {type: category, name: colour, values: [red, green, blue]}
  - {type: llm_text, name: blurb, model: writer, prompt: "Describe a {{ colour }} box."}
"""

SOMETIMES_REFUSING = REFUSING.replace("refusal_rate: 1.0", "refusal_rate: 0.2").replace(
    "{type: category, name: colour, values: [red, green, blue]}",
    "{type: integer, name: colour, low: 0, high: 1000000}",
)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str | Path) -> Result:
    from rowforge.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args], env={"COLUMNS": "200"})


def assert_one_paragraph_without_traceback(result: Result) -> str:
    text = result.output.strip()
    assert "Traceback" not in result.output
    blank = [line for line in text.splitlines() if not line.strip()]
    assert not blank, f"expected one paragraph, got:\n{result.output}"
    return text


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path, "good.yaml", GOOD)


@pytest.fixture
def built(tmp_path: Path, good: Path) -> Path:
    output = tmp_path / "out"
    result = invoke("run", good, "-n", "30", "-o", output)
    assert result.exit_code == 0, result.output
    return output


# -- validate ----------------------------------------------------------------------------------


def test_validate_accepts_a_good_config_and_exits_zero(good: Path) -> None:
    result = invoke("validate", good)
    assert result.exit_code == 0
    assert result.output == f"OK: {good}: 4 columns, 1 models\n"


def test_validate_refuses_a_bad_config_with_exit_2_and_one_paragraph_naming_the_field(
    tmp_path: Path,
) -> None:
    bad = write(tmp_path, "bad.yaml", UNKNOWN_COLUMN)
    result = invoke("validate", bad)
    assert result.exit_code == 2
    assert assert_one_paragraph_without_traceback(result) == (
        f"rowforge validate: invalid input: {bad}: columns[2] 'label': refers to unknown "
        "column 'missing'; known: ['blurb', 'colour', 'label', 'size']"
    )
    assert result.stdout == "", "errors go to stderr"


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("broken.yaml", "columns: [unclosed\n", "cannot read config: "),
        ("absent.yaml", None, "cannot read config: [Errno 2] No such file or directory"),
        ("broken.json", "{", "cannot read config: Expecting property name"),
    ],
    ids=["yaml syntax", "missing file", "json syntax"],
)
def test_validate_refuses_an_unreadable_config_with_exit_2(
    tmp_path: Path, name: str, text: str | None, problem: str
) -> None:
    path = tmp_path / name if text is None else write(tmp_path, name, text)
    result = invoke("validate", path)
    assert result.exit_code == 2
    message = assert_one_paragraph_without_traceback(result)
    assert message.startswith(f"rowforge validate: invalid input: {path}: {problem}"), message


# -- preview -----------------------------------------------------------------------------------


def test_preview_prints_the_records_as_a_table_and_writes_nothing(
    tmp_path: Path, good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = invoke("preview", good, "-n", "5")
    assert result.exit_code == 0, result.output
    assert sorted(tmp_path.rglob("*")) == before, "preview must not write files"
    header = next(line for line in result.output.splitlines() if line.startswith("┃"))
    for column in ("#", "colour", "size", "label", "blurb"):
        assert column in header
    for label in preview(load_config(good), 5).dataset["label"]:
        assert label in result.output
    assert result.output.rstrip().endswith("completed: 5 records (nothing written)")


# -- run and check -----------------------------------------------------------------------------


def test_run_writes_metadata_and_parquet_and_exits_zero(tmp_path: Path, good: Path) -> None:
    output = tmp_path / "out"
    result = invoke("run", good, "-n", "30", "-o", output)
    assert result.exit_code == 0, result.output
    assert "rowforge run: completed: 30 of 30 records written" in result.output
    assert f"  parquet:  {output / 'parquet-files'}" in result.output
    metadata = read_metadata(output)
    assert metadata["outcome"] == "completed"
    assert metadata["actual_num_records"] == 30
    files = sorted((output / "parquet-files").glob("batch_*.parquet"))
    assert [f"parquet-files/{path.name}" for path in files] == metadata["file_paths"]
    frame = pd.read_parquet(output / "parquet-files")
    assert len(frame) == 30
    assert list(frame.columns) == ["colour", "size", "label", "blurb"]


def test_check_prints_ok_for_a_finished_build(built: Path) -> None:
    result = invoke("check", built)
    assert result.exit_code == 0
    assert result.output == f"OK: {built}\n"


def test_report_writes_one_html_file_into_the_output_or_where_asked(
    built: Path, tmp_path: Path
) -> None:
    result = invoke("report", built)
    assert result.exit_code == 0, result.output
    assert result.output == f"report: {built / 'report.html'}\n"
    assert (built / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    elsewhere = tmp_path / "r.html"
    assert invoke("report", built, "-o", elsewhere).exit_code == 0 and elsewhere.exists()


def test_run_with_report_writes_the_report_when_the_run_ends(tmp_path: Path, good: Path) -> None:
    output = tmp_path / "out"
    result = invoke("run", good, "-n", "10", "-o", output, "--report")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"report: {output / 'report.html'}")
    assert (output / "report.html").stat().st_size > 0
    assert invoke("check", output).exit_code == 0


def test_report_refuses_a_directory_that_is_not_an_output(tmp_path: Path) -> None:
    result = invoke("report", tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith("rowforge report: invalid input: ")


def test_check_reports_a_violation_for_a_directory_that_is_not_an_output(tmp_path: Path) -> None:
    result = invoke("check", tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("VIOLATION: ")


def test_on_partial_is_a_choice_and_a_wrong_value_is_refused_by_the_cli_with_exit_2(
    tmp_path: Path, good: Path
) -> None:
    assert "<warn|raise>" in invoke("run", "--help").output
    result = invoke("run", good, "-n", "5", "-o", tmp_path / "out", "--on-partial", "panic")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "Invalid value for '--on-partial'" in result.output
    assert "'panic' is not one of 'warn', 'raise'" in result.output
    assert not (tmp_path / "out").exists(), "refused before the run starts"


def test_a_run_whose_every_model_call_is_refused_exits_1_in_one_paragraph(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, "refusing.yaml", REFUSING)
    output = tmp_path / "out"
    result = invoke("run", config, "-n", "30", "-o", output)
    assert result.exit_code == 1
    message = assert_one_paragraph_without_traceback(result)
    assert message.startswith("rowforge run: ")
    assert "no records were written" in message or "early shutdown" in message, message
    assert "HTTP 400 simulated refusal" in message
    assert read_metadata(output)["outcome"] == "failed", "metadata says why before exiting"


def test_a_partial_run_exits_0_by_default_and_1_with_on_partial_raise(tmp_path: Path) -> None:
    config = write(tmp_path, "sometimes.yaml", SOMETIMES_REFUSING)
    warned = invoke("run", config, "-n", "30", "-o", tmp_path / "warn")
    assert warned.exit_code == 0, warned.output
    assert "rowforge run: partial: " in warned.output
    raised = invoke("run", config, "-n", "30", "-o", tmp_path / "raise", "--on-partial", "raise")
    assert raised.exit_code == 1
    text = assert_one_paragraph_without_traceback(raised)
    summary, error = text.index("rowforge run: partial: "), text.splitlines()[-1]
    assert summary < text.index(error)  # the display's summary, then the error
    assert error.startswith("rowforge run: partial dataset: target 30 records"), error
    assert read_metadata(tmp_path / "raise")["outcome"] == "partial"


def test_debug_lets_the_exception_of_a_failed_run_propagate(tmp_path: Path) -> None:
    config = write(tmp_path, "refusing.yaml", REFUSING)
    result = invoke("run", config, "-n", "30", "-o", tmp_path / "out", "--debug")
    assert result.exit_code == 1
    assert isinstance(result.exception, DatasetGenerationError)


def test_debug_lets_a_config_error_propagate(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", UNKNOWN_COLUMN)
    result = invoke("validate", bad, "--debug")
    assert isinstance(result.exception, ConfigError)


def test_debug_prints_the_traceback_from_a_real_process(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", UNKNOWN_COLUMN)
    command = [sys.executable, "-m", "rowforge.cli", "validate", str(bad)]
    quiet = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    loud = subprocess.run(
        [*command, "--debug"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert quiet.returncode == 2
    assert "Traceback" not in quiet.stderr
    assert loud.returncode != 0
    assert "Traceback (most recent call last)" in loud.stderr
    assert "rowforge.errors.ConfigError" in loud.stderr
    assert "refers to unknown column 'missing'" in loud.stderr


# -- resume ------------------------------------------------------------------------------------


def test_resume_of_a_finished_build_exits_zero_and_keeps_its_records(built: Path) -> None:
    before = pd.read_parquet(built / "parquet-files")
    result = invoke("resume", built)
    assert result.exit_code == 0, result.output
    assert "rowforge resume: completed: 30 of 30 records written" in result.output
    pd.testing.assert_frame_equal(pd.read_parquet(built / "parquet-files"), before)
    assert invoke("check", built).exit_code == 0


def test_resume_of_a_directory_that_is_not_a_rowforge_output_exits_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a build\n")
    result = invoke("resume", tmp_path)
    assert result.exit_code == 2
    assert assert_one_paragraph_without_traceback(result) == (
        f"rowforge resume: {tmp_path}: no metadata.json; not a rowforge output"
    )


# -- version and help --------------------------------------------------------------------------


def test_version_prints_the_installed_version_and_exits_zero() -> None:
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"rowforge {version('rowforge')}\n"
    assert result.output == "rowforge 0.1.0\n"


def command_names() -> list[str]:
    import typer.main

    from rowforge.cli import app

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_checked_below() -> None:
    assert {"run", "preview", "validate", "resume", "check", "diagrams", "demo", "report"} <= set(
        command_names()
    )


@pytest.mark.parametrize("command", ["", *command_names()])
def test_help_shows_boolean_flags_as_flags(command: str) -> None:
    """No `<bool>` after a flag as if it took a value, no `--no-x` twin of a plain flag."""
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--no-" not in result.output.replace("--no-success-budget-s", "")
    help_line = next(line for line in result.output.splitlines() if "--help" in line)
    assert help_line.split("--help")[1].split() == ["Show", "this", "message", "and", "exit.", "│"]


def test_the_flags_of_run_are_flags_that_take_no_value(tmp_path: Path, good: Path) -> None:
    for flag in ("--trace", "--overwrite", "--debug"):
        line = next(line for line in invoke("run", "--help").output.splitlines() if flag in line)
        assert "<" not in line, line
    result = invoke("run", good, "-n", "5", "-o", tmp_path / "out", "--trace", "--overwrite")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "traces.jsonl").is_file()


# -- hints: commands printed for the user to type -------------------------------------------


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def nothing_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds one empty directory; the working directory is `tmp_path/work`."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_a_hint_names_the_bare_program_when_the_running_one_is_on_path(
    tmp_path: Path, nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowforge.hints import runnable_command

    script = executable(tmp_path / "bin" / "rowforge")
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty-bin'}:{script.parent}")
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    assert runnable_command("preview", "cfg.yaml", "-n", "3") == "rowforge preview cfg.yaml -n 3"


def test_a_hint_names_the_path_run_when_the_program_is_not_on_path(
    nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowforge.hints import runnable_command

    script = executable(nothing_on_path / ".venv" / "bin" / "rowforge")
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    assert runnable_command("preview", "cfg.yaml") == ".venv/bin/rowforge preview cfg.yaml"
    monkeypatch.setattr(sys, "argv", [".venv/bin/rowforge", "demo"])
    assert runnable_command("resume", "out") == ".venv/bin/rowforge resume out"


def test_a_hint_names_a_script_in_the_working_directory_with_dot_slash(
    nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowforge.hints import runnable_command

    executable(nothing_on_path / "rowforge")
    monkeypatch.setattr(sys, "argv", ["rowforge"])
    assert runnable_command("check", "out") == "./rowforge check out"


def test_a_hint_names_the_absolute_path_of_a_script_outside_the_working_directory(
    tmp_path: Path, nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowforge.hints import runnable_command

    script = executable(tmp_path / "elsewhere" / "bin" / "rowforge")
    monkeypatch.setattr(sys, "argv", [str(script)])
    assert runnable_command("resume", "out") == f"{script} resume out"


def test_a_hint_names_the_running_script_when_another_rowforge_is_on_path(
    tmp_path: Path, nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowforge.hints import runnable_command

    other = executable(tmp_path / "other" / "rowforge")
    monkeypatch.setenv("PATH", str(other.parent))
    running = executable(nothing_on_path / "venv" / "bin" / "rowforge")
    monkeypatch.setattr(sys, "argv", [str(running)])
    assert runnable_command("resume", "out") == "venv/bin/rowforge resume out"


def test_a_hint_run_as_python_m_names_the_script_next_to_the_interpreter_or_python_m(
    tmp_path: Path, nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowforge.hints import runnable_command

    python = executable(nothing_on_path / "env" / "bin" / "python")
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setattr(sys, "argv", [str(ROOT / "src" / "rowforge" / "cli.py"), "demo"])
    assert runnable_command("check", "out") == "env/bin/python -m rowforge.cli check out"
    executable(python.parent / "rowforge")
    assert runnable_command("check", "out") == "env/bin/rowforge check out"
    monkeypatch.setenv("PATH", str(python.parent))
    assert runnable_command("check", "out") == "rowforge check out"


def test_a_hint_quotes_arguments_for_the_shell(
    nothing_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowforge.hints import runnable_command

    executable(nothing_on_path / "rowforge")
    monkeypatch.setattr(sys, "argv", ["./rowforge"])
    assert runnable_command("resume", Path("my out")) == "./rowforge resume 'my out'"


def without_rowforge_on_path() -> str:
    """The current PATH less every directory holding a `rowforge` (such as .venv/bin)."""
    import os

    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    return os.pathsep.join(d for d in kept if not (Path(d) / "rowforge").exists())


def this_rowforge_from_root() -> str:
    """This environment's rowforge script as typed in ROOT: `.venv/bin/rowforge` in a checkout
    with its venv inside (as `make` creates it), else its absolute path."""
    script = Path(sys.executable).parent / "rowforge"
    assert script.is_file(), "the rowforge script of this environment"
    return str(script.relative_to(ROOT)) if ROOT in script.parents else str(script)


def test_the_demo_hint_runs_as_printed_when_rowforge_is_not_on_path(tmp_path: Path) -> None:
    """`make demo` runs .venv/bin/rowforge with .venv/bin not on PATH: the printed
    `try: ... preview ...` must work when pasted into a shell in the same directory."""
    import os
    import shlex

    script = this_rowforge_from_root()
    env = {**os.environ, "PATH": without_rowforge_on_path()}
    env.pop("PYTHONPATH", None)
    demo = subprocess.run(
        [script, "demo", "-n", "20", "-o", str(tmp_path / "demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    hint = demo.stdout.split("(try: ", 1)[1].split(")\n", 1)[0]
    assert shlex.split(hint)[:2] == [script, "preview"], hint
    pasted = subprocess.run(
        hint, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    assert "completed: 3 records (nothing written)" in pasted.stdout


def test_the_usage_hint_of_a_wrong_command_line_runs_as_printed(tmp_path: Path) -> None:
    """Typer's "Try '... --help' for help." names the program as it was run."""
    import os
    import re

    script = this_rowforge_from_root()
    env = {**os.environ, "PATH": without_rowforge_on_path()}
    env.pop("PYTHONPATH", None)
    wrong = subprocess.run(
        [script, "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2
    assert f"Usage: {script} run [OPTIONS]" in wrong.stderr, wrong.stderr
    hint = re.search(r"Try '([^']+)' for help", wrong.stderr)
    assert hint is not None, wrong.stderr
    assert hint.group(1) == f"{script} run --help"
    pasted = subprocess.run(
        hint.group(1), shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "Generate a dataset" in pasted.stdout


# -- diagrams ----------------------------------------------------------------------------------


def test_diagrams_writes_into_the_working_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rowforge

    package = Path(rowforge.__file__).parent
    before = sorted(package.rglob("*.md"))
    monkeypatch.chdir(tmp_path)
    result = invoke("diagrams")
    assert result.exit_code == 0, result.output
    assert result.output == "wrote state-machines.md\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state-machines.md"]
    assert sorted(package.rglob("*.md")) == before, "nothing written into the package"
    assert invoke("diagrams", "--check").output == "state-machines.md matches specs/\n"
    named = invoke("diagrams", tmp_path / "docs" / "m.md")
    assert named.exit_code == 0
    assert (tmp_path / "docs" / "m.md").read_text() == (tmp_path / "state-machines.md").read_text()


def test_the_installed_script_imports_a_configs_functions_from_the_working_directory(
    tmp_path: Path,
) -> None:
    """`module:function` in a config names a module next to where rowforge runs, as with
    `python -m`: the installed script alone would only search its own directory."""
    (tmp_path / "my_checks.py").write_text("def double(row):\n    return row['n'] * 2\n")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "columns:\n"
        "  - {type: integer, name: n, low: 1, high: 9}\n"
        "  - {type: custom, name: twice, function: 'my_checks:double', depends_on: [n]}\n"
    )
    script = Path(sys.executable).parent / "rowforge"
    ran = subprocess.run(
        [str(script), "run", "cfg.yaml", "-n", "5", "-o", "out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert (frame["twice"] == frame["n"] * 2).all()
