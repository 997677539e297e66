"""The runner: which engine a run gets, which options reach it, what it reports and raises.

Written ahead of `make mutants` over runner.py (tests/*.py at the top level are not run there),
to kill mutants in:
- `choose_engine`: the three `engine` values with and without `allow_resize` steps, the exact
  `ConfigError` text, and the `DeprecationWarning` (its text, its category, and the file it is
  reported in: the caller's, through `_caller_stacklevel`, for `run_steps` and for an awaited
  `run_steps_async`);
- `config_for`: None gives a default config with the plan's `buffer_size`; a mismatch is refused
  with its exact message;
- `run_plan_async`, `run_steps_async`, `run_plan`, `run_steps`: every option (config, sink,
  processors, row_groups, events, on_checkpoint, lifespan, gc threshold) must reach the engine,
  so a dropped or None-d argument or a forced ternary changes what the run did; `ROWFORGE_TRACE`
  ("1" on; "0", "" and unset off); the blocking forms refuse a running loop with exact texts;
- `summarise`: every field of `RunResult`, with figures chosen so that `+`/`-` swaps differ
  (skipped, failed and never-started cells all non-zero in one run; a one-column resize for
  `cell_delta // max(len(columns), 1)`), row groups and file paths produced out of order;
- `_report`, `_early_shutdown_error`, `_failure_message`, `_format_reasons`: each outcome's
  error type (exactly), message, `__cause__` and `.result`, the partial WARNING, `on_partial`,
  and the final INFO line (elapsed time included, so `-` -> `+` shows).

Under mutmut, runner.py's functions are wrapped in mutmut's trampolines (in site-packages), so
`_caller_stacklevel` stops at a trampoline frame and the warning is reported in runner.py even
for the unmutated code: the filename is checked only when the module is not wrapped, and the
mutants of `_caller_stacklevel` (and the dropped `stacklevel=`) survive there, though these
tests kill each of them in a plain run. Equivalent: `log.warning(message)` for
`log.warning("%s", message)` (the same text).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import (
    ConfigError,
    DatasetGenerationError,
    EarlyShutdownError,
    PartialDatasetError,
)
from rowforge.processors import function_processor
from rowforge.scheduler import (
    RowGroupSummary,
    RunConfig,
    RunResult,
    Step,
    build_plan,
    run_plan,
    run_plan_async,
    run_steps,
    run_steps_async,
)
from rowforge.scheduler.config import Engine
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.scheduler.runner import (
    _format_reasons,
    _report,
    choose_engine,
    config_for,
)
from rowforge.scheduler.sync_engine import SyncEngine
from rowforge.statemachine import EventLog
from rowforge.storage import MemorySink

FAST: dict[str, Any] = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
ENGINES = pytest.mark.parametrize("engine", ["async", "sync"])
#: mutmut's trampolines (functools.wraps) wrap every function of a mutated module.
TRAMPOLINED = hasattr(choose_engine, "__wrapped__")


@pytest.fixture(autouse=True)
def no_trace_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """These tests count traces: a ROWFORGE_TRACE set in the calling shell must not leak in."""
    monkeypatch.delenv("ROWFORGE_TRACE", raising=False)
    yield


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def resize(column: str) -> Any:
    def twice(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([frame, frame]).assign(**{column: 1})

    return twice


def add_note(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(note=[f"note {index}" for index in frame.index])


PLAIN = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"] * 10, depends_on=["id"])]
RESIZING = [
    Step("id", ids, kind="batch"),
    Step("twice", resize("twice"), kind="batch", depends_on=["id"], allow_resize=True),
    Step("again", resize("again"), kind="batch", depends_on=["twice"], allow_resize=True),
]
AUTO_WARNING = (
    "steps ['twice', 'again'] use allow_resize: this run uses the sync engine. allow_resize is "
    "deprecated; return one value per row instead"
)


def make_result(**fields: Any) -> RunResult:
    """A `RunResult` for the report functions: `partial`, 4 of 10 written, unless told."""
    values: dict[str, Any] = {
        "outcome": "partial",
        "engine": "async",
        "target_records": 10,
        "actual_records": 4,
        "early_shutdown": False,
        "first_error": None,
        "generated_cells": {},
        "skipped_cells": {},
        "failed_cells": {},
        "never_started_cells": {},
        "row_groups": (),
        "file_paths": (),
        "events": (),
        "task_traces": (),
        "stats": {},
    }
    values.update(fields)
    return RunResult(**values)


def summary(index: int, drop_reasons: dict[str, int]) -> RowGroupSummary:
    return RowGroupSummary(
        index=index,
        state="drained",
        planned_records=5,
        records_written=5 - sum(drop_reasons.values()),
        records_dropped=sum(drop_reasons.values()),
        drop_reasons=drop_reasons,
        skipped_cells={},
    )


def rowforge_messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rowforge" and r.levelno == level]


# -- choose_engine ---------------------------------------------------------------------------


def test_engine_sync_is_the_sync_engine_for_any_steps_and_never_warns() -> None:
    config = RunConfig(engine="sync")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert choose_engine(build_plan(PLAIN, 4, 2), config) is SyncEngine
        assert choose_engine(build_plan(RESIZING, 4, 2), config) is SyncEngine
    assert seen == []


def test_engine_async_runs_plain_steps_and_refuses_resizing_steps_naming_them() -> None:
    config = RunConfig(engine="async")
    assert choose_engine(build_plan(PLAIN, 4, 2), config) is AsyncEngine
    with pytest.raises(ConfigError) as caught:
        choose_engine(build_plan(RESIZING, 4, 2), config)
    assert str(caught.value) == (
        "steps ['twice', 'again'] have allow_resize, which the async engine cannot run (it never "
        "changes a row group's row count); use engine='sync' or engine='auto'"
    )


def test_engine_auto_is_async_without_resizing_steps_and_does_not_warn() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert choose_engine(build_plan(PLAIN, 4, 2), RunConfig()) is AsyncEngine
    assert seen == []


def test_engine_auto_with_resizing_steps_is_sync_with_a_deprecation_warning_at_the_caller() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        engine = choose_engine(build_plan(RESIZING, 4, 2), RunConfig())
    assert engine is SyncEngine
    (warning,) = caught.list
    assert warning.category is DeprecationWarning
    assert str(warning.message) == AUTO_WARNING
    if not TRAMPOLINED:
        assert warning.filename == __file__


def test_the_warning_of_run_steps_is_reported_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        result = run_steps(RESIZING, 2, config=RunConfig(buffer_size=2, **FAST))
    assert (result.engine, result.actual_records) == ("sync", 8)
    (warning,) = caught.list
    assert str(warning.message) == AUTO_WARNING
    if not TRAMPOLINED:
        assert warning.filename == __file__, "rowforge's and asyncio's frames are skipped"


def test_the_warning_of_an_awaited_run_steps_async_is_reported_at_the_callers_line() -> None:
    async def scenario() -> tuple[RunResult, list[warnings.WarningMessage]]:
        with pytest.warns(DeprecationWarning) as caught:
            result = await run_steps_async(RESIZING, 2, config=RunConfig(buffer_size=2, **FAST))
        return result, caught.list

    result, (warning,) = asyncio.run(scenario())
    assert (result.engine, result.actual_records) == ("sync", 8)
    assert str(warning.message) == AUTO_WARNING
    if not TRAMPOLINED:
        assert warning.filename == __file__


# -- config_for ------------------------------------------------------------------------------


def test_config_for_none_is_the_default_config_with_the_plans_buffer_size() -> None:
    plan = build_plan(PLAIN, 20, 7)
    assert config_for(plan, None) == RunConfig(buffer_size=7)
    given = RunConfig(buffer_size=7, engine="sync")
    assert config_for(plan, given) is given


def test_config_for_refuses_a_config_whose_buffer_size_differs_from_the_plans() -> None:
    with pytest.raises(ConfigError) as caught:
        config_for(build_plan(PLAIN, 20, 7), RunConfig(buffer_size=5))
    assert str(caught.value) == (
        "config.buffer_size is 5 but the plan was built with buffer_size 7; build the plan with "
        "the run's buffer_size"
    )


def test_run_plan_async_without_a_config_follows_the_plans_buffer_size() -> None:
    result = asyncio.run(run_plan_async(build_plan(PLAIN, 5, 2)))
    assert result.outcome == "completed" and result.engine == "async"
    assert [(g.index, g.planned_records) for g in result.row_groups] == [(0, 2), (1, 2), (2, 1)]


# -- ROWFORGE_TRACE ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "traced"), [("1", True), ("yes", True), ("0", False), ("", False), (None, False)]
)
def test_rowforge_trace_turns_tracing_on_unless_empty_or_zero(
    value: str | None, traced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("ROWFORGE_TRACE", raising=False)
    else:
        monkeypatch.setenv("ROWFORGE_TRACE", value)
    result = run_steps(PLAIN, 3, config=RunConfig(buffer_size=2, **FAST))
    assert result.outcome == "completed"
    assert bool(result.task_traces) is traced
    if traced:
        assert sorted(t.task for t in result.task_traces) == [
            "id[0:batch]", "id[1:batch]", "v[0:record 0]", "v[0:record 1]", "v[1:record 2]"
        ]


def test_config_trace_traces_even_when_rowforge_trace_is_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROWFORGE_TRACE", "0")
    result = run_steps(PLAIN, 3, config=RunConfig(buffer_size=2, trace=True, **FAST))
    assert len(result.task_traces) == 5  # 2 batches, 3 cells


# -- the blocking forms ------------------------------------------------------------------------


def test_the_blocking_forms_refuse_to_run_inside_a_running_loop() -> None:
    plan = build_plan(PLAIN, 2, 2)

    async def inside() -> tuple[str, str]:
        with pytest.raises(RuntimeError) as plan_error:
            run_plan(plan)
        with pytest.raises(RuntimeError) as steps_error:
            run_steps(PLAIN, 2)
        return str(plan_error.value), str(steps_error.value)

    assert asyncio.run(inside()) == (
        "run_plan() was called inside a running event loop; await run_plan_async",
        "run_steps() was called inside a running event loop; await run_steps_async",
    )


def test_the_blocking_forms_run_outside_a_loop_with_their_options() -> None:
    config = RunConfig(buffer_size=2, engine="sync", **FAST)
    by_plan = run_plan(build_plan(PLAIN, 3, 2), config=config)
    by_steps = run_steps(PLAIN, 3, config=config)
    for result in (by_plan, by_steps):
        assert (result.outcome, result.engine, result.actual_records) == ("completed", "sync", 3)
        assert result.dataset is not None
        assert list(result.dataset["v"]) == [0, 10, 20]


# -- every option reaches the engine ---------------------------------------------------------


@pytest.mark.parametrize("entry", ["run_steps_async", "run_plan_async"])
def test_every_option_reaches_the_engine(entry: str) -> None:
    log: list[str] = []
    checkpoints: list[tuple[RowGroupSummary, dict[str, str]]] = []

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        log.append("enter")
        yield
        log.append("exit")

    def value(row: dict[str, Any]) -> int:
        log.append(f"v {row['id']}")
        return int(row["id"]) * 10

    steps = [Step("id", ids, kind="batch"), Step("v", value, depends_on=["id"])]
    config = RunConfig(buffer_size=2, engine="sync", trace=True, **FAST)
    sink, events = MemorySink(), EventLog()
    options: dict[str, Any] = {
        "config": config,
        "sink": sink,
        "processors": [function_processor(add_note, "post_batch")],
        "row_groups": [2, 0],
        "events": events,
        "on_checkpoint": lambda s, schema: checkpoints.append((s, dict(schema))),
        "lifespan": lifespan(),
    }
    if entry == "run_steps_async":
        result = asyncio.run(run_steps_async(steps, 6, **options))
    else:
        result = asyncio.run(run_plan_async(build_plan(steps, 6, 2), **options))

    assert (result.outcome, result.engine) == ("completed", "sync")  # config
    assert result.task_traces  # config.trace
    assert (result.target_records, result.actual_records) == (4, 4)  # row_groups
    assert [g.index for g in result.row_groups] == [0, 2]
    written = sink.dataset()  # sink
    assert list(written.index) == [0, 1, 4, 5]
    assert list(written["note"]) == ["note 0", "note 1", "note 4", "note 5"]  # processors
    assert result.dataset is not None and result.dataset.equals(written)
    assert len(events) > 0 and result.events == tuple(events)  # events
    assert result.schema == {"id": "int64", "v": "int64", "note": "large_string"}
    assert [s for s, _ in checkpoints] == list(result.row_groups)  # on_checkpoint
    assert [schema for _, schema in checkpoints] == [dict(result.schema)] * 2
    assert log == ["enter", "v 0", "v 1", "v 4", "v 5", "exit"]  # lifespan


def test_the_gc_young_threshold_of_the_config_holds_during_the_run() -> None:
    saved = gc.get_threshold()
    seen: list[int] = []

    def look(row: dict[str, Any]) -> int:
        seen.append(gc.get_threshold()[0])
        return 1

    try:
        gc.set_threshold(700, 10, 10)
        run_steps([Step("look", look)], 2, config=RunConfig(gc_young_threshold=12_345, **FAST))
        assert seen == [12_345, 12_345]
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*saved)


# -- summarise ---------------------------------------------------------------------------------


class PathSink:
    """A sink that is not a MemorySink and returns a path: the order of its writes is kept."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        path = f"parquet-files/batch_{row_group:05d}.parquet"
        self.writes.append(path)
        return path


