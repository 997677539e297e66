"""UsageMeter: request, token and latency accounting per model, and the clients that feed it.

The meter is what progress displays and metadata.json report about each model, so its counts
must add up on every path a request can take (answered, failed by label, cancelled), its
percentiles must be close to the real ones, and its size must not grow with the run. The client
tests run against the mock server (and a canned server) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import random
import socket
import statistics
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from rowforge.errors import (
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
)
from rowforge.models import (
    MockClient,
    MockSettings,
    ModelClient,
    ModelConfig,
    ModelRequestError,
    ModelUsage,
    UsageMeter,
    mock_reply,
    models_metadata,
)
from rowforge.models.faults import FaultPlan
from rowforge.models.mock import mock_usage
from rowforge.models.mock_server import MockServer
from rowforge.models.openai_client import OpenAIClient
from rowforge.models.registry import ModelRegistry
from rowforge.models.usage import BOUNDS_MS, RECENT_ANSWERS, error_label

MESSAGES = [
    {"role": "system", "content": "You write support tickets."},
    {"role": "user", "content": "Write a ticket about a damaged parcel"},
]


def _remote(base_url: str, **options: Any) -> OpenAIClient:
    return OpenAIClient(ModelConfig("writer", provider="openai", base_url=base_url, **options))


def _consistent(meter: UsageMeter) -> bool:
    """Every request started is answered, failed, cancelled or still in flight."""
    ended = meter.answers + sum(meter.errors.values()) + meter.cancellations
    return meter.requests == ended + meter.in_flight


# --- the meter's arithmetic ------------------------------------------------------------------


def test_a_fresh_meter_reports_nothing_yet() -> None:
    """Before the first answer there is no latency to report: None and {}, not zeros that a
    display would show as "0 ms"."""
    meter = UsageMeter("writer")
    assert meter.snapshot() == ModelUsage(
        alias="writer",
        requests=0,
        in_flight=0,
        errors={},
        prompt_tokens=0,
        completion_tokens=0,
        recent_latency_s=None,
        latency_ms={},
    )
    assert meter.as_metadata() == {
        "requests": 0,
        "answered": 0,
        "cancelled": 0,
        "errors": {},
        "failed_s": 0.0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "latency_ms": {},
        "latency_histogram_ms": [],
        "json_replies": {"unfenced": 0, "repaired": 0},
    }


def test_json_replies_read_after_a_fence_or_a_repair_are_counted() -> None:
    meter = UsageMeter("writer")
    meter.read_json(fenced=True, repaired=False)
    meter.read_json(fenced=True, repaired=True)
    meter.read_json(fenced=False, repaired=False)
    assert meter.as_metadata()["json_replies"] == {"unfenced": 2, "repaired": 1}


def test_counts_follow_every_way_a_request_ends() -> None:
    """Tokens come from answers only, errors are counted by label, a cancelled request only
    leaves in_flight, and failures stay out of the latency figures."""
    meter = UsageMeter("writer")
    for _ in range(6):
        meter.started()
    meter.answered(0.100, 40, 12)
    meter.answered(0.300, 60, 8)
    meter.failed(0.050, "429")
    meter.failed(30.0, "timeout")
    meter.failed(0.020, "429")
    assert meter.in_flight == 1
    meter.cancelled()

    usage = meter.snapshot()
    assert (usage.requests, usage.in_flight) == (6, 0)
    assert usage.errors == {"429": 2, "timeout": 1}
    assert list(usage.errors) == ["429", "timeout"], "labels in a stable order"
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 20)
    assert usage.recent_latency_s == pytest.approx(0.200)
    assert usage.latency_ms["max"] == pytest.approx(300.0)
    assert usage.latency_ms["p99"] <= 300.0, "a 30 s timeout is not a model latency"
    metadata = meter.as_metadata()
    assert (metadata["answered"], metadata["cancelled"]) == (2, 1)
    assert metadata["failed_s"] == pytest.approx(30.07)
    assert sum(count for _, count in metadata["latency_histogram_ms"]) == 2
    assert _consistent(meter)
    json.dumps(metadata, allow_nan=False)  # JSON-ready as it is


def test_ended_by_tells_failures_from_cancellations() -> None:
    meter = UsageMeter("writer")
    for _ in range(3):
        meter.started()
    meter.ended_by(0.5, RetryableError("HTTP 503", status=503))
    meter.ended_by(0.5, asyncio.CancelledError())
    meter.ended_by(0.5, KeyboardInterrupt())
    assert meter.errors == {"503": 1}
    assert (meter.cancellations, meter.in_flight) == (2, 0)


def test_error_labels() -> None:
    """The labels metadata.json and the progress display count failures by."""
    assert error_label(RateLimitError("slow down")) == "429"
    assert error_label(RetryableError("busy", status=503)) == "503"
    assert error_label(RetryableError("timeout", status=408)) == "408"
    assert error_label(ProviderTimeoutError("no answer")) == "timeout"
    assert error_label(ProviderConnectionError("reset")) == "connection"
    assert error_label(ModelRequestError("forbidden", status=403)) == "403"
    assert error_label(ModelRequestError("not a chat completion")) == "invalid"
    assert error_label(RetryableError("something transient")) == "error"
    assert error_label(asyncio.CancelledError()) is None
    assert error_label(ValueError("a bug")) is None


def _exact(values: list[float], q: float) -> float:
    """The nearest-rank q-quantile, the definition the histogram estimates."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(lambda rng: rng.lognormvariate(math.log(0.4), 1.0), id="lognormal"),
        pytest.param(lambda rng: rng.uniform(0.020, 0.030), id="narrow-uniform"),
        pytest.param(lambda rng: 0.005 + rng.expovariate(1 / 2.0), id="exponential"),
    ],
)
def test_percentiles_of_100k_latencies_are_within_5_percent(draw: Any) -> None:
    rng = random.Random(7)
    latencies = [draw(rng) for _ in range(100_000)]
    meter = UsageMeter("writer")
    for latency in latencies:
        meter.started()
        meter.answered(latency, 1, 1)
    figures = meter.snapshot().latency_ms
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        exact_ms = _exact(latencies, q) * 1000
        assert figures[key] == pytest.approx(exact_ms, rel=0.05), key
    assert figures["max"] == pytest.approx(max(latencies) * 1000, abs=0.001)
    recent = statistics.median(latencies[-RECENT_ANSWERS:])
    assert meter.snapshot().recent_latency_s == pytest.approx(recent)
    buckets = meter.as_metadata()["latency_histogram_ms"]
    assert sum(count for _, count in buckets) == 100_000
    uppers = [upper for upper, _ in buckets]
    assert uppers == sorted(uppers)


