"""Failure semantics of data-designer builds on rowforge (`rowforge.integrations.data_designer`),
through data-designer's public API only (`DataDesigner.create`, the config builder, `RunConfig`)
against the mock server:

1. a processor that raises fails `create()` with data-designer's error, rowforge's chained;
2. a model that rejects every request trips rowforge's early shutdown: `create()` raises
   `DataDesignerEarlyShutdownError` and nothing calls the model afterwards;
3. a model that rejects some requests (early shutdown off) gives a partial dataset, with
   data-designer's and rowforge's warnings;
4. Ctrl-C during `create()` propagates and leaves no request and no task running;
5. rate limits are retried by rowforge alone (data-designer's retry loop and request admission
   are bypassed), and every record arrives.

Requests the mock refuses (`MockSettings.refusal_rate`) are answered 400, which data-designer
raises as `ModelBadRequestError`: not one of the errors rowforge retries, so it fails the cell.
Models that meet injected faults skip data-designer's health check (`skip_health_check=True`):
the check runs before the build, outside rowforge, and would itself meet the fault.

The builds are driven through the public API only; to observe them, some tests wrap methods of
data-designer's `ModelRequestExecutor` (counting or timing calls, changing nothing) and look at
the tasks on its background event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "data_designer.interface",
    reason="data-designer is not installed (the `data-designer` extra: pip install -e '.[dev]')",
)

import pandas as pd

from rowforge import errors as rowforge_errors
from rowforge.models import MockSettings
from rowforge.models.faults import FaultPlan
from tests.integrations import dd_support as support

# isort: split
# data-designer's submodules only once dd_support set the environment they read at import.
import data_designer.config as dd
from data_designer.engine.dataset_builders import errors as dd_builder_errors
from data_designer.engine.dataset_builders.utils.async_concurrency import (
    ensure_async_engine_loop,
)
from data_designer.engine.models.clients.model_request_executor import ModelRequestExecutor
from data_designer.interface import DataDesignerEarlyShutdownError, DataDesignerGenerationError

#: How long the server's request counter must stay still after a run ended.
QUIET_S = 0.5
#: How long the server may take to count a request a client had sent before the run ended: a
#: request started a moment before a cancellation and cancelled by it may reach the server's
#: thread (which counts it) just after `create()` returned.
SETTLE_S = 0.2


@pytest.fixture
def rowforge_engine() -> Iterator[None]:
    with support.engine("rowforge"):
        yield


def _model(alias: str, max_parallel_requests: int = 8) -> dd.ModelConfig:
    """The mock model under `alias`, without data-designer's pre-build health check."""
    return dd.ModelConfig(
        alias=alias,
        model=support.MOCK_MODEL,
        provider=support.PROVIDER,
        skip_health_check=True,
        inference_parameters=dd.ChatCompletionInferenceParams(
            max_parallel_requests=max_parallel_requests, timeout=30
        ),
    )


def _questions_config(alias: str, *, answers: bool = False) -> dd.DataDesignerConfigBuilder:
    """Two samplers and an LLM `question` on them (and an LLM `answer` on it): distinct
    prompts, so the mock's per-body fault draws differ from row to row."""
    builder = dd.DataDesignerConfigBuilder(model_configs=[_model(alias)])
    builder.add_column(support.category_sampler("topic", support.TOPICS))
    builder.add_column(
        dd.SamplerColumnConfig(
            name="ticket",
            sampler_type=dd.SamplerType.UNIFORM,
            params=dd.UniformSamplerParams(low=0, high=1_000_000),
            convert_to="int",
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="question",
            model_alias=alias,
            prompt="Ask a customer-support question about {{ topic }} (ticket {{ ticket }}).",
        )
    )
    if answers:
        builder.add_column(
            dd.LLMTextColumnConfig(
                name="answer", model_alias=alias, prompt="Answer this question: {{ question }}"
            )
        )
    return builder


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and its `__cause__` chain."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__
    return chain


def _assert_quiet(server: support.DataDesignerMockServer) -> int:
    """Once the requests already on the wire are counted (`SETTLE_S`), the server gets none for
    `QUIET_S`: nothing is still calling the model. Returns the server's request count."""
    time.sleep(SETTLE_S)
    before = server.request_count
    time.sleep(QUIET_S)
    assert server.request_count == before, (
        f"{server.request_count - before} requests reached the mock server "
        f"{SETTLE_S:g}-{SETTLE_S + QUIET_S:g}s after create() ended"
    )
    return before


