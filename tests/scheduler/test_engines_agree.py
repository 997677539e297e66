"""INV-11: with a fixed seed and deterministic steps, the async and sync engines agree."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowforge.errors import EarlyShutdownError
from rowforge.scheduler import RowFailed, RunConfig, Step, run_steps


def digest(*parts: Any) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def seeded_rows(frame: pd.DataFrame) -> list[int]:
    """A seed step: a per-record pseudo-random draw from a fixed seed."""
    return [random.Random(f"seed-42-{index}").randint(0, 10_000) for index in frame.index]


async def question(row: dict[str, Any]) -> str:
    await asyncio.sleep(digest("q", row["seed"]) % 3 / 1000)  # jitter reorders completions
    return f"question about {row['seed']}"


async def answer(row: dict[str, Any]) -> str:
    if digest("a", row["seed"]) % 7 == 0:
        raise ValueError("the model refused")  # deterministic row drops
    await asyncio.sleep(digest("a", row["seed"]) % 2 / 1000)
    return f"answer to {row['question']}"


def judge(frame: pd.DataFrame) -> pd.DataFrame:
    """A batch step with an extra column, failing single rows (`RowFailed`)."""
    scores = [
        RowFailed(ValueError("unjudgeable")) if digest("j", text) % 9 == 0 else len(text) % 5
        for text in frame["answer"]
    ]
    notes = [f"n{len(text)}" for text in frame["answer"]]
    return pd.DataFrame({"judge": scores, "note": notes}, index=frame.index)


def verdict(row: dict[str, Any]) -> str:
    return f"{row['judge']}:{row['note']}:{digest(row['question'], row['answer']) % 100}"


def answer_is_skipped(row: dict[str, Any]) -> bool:
    return row["seed"] % 4 == 0


STEPS = [
    Step("seed", seeded_rows, kind="batch"),
    Step("question", question, depends_on=["seed"], resource="gen"),
    # skipped on some rows: `judge` (propagating) skips them too, `verdict` runs on the skip value
    Step("answer", answer, depends_on=["question"], resource="gen",
         skip_when=answer_is_skipped, skip_value="(skipped)"),
    Step("judge", judge, kind="batch", depends_on=["answer"], resource="judge",
         extra_columns=["note"]),
    Step("verdict", verdict, depends_on=["note", "answer"], propagate_skip=False),
]


def run(engine: str, num_records: int, buffer_size: int, in_flight: int) -> Any:
    config = RunConfig(
        engine=engine,
        buffer_size=buffer_size,
        max_in_flight=in_flight,
        max_concurrent_row_groups=3,
        disable_early_shutdown=True,
        retry_backoff_s=0.0,
    )
    return run_steps(STEPS, num_records, config=config)


def test_async_and_sync_engines_write_identical_datasets() -> None:
    fast, oracle = run("async", 120, 25, 16), run("sync", 120, 25, 16)
    assert fast.engine == "async" and oracle.engine == "sync"
    assert 0 < fast.actual_records < 120, "the plan drops some rows, deterministically"
    assert fast.skipped_cells["answer"] > 0, "the skip condition holds for some rows"
    assert fast.failed_cells["judge"] > 0, "the batch step fails some rows alone"
    assert (fast.dataset["answer"] == "(skipped)").any()
    pd.testing.assert_frame_equal(fast.dataset, oracle.dataset)
    assert fast.skipped_cells == oracle.skipped_cells
    assert fast.failed_cells == oracle.failed_cells
    assert fast.generated_cells == oracle.generated_cells


@settings(max_examples=15, deadline=None)
@given(
    num_records=st.integers(1, 40),
    buffer_size=st.integers(1, 12),
    in_flight=st.integers(1, 12),
)
def test_engines_agree_for_any_sizes_and_caps(
    num_records: int, buffer_size: int, in_flight: int
) -> None:
    fast = run("async", num_records, buffer_size, in_flight)
    oracle = run("sync", num_records, buffer_size, in_flight)
    pd.testing.assert_frame_equal(fast.dataset, oracle.dataset)
    assert fast.outcome == oracle.outcome


def test_the_async_engine_is_deterministic_across_runs() -> None:
    pd.testing.assert_frame_equal(run("async", 60, 7, 5).dataset, run("async", 60, 7, 9).dataset)


def test_the_failure_that_trips_early_shutdown_counts_as_that_failure_in_both_engines() -> None:
    """The failure that trips the breaker is the step's failure, not an early-shutdown drop:
    its cell counts as failed in both engines (the async engine used to start the drain first
    and record that row as dropped by "early shutdown", its cell as skipped)."""

    def refused(row: dict[str, Any]) -> int:
        raise ValueError("the model refused")

    steps = [
        Step("seed", seeded_rows, kind="batch"),
        Step("v", refused, depends_on=["seed"], resource="m"),
    ]
    outcomes = {}
    for engine in ("async", "sync"):
        config = RunConfig(
            buffer_size=2, engine=engine, early_shutdown_window=2, retry_backoff_s=0.0
        )
        with pytest.raises(EarlyShutdownError) as caught:
            run_steps(steps, 2, config=config)
        result = caught.value.result  # type: ignore[attr-defined]
        outcomes[engine] = (result.drop_reasons(), result.failed_cells, result.skipped_cells)
    assert outcomes["async"] == outcomes["sync"] == (
        {"step 'v' failed: ValueError: the model refused": 2},
        {"seed": 0, "v": 2},
        {"seed": 0, "v": 0},
    )