class StreamedLog(EventLog):
    """Like an EventFile: its events are not for `RunResult.events`."""

    keeps_events = False


def test_summarise_sorts_row_groups_and_paths_and_leaves_out_streamed_events() -> None:
    """Row group 0's `v` waits until row groups 1 and 2 have ended, so they end (and are
    written) first; row 3's `v` fails, so its `w` is skipped."""
    sink, events, closed = PathSink(), StreamedLog(), []

    async def scenario() -> RunResult:
        others_closed = asyncio.Event()

        def checkpointed(summary: RowGroupSummary, schema: dict[str, str]) -> None:
            closed.append(summary.index)
            if {1, 2} <= set(closed):
                others_closed.set()

        async def value(row: dict[str, Any]) -> int:
            if row["id"] < 2:
                await asyncio.wait_for(others_closed.wait(), timeout=5)
            if row["id"] == 3:
                raise ValueError("odd")
            return int(row["id"])

        steps = [
            Step("id", ids, kind="batch"),
            Step("v", value, depends_on=["id"]),
            Step("w", lambda row: row["v"] * 10, depends_on=["v"]),
        ]
        config = RunConfig(buffer_size=2, engine="async", max_concurrent_row_groups=3, **FAST)
        return await run_steps_async(
            steps, 6, config=config, sink=sink, events=events, on_checkpoint=checkpointed
        )

    result = asyncio.run(scenario())
    assert closed[-1] == 0 and sink.writes[-1].endswith("00000.parquet"), "0 ended last"
    assert (result.outcome, result.engine) == ("partial", "async")
    assert (result.target_records, result.actual_records) == (6, 5)
    assert result.early_shutdown is False and result.first_error is None
    assert result.generated_cells == {"id": 6, "v": 5, "w": 5}
    assert result.skipped_cells == {"id": 0, "v": 0, "w": 1}
    assert result.failed_cells == {"id": 0, "v": 1, "w": 0}
    assert result.never_started_cells == {"id": 0, "v": 0, "w": 0}
    assert [g.index for g in result.row_groups] == [0, 1, 2]
    assert [g.records_written for g in result.row_groups] == [2, 1, 2]
    assert result.file_paths == tuple(f"parquet-files/batch_0000{i}.parquet" for i in range(3))
    assert len(events) > 0 and result.events == ()
    assert result.dataset is None
    assert result.task_traces == ()
    assert result.stats["workers_created"] == 14 and result.stats["live_workers"] == 0
    assert result.schema == {"id": "int64", "v": "int64", "w": "int64"}


