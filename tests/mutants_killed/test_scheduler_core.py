"""What a run reports when a provider, a processor or the sink fails, in both engines.

Kills survivors of `make mutants` (scheduler, core.py): the no-success budget's early shutdown
(`_exhausted_error`, not run by tests/scheduler), the breaker's, and a post-batch processor or
sink failure in the second row group, each with the whole message (row group, processor, step,
model, the provider's last error) and the error it was caused by.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pandas as pd
import pytest

from rowforge.errors import (
    DatasetGenerationError,
    DatasetProcessingError,
    EarlyShutdownError,
    RateLimitError,
)
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step, run_steps_async
from rowforge.storage import MemorySink

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}
ENGINES = pytest.mark.parametrize("engine", ["async", "sync"])


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def run(
    steps: list[Step],
    engine: str,
    processors: Any = (),
    sink: Any = None,
    records: int = 4,
    **config: Any,
) -> Any:
    settings = RunConfig(engine=engine, **{"buffer_size": 2, **FAST, **config})
    return asyncio.run(
        run_steps_async(steps, records, config=settings, processors=processors, sink=sink)
    )


@ENGINES
def test_a_model_without_a_success_for_its_budget_shuts_the_run_down(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    last: list[RateLimitError] = []

    def limited(row: dict[str, Any]) -> int:
        if len(last) >= 100_000:  # about 2 s: the budget was not enforced; end, and fail below
            return 0
        last.append(RateLimitError("429 slow down", retry_after=0))
        raise last[-1]

    steps = [Step("id", ids, kind="batch"), Step("v", limited, depends_on=["id"], resource="m")]
    with caplog.at_level(logging.WARNING, logger="rowforge"), pytest.raises(
        EarlyShutdownError
    ) as caught:
        run(steps, engine, no_success_budget_s=0.05)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == (
        "model 'm' is degraded: 100% of the last 10 calls were rejected (HTTP 429 x 10); "
        "retrying (honouring Retry-After up to 300s, the provider asked for 0s; giving up after "
        "0.05s without a success)"
    )
    assert re.fullmatch(
        r"early shutdown: model 'm': no successful call for 0\.05s; the last \d+ calls were "
        r"rejected with HTTP 429 \(rate limited\); last error in step 'v' \(model 'm'\): "
        r"RateLimitError: 429 slow down; no records were written \(target 4\)",
        str(caught.value),
    ), str(caught.value)
    assert any(caught.value.__cause__ is error for error in last)  # the provider's own error
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed" and result.early_shutdown


@ENGINES
def test_the_breaker_names_the_failure_rate_and_the_last_error(engine: str) -> None:
    errors: list[ValueError] = []

    def fatal(row: dict[str, Any]) -> int:
        errors.append(ValueError(f"bad request {row['id']}"))
        raise errors[-1]

    steps = [Step("id", ids, kind="batch"), Step("v", fatal, depends_on=["id"], resource="m")]
    with pytest.raises(EarlyShutdownError) as caught:
        run(steps, engine, early_shutdown_window=2)
    assert str(caught.value) == (
        "early shutdown: 2 of the last 2 model tasks failed (ValueError x 2; threshold 50%); "
        "last error in step 'v' (model 'm'): ValueError: bad request 1; no records were "
        "written (target 4)"
    )
    assert caught.value.__cause__ is errors[1]


def drop_a_row_of_group_1(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[1:] if frame.index[0] == 2 else frame


def fail_on_group_1(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.index[0] == 2:
        raise RuntimeError("schema registry unavailable")
    return frame


@ENGINES
def test_a_post_batch_processor_that_drops_a_row_is_refused_saying_how(engine: str) -> None:
    processors = [function_processor(drop_a_row_of_group_1, "post_batch")]
    with pytest.raises(DatasetProcessingError) as caught:
        run([Step("id", ids, kind="batch")], engine, processors)
    assert str(caught.value) == (
        "row group 1: post_batch processor 'drop_a_row_of_group_1' changed the row count from 2 "
        "to 1; processors must keep every row"
    )
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed" and result.actual_records == 2


@ENGINES
def test_a_failing_post_batch_processor_names_its_row_group(engine: str) -> None:
    processors = [function_processor(fail_on_group_1, "post_batch")]
    with pytest.raises(DatasetGenerationError) as caught:
        run([Step("id", ids, kind="batch")], engine, processors)
    assert str(caught.value) == (
        "row group 1: post_batch processor 'fail_on_group_1' failed: "
        "RuntimeError: schema registry unavailable"
    )


class FullDisk(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.error = OSError("disk full")

    def write(self, row_group: int, frame: pd.DataFrame) -> Any:
        if row_group == 1:
            raise self.error
        return super().write(row_group, frame)


@ENGINES
def test_a_sink_failure_names_its_row_group_and_keeps_the_error_as_cause(engine: str) -> None:
    sink = FullDisk()
    with pytest.raises(DatasetGenerationError) as caught:
        run([Step("id", ids, kind="batch")], engine, sink=sink)
    assert type(caught.value) is DatasetGenerationError
    assert str(caught.value) == "row group 1: writing to the sink failed: OSError: disk full"
    assert caught.value.__cause__ is sink.error
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed" and result.actual_records == 2


@ENGINES
def test_rows_left_when_the_breaker_trips_are_dropped_for_early_shutdown(engine: str) -> None:
    async def first_two_fail(row: dict[str, Any]) -> int:
        if row["id"] < 2:
            raise ValueError("bad request")
        await asyncio.sleep(0.05)
        return row["id"]

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", first_two_fail, depends_on=["id"], resource="m"),
    ]
    with pytest.raises(EarlyShutdownError) as caught:
        run(steps, engine, early_shutdown_window=2, buffer_size=4)
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.actual_records == 0
    assert result.drop_reasons() == {
        "step 'v' failed: ValueError: bad request": 2,
        "early shutdown": 2,
    }
    (ended,) = [e for e in result.events if e.machine == "row_group" and e.dest == "dropped"]
    assert ended.details["reason"] == "early shutdown"


def test_stats_report_peaks_workers_and_warnings_under_their_names() -> None:
    async def slow(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.01)
        return row["id"]

    steps = [Step("id", ids, kind="batch"), Step("v", slow, depends_on=["id"], resource="m")]
    result = run(steps, "async", max_parallel_requests={"m": 2}, buffer_size=4)
    assert result.stats == {
        "peak_in_flight": 2,
        "peak_per_resource": {"m": 2},
        "peak_open_row_groups": 1,
        "leases_balanced": True,
        "live_workers": 0,
        "workers_created": 5,  # the seed batch and four cells
        "stall_warnings": 0,
        "degraded_warnings": 0,
        "cell_delta": 0,
        "adaptive_limits": {},
    }


@ENGINES
def test_the_schema_is_the_first_row_groups_columns_and_each_write_names_its_file(
    engine: str, tmp_path: Any
) -> None:
    from rowforge.storage import ParquetSink

    steps = [
        Step("id", ids, kind="batch"),
        Step("v", lambda row: f"v{row['id']}", depends_on=["id"]),
    ]
    result = run(steps, engine, sink=ParquetSink(tmp_path))
    assert result.schema == {"id": "int64", "v": "large_string"}  # no record_index column
    writes = [e for e in result.events if e.machine == "row_group" and e.trigger == "write"]
    # row groups may finish in either order in the async engine
    assert sorted(e.details["path"] for e in writes) == sorted(result.file_paths)
    assert len(result.file_paths) == 2 and all(path for path in result.file_paths)


def short_on_group_1(frame: pd.DataFrame) -> list[int]:
    return [1] * (len(frame) - 1 if frame.index[0] == 2 else len(frame))


def wrong_column_on_group_1(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"other" if frame.index[0] == 2 else "judge": [1] * len(frame)})


@ENGINES
@pytest.mark.parametrize(
    ("judge", "message"),
    [
        (
            short_on_group_1,
            "batch step 'judge' returned 1 rows for row group 1, which has 2; only allow_resize "
            "steps may change the row count, and they run on the sync engine",
        ),
        (
            wrong_column_on_group_1,
            "batch step 'judge' returned a DataFrame without column 'judge' for row group 1",
        ),
    ],
)
def test_a_batch_step_that_breaks_the_row_contract_is_refused_saying_how(
    engine: str, judge: Any, message: str
) -> None:
    steps = [
        Step("id", ids, kind="batch"),
        Step("a", lambda row: row["id"], depends_on=["id"]),
        Step("judge", judge, kind="batch", depends_on=["a"]),
    ]
    with pytest.raises(DatasetProcessingError) as caught:
        run(steps, engine)
    assert str(caught.value) == message
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed" and result.actual_records == 2


@ENGINES
def test_a_failing_pre_batch_processor_names_its_row_group(engine: str) -> None:
    processors = [function_processor(fail_on_group_1, "pre_batch")]
    steps = [Step("id", ids, kind="batch"), Step("v", lambda row: row["id"], depends_on=["id"])]
    with pytest.raises(DatasetGenerationError) as caught:
        run(steps, engine, processors)
    assert str(caught.value) == (
        "row group 1: pre_batch processor 'fail_on_group_1' failed: "
        "RuntimeError: schema registry unavailable"
    )


@ENGINES
def test_the_runs_last_event_says_how_many_records_were_written(engine: str) -> None:
    result = run([Step("id", ids, kind="batch")], engine)
    last = result.events[-1]
    assert (last.machine, last.dest, dict(last.details)) == (
        "run",
        "completed",
        {"records_written": 4},
    )


@ENGINES
def test_successes_renew_a_models_budget_and_fatal_errors_do_not_spend_it(engine: str) -> None:
    """Every odd row's first call is a 429 and each call takes 20 ms, one at a time: 0.24 s in
    all, past the 0.1 s budget, but the successes in between keep the model alive. Rejected requests
    (4xx, fatal) are the request's fault, not the model's: they never spend the budget."""
    tried: set[int] = set()

    async def flaky(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.02)
        if row["id"] % 2 and row["id"] not in tried:
            tried.add(row["id"])
            raise RateLimitError("429 slow down", retry_after=0)
        if row["id"] == 6:
            raise ValueError("bad request")
        return row["id"]

    steps = [Step("id", ids, kind="batch"), Step("v", flaky, depends_on=["id"], resource="m")]
    result = run(
        steps,
        engine,
        records=8,
        buffer_size=8,
        max_parallel_requests={"m": 1},
        no_success_budget_s=0.1,
        disable_early_shutdown=True,
    )
    assert result.outcome == "partial" and not result.early_shutdown
    assert result.drop_reasons() == {"step 'v' failed: ValueError: bad request": 1}
    assert tried == {1, 3, 5, 7}


@ENGINES
def test_fatal_errors_alone_never_spend_a_models_budget(engine: str) -> None:
    async def rejected(row: dict[str, Any]) -> int:
        await asyncio.sleep(0.03)
        raise ValueError("bad request")

    steps = [Step("id", ids, kind="batch"), Step("v", rejected, depends_on=["id"], resource="m")]
    with pytest.raises(DatasetGenerationError) as caught:
        run(
            steps,
            engine,
            max_parallel_requests={"m": 1},
            no_success_budget_s=0.05,
            disable_early_shutdown=True,
        )
    assert type(caught.value) is DatasetGenerationError
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed" and not result.early_shutdown
    assert result.failed_cells == {"id": 0, "v": 4}


@ENGINES
def test_a_resumed_run_with_nothing_left_to_do_completes_having_opened_nothing(
    engine: str,
) -> None:
    steps = [Step("id", ids, kind="batch")]
    settings = RunConfig(buffer_size=2, engine=engine, **FAST)
    result = asyncio.run(run_steps_async(steps, 4, config=settings, row_groups=[]))
    assert (result.outcome, result.actual_records, result.target_records) == ("completed", 0, 0)
    assert result.early_shutdown is False
    assert result.stats["peak_open_row_groups"] == 0
    assert result.stats["workers_created"] == 0
