"""`TaskTrace`: one record per attempt, named by step, row group and record (or batch).

Written ahead of `make mutants` over trace.py, to kill mutants in:
- `TaskTrace.of`: a cell attempt is `step[group:record N]` with `row` the record index (the
  row group's start plus the row, so a trace that kept the row's position, or None, shows),
  a batch attempt is `step[group:batch]` with `row` None (both arms of each ternary); every
  other field is copied from the worker, each with a value no other field has; the error is
  `describe_error(error)` (`Type: message`, or the type alone), None without one;
- `to_json`: sorted keys (the field order is not sorted, so `sort_keys=False` shows), and it
  reads back to `as_dict()`; `as_dict`: every field by name.
"""

from __future__ import annotations

import json

import pandas as pd

from rowforge.scheduler import Step, build_plan
from rowforge.scheduler.ledger import Ledger
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.subjects import Machines, Worker
from rowforge.scheduler.trace import TaskTrace
from rowforge.statemachine import EventLog


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


STEPS = [Step("seed", ids, kind="batch"), Step("answer", lambda row: 1, depends_on=["seed"])]


def worker(step: Step, row: int | None, error: BaseException | None = None) -> Worker:
    """An attempt in row group 3 (records 30..39) that ran from 2.5 to 4.5."""
    plan = build_plan(STEPS, 40, 10)
    machines = Machines(EventLog(), False, lambda cell: True, lambda cell: False)
    group = RowGroup(plan.row_group(3), plan, Ledger(machines.cells, set()))
    attempt = Worker(17, step, group, row, attempt=2, created=1.25)
    attempt.admitted, attempt.started, attempt.finished = 2.5, 3.75, 4.5
    attempt.outcome = "failed" if error is not None else "succeeded"
    attempt.error = error
    return attempt


def test_a_cell_attempt_is_named_by_its_record_index() -> None:
    trace = TaskTrace.of(worker(STEPS[1], 4, KeyError("missing field")))
    assert trace == TaskTrace(
        task="answer[3:record 34]",
        step="answer",
        row_group=3,
        row=34,
        attempt=2,
        created=1.25,
        admitted=2.5,
        started=3.75,
        finished=4.5,
        outcome="failed",
        error="KeyError: 'missing field'",
    )


def test_a_batch_attempt_is_named_batch_and_has_no_row() -> None:
    trace = TaskTrace.of(worker(STEPS[0], None))
    assert trace == TaskTrace(
        task="seed[3:batch]",
        step="seed",
        row_group=3,
        row=None,
        attempt=2,
        created=1.25,
        admitted=2.5,
        started=3.75,
        finished=4.5,
        outcome="succeeded",
        error=None,
    )


def test_an_error_without_a_message_is_described_by_its_type() -> None:
    assert TaskTrace.of(worker(STEPS[0], None, TimeoutError())).error == "TimeoutError"


def test_as_dict_has_every_field_and_to_json_sorts_the_keys_and_reads_back() -> None:
    trace = TaskTrace.of(worker(STEPS[1], 0, ValueError("bad request")))
    expected = {
        "task": "answer[3:record 30]",
        "step": "answer",
        "row_group": 3,
        "row": 30,
        "attempt": 2,
        "created": 1.25,
        "admitted": 2.5,
        "started": 3.75,
        "finished": 4.5,
        "outcome": "failed",
        "error": "ValueError: bad request",
    }
    assert trace.as_dict() == expected
    text = trace.to_json()
    assert text == json.dumps(dict(sorted(expected.items())))
    assert list(json.loads(text)) == sorted(expected)
    assert json.loads(text) == trace.as_dict()
    assert TaskTrace(**json.loads(text)) == trace
