"""Longer provider-fault runs over HTTP, with the default budgets: `make soak` (minutes).

Skipped unless ROWFORGE_SOAK=1, so `make test` and CI never run them. Same checks as
`test_http_faults.py`, on bigger runs: nothing lost or duplicated when the provider recovers,
`EarlyShutdownError` naming column, model and status when it does not, quiet after return.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from rowforge.errors import EarlyShutdownError
from rowforge.models import MockSettings
from rowforge.models.faults import FaultPlan
from rowforge.models.mock_server import MockServer
from rowforge.storage.metadata import read_metadata
from tests.faults.test_http_faults import (
    QUIET_S,
    SEED,
    assert_accounting,
    assert_every_row_once_with_the_models_answer,
    assert_quiet,
    build,
)

pytestmark = pytest.mark.skipif(
    os.environ.get("ROWFORGE_SOAK") != "1", reason="soak runs take minutes: make soak"
)

#: The real defaults (RunConfig()), except the row group size the accounting helpers assume.
DEFAULTS: dict[str, Any] = {
    "retry_backoff_s": 0.5,
    "retry_backoff_max_s": 30.0,
    "retry_budget_s": 120.0,
    "no_success_budget_s": 300.0,
    "early_shutdown_window": 50,
}

MIXED = FaultPlan(
    rate_limit_rate=0.1, retry_after_s=0.5, status_rate=0.3, status=503, reset_rate=0.05, seed=3
)


@pytest.mark.parametrize("engine", ["async", "sync"])
@pytest.mark.asyncio
async def test_mixed_faults_over_a_long_run_lose_no_row(engine: str, tmp_path: Path) -> None:
    records = 2000 if engine == "async" else 300
    server = MockServer(MockSettings(seed=SEED, latency_ms=(1, 20)), faults=MIXED)
    async with server:
        result = await build(server, tmp_path, records=records, engine=engine, **DEFAULTS)
        await assert_quiet(server, QUIET_S)
    assert result.outcome == "completed"
    assert_every_row_once_with_the_models_answer(tmp_path, records)


@pytest.mark.asyncio
async def test_a_thirty_second_outage_is_ridden_out(tmp_path: Path) -> None:
    async with MockServer(MockSettings(seed=SEED), faults=FaultPlan(outage_s=30.0)) as server:
        result = await build(server, tmp_path, records=500, **DEFAULTS)
        await assert_quiet(server, QUIET_S)
    assert result.outcome == "completed"
    assert_every_row_once_with_the_models_answer(tmp_path, 500)


@pytest.mark.asyncio
async def test_ten_percent_hangs_past_a_two_second_timeout_lose_no_row(tmp_path: Path) -> None:
    async with MockServer(MockSettings(seed=SEED), faults=FaultPlan(hang_rate=0.1)) as server:
        result = await build(server, tmp_path, records=1000, model={"timeout_s": 2.0}, **DEFAULTS)
        await assert_quiet(server, QUIET_S)
    assert result.outcome == "completed"
    assert_every_row_once_with_the_models_answer(tmp_path, 1000)


@pytest.mark.asyncio
async def test_only_429_ends_after_the_default_no_success_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Five minutes: the default no_success_budget_s, with a degraded WARNING each minute."""
    caplog.set_level(logging.WARNING, logger="rowforge")
    async with MockServer(MockSettings(seed=SEED), faults=FaultPlan(rate_limit_rate=1.0)) as server:
        with pytest.raises(EarlyShutdownError) as caught:
            await build(server, tmp_path, records=200, **DEFAULTS)
        await assert_quiet(server, QUIET_S)
    message = str(caught.value)
    assert "model 'writer': no successful call for 300s" in message
    assert "rejected with HTTP 429 (rate limited)" in message and "step 'answer'" in message
    warnings = [r.getMessage() for r in caplog.records if "is degraded" in r.getMessage()]
    assert 5 <= len(warnings) <= 6, warnings
    assert read_metadata(tmp_path)["early_shutdown"] is True
    assert_accounting(tmp_path, 200)
