"""MockClient: deterministic replies, bounded latency, faults as the right error classes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowforge.errors import RateLimitError, RetryableError
from rowforge.models import MockClient, MockSettings, ModelConfig, ModelRequestError, mock_reply
from rowforge.scheduler.retry import ErrorKind, classify


def _ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def _client(**mock: Any) -> MockClient:
    options = {
        k: mock.pop(k) for k in ("timeout_s", "max_parallel_requests", "max_tokens") if k in mock
    }
    return MockClient(ModelConfig("writer", mock=MockSettings(**mock), **options))


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 30, "maxLength": 40},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "even": {"type": "integer", "multipleOf": 2, "minimum": 7, "maximum": 13},
            "ok": {"type": "boolean"},
            "tags": {
                "type": "array",
                "items": {"type": "string", "enum": ["a", "b", "c"]},
                "minItems": 2,
                "maxItems": 3,
                "uniqueItems": True,
            },
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "kind": {"const": "review"},
            "maybe": {"type": ["string", "null"]},
            "when": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email"},
        },
        "required": ["title", "rating", "score", "even", "ok", "tags", "sentiment", "kind"],
        "additionalProperties": False,
    },
    {
        "$defs": {
            "person": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {
            "people": {"type": "array", "items": {"$ref": "#/$defs/person"}, "minItems": 1},
            "lead": {"anyOf": [{"$ref": "#/$defs/person"}, {"type": "null"}]},
        },
        "required": ["people", "lead"],
    },
    {"type": "array", "items": {"type": "number", "minimum": -5, "maximum": -1}, "minItems": 4},
    {"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"required": ["b"]}]},
]


@pytest.mark.asyncio
async def test_same_messages_get_the_same_reply_from_any_client() -> None:
    first = await _client().complete(_ask("Describe the billing process"))
    again = await _client().complete(_ask("Describe the billing process"))
    assert first == again
    assert "billing" in first or "process" in first
    assert first == mock_reply(MockSettings(), _ask("Describe the billing process"))


@pytest.mark.asyncio
async def test_different_prompts_and_seeds_get_different_replies() -> None:
    client = _client()
    replies = {
        await client.complete(_ask(f"Question number {n} about topic {n}")) for n in range(20)
    }
    assert len(replies) > 15
    seeded = {await _client(seed=s).complete(_ask("same prompt")) for s in range(10)}
    assert len(seeded) > 5


@pytest.mark.asyncio
async def test_max_tokens_caps_the_reply_length() -> None:
    reply = await _client(max_tokens=3).complete(_ask("Explain returns"))
    assert len(reply.split()) == 3


@pytest.mark.asyncio
async def test_latency_stays_within_the_configured_bounds() -> None:
    client = _client(latency_ms=(40, 60))
    for n in range(5):
        started = time.perf_counter()
        await client.complete(_ask(f"prompt {n}"))
        elapsed = time.perf_counter() - started
        assert 0.04 <= elapsed < 0.06 + 0.05


@pytest.mark.asyncio
async def test_rate_limit_raises_rate_limit_error_with_retry_after() -> None:
    client = _client(rate_limit_rate=1.0, retry_after_s=0.25)
    with pytest.raises(RateLimitError) as caught:
        await client.complete(_ask("hello"))
    assert caught.value.retry_after == 0.25
    assert classify(caught.value) is ErrorKind.RATE_LIMIT


@pytest.mark.asyncio
async def test_server_error_raises_retryable_error() -> None:
    with pytest.raises(RetryableError) as caught:
        await _client(error_rate=1.0).complete(_ask("hello"))
    assert not isinstance(caught.value, RateLimitError)
    assert classify(caught.value) is ErrorKind.RETRYABLE


@pytest.mark.asyncio
async def test_refusal_raises_non_retryable_model_request_error() -> None:
    with pytest.raises(ModelRequestError) as caught:
        await _client(refusal_rate=1.0).complete(_ask("hello"))
    assert classify(caught.value) is ErrorKind.FATAL


@pytest.mark.asyncio
async def test_hang_fails_as_retryable_at_the_timeout() -> None:
    client = _client(hang_rate=1.0, timeout_s=0.2)
    started = time.perf_counter()
    with pytest.raises(RetryableError, match=r"no reply within 0.2s"):
        await client.complete(_ask("hello"))
    assert 0.2 <= time.perf_counter() - started < 0.5


@pytest.mark.asyncio
async def test_latency_past_the_timeout_fails_as_retryable_then_a_retry_draws_afresh() -> None:
    # About half the attempts take longer than the 0.1 s timeout: a retry of a timed-out
    # request must draw a new latency, or it would time out forever.
    client = _client(latency_ms=(0, 200), timeout_s=0.1, seed=0)
    outcomes = []
    for _ in range(20):
        try:
            await client.complete(_ask("slow or fast"))
        except RetryableError:
            outcomes.append("timeout")
        else:
            outcomes.append("reply")
            break
    assert outcomes[-1] == "reply"
    assert outcomes == ["timeout", "timeout", "timeout", "reply"]  # seed 0: three slow draws


@pytest.mark.asyncio
async def test_faults_are_reproducible_and_retries_eventually_succeed() -> None:
    settings = {"rate_limit_rate": 0.2, "error_rate": 0.2, "refusal_rate": 0.05, "seed": 11}

    async def history() -> list[str]:
        client = _client(**settings)
        seen = []
        for n in range(40):
            for _ in range(30):
                try:
                    await client.complete(_ask(f"row {n}"))
                except ModelRequestError:
                    seen.append("refusal")
                    break
                except RetryableError as error:
                    seen.append(type(error).__name__)
                else:
                    seen.append("reply")
                    break
        assert client.model.pending_requests == 0
        return seen

    first, second = await history(), await history()
    assert first == second
    assert first.count("reply") + first.count("refusal") == 40
    assert {"RateLimitError", "RetryableError", "reply"} <= set(first)


@pytest.mark.asyncio
async def test_fault_rates_are_roughly_honoured() -> None:
    client = _client(rate_limit_rate=0.3, seed=3)
    limited = 0
    for n in range(400):
        try:
            await client.complete(_ask(f"row {n}"))
        except RateLimitError:
            limited += 1
    assert 80 < limited < 160


@pytest.mark.asyncio
async def test_at_most_max_parallel_requests_are_in_progress() -> None:
    client = _client(latency_ms=(50, 50), max_parallel_requests=2)
    started = time.perf_counter()
    await asyncio.gather(*(client.complete(_ask(f"p{n}")) for n in range(6)))
    assert time.perf_counter() - started >= 0.15 - 0.01


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.asyncio
async def test_json_schema_reply_is_a_valid_deterministic_document(schema: dict[str, Any]) -> None:
    client = _client()
    text = await client.complete(_ask("Give me data"), json_schema=schema)
    jsonschema.validate(json.loads(text), schema)
    assert text == await _client().complete(_ask("Give me data"), json_schema=schema)


@given(prompt=st.text(min_size=1, max_size=40), seed=st.integers(0, 2**32))
def test_json_schema_replies_validate_for_any_prompt_and_seed(prompt: str, seed: int) -> None:
    for schema in SCHEMAS:
        text = mock_reply(MockSettings(seed=seed), _ask(prompt), json_schema=schema)
        jsonschema.validate(json.loads(text), schema)


@pytest.mark.asyncio
async def test_unfollowable_schema_is_a_model_request_error() -> None:
    with pytest.raises(ModelRequestError, match="cannot follow this json_schema"):
        await _client().complete(_ask("x"), json_schema={"$ref": "#/$defs/missing"})


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([], "messages must be a non-empty list"),
        ([{"role": "robot", "content": "hi"}], "messages[0].role must be one of"),
        ([{"role": "user"}], "messages[0].content must be a string or a list of text parts"),
    ],
)
@pytest.mark.asyncio
async def test_invalid_messages_are_rejected(messages: Any, problem: str) -> None:
    with pytest.raises(ModelRequestError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        await _client().complete(messages)


@pytest.mark.asyncio
async def test_closed_client_refuses_requests() -> None:
    async with _client() as client:
        await client.complete(_ask("hi"))
    with pytest.raises(ModelRequestError, match="closed"):
        await client.complete(_ask("hi"))


def test_one_client_serves_consecutive_event_loops() -> None:
    client = _client(max_parallel_requests=1)

    async def burst() -> list[str]:
        return list(await asyncio.gather(*(client.complete(_ask(f"q{n}")) for n in range(3))))

    assert asyncio.run(burst()) == asyncio.run(burst())


@pytest.mark.asyncio
async def test_slow_mock_request_warns_repeatedly_then_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rowforge")
    client = MockClient(
        ModelConfig("writer", slow_request_warning_s=0.05, mock=MockSettings(latency_ms=(200, 200)))
    )
    await client.complete(_ask("slow"))
    count = len([r for r in caplog.records if "request still pending" in r.getMessage()])
    assert count >= 2
    await asyncio.sleep(0.15)
    assert len([r for r in caplog.records if "request still pending" in r.getMessage()]) == count
