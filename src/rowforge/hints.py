"""Commands printed for the user to type next ("try: rowforge preview ...", a resume hint).

A hint must work when pasted. After `make demo` the `rowforge` script lives in `.venv/bin/`, which
is not on PATH, so a bare `rowforge ...` would fail with "command not found". `runnable_command`
names the program the way the running process was started when `rowforge` on PATH is not that
program.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

PROGRAM = "rowforge"


def program() -> str:
    """How to invoke the running `rowforge` from the working directory: the bare name when
    `rowforge` on PATH is the script now running, else the path of that script (relative to the
    working directory when it lies below it, else absolute). Run as `python -m rowforge.cli`, the
    script is the `rowforge` next to the interpreter (a virtualenv's bin/) if there is one; with
    no script at all, the bare name when one is on PATH, else `<python> -m rowforge.cli`."""
    script = _running_script()
    on_path = shutil.which(PROGRAM)
    if script is None:
        if on_path is not None:
            return PROGRAM
        return f"{_shown(Path(sys.executable))} -m rowforge.cli"
    if on_path is not None and _same_file(Path(on_path), script):
        return PROGRAM
    return _shown(script)


def runnable_command(*args: str | os.PathLike[str]) -> str:
    """A shell command line running `rowforge` with `args`, runnable as printed from the current
    working directory: `runnable_command("preview", path, "-n", "3")`. Arguments are quoted for
    a POSIX shell where needed."""
    return " ".join([program(), *(shlex.quote(os.fspath(arg)) for arg in args)])


def _running_script() -> Path | None:
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == PROGRAM and argv0.is_file():
        return argv0
    sibling = Path(sys.executable).parent / PROGRAM
    return sibling if sibling.is_file() else None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def _shown(path: Path) -> str:
    """`path` as a command word: relative to the working directory (`./x`, `.venv/bin/x`) when it
    lies below it, else absolute; quoted for the shell where needed."""
    absolute = Path(os.path.abspath(path))
    try:
        relative = absolute.relative_to(Path.cwd())
    except ValueError:
        text = str(absolute)
    else:
        text = str(relative) if len(relative.parts) > 1 else f"./{relative}"
    return shlex.quote(text)
