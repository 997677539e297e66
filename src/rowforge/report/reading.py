"""Reading an output directory for the run report: metadata.json whole, the logs line by line.

metadata.json is small (one line per row group) and is read whole. events.jsonl and
traces.jsonl grow with the run (a traced run of 10^7 rows writes several events per cell and one
trace per attempt), so they are streamed once each and reduced to summaries whose size does not
grow with the run:

- `EventSummary`: when the run started and ended, the records written over time (one point per
  written row group, thinned to at most `max_points` by dropping every other point when full),
  and the state changes of at most `max_row_groups` row groups (every k-th index, k chosen from
  the planned row-group count, so the sample spreads over the whole run);
- `TraceSummary`: attempts counted by step and outcome, errors counted by text (at most
  `max_errors` distinct texts, the rest lumped together), and a uniform random sample of at most
  `max_attempts` attempts for the timeline (reservoir sampling, seeded: the same directory gives
  the same page).

A line that does not parse (a log cut by a crash mid-line) is counted and skipped, so the report
of a killed run still shows what was recorded.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from rowforge.errors import ConfigError, RowforgeError
from rowforge.storage.metadata import METADATA_FILE, read_metadata

EVENTS_FILE = "events.jsonl"
TRACES_FILE = "traces.jsonl"
ROW_GROUP_TERMINAL = ("drained", "dropped", "failed", "cancelled")
OTHER_ERRORS = "(other errors)"


def read_output_metadata(output_dir: Path) -> dict[str, Any]:
    """metadata.json of `output_dir`, or `ConfigError` naming the path when the directory is
    not a rowforge output. Like `claim_output_dir`, a directory is an output when it holds
    metadata.json (`read_metadata` also refuses an unreadable or foreign-version document)."""
    if not output_dir.is_dir():
        what = "does not exist" if not output_dir.exists() else "is not a directory"
        raise ConfigError(f"{str(output_dir)!r} {what}; expected a rowforge output directory")
    if not (output_dir / METADATA_FILE).is_file():
        raise ConfigError(
            f"{str(output_dir)!r} is not a rowforge output: it has no {METADATA_FILE}"
        )
    try:
        return read_metadata(output_dir)
    except RowforgeError as error:
        raise ConfigError(
            f"{str(output_dir)!r} is not a readable rowforge output: {error}"
        ) from None


def _json_lines(path: Path, counter: list[int], wanted: tuple[str, ...] = ()) -> Iterator[Any]:
    """The parsed lines of `path` one at a time. With `wanted`, a line containing none of those
    substrings is skipped unparsed (cheap filtering of a traced run's many worker and cell
    events); the caller still checks what it parsed. Undecodable lines add one to `counter[0]`."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            if wanted and not any(token in line for token in wanted):
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                counter[0] += 1


@attrs.define
class RowGroupHistory:
    """The transitions of one row group: (time, state entered), in log order."""

    ident: int
    states: list[tuple[float, str]] = attrs.field(factory=list)


@attrs.define
class EventSummary:
    """What the report needs from events.jsonl, bounded whatever the run's length."""

    run_start: float | None = None
    run_end: float | None = None
    run_state: str | None = None
    #: (time, records written so far), one per written row group, thinned to `max_points`.
    written: list[tuple[float, int]] = attrs.field(factory=list)
    records_written: int = 0
    terminal: Counter[str] = attrs.field(factory=Counter)
    groups: dict[int, RowGroupHistory] = attrs.field(factory=dict)
    group_stride: int = 1
    group_count: int = 0
    unreadable_lines: int = 0
    last_time: float | None = None