@pytest.fixture
def model_calls(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The `time.monotonic()` at which each chat request of data-designer's model clients
    started (`ModelRequestExecutor.acompletion`, the call every LLM column makes)."""
    starts: list[float] = []
    acompletion = ModelRequestExecutor.acompletion

    async def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        starts.append(time.monotonic())
        return await acompletion(self, *args, **kwargs)

    monkeypatch.setattr(ModelRequestExecutor, "acompletion", recorded)
    return starts


def _warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
        and (record.name == logger or record.name.startswith(logger + "."))
    ]


def _pending_loop_tasks() -> list[asyncio.Task[Any]]:
    """The unfinished tasks on data-designer's background event loop (the probe excluded)."""

    async def probe() -> list[asyncio.Task[Any]]:
        me = asyncio.current_task()
        return [task for task in asyncio.all_tasks() if task is not me and not task.done()]

    loop = ensure_async_engine_loop()
    return asyncio.run_coroutine_threadsafe(probe(), loop).result(timeout=10)


# --- 1. a raising processor -------------------------------------------------------------------

BROKEN_PROCESSOR = "broken_transform"


def test_a_raising_processor_raises_through_create(rowforge_engine: None, tmp_path: Path) -> None:
    """A schema-transform processor whose template raises at render (`n // divisor` with
    divisor 0) for the seed rows 5-9, i.e. for one of the two row groups of 5 (the seed dataset
    is read in order, one row group's draw at a time)."""
    seed = pd.DataFrame({"n": range(10), "divisor": [1] * 5 + [0] * 5})
    builder = dd.DataDesignerConfigBuilder(model_configs=support.model_configs(4))
    builder.with_seed_dataset(dd.DataFrameSeedSource(df=seed))
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="question", model_alias=support.TEXT_ALIAS, prompt="Ask about item {{ n }}."
        )
    )
    builder.add_processor(
        dd.SchemaTransformProcessorConfig(
            name=BROKEN_PROCESSOR, template={"n": "{{ n }}", "quotient": "{{ n // divisor }}"}
        )
    )
    with support.mock_server() as server:
        designer = support.make_data_designer(
            server.url, tmp_path, run_config=support.quiet_run_config(buffer_size=5)
        )
        with pytest.raises(DataDesignerGenerationError) as raised:
            designer.create(builder, num_records=10)

    error = raised.value
    assert not isinstance(error, DataDesignerEarlyShutdownError)
    chain = _causes(error)
    types = [type(cause) for cause in chain]
    host = [c for c in chain if isinstance(c, dd_builder_errors.DatasetGenerationError)]
    ours = [c for c in chain if isinstance(c, rowforge_errors.DatasetGenerationError)]
    assert host, f"no data-designer DatasetGenerationError in the cause chain {types}"
    assert ours, f"no rowforge DatasetGenerationError in the cause chain {types}"
    assert any(isinstance(c, ZeroDivisionError) for c in chain), types
    # data-designer names a processor by its class (`ConfigurableTask.name`), in its own
    # "Failed in process_after_batch for SchemaTransformProcessor" message, which every wrapper
    # (rowforge's, data-designer's builder error, the interface error) carries on.
    for message in (str(error), str(host[0]), str(ours[0])):
        assert "Failed in process_after_batch for SchemaTransformProcessor" in message, message
        assert "integer division or modulo by zero" in message, message

    found = re.search(r"row group (\d+)", str(ours[0]))
    assert found is not None, str(ours[0])
    failed_group = int(found.group(1))
    artifacts = tmp_path / "artifacts"
    parquet = sorted(artifacts.rglob("*.parquet"))
    # Nothing of the failing row group was written: no final batch file, no processor output,
    # no partial file.
    assert not [p for p in parquet if p.stem.endswith(f"_{failed_group:05d}")], parquet
    # What may exist is the other row group (it can finish before the failure stops the run),
    # and then only with its own rows.
    other = 1 - failed_group
    assert {p.name for p in parquet} <= {f"batch_{other:05d}.parquet"}, parquet
    for path in parquet:
        if path.parent.name == "parquet-files":
            written = pd.read_parquet(path)
            assert len(written) == 5 and (written["divisor"] == 1).all(), written


