"""Survivors of `make mutants` in the diagram generator (`make diagrams`), killed.

What the command prints, where it writes, and its exit code with and without `--check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rowforge.hints import runnable_command
from rowforge.statemachine import SPECS
from rowforge.statemachine.diagrams import (
    DEFAULT_OUTPUT,
    is_current,
    main,
    render_document,
    render_machine,
    write_document,
)
from rowforge.statemachine.spec import parse_spec

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "state-machines.md"


def test_the_default_output_is_in_the_working_directory() -> None:
    assert Path("state-machines.md") == DEFAULT_OUTPUT


def test_writing_creates_missing_directories_and_returns_the_path(tmp_path: Path) -> None:
    output = tmp_path / "new" / "docs" / "machines.md"
    assert write_document(output) == output
    assert output.read_text(encoding="utf-8") == render_document(SPECS)
    assert is_current(output)


def test_writing_replaces_an_existing_document(tmp_path: Path) -> None:
    output = tmp_path / "machines.md"
    output.write_text("old\n", encoding="utf-8")
    write_document(output)
    assert output.read_text(encoding="utf-8") == render_document(SPECS)


def test_a_missing_or_different_document_is_not_current(tmp_path: Path) -> None:
    assert not is_current(tmp_path / "absent.md")
    assert not is_current(tmp_path)  # a directory, not a file
    stale = tmp_path / "stale.md"
    stale.write_text(render_document(SPECS) + "\n", encoding="utf-8")
    assert not is_current(stale)


def test_the_committed_document_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_current(COMMITTED)
    monkeypatch.chdir(COMMITTED.parent)
    assert is_current()
    assert is_current(DEFAULT_OUTPUT)


def test_the_command_writes_the_named_file_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "machines.md"
    assert main([str(output)]) == 0
    assert capsys.readouterr().out == f"wrote {output}\n"
    assert is_current(output)


def test_check_passes_on_a_current_file_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "machines.md"
    write_document(output)
    assert main([str(output), "--check"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (f"{output} matches specs/\n", "")
    assert output.read_text(encoding="utf-8") == render_document(SPECS)


def test_check_fails_on_a_stale_file_without_touching_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "machines.md"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    again = runnable_command("diagrams", stale)
    assert captured.err == f"{stale} is stale: run '{again}' to write it again\n"
    assert stale.read_text(encoding="utf-8") == "old\n"


def test_check_without_a_path_checks_the_document_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(COMMITTED.parent)
    assert main(["--check"]) == 0
    assert capsys.readouterr().out == f"{DEFAULT_OUTPUT} matches specs/\n"


def test_the_command_reads_its_arguments_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "machines.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["diagrams", "--check", str(stale)])
    assert main() == 1
    monkeypatch.setattr(sys, "argv", ["diagrams", str(stale)])
    assert main() == 0
    assert capsys.readouterr().out.endswith(f"wrote {stale}\n")
    assert is_current(stale)


def test_a_pipe_in_a_description_is_escaped_in_the_tables() -> None:
    raw = {
        "name": "door",
        "description": "A door.",
        "initial": "closed",
        "terminal": ["gone"],
        "states": [
            {"name": "closed", "description": "Shut | locked."},
            {"name": "gone", "description": "Removed."},
        ],
        "guards": {"free": {"description": "Nothing | nobody in the way.", "invariant": "INV-1"}},
        "transitions": [
            {
                "trigger": "remove",
                "source": "closed",
                "dest": "gone",
                "conditions": ["free"],
                "description": "Take it | away.",
            }
        ],
    }
    text = render_machine(parse_spec(raw, "specs/door.yaml"))
    assert "| `closed` | initial | Shut \\| locked. |" in text
    assert "| `free` | INV-1 | Nothing \\| nobody in the way. |" in text
    assert "| `remove` | `closed` | `gone` | free | Take it \\| away. |" in text


def test_the_document_is_written_and_checked_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """Spec text may hold any character; the document is UTF-8 even under an ASCII locale (with
    Python's UTF-8 mode and C-locale coercion off, in a fresh process that inherits PYTHONPATH and
    MUTANT_UNDER_TEST)."""
    output = tmp_path / "machines.md"
    code = (
        "import sys\nfrom pathlib import Path\nimport attrs\n"
        "from rowforge.statemachine import diagrams\n"
        "cell = attrs.evolve(diagrams.SPECS['cell'], description='Ein Wert \\u2014 einmal.')\n"
        "diagrams.SPECS = {'cell': cell}\n"
        "output = diagrams.write_document(Path(sys.argv[1]))\n"
        "print(diagrams.is_current(output))"
    )
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(output)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True\n"
    assert "Ein Wert — einmal." in output.read_text(encoding="utf-8")
    # The same calls in this process, so that mutmut (which maps tests to the functions they call
    # in-process) runs this test for their mutants; here they must see a stale document.
    assert not is_current(output)
    assert is_current(write_document(output))
