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
    header = next(line for line in result.output.splitlines() if "colour" in line)
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
    assert result.output.startswith("completed: 30 of 30 records\n")
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


def test_check_reports_a_violation_for_a_directory_that_is_not_an_output(tmp_path: Path) -> None:
    result = invoke("check", tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("VIOLATION: ")


def test_run_with_an_invalid_option_value_exits_2(tmp_path: Path, good: Path) -> None:
    result = invoke("run", good, "-n", "5", "-o", tmp_path / "out", "--on-partial", "panic")
    assert result.exit_code == 2
    assert assert_one_paragraph_without_traceback(result) == (
        "rowforge run: invalid input: RunConfig.on_partial must be one of ('warn', 'raise'), "
        "got 'panic'"
    )


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
    assert warned.stdout.startswith("partial: ")
    raised = invoke("run", config, "-n", "30", "-o", tmp_path / "raise", "--on-partial", "raise")
    assert raised.exit_code == 1
    message = assert_one_paragraph_without_traceback(raised)
    assert message.startswith("rowforge run: partial dataset: target 30 records"), message
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
    assert result.output == f"completed: 30 records in {built}\n"
    pd.testing.assert_frame_equal(pd.read_parquet(built / "parquet-files"), before)
    assert invoke("check", built).exit_code == 0


def test_resume_of_a_directory_that_is_not_a_rowforge_output_exits_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a build\n")
    result = invoke("resume", tmp_path)
    assert result.exit_code == 2
    assert assert_one_paragraph_without_traceback(result) == (
        f"rowforge resume: {tmp_path}: no metadata.json; not a rowforge output"
    )
