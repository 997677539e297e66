"""Claiming an output directory for a new build: never mix two datasets in one directory.

A directory that already holds files is refused: rows left by an earlier build would be read
back together with the new ones (`pd.read_parquet(dir)` reads every file), while metadata.json
would describe only the new run. The user says what to do instead:

- `overwrite=True` (`--overwrite`): the earlier rowforge output is moved aside by one rename
  (so nothing of it remains among the new files, even if the process dies right after) and
  then deleted, before anything new is written;
- `resume`: finish the earlier build instead of starting another.

A non-empty directory that is not a rowforge output (no metadata.json) is refused even with
`overwrite`: rowforge deletes only what it wrote.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from rowforge.errors import ConfigError
from rowforge.storage.metadata import METADATA_FILE


def claim_output_dir(output: Path, *, overwrite: bool = False) -> None:
    """Make `output` an empty directory for a new build, or raise `ConfigError` saying why not.

    Returns only when `output` exists and is empty.
    """
    if output.exists() and not output.is_dir():
        raise ConfigError(f"output directory {str(output)!r} is a file, not a directory")
    entries = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if entries:
        is_output = METADATA_FILE in entries
        if not overwrite:
            raise ConfigError(_refusal(output, entries, is_output))
        if not is_output:
            raise ConfigError(
                f"output directory {str(output)!r} is not empty and is not a rowforge output "
                f"(it holds {_listing(entries)}); --overwrite only replaces an earlier rowforge "
                "output. Choose another directory or empty this one"
            )
        _remove_aside(output)
    output.mkdir(parents=True, exist_ok=True)


def _refusal(output: Path, entries: list[str], is_output: bool) -> str:
    if is_output:
        return (
            f"output directory {str(output)!r} already holds a rowforge output; a new build "
            "would mix its rows with the earlier ones. Pass --overwrite (overwrite=True) to "
            f"replace it, or run 'rowforge resume {output}' to finish the earlier build"
        )
    return (
        f"output directory {str(output)!r} is not empty (it holds {_listing(entries)}); "
        "choose an empty or new directory"
    )


def _listing(entries: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(name) for name in entries[:limit])
    more = len(entries) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _remove_aside(output: Path) -> None:
    """Rename the old output to a hidden sibling (one atomic step), then delete it."""
    resolved = output.resolve()
    aside = resolved.with_name(f".{resolved.name}.replaced-{uuid.uuid4().hex[:8]}")
    os.replace(resolved, aside)
    shutil.rmtree(aside)
