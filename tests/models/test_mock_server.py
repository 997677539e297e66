"""The mock HTTP server speaks the OpenAI wire format, binds loopback only, and stops promptly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import aiohttp
import pytest

from rowforge.errors import ConfigError
from rowforge.models import MockSettings
from rowforge.models.faults import FaultPlan
from rowforge.models.mock_server import MockServer, serve

MESSAGES = [{"role": "user", "content": "Name a colour"}]


@pytest.mark.asyncio
async def test_chat_completion_has_the_openai_shape() -> None:
    async with MockServer() as server, aiohttp.ClientSession() as session:
        body = {"model": "any-model", "messages": MESSAGES, "max_tokens": 5}
        async with session.post(f"{server.url}/chat/completions", json=body) as response:
            assert response.status == 200
            document = await response.json()
    assert document["object"] == "chat.completion"
    assert document["model"] == "any-model"
    assert document["id"].startswith("chatcmpl-mock-")
    choice = document["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 5
    assert choice["finish_reason"] == "stop"
    usage = document["usage"]
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5


@pytest.mark.asyncio
async def test_models_endpoint_lists_the_served_models() -> None:
    async with (
        MockServer(models=("mock-1", "mock-2")) as server,
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/models") as response,
    ):
        document = await response.json()
    assert document["object"] == "list"
    assert [m["id"] for m in document["data"]] == ["mock-1", "mock-2"]


@pytest.mark.asyncio
async def test_rate_limit_answer_carries_retry_after_header() -> None:
    settings = MockSettings(rate_limit_rate=1.0, retry_after_s=2.5)
    server, port = await serve(settings=settings)
    try:
        assert server.port == port
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "m", "messages": MESSAGES},
            ) as response,
        ):
            assert response.status == 429
            assert response.headers["Retry-After"] == "2.5"
            assert (await response.json())["error"]["type"] == "rate_limit_error"
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the request body is not valid JSON"),
        (b"[]", "the request body must be a JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model must be a non-empty string"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}',
            "temperature must be a number in [0, 2], got 3",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            "max_tokens must be an integer >= 1, got 0",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}],'
            b' "response_format": {"type": "xml"}}',
            "response_format.type must be",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 0}',
            "top_p must be a number in (0, 1], got 0",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}],'
            b' "max_completion_tokens": -1}',
            "max_completion_tokens must be an integer >= 1, got -1",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}],'
            b' "stop": ["a", "b", "c", "d", "e"]}',
            "stop must be a string or a list of up to 4 strings, got ['a', 'b', 'c', 'd', 'e']",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 5}',
            "stop must be a string or a list of up to 4 strings, got 5",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": "7"}',
            "seed must be an integer, got '7'",
        ),
    ],
)
@pytest.mark.asyncio
async def test_bad_requests_get_an_openai_style_400(body: bytes, message: str) -> None:
    async with (
        MockServer() as server,
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.url}/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(message)


@pytest.mark.asyncio
async def test_json_object_response_format_gets_a_json_object() -> None:
    async with MockServer() as server, aiohttp.ClientSession() as session:
        body = {"model": "m", "messages": MESSAGES, "response_format": {"type": "json_object"}}
        async with session.post(f"{server.url}/chat/completions", json=body) as response:
            content = (await response.json())["choices"][0]["message"]["content"]
    assert isinstance(json.loads(content)["answer"], str)


@pytest.mark.asyncio
async def test_stop_releases_hung_requests_promptly() -> None:
    server = MockServer(MockSettings(hang_rate=1.0))
    await server.start()
    async with aiohttp.ClientSession() as session:

        async def hung() -> int:
            body = {"model": "m", "messages": MESSAGES}
            async with session.post(f"{server.url}/chat/completions", json=body) as response:
                return response.status

        request = asyncio.create_task(hung())
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        await server.stop()
        assert time.perf_counter() - started < 1.5
        assert await request == 503
    await server.stop()  # idempotent


def test_only_loopback_addresses_are_accepted() -> None:
    with pytest.raises(ConfigError, match=r"loopback addresses only, got host '0\.0\.0\.0'"):
        MockServer(host="0.0.0.0")
    MockServer(host="localhost")
    MockServer(host="::1")


@pytest.mark.asyncio
async def test_busy_port_is_a_config_error() -> None:
    async with MockServer() as first:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            await MockServer(port=first.port).start()


def test_run_server_serves_until_sigterm() -> None:
    code = (
        "from rowforge.models import MockSettings\n"
        "from rowforge.models.mock_server import run_server\n"
        "run_server(0, MockSettings(seed=1))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("rowforge mock server listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "mock-1"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "rowforge mock server stopped" in out


# -- injected provider faults (FaultPlan) ------------------------------------------------------


async def _post(session: aiohttp.ClientSession, url: str, text: str) -> tuple[int, dict[str, str]]:
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    async with session.post(f"{url}/chat/completions", json=body) as response:
        await response.read()
        return response.status, dict(response.headers)


@pytest.mark.asyncio
async def test_rate_limits_carry_retry_after_only_when_the_plan_sets_one() -> None:
    for retry_after, expected in [(None, None), (2.5, "2.5")]:
        plan = FaultPlan(rate_limit_rate=1.0, retry_after_s=retry_after)
        async with MockServer(faults=plan) as server, aiohttp.ClientSession() as session:
            status, headers = await _post(session, server.url, "hi")
        assert status == 429
        assert headers.get("Retry-After") == expected
        assert server.injector.counts == {"rate_limit": 1}


@pytest.mark.asyncio
async def test_fault_draws_are_deterministic_per_request_and_attempt() -> None:
    async def statuses(seed: int) -> list[int]:
        plan = FaultPlan(status_rate=0.5, status=500, seed=seed)
        async with MockServer(faults=plan) as server, aiohttp.ClientSession() as session:
            return [(await _post(session, server.url, f"q{n % 20}"))[0] for n in range(60)]

    first, again, other = await statuses(1), await statuses(1), await statuses(2)
    assert first == again, "same seed, same requests: same faults"
    assert first != other
    assert set(first) == {200, 500}
    assert 15 <= first.count(500) <= 45


@pytest.mark.asyncio
async def test_an_outage_answers_503_inside_its_window_only() -> None:
    plan = FaultPlan(outage_start_s=0.2, outage_s=0.3)
    async with MockServer(faults=plan) as server, aiohttp.ClientSession() as session:
        before = (await _post(session, server.url, "a"))[0]
        await asyncio.sleep(0.25)
        during = (await _post(session, server.url, "b"))[0]
        while server.injector.in_outage():
            await asyncio.sleep(0.05)
        after = (await _post(session, server.url, "c"))[0]
    assert (before, during, after) == (200, 503, 200)
    assert server.injector.counts == {"outage": 1}


@pytest.mark.asyncio
async def test_a_trickled_reply_is_whole_and_sent_in_chunks() -> None:
    plan = FaultPlan(trickle_ms=10, trickle_bytes=32)
    async with MockServer(faults=plan) as server, aiohttp.ClientSession() as session:
        body = {"model": "m", "messages": MESSAGES, "max_tokens": 40}
        async with session.post(f"{server.url}/chat/completions", json=body) as response:
            chunks = [chunk async for chunk in response.content.iter_any()]
    document = json.loads(b"".join(chunks))
    assert document["object"] == "chat.completion"
    assert len(chunks) >= 3, "the body arrived in pieces"


@pytest.mark.asyncio
async def test_stats_endpoint_reports_requests_and_injected_faults() -> None:
    plan = FaultPlan(status_rate=1.0, status=502)
    async with MockServer(faults=plan) as server, aiohttp.ClientSession() as session:
        assert (await _post(session, server.url, "x"))[0] == 502
        async with session.get(f"{server.url}/mock/stats") as response:
            stats = await response.json()
    assert stats == {"requests": 1, "connections": 1, "faults": {"status": 1}}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_limit_rate": 1.5}, r"FaultPlan.rate_limit_rate must be in \[0, 1\]"),
        ({"status": 404}, "FaultPlan.status must be 408 or a 5xx status, got 404"),
        ({"outage_s": -1}, "FaultPlan.outage_s must be a finite number >= 0"),
        ({"trickle_bytes": 0}, "FaultPlan.trickle_bytes must be an int >= 1"),
        ({"status_rate": 0.6, "hang_rate": 0.6}, "must be at most 1"),
    ],
)
def test_bad_fault_plans_name_the_field(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FaultPlan(**options)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_content_as_text_parts_is_answered_like_the_same_text() -> None:
    """The OpenAI API's other content form (data-designer sends it): a list of text parts is
    read as their text joined by newlines, so it gets the reply that text would get."""
    parts = [{"type": "text", "text": "Name a"}, {"type": "text", "text": "colour"}]
    replies = []
    async with MockServer() as server, aiohttp.ClientSession() as session:
        for content in (parts, "Name a\ncolour"):
            body = {"model": "m", "messages": [{"role": "user", "content": content}]}
            async with session.post(f"{server.url}/chat/completions", json=body) as response:
                assert response.status == 200
                replies.append((await response.json())["choices"][0]["message"]["content"])
        image = [{"type": "image_url", "image_url": {"url": "data:,"}}]
        body = {"model": "m", "messages": [{"role": "user", "content": image}]}
        async with session.post(f"{server.url}/chat/completions", json=body) as response:
            assert response.status == 400
            error = (await response.json())["error"]["message"]
    assert replies[0] == replies[1]
    assert "messages[0].content must be a string or a list of text parts" in error