def read_events(
    path: Path, planned_groups: int, *, max_points: int = 4000, max_row_groups: int = 400
) -> EventSummary:
    """Stream events.jsonl into an `EventSummary` (run and row-group events only)."""
    summary = EventSummary()
    stride = max(1, math.ceil(planned_groups / max_row_groups))
    summary.group_stride = stride
    counter = [0]
    started: set[int] = set()
    first: float | None = None  # the earliest event: the origin if the run's start is missing
    # Event.to_json writes `"machine": "run"`; the compact spelling is accepted too.
    wanted = (
        '"machine": "row_group"',
        '"machine": "run"',
        '"machine":"row_group"',
        '"machine":"run"',
    )
    for raw in _json_lines(path, counter, wanted):
        if not isinstance(raw, dict):
            counter[0] += 1
            continue
        machine, dest, when = raw.get("machine"), raw.get("dest"), raw.get("time")
        if not isinstance(when, int | float) or not isinstance(dest, str):
            continue
        when = float(when)
        first = when if first is None else min(first, when)
        if machine == "run":
            if summary.run_start is None:
                summary.run_start = when
            summary.run_state = dest
            summary.run_end = when
        elif machine == "row_group":
            ident = raw.get("id")
            if not isinstance(ident, int):
                continue
            summary.last_time = when if summary.last_time is None else max(summary.last_time, when)
            started.add(ident)
            if dest in ROW_GROUP_TERMINAL:
                summary.terminal[dest] += 1
                if dest == "drained":
                    rows = (raw.get("details") or {}).get("rows")
                    summary.records_written += rows if isinstance(rows, int) else 0
                    _add_point(summary.written, (when, summary.records_written), max_points)
            if ident % stride == 0:
                history = summary.groups.setdefault(ident, RowGroupHistory(ident))
                history.states.append((when, dest))
    summary.group_count = len(started)
    if summary.run_start is None:
        summary.run_start = first
    summary.unreadable_lines = counter[0]
    if summary.run_state in ("running", "pending"):
        summary.run_end = None  # still running, or killed: no end was recorded
    return summary


def _add_point(points: list[tuple[float, int]], point: tuple[float, int], limit: int) -> None:
    """Append `point`; when `points` holds more than `limit`, keep every other one (and always
    the newest), so a long run's curve keeps its shape in bounded memory."""
    points.append(point)
    if len(points) > limit:
        newest = points[-1]
        del points[1::2]
        if points[-1] != newest:
            points.append(newest)


@attrs.define
class Attempt:
    """One sampled task attempt, as the timeline draws it."""

    task: str
    step: str
    row_group: int
    attempt: int
    created: float
    started: float
    finished: float
    outcome: str
    error: str | None


@attrs.define
class TraceSummary:
    """What the report needs from traces.jsonl, bounded whatever the run's length."""

    attempts: int = 0
    by_step_outcome: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    retried_attempts: Counter[str] = attrs.field(factory=Counter)  # attempts with attempt > 0
    errors: Counter[tuple[str, str]] = attrs.field(factory=Counter)  # (outcome, error text)
    sample: list[Attempt] = attrs.field(factory=list)
    first_time: float | None = None
    unreadable_lines: int = 0
    steps: list[str] = attrs.field(factory=list)  # in order of first appearance


def read_traces(
    path: Path, *, max_attempts: int = 20_000, max_errors: int = 200, seed: int = 0
) -> TraceSummary:
    """Stream traces.jsonl into a `TraceSummary`; the timeline sample is a uniform random
    subset of at most `max_attempts` attempts (Algorithm R)."""
    summary = TraceSummary()
    chooser = random.Random(seed)
    counter = [0]
    known_steps: set[str] = set()
    for raw in _json_lines(path, counter):
        attempt = _attempt(raw)
        if attempt is None:
            counter[0] += 1
            continue
        summary.attempts += 1
        if attempt.step not in known_steps:
            known_steps.add(attempt.step)
            summary.steps.append(attempt.step)
        summary.by_step_outcome[attempt.step, attempt.outcome] += 1
        if attempt.attempt > 0:
            summary.retried_attempts[attempt.step] += 1
        if attempt.error is not None:
            key = (attempt.outcome, attempt.error)
            if key in summary.errors or len(summary.errors) < max_errors:
                summary.errors[key] += 1
            else:
                summary.errors[attempt.outcome, OTHER_ERRORS] += 1
        if attempt.created > 0:
            first = summary.first_time
            summary.first_time = attempt.created if first is None else min(first, attempt.created)
        if len(summary.sample) < max_attempts:
            summary.sample.append(attempt)
        else:
            slot = chooser.randrange(summary.attempts)
            if slot < max_attempts:
                summary.sample[slot] = attempt
    summary.unreadable_lines = counter[0]
    return summary


def _attempt(raw: Any) -> Attempt | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        error = raw.get("error")
        return Attempt(
            task=str(raw["task"]),
            step=str(raw["step"]),
            row_group=int(raw["row_group"]),
            attempt=int(raw["attempt"]),
            created=float(raw["created"] or 0.0),
            started=float(raw["started"] or 0.0),
            finished=float(raw["finished"] or 0.0),
            outcome=str(raw["outcome"]),
            error=None if error is None else str(error),
        )
    except (KeyError, TypeError, ValueError):
        return None
