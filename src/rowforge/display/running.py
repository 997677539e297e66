"""One run under one `ProgressDisplay`, ending with its summary however it ends.

`run`, `resume`, `preview` and `demo` all run this way, so they show the same view and the same
summary: a finished run (completed or partial) gets its outcome and paths; a run that raised
with its result attached (failed, early shutdown, partial with `on_partial="raise"`) gets the
summary of what it did before the error is reported; Ctrl-C gets the command that resumes the
build. The summary is the display's last word; the caller reports errors after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rowforge.display.progress_display import ProgressDisplay
from rowforge.errors import RowforgeError
from rowforge.hints import runnable_command
from rowforge.progress import ProgressSnapshot
from rowforge.storage.location import name_inside

T = TypeVar("T")


def run_with_display(
    label: str,
    work: Callable[[Callable[[ProgressSnapshot], None]], T],
    outcome_of: Callable[[T], tuple[str, int]],
    *,
    target: int | None = None,
    output: Path | str | None = None,
    display: ProgressDisplay | None = None,
) -> T:
    """`work(on_progress)` with a display showing its snapshots, then the summary.

    `outcome_of(result)` gives (outcome, records written). `output` (a build's directory) adds
    the paths to the summary and, on Ctrl-C, the resume command; KeyboardInterrupt is re-raised
    after the summary, as are errors. Records written before this run (a resume's kept row
    groups: `written` beyond what the final snapshot saw this run write) stay out of the rate.
    """
    display = display or ProgressDisplay(label=label)
    paths: dict[str, Any] = {}
    if output is not None:
        paths = {
            "parquet_dir": name_inside(output, "parquet-files"),
            "metadata_path": name_inside(output, "metadata.json"),
        }
    try:
        with display:
            result = work(display.update)
    except KeyboardInterrupt:
        resume = runnable_command("resume", os.fspath(output)) if output is not None else None
        display.summary("interrupted", records_target=target, resume_command=resume, **paths)
        raise
    except RowforgeError as error:
        failed = getattr(error, "result", None)
        if failed is not None:
            display.summary(
                failed.outcome,
                records_written=failed.actual_records,
                records_target=target,
                **paths,
            )
        raise
    outcome, written = outcome_of(result)
    latest = display.latest
    kept = max(0, written - latest.records_written) if latest is not None else 0
    display.summary(
        outcome, records_written=written, records_target=target, records_kept=kept, **paths
    )
    return result