def test_summarise_counts_never_started_cells_next_to_skipped_and_failed_ones() -> None:
    """Row 1's `v` fails (its `w` is skipped); row group 1's post-batch processor fails the run,
    so row group 2 never starts: 2 of the 6 cells of every column never started."""

    def value(row: dict[str, Any]) -> int:
        if row["id"] == 1:
            raise ValueError("odd")
        return int(row["id"])

    boom = RuntimeError("schema registry unavailable")

    def fail_on_group_1(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.index[0] == 2:
            raise boom
        return frame

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", value, depends_on=["id"]),
        Step("w", lambda row: row["v"] * 10, depends_on=["v"]),
    ]
    config = RunConfig(buffer_size=2, engine="sync", max_concurrent_row_groups=1, **FAST)
    processors = [function_processor(fail_on_group_1, "post_batch")]
    with pytest.raises(DatasetGenerationError) as caught:
        run_steps(steps, 6, config=config, processors=processors)
    error = caught.value
    result = error.result  # type: ignore[attr-defined]
    assert str(error) == (
        "row group 1: post_batch processor 'fail_on_group_1' failed: "
        "RuntimeError: schema registry unavailable"
    )
    assert error.__cause__ is boom, "the engine's error is raised as it is, cause kept"
    assert result.outcome == "failed" and result.first_error == str(error)
    assert (result.target_records, result.actual_records) == (6, 1)
    assert result.generated_cells == {"id": 4, "v": 3, "w": 3}
    assert result.skipped_cells == {"id": 0, "v": 0, "w": 1}
    assert result.failed_cells == {"id": 0, "v": 1, "w": 0}
    assert result.never_started_cells == {"id": 2, "v": 2, "w": 2}
    assert [type(n) for n in result.never_started_cells.values()] == [int, int, int]
    assert result.events and result.events[0].machine == "run", "a kept log's events"
    assert result.dataset is not None and list(result.dataset.index) == [0]


