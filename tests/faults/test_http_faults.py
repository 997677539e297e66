"""Provider faults over real HTTP: `rowforge.build` against the mock server on 127.0.0.1.

Each test starts a `MockServer` with a `FaultPlan` in the test's loop, runs `build()` in a
worker thread (it has its own loop) with an "openai" model pointing at the server and small
budgets, and checks:

- the outcome: faults that recover lose no row and duplicate none (every record 0..n-1 once,
  with the very answer the mock model gives for its prompt); faults that do not recover raise
  `EarlyShutdownError` naming the column (step), the model and the status;
- the accounting: the Parquet rows are metadata's `actual_num_records`, and written + dropped
  (+ row groups never started) is the target, row group by row group;
- quiet after return: the server's request counter does not move for `QUIET_S` (2 s) after
  `build()` returned or raised.

The same faults on a virtual clock with the real default budgets: `test_issue_items.py`.
Longer variants (bigger runs, a 30 s outage): `test_soak.py`, run by `make soak`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import rowforge
from rowforge.config.columns import IntegerSampler, LLMTextColumn
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import EarlyShutdownError
from rowforge.models import MockSettings, ModelConfig, mock_reply
from rowforge.models.faults import FaultInjector, FaultPlan
from rowforge.models.mock_server import MockServer
from rowforge.scheduler import RunConfig
from rowforge.storage.metadata import read_metadata

SEED = 11
RECORDS = 40
BUFFER = 10
QUIET_S = 2.0
PROMPT = "Write one line about topic {{ topic }}."

#: Small budgets so a test takes about a second; the defaults are minutes.
FAST: dict[str, Any] = {
    "buffer_size": BUFFER,
    "retry_backoff_s": 0.02,
    "retry_backoff_max_s": 0.2,
    "retry_budget_s": 3.0,
    "no_success_budget_s": 1.0,
    "early_shutdown_window": 10,
    "stall_warning_s": 60.0,
}


def dataset(url: str, **model: Any) -> DatasetConfig:
    writer = ModelConfig(
        "writer",
        provider="openai",
        base_url=url,
        max_parallel_requests=8,
        timeout_s=model.pop("timeout_s", 5.0),
        **model,
    )
    return DatasetConfig(
        [
            IntegerSampler(name="topic", low=0, high=10**9),
            LLMTextColumn(name="answer", model="writer", prompt=PROMPT),
        ],
        models=[writer],
        seed=SEED,
    )


async def build(
    server: MockServer, output: Path, records: int = RECORDS, model: Any = None, **run: Any
) -> rowforge.api.BuildResult:
    config = dataset(server.url, **(model or {}))
    return await asyncio.to_thread(
        rowforge.build, config, records, output, RunConfig(**{**FAST, **run})
    )


async def assert_quiet(server: MockServer, seconds: float) -> None:
    """No request reaches the server after build() returned (INV-2 over the wire)."""
    before = server.request_count
    await asyncio.sleep(seconds)
    assert server.request_count == before, "a request reached the server after build() returned"


def assert_accounting(output: Path, target: int) -> pd.DataFrame:
    """Parquet rows == actual; per row group written + dropped == planned; in total
    written + dropped + never started == target; no record twice."""
    metadata = read_metadata(output)
    paths = metadata["file_paths"]
    frame = pd.read_parquet(output / "parquet-files") if paths else pd.DataFrame()
    assert len(frame) == metadata["actual_num_records"]
    assert frame.index.is_unique, "a record was written twice"
    planned = {i: min(BUFFER, target - i * BUFFER) for i in range(math.ceil(target / BUFFER))}
    groups = metadata["row_groups"]
    for group in groups:
        assert group["records_written"] + group["records_dropped"] == planned[group["index"]]
    never = sum(
        size for index, size in planned.items() if index not in {g["index"] for g in groups}
    )
    dropped = sum(group["records_dropped"] for group in groups)
    assert metadata["actual_num_records"] + dropped + never == target
    assert metadata["dropped_records"] == dropped + never
    return frame


def assert_every_row_once_with_the_models_answer(output: Path, records: int = RECORDS) -> None:
    frame = assert_accounting(output, records).sort_index()
    assert list(frame.index) == list(range(records)), "rows lost or duplicated"
    settings = MockSettings(seed=SEED)
    for topic, answer in zip(frame["topic"], frame["answer"], strict=True):
        content = PROMPT.replace("{{ topic }}", str(topic))
        assert answer == mock_reply(settings, [{"role": "user", "content": content}])
    metadata = read_metadata(output)
    assert metadata["outcome"] == "completed" and metadata["early_shutdown"] is False


def degraded(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is degraded" in r.getMessage()]


# -- faults a run must ride out: nothing lost, nothing duplicated --------------------------------

RECOVERING = {
    "30% 429 with Retry-After": (FaultPlan(rate_limit_rate=0.3, retry_after_s=0.05), {}, {}),
    "30% 429 without Retry-After": (FaultPlan(rate_limit_rate=0.3), {}, {}),
    "30% 503": (FaultPlan(status_rate=0.3, status=503), {}, {}),
    "50% 500": (FaultPlan(status_rate=0.5, status=500), {}, {}),
    "30% connection resets mid-response": (FaultPlan(reset_rate=0.3), {}, {}),
    "slowly trickling bodies": (FaultPlan(trickle_ms=5, trickle_bytes=64), {}, {}),
    "20% hangs past a 0.3 s timeout": (FaultPlan(hang_rate=0.2), {"timeout_s": 0.3}, {}),
}


@pytest.mark.parametrize("case", sorted(RECOVERING))
@pytest.mark.asyncio
async def test_recovering_faults_lose_and_duplicate_no_row(case: str, tmp_path: Path) -> None:
    plan, model, run = RECOVERING[case]
    async with MockServer(MockSettings(seed=SEED), faults=plan) as server:
        result = await build(server, tmp_path, model=model, **run)
        await assert_quiet(server, QUIET_S)
        injected = sum(server.injector.counts.values())
    assert result.outcome == "completed"
    assert_every_row_once_with_the_models_answer(tmp_path)
    if plan.trickle_ms:
        assert injected == 0 and server.request_count == RECORDS, "one request per row"
    else:
        assert injected > 0, "the plan injected faults"
        assert server.request_count == RECORDS + injected, "one retry per injected fault"


@pytest.mark.asyncio
async def test_thirty_percent_503_loses_no_row_on_the_sync_engine_either(tmp_path: Path) -> None:
    async with MockServer(MockSettings(seed=SEED), faults=FaultPlan(status_rate=0.3)) as server:
        result = await build(server, tmp_path, engine="sync")
        await assert_quiet(server, QUIET_S)
    assert result.outcome == "completed" and result.metadata["engine"] == "sync"
    assert_every_row_once_with_the_models_answer(tmp_path)


@pytest.mark.asyncio
async def test_a_five_second_outage_at_the_start_is_ridden_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 8's case exactly: 5 s of 503 from the first request on, then recovery. The retry
    budget (10 s here, 120 s by default) outlasts it; the backoff cap keeps retries coming."""
    caplog.set_level(logging.WARNING, logger="rowforge")
    plan = FaultPlan(outage_s=5.0)
    async with MockServer(MockSettings(seed=SEED), faults=plan) as server:
        result = await build(
            server, tmp_path, retry_budget_s=10.0, retry_backoff_max_s=0.5, no_success_budget_s=30
        )
        await assert_quiet(server, QUIET_S)
        outage_answers = server.injector.counts["outage"]
    assert result.outcome == "completed"
    assert_every_row_once_with_the_models_answer(tmp_path)
    assert outage_answers > RECORDS // 2, "the run did hit the outage"
    warnings = degraded(caplog)
    assert len(warnings) == 1, "a 5 s outage is one degraded warning (at most one a minute)"
    assert "HTTP 503 x " in warnings[0]


