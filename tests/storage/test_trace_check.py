"""`rowforge check` validates every run's event log, tracing off (trace validation).

Each test builds a real output, corrupts one piece of the evidence the event log carries (or the
metadata it must agree with) and expects `check` to name the problem. The first test shows the
untouched output passes, so a failure below is the corruption's doing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.build import build_steps
from rowforge.errors import RowforgeError
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def double(row: dict[str, int]) -> int:
    return 2 * row["id"]


def refuse_sevens(row: dict[str, int]) -> int:
    if row["id"] % 7 == 0:
        raise RowforgeError("no sevens")  # not retryable: the row is dropped, cells skipped
    return row["id"]


STEPS = [
    Step("id", ids, kind="batch"),
    Step("picky", refuse_sevens, depends_on=["id"]),
    Step("double", double, depends_on=["picky"]),
]


@pytest.fixture
def output(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    config = RunConfig(buffer_size=10, early_shutdown_window=1000, **FAST)
    build_steps(STEPS, 30, directory, config=config)
    return directory


def rewrite_events(output: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    path = output / "events.jsonl"
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    change(events)
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")


def rewrite_metadata(output: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = output / "metadata.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")


def terminal_event(events: list[dict[str, Any]], group: int) -> dict[str, Any]:
    return next(
        e
        for e in events
        if e["machine"] == "row_group"
        and e["id"] == group
        and e["dest"] in ("drained", "dropped", "failed", "cancelled")
    )


def test_an_untouched_partial_output_passes_and_its_events_carry_the_evidence(
    output: Path,
) -> None:
    assert first_violation(output) is None
    events = [json.loads(line) for line in (output / "events.jsonl").read_text().splitlines()]
    last = terminal_event(events, 1)
    assert last["details"]["workers_started"] == last["details"]["workers_drained"] > 0
    assert last["details"]["cells"]["picky"] == [9, 0, 1]  # record 14 refused (10..19)
    assert last["details"]["cells"]["double"] == [9, 1, 0]  # so its next cell is skipped


def _undrained(events: list[dict[str, Any]]) -> None:
    terminal_event(events, 1)["details"]["workers_drained"] -= 1


def _cells_short(events: list[dict[str, Any]]) -> None:
    terminal_event(events, 0)["details"]["cells"]["double"][0] -= 1


def _cells_for_more_rows(events: list[dict[str, Any]]) -> None:
    for counts in terminal_event(events, 2)["details"]["cells"].values():
        counts[0] += 1


def _no_worker_counts(events: list[dict[str, Any]]) -> None:
    del terminal_event(events, 2)["details"]["workers_started"]


def _run_never_ends(events: list[dict[str, Any]]) -> None:
    events.pop()  # the run's terminal transition is the last event


def _group_never_ends(events: list[dict[str, Any]]) -> None:
    events.remove(terminal_event(events, 2))
    events.pop()  # the run's end must then go too, or the replay itself refuses the log


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (_undrained, "events.jsonl: row group 1 ended drained with 1 of its "),
        (_cells_short, "row group 0 ended drained with cell outcomes that do not add up"),
        (_cells_for_more_rows, "row group 2: the events account for 11 rows' cells, metadata for"),
        (_no_worker_counts, "row group 2 ended drained without a count of its workers"),
        (_run_never_ends, "events.jsonl: the run did not reach a terminal state, yet metadata"),
        (_group_never_ends, "events.jsonl: the run did not reach a terminal state"),
    ],
    ids=[
        "a worker not drained",
        "cells that do not add up",
        "cells for more rows than metadata",
        "no worker counts",
        "run never ends",
        "row group never ends",
    ],
)
def test_check_fails_on_a_corrupted_event_log(
    output: Path, corrupt: Callable[[list[dict[str, Any]]], None], problem: str
) -> None:
    rewrite_events(output, corrupt)
    found = first_violation(output)
    assert found is not None and problem in found, found


def _skips_disagree(document: dict[str, Any]) -> None:
    document["row_groups"][1]["skipped_cells"] = {}


def _state_disagrees(document: dict[str, Any]) -> None:
    document["row_groups"][0]["state"] = "dropped"


def _claims_completed(document: dict[str, Any]) -> None:
    document["outcome"] = "completed"


def _never_finished(document: dict[str, Any]) -> None:
    document["outcome"] = "running"


def _more_written_than_generated(document: dict[str, Any]) -> None:
    group = document["row_groups"][1]
    group["records_written"] += 1
    group["records_dropped"] -= 1


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (_skips_disagree, "row group 1: skipped cells {'double': 1} in the events, {} in metadata"),
        (_state_disagrees, "row group 0: metadata.json says 'dropped', the events say 'drained'"),
        (_claims_completed, "metadata.json: outcome 'completed' with "),
        (_never_finished, "metadata.json: the run never finished (outcome 'running')"),
        (_more_written_than_generated, "row group 1: 10 records written but only 9 cells"),
    ],
    ids=["skips", "state", "outcome completed", "outcome running", "written > generated"],
)
def test_check_fails_when_metadata_disagrees_with_the_events(
    output: Path, corrupt: Callable[[dict[str, Any]], None], problem: str
) -> None:
    rewrite_metadata(output, corrupt)
    found = first_violation(output)
    assert found is not None and problem in found, found