def test_summarise_counts_the_cells_a_one_column_resize_added() -> None:
    def grow(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": range(3 * len(frame))})

    steps = [Step("id", grow, kind="batch", allow_resize=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = run_steps(steps, 4, config=RunConfig(buffer_size=2, **FAST))
    assert (result.outcome, result.engine) == ("completed", "sync")
    assert (result.target_records, result.actual_records, result.resized_records) == (4, 12, 8)
    assert result.generated_cells == {"id": 12}
    assert result.never_started_cells == {"id": 0}
    assert type(result.never_started_cells["id"]) is int


# -- _report: failed ---------------------------------------------------------------------------


def test_a_failed_outcome_wraps_an_error_that_is_not_a_dataset_generation_error() -> None:
    result = make_result(outcome="failed", actual_records=0)
    cause = ValueError("socket closed")
    failure = _report(result, cause, RunConfig())
    assert type(failure) is DatasetGenerationError
    assert str(failure) == "socket closed"
    assert failure.__cause__ is cause
    assert failure.result is result  # type: ignore[attr-defined]


def test_a_failed_outcome_raises_a_dataset_generation_error_as_it_is() -> None:
    result = make_result(outcome="failed", actual_records=0)
    error = DatasetGenerationError("row group 0: writing to the sink failed")
    assert _report(result, error, RunConfig()) is error
    assert error.__cause__ is None
    assert error.result is result  # type: ignore[attr-defined]


def test_a_failed_outcome_without_an_error_names_the_target_and_the_reasons() -> None:
    empty = make_result(outcome="failed", actual_records=0, target_records=5)
    failure = _report(empty, None, RunConfig())
    assert type(failure) is DatasetGenerationError
    assert str(failure) == "no records were written (target 5); reasons: none recorded"
    assert failure.__cause__ is None


@ENGINES
def test_a_run_whose_every_row_was_dropped_fails_naming_the_sorted_reasons(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    def reject(row: dict[str, Any]) -> int:
        raise ValueError("zeta" if row["id"] == 0 else "alpha")

    steps = [Step("id", ids, kind="batch"), Step("v", reject, depends_on=["id"])]
    config = RunConfig(buffer_size=2, engine=engine, on_partial="raise", **FAST)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="rowforge"), pytest.raises(
        DatasetGenerationError
    ) as caught:
        run_steps(steps, 3, config=config)
    took = time.monotonic() - started
    assert type(caught.value) is DatasetGenerationError
    assert str(caught.value) == (
        "no records were written (target 3); reasons: 2 x step 'v' failed: ValueError: alpha; "
        "1 x step 'v' failed: ValueError: zeta"
    )
    assert caught.value.__cause__ is None
    result = caught.value.result  # type: ignore[attr-defined]
    assert (result.outcome, result.actual_records, result.first_error) == ("failed", 0, None)
    assert rowforge_messages(caplog, logging.WARNING) == []
    final = rowforge_messages(caplog, logging.INFO)[-1]
    match = re.fullmatch(
        rf"run failed \({engine} engine\): 0 of 3 records written in (\d+\.\d\d)s", final
    )
    assert match is not None, final
    assert float(match.group(1)) <= took + 0.005


# -- _report: partial --------------------------------------------------------------------------


def partial_steps() -> list[Step]:
    def value(row: dict[str, Any]) -> int:
        if row["id"] in (1, 4):
            raise ValueError("odd")
        if row["id"] == 2:
            raise KeyError("k")
        return int(row["id"])

    return [Step("id", ids, kind="batch"), Step("v", value, depends_on=["id"])]


PARTIAL_MESSAGE = (
    "partial dataset: target 6 records, actual 3, dropped 3; reasons: "
    "1 x step 'v' failed: KeyError: 'k'; 2 x step 'v' failed: ValueError: odd"
)


@ENGINES
def test_a_partial_run_warns_once_returns_its_result_and_logs_the_final_line_last(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    config = RunConfig(buffer_size=2, engine=engine, **FAST)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="rowforge"):
        result = run_steps(partial_steps(), 6, config=config)
    took = time.monotonic() - started
    assert (result.outcome, result.actual_records, result.dropped_records) == ("partial", 3, 3)
    assert rowforge_messages(caplog, logging.WARNING) == [PARTIAL_MESSAGE]
    final = caplog.records[-1]
    assert (final.name, final.levelno) == ("rowforge", logging.INFO)
    match = re.fullmatch(
        rf"run partial \({engine} engine\): 3 of 6 records written in (\d+\.\d\d)s",
        final.getMessage(),
    )
    assert match is not None, final.getMessage()
    assert float(match.group(1)) <= took + 0.005


def test_on_partial_raise_raises_after_the_warning_with_the_result_attached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = MemorySink()
    config = RunConfig(buffer_size=2, on_partial="raise", **FAST)
    with caplog.at_level(logging.WARNING, logger="rowforge"), pytest.raises(
        PartialDatasetError
    ) as caught:
        run_steps(partial_steps(), 6, config=config, sink=sink)
    assert str(caught.value) == PARTIAL_MESSAGE
    assert rowforge_messages(caplog, logging.WARNING) == [PARTIAL_MESSAGE]
    result = caught.value.result  # type: ignore[attr-defined]
    assert (result.outcome, result.actual_records) == ("partial", 3)
    assert list(sink.dataset().index) == [0, 3, 5], "what was produced is written first"


def test_report_returns_nothing_for_a_completed_run_or_a_partial_one_that_only_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    completed = make_result(outcome="completed", actual_records=10)
    partial = make_result(row_groups=(summary(0, {"timeout": 6}),))
    with caplog.at_level(logging.INFO, logger="rowforge"):
        assert _report(completed, None, RunConfig()) is None
        assert _report(partial, None, RunConfig()) is None
    assert rowforge_messages(caplog, logging.WARNING) == [
        "partial dataset: target 10 records, actual 4, dropped 6; reasons: 6 x timeout"
    ]


# -- _report: early shutdown -------------------------------------------------------------------


def early_shutdown_steps(first_bad: int) -> list[Step]:
    def value(row: dict[str, Any]) -> int:
        if row["id"] >= first_bad:
            raise ValueError("bad request")
        return int(row["id"])

    return [Step("id", ids, kind="batch"), Step("v", value, depends_on=["id"], resource="m")]


@ENGINES
@pytest.mark.parametrize(
    ("first_bad", "records", "outcome", "kept"),
    [
        (0, 2, "failed", "no records were written (target 2)"),
        (2, 6, "partial", "2 of 6 records were written (complete rows only)"),
    ],
)
def test_an_early_shutdown_raises_naming_what_was_kept_whatever_on_partial_says(
    engine: Engine,
    first_bad: int,
    records: int,
    outcome: str,
    kept: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows from `first_bad` on fail: either no row is written, or row group 0 is written
    before row group 1 trips the breaker (window 2, threshold 50%)."""
    config = RunConfig(
        buffer_size=2,
        engine=engine,
        early_shutdown_window=2,
        max_concurrent_row_groups=1,
        on_partial="raise",
        **FAST,
    )
    with caplog.at_level(logging.WARNING, logger="rowforge"), pytest.raises(
        EarlyShutdownError
    ) as caught:
        run_steps(early_shutdown_steps(first_bad), records, config=config)
    failed = 2 if first_bad == 0 else 1
    assert str(caught.value) == (
        f"early shutdown: {failed} of the last 2 model tasks failed (ValueError x {failed}; "
        "threshold 50%); last error in step 'v' (model 'm'): ValueError: bad request; " + kept
    )
    cause = caught.value.__cause__
    assert type(cause) is ValueError and str(cause) == "bad request", "the provider's error"
    result = caught.value.result  # type: ignore[attr-defined]
    assert (result.outcome, result.early_shutdown) == (outcome, True)
    assert result.first_error == str(caught.value).rsplit("; ", 1)[0]
    assert not any("partial dataset" in m for m in rowforge_messages(caplog, logging.WARNING))


def test_an_early_shutdown_without_an_error_uses_the_recorded_one_or_says_early_shutdown() -> None:
    recorded = make_result(
        outcome="failed", actual_records=0, target_records=4, early_shutdown=True,
        first_error="provider gone",
    )
    failure = _report(recorded, None, RunConfig())
    assert type(failure) is EarlyShutdownError
    assert str(failure) == "provider gone; no records were written (target 4)"
    assert failure.__cause__ is None and failure.result is recorded  # type: ignore[attr-defined]

    unknown = make_result(actual_records=3, target_records=4, early_shutdown=True)
    failure = _report(unknown, None, RunConfig())
    assert type(failure) is EarlyShutdownError
    assert str(failure) == "early shutdown; 3 of 4 records were written (complete rows only)"


def test_an_early_shutdown_chains_an_error_that_is_not_the_engines_verdict_as_it_is() -> None:
    result = make_result(early_shutdown=True, first_error="ignored")
    error = DatasetGenerationError("row group 1: writing to the sink failed")
    failure = _report(result, error, RunConfig())
    assert type(failure) is EarlyShutdownError and failure is not error
    assert str(failure) == (
        "row group 1: writing to the sink failed; 4 of 10 records were written (complete rows only)"
    )
    assert failure.__cause__ is error

    provider = ConnectionError("refused")
    verdict = EarlyShutdownError("early shutdown: provider down")
    verdict.__cause__ = provider
    failure = _report(result, verdict, RunConfig())
    assert failure is not None and failure.__cause__ is provider


def test_an_early_shutdown_of_a_completed_run_is_not_reported() -> None:
    result = make_result(outcome="completed", actual_records=10, early_shutdown=True)
    assert _report(result, None, RunConfig(on_partial="raise")) is None


# -- _format_reasons ---------------------------------------------------------------------------


def test_reasons_are_summed_over_row_groups_sorted_and_joined() -> None:
    result = make_result(
        row_groups=(summary(0, {"zeta": 1, "alpha": 2}), summary(1, {"mid": 4, "alpha": 1}))
    )
    assert _format_reasons(result) == "3 x alpha; 4 x mid; 1 x zeta"
    assert _format_reasons(make_result()) == "none recorded"