def test_latencies_outside_the_histogram_range() -> None:
    """Sub-millisecond, zero and clock-gone-wrong latencies land in the first bucket; past ten
    minutes in the last one, whose upper end (and every percentile in it) is the max."""
    meter = UsageMeter("writer")
    for latency in (0.0, -1.0, math.nan, 0.0004):
        meter.started()
        meter.answered(latency, 0, 0)
    assert meter.as_metadata()["latency_histogram_ms"] == [[1.0, 4]]
    assert meter.latency_ms()["max"] == pytest.approx(0.4)

    slow = UsageMeter("writer")
    for _ in range(3):
        slow.started()
        slow.answered(900.0, 0, 0)  # 15 minutes
    assert slow.as_metadata()["latency_histogram_ms"] == [[900_000.0, 3]]
    assert slow.latency_ms() == {"p50": 900_000.0, "p90": 900_000.0, "p99": 900_000.0,
                                 "max": 900_000.0}  # fmt: skip
    assert BOUNDS_MS[-1] >= 600_000 > BOUNDS_MS[-2]


def _deep_size(root: object, *, numbers: bool = True) -> int:
    """Bytes held by `root` and everything it references (types excluded); without `numbers`,
    the ints and floats are left out, leaving the containers: the meter's structure."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        if numbers or not isinstance(item, int | float):
            total += sys.getsizeof(item)
        stack.extend(gc.get_referents(item))
    return total


def _load(meter: UsageMeter, requests: int, rng: random.Random) -> None:
    for _ in range(requests):
        meter.started()
        roll = rng.random()
        if roll < 0.8:
            meter.answered(rng.lognormvariate(-1, 1), rng.randrange(500), rng.randrange(500))
        elif roll < 0.95:
            meter.failed(rng.random(), rng.choice(("429", "503", "timeout", "connection")))
        else:
            meter.cancelled()


def test_the_meter_does_not_grow_with_the_number_of_requests() -> None:
    """O(1) memory: after ten thousand requests or a hundred thousand more, the meter holds
    the same containers of about the same sizes (the recent-latency deque spans one or two
    blocks of 64 slots, depending on where its ring is). Its numbers may only become distinct
    objects (a count past 256 is no longer the shared small int): at most one int per histogram
    bucket and counter. Keeping anything per request would add megabytes."""
    rng = random.Random(3)
    meter = UsageMeter("writer")
    _load(meter, 10_000, rng)  # every label and recent slot in use
    structure, before = _deep_size(meter, numbers=False), _deep_size(meter)
    _load(meter, 100_000, rng)
    assert meter.requests == 110_000 and _consistent(meter)
    assert _deep_size(meter, numbers=False) - structure <= 1024
    growth = _deep_size(meter) - before
    assert growth <= sys.getsizeof(2**40) * (len(BOUNDS_MS) + 1 + 16), f"grew by {growth} bytes"


def test_models_metadata_adds_the_schedulers_retries() -> None:
    writer, judge = UsageMeter("writer"), UsageMeter("judge")
    writer.started()
    writer.answered(0.2, 10, 5)
    section = models_metadata(
        {"writer": writer, "judge": judge}, {"writer": {"transient": 1, "rate_limit": 3}}
    )
    assert list(section) == ["judge", "writer"]
    assert section["writer"]["retries"] == {"rate_limit": 3, "transient": 1}
    assert section["judge"]["retries"] == {}
    assert section["writer"]["prompt_tokens"] == 10
    assert {k: v for k, v in section["writer"].items() if k != "retries"} == writer.as_metadata()
    assert models_metadata({"judge": judge})["judge"]["retries"] == {}


# --- OpenAIClient -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tokens_come_from_the_replys_usage() -> None:
    async with (
        MockServer(MockSettings(seed=5, latency_ms=(20, 20))) as server,
        _remote(server.url) as client,
    ):
        first = await client.complete(MESSAGES)
        second = await client.complete(MESSAGES[1:])
    assert first == mock_reply(MockSettings(seed=5), MESSAGES)
    prompt_1, completion_1 = mock_usage(MESSAGES, first)
    prompt_2, completion_2 = mock_usage(MESSAGES[1:], second)
    usage = client.usage.snapshot()
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        prompt_1 + prompt_2,
        completion_1 + completion_2,
    )
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert (usage.requests, usage.in_flight, usage.errors) == (2, 0, {})
    assert usage.recent_latency_s is not None and 0.015 < usage.recent_latency_s < 1.0
    assert 15 < usage.latency_ms["p50"] < 1000
    assert client.usage.answers == 2


USAGES: dict[str, object] = {
    "absent": None,
    "not-an-object": "lots",
    "nonsense": {"prompt_tokens": -3, "completion_tokens": "7"},
    "booleans": {"prompt_tokens": True, "completion_tokens": 2.5},
    "partial": {"completion_tokens": 9},
}


@pytest_asyncio.fixture
async def usage_server() -> AsyncIterator[str]:
    """`http://127.0.0.1:P/<case>`: a chat completion whose `usage` is USAGES[case]."""

    async def handle(request: web.Request) -> web.Response:
        body: dict[str, Any] = {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}
        usage = USAGES[request.match_info["case"]]
        if usage is not None:
            body["usage"] = usage
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/{case}/v1/chat/completions", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(USAGES))
async def test_missing_or_malformed_usage_counts_as_zero(usage_server: str, case: str) -> None:
    """Token accounting is reporting: a server that reports no usage, or nonsense, still
    answers, and its tokens count as 0 (what it did report correctly still counts)."""
    async with _remote(f"{usage_server}/{case}/v1") as client:
        assert await client.complete(MESSAGES) == "ok"
    usage = client.usage.snapshot()
    assert (usage.requests, usage.errors) == (1, {})
    assert usage.prompt_tokens == 0
    assert usage.completion_tokens == (9 if case == "partial" else 0)


async def _failure(client: OpenAIClient) -> type[BaseException]:
    with pytest.raises(Exception) as caught:
        await client.complete(MESSAGES)
    return caught.type


@pytest.mark.asyncio
async def test_failed_requests_are_counted_by_label() -> None:
    """429, 503, a timeout and a refused connection, each counted once under its label, with
    no tokens and no latency figures (there was no answer)."""
    async with (
        MockServer(faults=FaultPlan(rate_limit_rate=1.0)) as server,
        _remote(server.url) as client,
    ):
        assert await _failure(client) is RateLimitError
        assert await _failure(client) is RateLimitError
    assert client.usage.snapshot().errors == {"429": 2}

    async with (
        MockServer(faults=FaultPlan(status_rate=1.0, status=503)) as server,
        _remote(server.url) as client,
    ):
        assert await _failure(client) is RetryableError
    assert client.usage.snapshot().errors == {"503": 1}

    async with (
        MockServer(MockSettings(hang_rate=1.0)) as server,
        _remote(server.url, timeout_s=0.2) as client,
    ):
        assert await _failure(client) is ProviderTimeoutError
    usage = client.usage.snapshot()
    assert usage.errors == {"timeout": 1}
    assert (usage.requests, usage.in_flight, usage.prompt_tokens, usage.latency_ms) == (1, 0, 0, {})
    assert client.usage.failed_s >= 0.2

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _remote(f"http://127.0.0.1:{port}/v1", timeout_s=5) as client:
        assert await _failure(client) is ProviderConnectionError
    assert client.usage.snapshot().errors == {"connection": 1}


@pytest.mark.asyncio
async def test_a_reply_that_is_not_a_chat_completion_is_invalid(usage_server: str) -> None:
    """A 200 whose body is not a chat completion counts as "invalid"; a 4xx other than 429
    (here a 404 for a path the server does not serve) under its status."""

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>oops</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", html)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with _remote(f"http://127.0.0.1:{runner.addresses[0][1]}/v1") as client:
            assert await _failure(client) is ModelRequestError
        async with _remote(f"{usage_server}/v1") as lost:  # no such case: 404
            assert await _failure(lost) is ModelRequestError
    finally:
        await runner.cleanup()
    assert client.usage.snapshot().errors == {"invalid": 1}
    assert lost.usage.snapshot().errors == {"404": 1}


@pytest.mark.asyncio
async def test_a_cancelled_request_leaves_in_flight() -> None:
    async with (
        MockServer(MockSettings(latency_ms=(500, 500))) as server,
        _remote(server.url) as client,
    ):
        task = asyncio.create_task(client.complete(MESSAGES))
        await asyncio.sleep(0.1)
        assert client.usage.snapshot().in_flight == 1, "counted while on the wire"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    usage = client.usage.snapshot()
    assert (usage.requests, usage.in_flight, usage.errors) == (1, 0, {})
    assert (client.usage.answers, client.usage.cancellations) == (0, 1)
    assert usage.latency_ms == {}


@pytest.mark.asyncio
async def test_a_request_that_never_goes_out_is_not_counted() -> None:
    client = _remote("http://127.0.0.1:9/v1")
    await client.aclose()
    with pytest.raises(ModelRequestError, match="closed"):
        await client.complete(MESSAGES)
    assert client.usage.requests == 0


# --- MockClient -------------------------------------------------------------------------------


def _mock(**settings: Any) -> MockClient:
    timeout_s = settings.pop("timeout_s", 60.0)
    return MockClient(ModelConfig("writer", timeout_s=timeout_s, mock=MockSettings(**settings)))


@pytest.mark.asyncio
async def test_the_mock_client_counts_what_the_mock_server_reports() -> None:
    """Same settings, same request: the in-process mock and the HTTP mock report the same
    tokens, so a demo shows the same figures with either."""
    settings = {"seed": 11, "latency_ms": (5, 5)}
    local = _mock(**settings)
    reply = await local.complete(MESSAGES)
    async with MockServer(MockSettings(**settings)) as server, _remote(server.url) as remote:
        assert await remote.complete(MESSAGES) == reply
    mine, theirs = local.usage.snapshot(), remote.usage.snapshot()
    assert (mine.prompt_tokens, mine.completion_tokens) == mock_usage(MESSAGES, reply)
    assert (mine.prompt_tokens, mine.completion_tokens) == (
        theirs.prompt_tokens,
        theirs.completion_tokens,
    )
    assert mine.prompt_tokens == 11  # "You write support tickets." + "Write a ticket about ..."
    assert mine.latency_ms["max"] >= 5


@pytest.mark.asyncio
async def test_the_mock_clients_failures_are_labelled_like_the_servers() -> None:
    for settings, label in (
        ({"rate_limit_rate": 1.0, "retry_after_s": 0.0}, "429"),
        ({"error_rate": 1.0}, "500"),
        ({"refusal_rate": 1.0}, "400"),
        ({"hang_rate": 1.0, "timeout_s": 0.05}, "timeout"),
    ):
        client = _mock(latency_ms=(0, 0), **settings)
        with pytest.raises(Exception):  # noqa: B017 - the label is what is tested
            await client.complete(MESSAGES)
        usage = client.usage.snapshot()
        assert (usage.errors, usage.in_flight, usage.completion_tokens) == ({label: 1}, 0, 0)


@pytest.mark.asyncio
async def test_a_cancelled_mock_request_leaves_in_flight() -> None:
    """Also while waiting for one of the client's parallel-request slots."""
    client = MockClient(
        ModelConfig("writer", max_parallel_requests=1, mock=MockSettings(latency_ms=(300, 300)))
    )
    tasks = [asyncio.create_task(client.complete(MESSAGES)) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert client.usage.in_flight == 2
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert (client.usage.in_flight, client.usage.cancellations, client.usage.errors) == (0, 2, {})


@pytest.mark.asyncio
async def test_an_invalid_mock_request_is_not_counted() -> None:
    """Rejected before it reaches the (simulated) provider, like a closed client's."""
    client = _mock()
    with pytest.raises(ModelRequestError):
        await client.complete([])
    assert client.usage.requests == 0


# --- ModelRegistry ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_registry_lists_the_meters_of_the_models_called() -> None:
    registry = ModelRegistry(
        [ModelConfig("writer", mock=MockSettings(latency_ms=(0, 0))), ModelConfig("judge")]
    )
    async with registry:
        assert registry.usage() == {}
        writer = registry.client("writer")
        await writer.complete(MESSAGES)
        assert isinstance(writer, ModelClient)
    meters = registry.usage()
    assert list(meters) == ["writer"], "a model never called has no entry"
    assert meters["writer"] is writer.usage
    assert meters["writer"].requests == 1, "still readable after the registry closed"


def test_a_client_without_a_meter_gets_an_empty_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test doubles written before `usage` existed still run; their model reports nothing."""

    class Bare:
        def __init__(self, config: ModelConfig) -> None:
            self.config = config

    monkeypatch.setattr("rowforge.models.registry.create_client", Bare)
    registry = ModelRegistry([ModelConfig("writer")])
    registry.client("writer")
    assert registry.usage()["writer"].snapshot().requests == 0