# --- 2. early shutdown drains -----------------------------------------------------------------


def test_early_shutdown_raises_and_leaves_the_model_alone(
    rowforge_engine: None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    model_calls: list[float],
) -> None:
    """Every request of the only model is refused (400, not retried): rowforge's early
    shutdown trips after its window (10 outcomes), `create()` raises data-designer's
    `DataDesignerEarlyShutdownError`, and no request follows."""
    caplog.set_level(logging.WARNING)
    records = 200
    settings = MockSettings(refusal_rate=1.0, latency_ms=(5.0, 20.0))
    with support.mock_server(settings) as server:
        designer = support.make_data_designer(server.url, tmp_path)
        with pytest.raises(DataDesignerEarlyShutdownError):
            designer.create(_questions_config("refusing"), num_records=records)
        ended = time.monotonic()
        requests = _assert_quiet(server)

    assert model_calls and max(model_calls) < ended  # no model call started after create()
    # (A call the shutdown cancelled before it wrote its request never reached the server.)
    assert requests <= len(model_calls)

    # The run stopped early: one request per row at most (a 400 is not retried), and far from
    # one per row.
    assert 10 <= requests < records // 2, requests
    messages = _warnings(caplog, "data_designer")
    assert any(
        f"Generated 0 of {records} requested records" in m and "Early shutdown was triggered" in m
        for m in messages
    ), messages
    assert not list((tmp_path / "artifacts").rglob("*.parquet"))
    # ... and the warning that names the model and how it failed, which the above points at
    assert any(
        "rowforge ended the build early" in m and "refusing" in m for m in messages
    ), messages


# --- 3. a partial build -----------------------------------------------------------------------


