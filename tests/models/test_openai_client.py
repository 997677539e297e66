"""OpenAIClient against the mock server (and a few deliberately broken servers) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
import pytest_asyncio
from aiohttp import web

from rowforge.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
)
from rowforge.models import MockSettings, ModelConfig, ModelRequestError, create_client, mock_reply
from rowforge.models.faults import FaultPlan
from rowforge.models.mock_server import MockServer
from rowforge.models.openai_client import OpenAIClient, parse_retry_after
from rowforge.scheduler.retry import ErrorKind, classify, failure_label

MESSAGES = [
    {"role": "system", "content": "You write support tickets."},
    {"role": "user", "content": "Write a ticket about a damaged parcel"},
]


def _config(base_url: str, **options: Any) -> ModelConfig:
    return ModelConfig("writer", provider="openai", base_url=base_url, **options)


async def _one(base_url: str, **options: Any) -> str:
    async with OpenAIClient(_config(base_url, **options)) as client:
        return await client.complete(MESSAGES)


@pytest_asyncio.fixture
async def mock_server() -> AsyncIterator[MockServer]:
    async with MockServer(MockSettings(seed=5)) as server:
        yield server


# --- a server that answers whatever a test needs ---------------------------------------------

CANNED: dict[str, tuple[int, dict[str, str], bytes]] = {
    "not-json": (200, {}, b"<html>oops</html>"),
    "no-choices": (200, {}, b'{"choices": []}'),
    "null-content": (200, {}, b'{"choices": [{"message": {"content": null}}]}'),
    "refusal": (200, {}, b'{"choices": [{"message": {"content": null, "refusal": "No."}}]}'),
    "busy": (503, {"Retry-After": "7"}, b'{"error": {"message": "overloaded"}}'),
    "timeout": (408, {}, b"request timeout"),
    "rate-ms": (429, {"retry-after-ms": "1500", "Retry-After": "2"}, b"{}"),
    "rate-plain": (429, {}, b"{}"),
    "forbidden": (403, {}, b'{"error": {"message": "no access to this model"}}'),
    "echo-key": (401, {}, b'{"error": {"message": "Incorrect API key provided: sk-echo-42."}}'),
}


@pytest_asyncio.fixture
async def canned() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """Base URL prefix `http://127.0.0.1:P/<case>/v1` and the request bodies received."""
    bodies: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        case = request.match_info["case"]
        bodies.append({"body": await request.json(), "headers": dict(request.headers)})
        if case == "echo":
            body = {"choices": [{"message": {"role": "assistant", "content": "echo"}}]}
            return web.json_response(body)
        status, headers, payload = CANNED[case]
        return web.Response(status=status, headers=headers, body=payload)

    app = web.Application()
    app.router.add_post("/{case}/v1/chat/completions", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", bodies
    finally:
        await runner.cleanup()


# --- against the mock server -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_reply_matches_the_in_process_mock_model(mock_server: MockServer) -> None:
    reply = await _one(mock_server.url)
    assert reply == mock_reply(MockSettings(seed=5), MESSAGES)


@pytest.mark.asyncio
async def test_json_schema_reply_validates(mock_server: MockServer) -> None:
    schema = {
        "title": "ticket",
        "type": "object",
        "properties": {
            "subject": {"type": "string"},
            "priority": {"enum": ["low", "high"]},
            "items": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        },
        "required": ["subject", "priority", "items"],
        "additionalProperties": False,
    }
    async with OpenAIClient(_config(mock_server.url)) as client:
        text = await client.complete(MESSAGES, json_schema=schema)
    jsonschema.validate(json.loads(text), schema)
    assert text == mock_reply(MockSettings(seed=5), MESSAGES, json_schema=schema)


@pytest.mark.asyncio
async def test_429_is_a_rate_limit_error_carrying_retry_after() -> None:
    async with MockServer(MockSettings(rate_limit_rate=1.0, retry_after_s=0.25)) as server:
        with pytest.raises(RateLimitError) as caught:
            await _one(server.url)
    assert caught.value.retry_after == 0.25
    assert classify(caught.value) is ErrorKind.RATE_LIMIT


@pytest.mark.asyncio
async def test_500_is_retryable() -> None:
    async with MockServer(MockSettings(error_rate=1.0)) as server:
        with pytest.raises(RetryableError, match="HTTP 500: simulated server error") as caught:
            await _one(server.url)
    assert classify(caught.value) is ErrorKind.RETRYABLE


@pytest.mark.asyncio
async def test_hang_past_the_timeout_is_retryable_within_the_timeout() -> None:
    async with MockServer(MockSettings(hang_rate=1.0)) as server:
        started = time.perf_counter()
        with pytest.raises(RetryableError, match=r"no response within 0.3s") as caught:
            await _one(server.url, timeout_s=0.3)
        assert 0.3 <= time.perf_counter() - started < 1.0
        assert classify(caught.value) is ErrorKind.RETRYABLE
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 1.5  # the hung handler did not hold up stop()


@pytest.mark.asyncio
async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now.
    with pytest.raises(RetryableError, match="connection failed") as caught:
        await _one(f"http://127.0.0.1:{port}/v1", timeout_s=5)
    assert classify(caught.value) is ErrorKind.RETRYABLE
    message = str(caught.value)
    assert f"ClientConnectorError: Cannot connect to host 127.0.0.1:{port}" in message
    assert "ConnectionKey" not in message, "no internal repr in what the user reads"


@pytest.mark.asyncio
async def test_400_is_a_non_retryable_model_request_error(mock_server: MockServer) -> None:
    async with OpenAIClient(_config(mock_server.url)) as client:
        with pytest.raises(ModelRequestError, match=r"HTTP 400: messages\[0\].role") as caught:
            await client.complete([{"role": "robot", "content": "beep"}])
    assert classify(caught.value) is ErrorKind.FATAL


@pytest.mark.asyncio
async def test_simulated_refusal_is_a_model_request_error() -> None:
    async with MockServer(MockSettings(refusal_rate=1.0)) as server:
        with pytest.raises(ModelRequestError, match="HTTP 400: simulated refusal"):
            await _one(server.url)


@pytest.mark.asyncio
async def test_wrong_path_404_is_a_model_request_error(mock_server: MockServer) -> None:
    with pytest.raises(ModelRequestError, match="HTTP 404"):
        await _one(mock_server.url.removesuffix("/v1") + "/nowhere")


@pytest.mark.asyncio
async def test_api_key_from_the_named_variable_is_sent_as_bearer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROWFORGE_TEST_KEY", "sk-test-123")
    async with MockServer(api_key="sk-test-123") as server:
        assert await _one(server.url, api_key_env="ROWFORGE_TEST_KEY")
        monkeypatch.setenv("ROWFORGE_TEST_KEY", "sk-wrong")
        with pytest.raises(ModelRequestError, match="HTTP 401: invalid or missing API key"):
            await _one(server.url, api_key_env="ROWFORGE_TEST_KEY")
        with pytest.raises(ModelRequestError, match="HTTP 401"):
            await _one(server.url)


@pytest.mark.asyncio
async def test_a_server_echoing_the_key_back_does_not_put_it_into_the_error(
    canned: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = canned
    monkeypatch.setenv("ROWFORGE_TEST_KEY", "sk-echo-42")
    with pytest.raises(ModelRequestError) as caught:
        await _one(f"{base}/echo-key/v1", api_key_env="ROWFORGE_TEST_KEY")
    assert "sk-echo-42" not in str(caught.value)
    assert "HTTP 401: Incorrect API key provided: <API key redacted>." in str(caught.value)


def test_missing_api_key_variable_fails_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROWFORGE_NO_SUCH_KEY", raising=False)
    config = _config("http://127.0.0.1:9/v1", api_key_env="ROWFORGE_NO_SUCH_KEY")
    with pytest.raises(ConfigError, match="'ROWFORGE_NO_SUCH_KEY', which is not set"):
        create_client(config)


@pytest.mark.asyncio
async def test_requests_reuse_one_pooled_connection(mock_server: MockServer) -> None:
    async with OpenAIClient(_config(mock_server.url)) as client:
        session = None
        for n in range(10):
            await client.complete([{"role": "user", "content": f"question {n}"}])
            session = session or client._session
            assert client._session is session
    assert mock_server.request_count == 10
    assert len(mock_server.connections) == 1


@pytest.mark.asyncio
async def test_connections_never_exceed_max_parallel_requests() -> None:
    server = MockServer(MockSettings(latency_ms=(30, 30)))
    async with server, OpenAIClient(_config(server.url, max_parallel_requests=2)) as client:
        started = time.perf_counter()
        await asyncio.gather(
            *(client.complete([{"role": "user", "content": f"q{n}"}]) for n in range(8))
        )
        elapsed = time.perf_counter() - started
    assert len(server.connections) == 2
    assert elapsed >= 4 * 0.03 - 0.01


@pytest.mark.asyncio
async def test_slow_request_warns_repeatedly_and_stops_when_it_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "still pending" in r.getMessage()]

    async with MockServer(MockSettings(latency_ms=(200, 200))) as server:
        await _one(server.url, slow_request_warning_s=0.05)
        seen = warnings()
        assert len(seen) >= 2
        assert all(m.startswith("model 'writer': request still pending after") for m in seen)
        await asyncio.sleep(0.2)
        assert warnings() == seen


@pytest.mark.asyncio
async def test_cancelled_request_propagates_and_the_client_still_closes() -> None:
    async with MockServer(MockSettings(latency_ms=(500, 500))) as server:
        client = OpenAIClient(_config(server.url, slow_request_warning_s=0.05))
        task = asyncio.create_task(client.complete(MESSAGES))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()
        await client.aclose()  # idempotent
        with pytest.raises(ModelRequestError, match="closed"):
            await client.complete(MESSAGES)


# --- against servers that misbehave on purpose -----------------------------------------------


@pytest.mark.asyncio
async def test_request_body_carries_the_config(
    canned: tuple[str, list[dict[str, Any]]],
) -> None:
    base, bodies = canned
    config = _config(f"{base}/echo/v1", model="gpt-x", temperature=0.2, max_tokens=64)
    async with OpenAIClient(config) as client:
        assert await client.complete(MESSAGES) == "echo"
        await client.complete(MESSAGES, json_schema={"title": "my schema!", "type": "object"})
    plain, structured = bodies[0]["body"], bodies[1]["body"]
    assert plain == {"model": "gpt-x", "messages": MESSAGES, "temperature": 0.2, "max_tokens": 64}
    assert structured["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "my_schema_", "schema": {"title": "my schema!", "type": "object"}},
    }
    assert "Authorization" not in bodies[0]["headers"]


@pytest.mark.parametrize(
    ("case", "error", "message", "retry_after"),
    [
        ("not-json", ModelRequestError, "response is not JSON: <html>oops</html>", None),
        ("no-choices", ModelRequestError, "response has no choices[0].message.content", None),
        ("null-content", ModelRequestError, "choices[0].message.content is NoneType", None),
        ("refusal", ModelRequestError, "the model refused: No.", None),
        ("busy", RetryableError, "HTTP 503: overloaded", 7.0),
        ("timeout", RetryableError, "HTTP 408: request timeout", None),
        ("rate-ms", RateLimitError, "HTTP 429", 1.5),
        ("rate-plain", RateLimitError, "HTTP 429", None),
        ("forbidden", ModelRequestError, "HTTP 403: no access to this model", None),
    ],
)
@pytest.mark.asyncio
async def test_responses_map_to_the_right_error(
    canned: tuple[str, list[dict[str, Any]]],
    case: str,
    error: type[Exception],
    message: str,
    retry_after: float | None,
) -> None:
    base, _ = canned
    with pytest.raises(error) as caught:
        await _one(f"{base}/{case}/v1")
    assert type(caught.value) is error
    assert message in str(caught.value)
    assert "'writer'" in str(caught.value)
    assert getattr(caught.value, "retry_after", None) == retry_after


@pytest.mark.parametrize(
    ("case", "status", "label"),
    [
        ("busy", 503, "HTTP 503"),
        ("timeout", 408, "HTTP 408"),
        ("rate-ms", 429, "HTTP 429"),
        ("forbidden", 403, "HTTP 403"),
    ],
)
@pytest.mark.asyncio
async def test_errors_carry_the_http_status(
    canned: tuple[str, list[dict[str, Any]]], case: str, status: int, label: str
) -> None:
    base, _ = canned
    with pytest.raises(Exception) as caught:
        await _one(f"{base}/{case}/v1")
    assert getattr(caught.value, "status", None) == status
    assert failure_label(caught.value) == label


@pytest.mark.asyncio
async def test_timeouts_and_broken_connections_are_named_as_such() -> None:
    async with MockServer(MockSettings(hang_rate=1.0)) as server:
        with pytest.raises(ProviderTimeoutError) as hung:
            await _one(server.url, timeout_s=0.2)
    assert failure_label(hung.value) == "timeout" and hung.value.status is None
    async with MockServer(faults=FaultPlan(reset_rate=1.0)) as server:
        with pytest.raises(ProviderConnectionError, match="Response payload is not completed"):
            await _one(server.url)
    assert server.injector.counts == {"reset": 1}


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"Retry-After": "0.5"}) == 0.5
    assert parse_retry_after({"Retry-After": "-1"}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "1"}) == 0.25
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"Retry-After": later}) or 0) <= 31
    earlier = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": earlier}) == 0.0
