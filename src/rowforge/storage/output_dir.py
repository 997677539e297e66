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

The new output appears whole: its first files (config, recipe, a first metadata.json) are
written into a hidden sibling directory that is then renamed to the output's name, so a build
killed at any moment leaves either no output at all or one that `resume` and `--overwrite`
recognise.

A remote output (`s3://...`, see `storage.workspace`) follows the same rules, with what object
stores allow: `overwrite` deletes the earlier output's files before anything new is written
(there is no rename to move it aside in one step), and the first files are uploaded
metadata.json last.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from rowforge.errors import ConfigError
from rowforge.hints import runnable_command
from rowforge.storage.location import OutputFiles
from rowforge.storage.metadata import METADATA_FILE
from rowforge.storage.workspace import Workspace


def claim_output(
    space: Workspace, *, overwrite: bool = False, prepare: Callable[[Path], None] | None = None
) -> None:
    """`claim_output_dir` for a workspace: its output, local or remote, becomes a new build's,
    holding what `prepare` wrote (published, for a remote output)."""
    if not space.remote:
        claim_output_dir(space.directory, overwrite=overwrite, prepare=prepare)
        return
    _claim_remote(space.files, overwrite)
    space.directory.mkdir()
    if prepare is not None:
        prepare(space.directory)
    space.publish()


def _claim_remote(files: OutputFiles, overwrite: bool) -> None:
    entries = files.listing(recursive=True)
    if not entries:
        return
    is_output = METADATA_FILE in entries
    if not overwrite:
        raise ConfigError(_refusal(files.uri, entries, is_output))
    if not is_output:
        raise ConfigError(_not_an_output(files.uri, entries))
    files.delete_everything()


def claim_output_dir(
    output: Path, *, overwrite: bool = False, prepare: Callable[[Path], None] | None = None
) -> None:
    """Make `output` a new build's directory, or raise `ConfigError` saying why not.

    `prepare(directory)` writes the build's first files; they appear in `output` all at once
    (metadata.json last, so a directory with it is a rowforge output). Returns when `output`
    holds exactly what `prepare` wrote.
    """
    if output.exists() and not output.is_dir():
        raise ConfigError(f"output directory {str(output)!r} is a file, not a directory")
    entries = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if entries:
        is_output = METADATA_FILE in entries
        if not overwrite:
            raise ConfigError(_refusal(output, entries, is_output))
        if not is_output:
            raise ConfigError(_not_an_output(str(output), entries))
    resolved = output.resolve()
    resolved.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(resolved, "new")
    staging.mkdir()
    try:
        if prepare is not None:
            prepare(staging)
        aside = _sibling(resolved, "replaced") if entries else None
        if aside is not None:
            os.replace(resolved, aside)  # one step: the old output is gone from view
        _move_into_place(staging, resolved)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside)


def _not_an_output(output: str, entries: list[str]) -> str:
    return (
        f"output directory {output!r} is not empty and is not a rowforge output (it holds "
        f"{_listing(entries)}); --overwrite only replaces an earlier rowforge output. Choose "
        "another directory or empty this one"
    )


def _refusal(output: Path | str, entries: list[str], is_output: bool) -> str:
    if is_output:
        return (
            f"output directory {str(output)!r} already holds a rowforge output; a new build "
            "would mix its rows with the earlier ones. Pass --overwrite (overwrite=True) to "
            f"replace it, or run '{runnable_command('resume', output)}' to finish the earlier "
            "build"
        )
    return (
        f"output directory {str(output)!r} is not empty (it holds {_listing(entries)}); "
        "choose an empty or new directory"
    )


def _listing(entries: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(name) for name in entries[:limit])
    more = len(entries) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _sibling(output: Path, purpose: str) -> Path:
    """A hidden, unique directory name beside `output` (same file system: renames are atomic)."""
    return output.with_name(f".{output.name}.{purpose}-{uuid.uuid4().hex[:8]}")


def _move_into_place(staging: Path, output: Path) -> None:
    """Rename `staging` to `output` (which is absent or an empty directory). Where a directory
    cannot be renamed over (a mount point, the current directory), move its entries one by one,
    metadata.json last."""
    try:
        os.replace(staging, output)
        return
    except OSError:
        if not output.is_dir() or any(output.iterdir()):
            raise
    names = sorted(p.name for p in staging.iterdir())
    for name in sorted(names, key=lambda name: name == METADATA_FILE):
        os.replace(staging / name, output / name)
    staging.rmdir()
