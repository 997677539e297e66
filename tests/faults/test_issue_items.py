"""Issue 9, items 6, 7, 8, 9 and 11, at the engine level, on both engines.

Steps here stand in for a model column (`resource="writer"`) and raise what `OpenAIClient`
raises. The runs use the real default budgets (minutes) on a virtual clock
(`tests.faults.virtual_time`), so each takes milliseconds while `loop.time()` says how long it
would have taken. The same faults over real HTTP are in `test_http_faults.py`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge import errors
from rowforge.build import build_steps
from rowforge.errors import DatasetGenerationError, RateLimitError, RetryableError
from rowforge.scheduler import RunConfig, Step, run_steps, run_steps_async
from rowforge.storage.metadata import read_metadata
from tests.faults.virtual_time import run_virtual

ENGINES = ["async", "sync"]
QUIET = {"stall_warning_s": 3600.0}


def seed_ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def model_steps(answer: Any) -> list[Step]:
    return [
        Step("id", seed_ids, kind="batch"),
        Step("answer", answer, depends_on=["id"], resource="writer"),
    ]


def draw(*parts: Any) -> int:
    """A deterministic number in [0, 100) for (row, attempt): the fault dice."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16) % 100


class Provider:
    """Counts attempts per row and the virtual time of each call."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.times: dict[int, list[float]] = {}

    def called(self, row: dict[str, Any]) -> int:
        import asyncio

        ident = int(row["id"])
        self.times.setdefault(ident, []).append(asyncio.get_running_loop().time())
        self.attempts[ident] = self.attempts.get(ident, 0) + 1
        return self.attempts[ident] - 1


def degraded_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "is degraded" in r.getMessage()
    ]


# -- item 6: a provider that only answers 429 --------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_only_429_warns_once_a_minute_and_ends_within_the_no_success_budget_naming_429(
    engine: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = Provider()

    async def answer(row: dict[str, Any]) -> str:
        provider.called(row)
        raise RateLimitError("model 'writer' (http://x/v1): HTTP 429 rate limited: slow down")

    caplog.set_level(logging.WARNING, logger="rowforge")
    config = RunConfig(engine=engine, **QUIET)  # type: ignore[arg-type]
    outcome, elapsed = run_virtual(
        monkeypatch, run_steps_async(model_steps(answer), 20, config=config)
    )
    assert isinstance(outcome, DatasetGenerationError), outcome
    message = str(outcome)
    assert "model 'writer'" in message and "step 'answer'" in message
    assert "no successful call for 300s" in message
    assert "rejected with HTTP 429 (rate limited)" in message
    # The budget, plus at most one wait (backoff up to 30 s) and one call to learn it is spent.
    assert 300 <= elapsed <= 331, f"the run kept trying for {elapsed:.0f}s without a success"
    assert isinstance(outcome, errors.EarlyShutdownError)

    warnings = degraded_warnings(caplog)
    assert 1 <= len(warnings) <= 6, warnings  # at most once per 60 s of a 300 s run
    first = warnings[0]
    assert first.startswith("model 'writer' is degraded: 100% of the last ")
    assert "calls were rejected (HTTP 429 x " in first
    assert "honouring Retry-After up to 300s" in first
    assert "giving up after 300s without a success" in first


# -- item 7: Retry-After above the backoff cap ---------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("asked", "waited"), [(120.0, 120.0), (1000.0, 300.0)])
def test_retry_after_is_honoured_up_to_max_retry_after_s(
    engine: str, asked: float, waited: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = Provider()

    async def answer(row: dict[str, Any]) -> str:
        if provider.called(row) == 0:
            raise RateLimitError("HTTP 429 rate limited", retry_after=asked)
        return "ok"

    config = RunConfig(engine=engine, max_concurrent_row_groups=1, **QUIET)  # type: ignore[arg-type]
    outcome, _ = run_virtual(monkeypatch, run_steps_async(model_steps(answer), 3, config=config))
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.outcome == "completed"
    gaps = [times[1] - times[0] for times in provider.times.values()]
    assert len(gaps) == 3
    assert all(waited <= gap < waited + 1 for gap in gaps), gaps


# -- item 8: transient errors ride out outages ---------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_thirty_percent_503_loses_no_rows(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = Provider()

    async def answer(row: dict[str, Any]) -> str:
        attempt = provider.called(row)
        if draw(row["id"], attempt) < 30:
            raise RetryableError("HTTP 503: overloaded")
        return f"answer {row['id']}"

    config = RunConfig(engine=engine, buffer_size=250, **QUIET)  # type: ignore[arg-type]
    outcome, _ = run_virtual(monkeypatch, run_steps_async(model_steps(answer), 1000, config=config))
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.outcome == "completed" and outcome.actual_records == 1000
    assert max(provider.attempts.values()) >= 5, "some row needed more than 3 retries"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("outage_s", [5.0, 30.0])
def test_an_outage_at_the_start_is_ridden_out_without_losing_a_row(
    engine: str, outage_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    state: dict[str, float] = {}

    async def answer(row: dict[str, Any]) -> str:
        now = asyncio.get_running_loop().time()
        start = state.setdefault("start", now)
        if now - start < outage_s:
            raise RetryableError("HTTP 503: service unavailable")
        return f"answer {row['id']}"

    config = RunConfig(engine=engine, buffer_size=50, **QUIET)  # type: ignore[arg-type]
    outcome, elapsed = run_virtual(
        monkeypatch, run_steps_async(model_steps(answer), 200, config=config)
    )
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.outcome == "completed" and outcome.actual_records == 200
    assert not outcome.early_shutdown
    assert elapsed >= outage_s


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dead_provider_trips_early_shutdown_once_the_retry_budget_is_spent(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = Provider()

    async def answer(row: dict[str, Any]) -> str:
        provider.called(row)
        raise RetryableError("model 'writer' (http://x/v1): HTTP 503: unavailable", status=503)

    config = RunConfig(engine=engine, **QUIET)  # type: ignore[arg-type]
    outcome, elapsed = run_virtual(
        monkeypatch, run_steps_async(model_steps(answer), 200, config=config)
    )
    assert isinstance(outcome, errors.EarlyShutdownError), outcome
    message = str(outcome)
    assert "step 'answer'" in message and "model 'writer'" in message and "HTTP 503" in message
    if engine == "async":
        # Every task spends its 120 s budget (plus the last failed call), then fails; the
        # breaker trips on the 50th failure, not any earlier, and not on the clock.
        assert "50 of the last 50 model tasks failed (HTTP 503 x 50" in message
        assert 119.9 <= elapsed <= 125, f"gave up after {elapsed:.0f}s; the retry budget is 120s"
    else:
        # One task at a time: the first fails after 120 s, the breaker never fills its window,
        # and the no-success budget ends the run after 300 s (plus at most one 30 s backoff).
        assert "no successful call for 300s" in message
        assert "rejected with HTTP 503 (service unavailable)" in message
        assert 300 <= elapsed <= 331
        first_row_attempts = provider.times[0]
        assert 119.9 <= first_row_attempts[-1] - first_row_attempts[0] <= 120.1


# -- item 9: early shutdown raises, even when rows were salvaged ---------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_early_shutdown_with_salvaged_rows_raises_and_keeps_them_on_disk(
    engine: str, tmp_path: Path
) -> None:
    def answer(row: dict[str, Any]) -> str:
        if row["id"] >= 20:
            raise ValueError("HTTP 400: the provider refuses this prompt")
        return f"answer {row['id']}"

    config = RunConfig(
        engine=engine,  # type: ignore[arg-type]
        buffer_size=10,
        max_concurrent_row_groups=1,
        early_shutdown_window=4,
        retry_backoff_s=0.0,
        **QUIET,
    )
    with pytest.raises(DatasetGenerationError) as caught:
        build_steps(model_steps(answer), 80, tmp_path, config=config)
    assert type(caught.value).__name__ == "EarlyShutdownError"
    assert "early shutdown" in str(caught.value)
    metadata = read_metadata(tmp_path)
    assert metadata["early_shutdown"] is True
    assert metadata["outcome"] == "partial"
    assert metadata["actual_num_records"] == 20
    written = pd.read_parquet(tmp_path / "parquet-files")
    assert sorted(written.index) == list(range(20))
    assert caught.value.result.actual_records == 20  # type: ignore[attr-defined]


def test_ordinary_drops_still_follow_on_partial() -> None:
    def answer(row: dict[str, Any]) -> str:
        if row["id"] == 3:
            raise ValueError("HTTP 400: refused")
        return "ok"

    result = run_steps(model_steps(answer), 10, config=RunConfig(**QUIET))
    assert result.outcome == "partial" and result.actual_records == 9
    assert not result.early_shutdown


# -- item 11: the breaker counts model-bound tasks only ------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_the_shutdown_message_counts_only_model_bound_tasks(engine: str) -> None:
    def answer(row: dict[str, Any]) -> str:
        raise ValueError("HTTP 400: refused")

    config = RunConfig(
        engine=engine,  # type: ignore[arg-type]
        buffer_size=2,
        early_shutdown_window=10,
        early_shutdown_error_rate=0.5,
        **QUIET,
    )
    with pytest.raises(DatasetGenerationError) as caught:
        run_steps(model_steps(answer), 100, config=config)
    message = str(caught.value)
    assert "early shutdown: 10 of the last 10 model tasks failed" in message, message
