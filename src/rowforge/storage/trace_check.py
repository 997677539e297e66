"""Validating a run's event log against the specs and against metadata.json, tracing off.

The idea is trace validation as etcd-raft does it: replay what the real run recorded against
the model and check the invariants on it, instead of trusting the run's own verdict. Every run
writes events.jsonl (run and row-group transitions); a row group's terminal event carries
compact evidence that is counted where things happen, apart from the sets the guards read:

- `workers_started` / `workers_drained`: workers created for the row group and workers that
  reached `drained` (INV-2: equal when the row group ends);
- `cells`: per column, the cells that ended generated, skipped and failed (INV-4: they add up
  to the row group's rows; the skipped ones are those metadata.json lists);
- `kept_skips` (only when there are any): per column, the skipped cells that surviving rows
  keep because the step's skip condition held. A written row holds, in every column, a
  generated cell or such a skipped one.

Checked for every log (an interrupted run's log is kept as `events-NNNN.jsonl`, oldest first):
the log replays through the specs (INV-1), and each terminal row group has the evidence above.
For the log of the last run, whose metadata.json this is: a finished run is in a terminal state,
every row group it admitted is terminal, and the last word on each row group agrees with
metadata.json; the recorded outcome agrees with the counts (INV-6).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rowforge.errors import ReplayError
from rowforge.hints import runnable_command
from rowforge.statemachine import SPECS, Event, iter_jsonl, replay

_RUN, _ROW_GROUP = "run", "row_group"


def event_violation(logs: Sequence[Path], metadata: Mapping[str, Any]) -> str | None:
    """None when the event logs agree with the specs and `metadata`, else the first problem.

    Each log is read once, line by line: only the row groups' terminal events are kept (the
    evidence), so checking a long run does not hold its whole log in memory."""
    last_word: dict[Hashable, Event] = {}
    for log in logs:
        terminal: list[Event] = []
        try:
            states = replay(_keeping_terminal(iter_jsonl(log), terminal), SPECS)
        except ReplayError as error:
            return f"{log.name}: {error}"
        for event in terminal:
            problem = _evidence_problem(event)
            if problem is not None:
                return f"{log.name}: row group {event.ident} ended {event.dest} {problem}"
            last_word[event.ident] = event
    return _final_problem(logs[-1].name, states, last_word, metadata)


def _keeping_terminal(events: Iterable[Event], terminal: list[Event]) -> Iterator[Event]:
    """`events`, unchanged; the row groups' terminal ones are also appended to `terminal`."""
    for event in events:
        if event.machine == _ROW_GROUP and event.dest in SPECS[_ROW_GROUP].terminal:
            terminal.append(event)
        yield event


def _evidence_problem(event: Event) -> str | None:
    details = event.details
    started, drained = details.get("workers_started"), details.get("workers_drained")
    if not isinstance(started, int) or not isinstance(drained, int):
        return "without a count of its workers"
    if started != drained:
        return f"with {started - drained} of its {started} workers not drained"
    cells = details.get("cells")
    if not isinstance(cells, dict) or not cells:
        return "without its cell outcomes"
    totals = {column: sum(counts) for column, counts in cells.items()}
    if len(set(totals.values())) != 1:
        return f"with cell outcomes that do not add up to one row count per column: {totals}"
    return None


def _final_problem(
    log: str,
    states: Mapping[tuple[str, Hashable], str],
    last_word: Mapping[Hashable, Event],
    metadata: Mapping[str, Any],
) -> str | None:
    outcome = metadata.get("outcome")
    run = [state for (machine, _), state in states.items() if machine == _RUN]
    if outcome == "running":
        return (
            "metadata.json: the run never finished (outcome 'running'): it was killed or "
            f"crashed; '{runnable_command('resume', '<output directory>')}' finishes it"
        )
    if not run or run[-1] not in SPECS[_RUN].terminal:
        return f"{log}: the run did not reach a terminal state, yet metadata.json says {outcome!r}"
    open_groups = sorted(
        str(ident)
        for (machine, ident), state in states.items()
        if machine == _ROW_GROUP and state not in SPECS[_ROW_GROUP].terminal
    )
    if open_groups:
        return f"{log}: row groups {', '.join(open_groups)} never reached a terminal state"
    for record in metadata.get("row_groups") or []:
        event = last_word.get(record["index"])
        problem = _agrees(record, event) if event is not None else None
        if problem is not None:
            return f"row group {record['index']}: {problem}"
    return _outcome_problem(metadata)


def _agrees(record: Mapping[str, Any], event: Event) -> str | None:
    """The row group's last terminal event against its metadata.json entry."""
    if event.dest != record["state"]:
        return f"metadata.json says {record['state']!r}, the events say {event.dest!r}"
    cells: dict[str, list[int]] = event.details["cells"]
    skipped = {column: counts[1] for column, counts in cells.items() if counts[1]}
    if skipped != dict(record.get("skipped_cells") or {}):
        return f"skipped cells {skipped} in the events, {record.get('skipped_cells')} in metadata"
    rows = next(iter(cells.values()))
    if rows != [0, 0, 0] and not record.get("records_resized"):
        planned = record["records_written"] + record["records_dropped"]
        if sum(rows) != planned:
            return f"the events account for {sum(rows)} rows' cells, metadata for {planned}"
    kept: Mapping[str, int] = event.details.get("kept_skips") or {}
    fewest = min(counts[0] + kept.get(column, 0) for column, counts in cells.items())
    if fewest < record["records_written"]:
        return (
            f"{record['records_written']} records written but only {fewest} cells of one "
            "column generated (or skipped by its condition)"
        )
    return None


def _outcome_problem(metadata: Mapping[str, Any]) -> str | None:
    """INV-6: the outcome says what the counts say."""
    outcome = metadata.get("outcome")
    actual = metadata.get("actual_num_records", 0)
    planned = metadata.get("target_num_records", 0) + metadata.get("resized_records", 0)
    if outcome == "completed" and actual != planned:
        return f"metadata.json: outcome 'completed' with {actual} of {planned} records"
    if outcome == "partial" and not 0 < actual < planned:
        return f"metadata.json: outcome 'partial' with {actual} of {planned} records"
    return None