def test_a_partial_build_is_returned_with_warnings(
    rowforge_engine: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fifth of the requests are refused (400, not retried) and early shutdown is off
    (data-designer's `RunConfig.disable_early_shutdown`): `create()` returns the rows that
    made it, and both data-designer and rowforge warn of the partial dataset."""
    caplog.set_level(logging.WARNING)
    records = 100
    support.seed_samplers(7)
    with support.mock_server(MockSettings(refusal_rate=0.2)) as server:
        designer = support.make_data_designer(
            server.url, tmp_path, run_config=support.quiet_run_config(disable_early_shutdown=True)
        )
        results = designer.create(_questions_config("flaky"), num_records=records)
        requests = _assert_quiet(server)

    assert requests == records  # one request per row: refusals are not retried
    actual = results.count_records()
    dataset = results.load_dataset()
    assert 0 < actual < records and len(dataset) == actual
    assert dataset["question"].map(lambda text: isinstance(text, str) and bool(text)).all()
    dropped = records - actual

    ours = _warnings(caplog, "rowforge")
    assert any(
        f"partial dataset: target {records} records, actual {actual}, dropped {dropped}" in m
        and "step 'question' failed" in m
        for m in ours
    ), ours
    theirs = _warnings(caplog, "data_designer")
    assert any(
        f"Generated {actual} of {records} requested records" in m
        and "incomplete due to dropped rows" in m
        for m in theirs
    ), theirs


# --- 4. Ctrl-C --------------------------------------------------------------------------------


def test_ctrl_c_leaves_no_request_and_no_task_running(
    rowforge_engine: None, tmp_path: Path, model_calls: list[float]
) -> None:
    """SIGINT reaches the main thread while `create()` waits for a build that would take
    ~20 s (400 records, two LLM columns, 200 ms a request, 8 at once): KeyboardInterrupt comes
    out of `create()`, no request follows, and no task is left on data-designer's loop.

    The interrupt is a real SIGINT sent to the main thread (`signal.pthread_kill`), as Ctrl-C
    is. `_thread.interrupt_main()` only flags SIGINT: the main thread, blocked in
    `concurrent.futures.Future.result()` on data-designer's loop, is not woken and raises
    KeyboardInterrupt only once the whole build has finished."""
    baseline = _pending_loop_tasks()  # data-designer's own idle tasks: none, with rowforge off
    main = threading.main_thread()
    assert threading.current_thread() is main
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()
    sent = threading.Event()

    with support.mock_server(MockSettings(latency_ms=(200.0, 200.0))) as server:
        designer = support.make_data_designer(server.url, tmp_path)

        def interrupt() -> None:
            started = time.monotonic()
            while time.monotonic() - started < 1.0 or server.request_count < 10:
                if stop.wait(0.02):
                    return
            sent.set()
            assert main.ident is not None
            signal.pthread_kill(main.ident, signal.SIGINT)

        timer = threading.Thread(target=interrupt, name="ctrl-c", daemon=True)
        try:
            timer.start()
            began = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                designer.create(_questions_config("slow", answers=True), num_records=400)
            ended = time.monotonic()
        finally:
            stop.set()
            timer.join(timeout=10)
            signal.signal(signal.SIGINT, previous)
        assert sent.is_set()
        # No task is left on data-designer's loop when create() has raised, nor afterwards.
        leftover = [task for task in _pending_loop_tasks() if task not in baseline]
        assert not leftover, leftover
        requests = _assert_quiet(server)

    assert requests < 100, requests  # cut short: 800 requests without the interrupt
    assert ended - began < 10, ended - began
    assert model_calls and max(model_calls) < ended  # no model call started after create()
    leftover = [task for task in _pending_loop_tasks() if task not in baseline]
    assert not leftover, leftover


# --- 5. retries are rowforge's alone --------------------------------------------------------


RATE_LIMITS = FaultPlan(rate_limit_rate=0.3, retry_after_s=0.01, seed=3)


def _rate_limited_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: int
) -> tuple[pd.DataFrame, int, int, dict[str, int]]:
    """Build `records` rows of two LLM columns against `RATE_LIMITS`, counting the calls of
    data-designer's retry rule (`ModelRequestExecutor._should_retry`, asked after every failed
    attempt of its retry loop) and of its leased attempts (`_execute_async_attempt`, which takes
    a request-admission lease). Returns the dataset, the requests the server got, the 429s it
    sent, and the counts."""
    calls = {"_should_retry": 0, "_execute_async_attempt": 0}
    should_retry = ModelRequestExecutor._should_retry
    attempt = ModelRequestExecutor._execute_async_attempt

    def counted_should_retry(self: Any, *args: Any, **kwargs: Any) -> bool:
        calls["_should_retry"] += 1
        return bool(should_retry(self, *args, **kwargs))

    async def counted_attempt(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["_execute_async_attempt"] += 1
        return await attempt(self, *args, **kwargs)

    monkeypatch.setattr(ModelRequestExecutor, "_should_retry", counted_should_retry)
    monkeypatch.setattr(ModelRequestExecutor, "_execute_async_attempt", counted_attempt)
    with support.mock_server(faults=RATE_LIMITS) as server:
        designer = support.make_data_designer(server.url, tmp_path)
        results = designer.create(_questions_config("limited", answers=True), num_records=records)
        requests = _assert_quiet(server)
        rate_limited = server.injector.counts["rate_limit"]
    dataset = results.load_dataset()
    assert results.count_records() == records and len(dataset) == records
    for column in ("question", "answer"):
        assert dataset[column].map(lambda text: isinstance(text, str) and bool(text)).all()
    return dataset, requests, rate_limited, dict(calls)


def test_rate_limits_are_retried_by_rowforge_alone(
    rowforge_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About 30% of the requests get a 429 (Retry-After 0.01 s): every record arrives, each 429
    costs exactly one more request (one retry, rowforge's), and data-designer's request
    executor neither asks its retry rule nor takes a request-admission lease during the run."""
    records = 40
    _, requests, rate_limited, calls = _rate_limited_build(tmp_path, monkeypatch, records)
    assert rate_limited > 0
    assert requests == 2 * records + rate_limited, (requests, rate_limited)
    assert calls == {"_should_retry": 0, "_execute_async_attempt": 0}


def test_the_retry_counters_see_data_designers_own_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of the test above: on data-designer's own engine the same build goes
    through the counted methods (one leased attempt per request, the retry rule asked after
    each 429), so their zero counts under rowforge are not the counters missing the calls."""
    records = 20
    with support.engine("dd"):
        _, requests, rate_limited, calls = _rate_limited_build(tmp_path, monkeypatch, records)
    assert rate_limited > 0
    assert calls["_execute_async_attempt"] == requests
    assert calls["_should_retry"] == rate_limited
