"""Python code linted by ruff, scored as data-designer's `PythonValidator` scores it.

One ruff process per batch: the batch's code is written to a fresh temporary directory, one
file per text, and `ruff check --select E,F6,F7,F8,SIM,PLC,PLE,PLR,PLW --output-format=json`
runs over the directory (started with `asyncio.create_subprocess_exec`, so the event loop keeps
running other row groups meanwhile; writing and removing the files runs in a thread). ruff runs
`--isolated` and `--no-cache`: the user's own ruff configuration cannot change the verdict and
no cache directory is left behind.

Each diagnostic becomes a message `{type, symbol, line, column, message}` whose `type` is
pylint's category, from the code's letters (E, SIM, PLR: refactor; F, PLE: error; PLC:
convention; PLW and anything else: warning; a syntax error: fatal). Per text, as data-designer
computes them:

- `python_linter_messages`: sorted by category (fatal, error, warning, convention, refactor),
  then line;
- `python_linter_severity`: the first message's category, "none" without messages;
- `is_valid`: no message, or the first one is a warning, convention or refactor;
- `python_linter_score`: pylint's evaluation, 0 with a fatal message, else
  `max(0, 10 - (5 * errors + warnings + refactors + conventions) / statements * 10)`, where
  statements counts the `ast` statements (at least 1).

ruff is the `validation` extra; `ruff_binary` finds it when the column is compiled.
"""

from __future__ import annotations

import ast
import asyncio
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

SELECT = "E,F6,F7,F8,SIM,PLC,PLE,PLR,PLW"
#: pylint's categories, most severe first (the order messages are sorted in).
CATEGORIES = ("fatal", "error", "warning", "convention", "refactor")
VALID_SEVERITIES = frozenset({"none", "warning", "convention", "refactor"})
#: A code's letters -> its category (data-designer's `TYPE_FROM_SYMBOL`); others are warnings.
CATEGORY_OF = {
    "E": "refactor",
    "F": "error",
    "SIM": "refactor",
    "PLC": "convention",
    "PLE": "error",
    "PLR": "refactor",
    "PLW": "warning",
}
SYNTAX_ERROR_CODES = frozenset({"invalid-syntax", "E999", "SyntaxError"})

MESSAGE_TYPE = pa.struct(
    [
        pa.field("type", pa.string()),
        pa.field("symbol", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("column", pa.int64()),
        pa.field("message", pa.string()),
    ]
)
#: The Arrow type of one text's output.
PYTHON_OUTPUT_TYPE = pa.struct(
    [
        pa.field("is_valid", pa.bool_()),
        pa.field("python_linter_score", pa.float64()),
        pa.field("python_linter_severity", pa.string()),
        pa.field("python_linter_messages", pa.list_(MESSAGE_TYPE)),
    ]
)


def ruff_binary() -> str:
    """The path of the ruff executable; ImportError or FileNotFoundError when it is missing."""
    from ruff.__main__ import find_ruff_bin

    return str(find_ruff_bin())


async def lint_python(ruff: str, texts: list[str]) -> list[dict[str, Any]]:
    """One output per text (see the module docstring), from one ruff process."""
    directory, statements = await asyncio.to_thread(_write_files, texts)
    try:
        diagnostics = await _run_ruff(ruff, directory)
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)
    messages: list[list[dict[str, Any]]] = [[] for _ in texts]
    for diagnostic in diagnostics:
        messages[_file_index(diagnostic["filename"], len(texts))].append(_message(diagnostic))
    return [_output(found, count) for found, count in zip(messages, statements, strict=True)]


def _write_files(texts: list[str]) -> tuple[str, list[int]]:
    """A new directory holding `row_<i>.py` per text, and each text's statement count."""
    directory = tempfile.mkdtemp(prefix="rowforge-ruff-")
    for index, text in enumerate(texts):
        Path(directory, f"row_{index}.py").write_text(text, encoding="utf-8")
    return directory, [_statements(text) for text in texts]


def _statements(text: str) -> int:
    """How many statements the code has; 0 when it does not parse (data-designer's count)."""
    try:
        return sum(isinstance(node, ast.stmt) for node in ast.walk(ast.parse(text)))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return 0


async def _run_ruff(ruff: str, directory: str) -> list[dict[str, Any]]:
    command = [ruff, "check", "--isolated", "--no-cache", "--select", SELECT]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--output-format=json",
        directory,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await process.communicate()
    except BaseException:  # cancelled: the process goes with the step, never left running
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode not in (0, 1):  # 1: violations found; anything else: ruff failed
        detail = stderr.decode("utf-8", "replace").strip()[:500]
        raise RuntimeError(f"ruff exited with status {process.returncode}: {detail}")
    try:
        diagnostics = json.loads(stdout)
    except ValueError as error:
        raise RuntimeError(f"ruff's output is not JSON: {error}") from None
    if not isinstance(diagnostics, list):
        raise RuntimeError(f"ruff's output is a {type(diagnostics).__name__}, not a list")
    return diagnostics


def _file_index(filename: str, count: int) -> int:
    stem = Path(filename).stem
    index = int(stem.removeprefix("row_")) if stem.startswith("row_") else -1
    if not 0 <= index < count:
        raise RuntimeError(f"ruff reported a file it was not given: {filename!r}")
    return index


def _message(diagnostic: dict[str, Any]) -> dict[str, Any]:
    code = diagnostic.get("code")
    if code is None or code in SYNTAX_ERROR_CODES:
        category = "fatal"
    else:
        category = CATEGORY_OF.get("".join(c for c in code if c.isalpha()), "warning")
    location = diagnostic["location"]
    return {
        "type": category,
        "symbol": str(code),
        "line": int(location["row"]),
        "column": int(location["column"]),
        "message": str(diagnostic["message"]),
    }


def _output(messages: list[dict[str, Any]], statements: int) -> dict[str, Any]:
    messages = sorted(messages, key=lambda m: (CATEGORIES.index(m["type"]), m["line"]))
    severity = messages[0]["type"] if messages else "none"
    return {
        "is_valid": severity in VALID_SEVERITIES,
        "python_linter_score": score(Counter(m["type"] for m in messages), statements),
        "python_linter_severity": severity,
        "python_linter_messages": messages,
    }


def score(counts: Counter[str], statements: int) -> float:
    """pylint's evaluation, as data-designer computes it."""
    if counts["fatal"]:
        return 0.0
    weighted = 5 * counts["error"] + counts["warning"] + counts["refactor"] + counts["convention"]
    return max(0.0, 10.0 - weighted / max(1, statements) * 10)