# -- providers that never recover: EarlyShutdownError naming column, model and status -----------

BROKEN = {
    "100% 429 with Retry-After": (
        FaultPlan(rate_limit_rate=1.0, retry_after_s=0.1),
        {},
        "no successful call for 1s; the last {n} calls were rejected with HTTP 429 (rate limited)",
    ),
    "100% 429 without Retry-After": (
        FaultPlan(rate_limit_rate=1.0),
        {},
        "rejected with HTTP 429 (rate limited)",
    ),
    "100% 500": (
        FaultPlan(status_rate=1.0, status=500),
        {"retry_budget_s": 0.5},
        "10 of the last 10 model tasks failed (HTTP 500 x 10",
    ),
    # Either the breaker (tasks spent their budgets) or the no-success budget ends these
    # first, depending on timing; both name the failure the same way.
    "every request hangs past the timeout": (
        FaultPlan(hang_rate=1.0),
        {"retry_budget_s": 0.5, "model": {"timeout_s": 0.2}},
        "timeout",
    ),
    "every reply reset mid-response": (
        FaultPlan(reset_rate=1.0),
        {"retry_budget_s": 0.5},
        "connection error",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.asyncio
async def test_a_broken_provider_raises_early_shutdown_naming_column_model_and_status(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")
    plan, options, expected = BROKEN[case]
    options = dict(options)
    model = options.pop("model", None)
    async with MockServer(MockSettings(seed=SEED), faults=plan) as server:
        with pytest.raises(EarlyShutdownError) as caught:
            await build(server, tmp_path, model=model, **options)
        await assert_quiet(server, QUIET_S)
    message = str(caught.value)
    assert message.startswith("early shutdown: ")
    assert "step 'answer'" in message and "model 'writer'" in message
    if "{n}" in expected:
        head, tail = expected.split("{n}")
        assert head in message and tail in message, message
    elif expected in ("timeout", "connection error"):
        assert f"({expected} x " in message or f"calls failed ({expected})" in message, message
    else:
        assert expected in message, message
    metadata = read_metadata(tmp_path)
    assert metadata["early_shutdown"] is True
    assert metadata["outcome"] == "failed" and metadata["actual_num_records"] == 0
    assert metadata["first_error"] and metadata["first_error"] in message
    assert_accounting(tmp_path, RECORDS)
    warnings = degraded(caplog)
    assert warnings, "a degraded-provider WARNING came before the end"
    assert warnings[0].startswith("model 'writer' is degraded: 100% of the last ")


@pytest.mark.asyncio
async def test_only_429_on_the_sync_engine_ends_the_same_way(tmp_path: Path) -> None:
    plan = FaultPlan(rate_limit_rate=1.0, retry_after_s=0.1)
    async with MockServer(MockSettings(seed=SEED), faults=plan) as server:
        with pytest.raises(EarlyShutdownError, match=r"rejected with HTTP 429 \(rate limited\)"):
            await build(server, tmp_path, engine="sync")
        await assert_quiet(server, QUIET_S)
    assert read_metadata(tmp_path)["early_shutdown"] is True


@pytest.mark.asyncio
async def test_a_provider_that_breaks_mid_run_keeps_the_rows_written_before(
    tmp_path: Path,
) -> None:
    """The provider goes down for good after 25 requests: with one row group open at a time
    at least two are on disk by then. build() raises, those complete rows stay, metadata says
    early_shutdown."""
    async with MockServer(MockSettings(seed=SEED, latency_ms=(2, 2))) as server:
        running = asyncio.create_task(
            build(server, tmp_path, records=400, retry_budget_s=0.3, max_concurrent_row_groups=1)
        )
        while server.request_count < 25 and not running.done():
            await asyncio.sleep(0.001)
        server.faults = FaultPlan(outage_s=3600.0)
        server.injector = FaultInjector(server.faults)
        with pytest.raises(EarlyShutdownError) as caught:
            await running
        await assert_quiet(server, QUIET_S)
    metadata = read_metadata(tmp_path)
    assert metadata["early_shutdown"] is True and metadata["outcome"] == "partial"
    frame = assert_accounting(tmp_path, 400)
    assert 20 <= len(frame) < 400 and frame.notna().all().all()
    assert "HTTP 503" in str(caught.value) and "step 'answer'" in str(caught.value)
