"""Inference parameters of a `ModelConfig` (issue 13): validated with the field's path, sent by
the OpenAI client exactly as the API names them, checked and honoured by the mock model and
the mock server, and round-tripped through a config file."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from rowforge.config.dataset import DatasetConfig, load_config, save_config
from rowforge.errors import ConfigError
from rowforge.models import MockClient, MockSettings, ModelConfig, mock_reply
from rowforge.models.config import FieldError
from rowforge.models.mock import cut_at_stop
from rowforge.models.mock_server import MockServer
from rowforge.models.openai_client import OpenAIClient

MESSAGES = [{"role": "user", "content": "Describe the refund policy for damaged parcels"}]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference.md"

#: Every new field set, as a config file would give it.
EVERY_OPTION: dict[str, Any] = {
    "temperature": None,
    "top_p": 0.9,
    "max_completion_tokens": 40,
    "stop": ["###", "</answer>"],
    "seed": 123,
    "extra_body": {"top_k": 40, "chat_template_kwargs": {"enable_thinking": False}},
    "extra_headers": {"X-Tenant": "research", "X-Trace": "1"},
}


def _model(**options: Any) -> ModelConfig:
    return ModelConfig("writer", **options)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_p": 0}, "models['writer'].top_p must be in (0, 1], got 0"),
        ({"top_p": 1.5}, "models['writer'].top_p must be in (0, 1], got 1.5"),
        ({"top_p": True}, "models['writer'].top_p must be in (0, 1], got True"),
        ({"top_p": "0.9"}, "models['writer'].top_p must be in (0, 1], got '0.9'"),
        ({"temperature": 2.5}, "models['writer'].temperature must be in [0, 2], got 2.5"),
        (
            {"max_completion_tokens": 0},
            "models['writer'].max_completion_tokens must be an int >= 1, got 0",
        ),
        (
            {"max_completion_tokens": 8.0},
            "models['writer'].max_completion_tokens must be an int >= 1, got 8.0",
        ),
        ({"stop": ""}, "models['writer'].stop must be a non-empty string or a list of 1 to 4"),
        ({"stop": []}, "models['writer'].stop must be a non-empty string or a list of 1 to 4"),
        (
            {"stop": ["a", "b", "c", "d", "e"]},
            "models['writer'].stop must be a non-empty string or a list of 1 to 4",
        ),
        ({"stop": ["a", ""]}, "models['writer'].stop must be a non-empty string or a list"),
        ({"stop": ["a", 1]}, "models['writer'].stop must be a non-empty string or a list"),
        ({"stop": 7}, "models['writer'].stop must be a non-empty string or a list of 1 to 4"),
        ({"seed": 1.5}, "models['writer'].seed must be an integer in [-2**63, 2**63 - 1], got 1.5"),
        ({"seed": True}, "models['writer'].seed must be an integer in [-2**63, 2**63 - 1]"),
        ({"seed": 2**63}, "models['writer'].seed must be an integer in [-2**63, 2**63 - 1]"),
        ({"extra_body": ["top_k"]}, "models['writer'].extra_body must be a mapping"),
        ({"extra_body": {1: 2}}, "models['writer'].extra_body must be a mapping with string keys"),
        (
            {"extra_body": {"top_k": 40, "temperature": 1, "seed": 2}},
            "models['writer'].extra_body must not set ['seed', 'temperature']: rowforge sets them",
        ),
        ({"extra_body": {"stream": True}}, "models['writer'].extra_body must not set ['stream']"),
        (
            {"extra_body": {"response_format": {"type": "json_object"}}},
            "models['writer'].extra_body must not set ['response_format']",
        ),
        ({"extra_body": {"x": {1, 2}}}, "models['writer'].extra_body must be a JSON object:"),
        ({"extra_body": {"x": float("nan")}}, "models['writer'].extra_body must be a JSON object"),
        (
            {"extra_headers": {"Authorization": "Bearer sk-1"}},
            "models['writer'].extra_headers must not set Authorization: the API key is sent "
            "from the environment variable named by api_key_env",
        ),
        (
            {"extra_headers": {"authorization": "Bearer sk-1"}},
            "models['writer'].extra_headers must not set Authorization",
        ),
        (
            {"extra_headers": {"Content-Type": "text/plain"}},
            "models['writer'].extra_headers must not set 'Content-Type': the HTTP client sets it",
        ),
        (
            {"extra_headers": {"X-Retries": 3}},
            "models['writer'].extra_headers['X-Retries'] must be a string without line breaks "
            "(quote numbers in YAML), got int 3",
        ),
        (
            {"extra_headers": {"X-A": "b\r\nX-Injected: 1"}},
            "models['writer'].extra_headers['X-A'] must be a string without line breaks",
        ),
        (
            {"extra_headers": {"bad name": "x"}},
            "models['writer'].extra_headers has str 'bad name', which is not an HTTP header name",
        ),
        ({"extra_headers": "X-A: b"}, "models['writer'].extra_headers must be a mapping"),
    ],
)
def test_a_bad_request_option_names_the_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(FieldError) as raised:
        _model(**options)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_bad_request_option_in_a_file_names_its_position() -> None:
    raw = {
        "columns": [{"type": "uuid", "name": "a"}],
        "models": [{"alias": "w", "extra_headers": {"X-Retries": 3}}],
    }
    with pytest.raises(ConfigError) as raised:
        DatasetConfig.from_dict(raw)
    assert str(raised.value) == (
        "models[0] 'w'.extra_headers['X-Retries']: must be a string without line breaks "
        "(quote numbers in YAML), got int 3"
    )


def test_valid_request_options_are_kept_and_a_stop_list_becomes_a_tuple() -> None:
    config = _model(**EVERY_OPTION)
    assert config.temperature is None
    assert config.stop == ("###", "</answer>")
    assert _model(stop="END").stop == "END"
    assert config.completion_token_limit == 40
    assert _model(max_tokens=30).completion_token_limit == 30
    assert _model(top_p=1, seed=-(2**63)).top_p == 1


def test_a_config_with_mappings_stays_hashable_and_owns_its_mappings() -> None:
    body = {"top_k": 40}
    config = _model(extra_body=body)
    body["temperature"] = 2  # would have been refused: must not reach the config
    assert config.extra_body == {"top_k": 40}
    assert hash(config) == hash(_model(extra_body={"top_k": 40}))
    assert config == _model(extra_body={"top_k": 40})
    assert config != _model(extra_body={"top_k": 41})


# --- the YAML round trip ------------------------------------------------------------------------


def _dataset(**options: Any) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "columns": [{"type": "llm_text", "name": "answer", "prompt": "Hi", "model": "w"}],
            "models": [{"alias": "w", "provider": "openai", **options}],
        }
    )


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_every_request_option_survives_a_config_file(tmp_path: Path, suffix: str) -> None:
    config = _dataset(**EVERY_OPTION)
    path = tmp_path / f"config{suffix}"
    save_config(config, path)
    assert load_config(path) == config
    model = load_config(path).model("w")
    assert model.stop == ("###", "</answer>")
    assert model.extra_body == EVERY_OPTION["extra_body"]
    assert model.extra_headers == EVERY_OPTION["extra_headers"]


def test_a_saved_config_lists_the_request_options_only_when_set(tmp_path: Path) -> None:
    save_config(_dataset(), tmp_path / "plain.yaml")
    plain = yaml.safe_load((tmp_path / "plain.yaml").read_text())["models"][0]
    assert set(plain) == {
        "alias", "provider", "model", "base_url", "api_key_env", "temperature", "max_tokens",
        "timeout_s", "max_parallel_requests", "slow_request_warning_s", "mock",
    }  # fmt: skip
    save_config(_dataset(**EVERY_OPTION, api_key_env="OPENAI_API_KEY"), tmp_path / "full.yaml")
    text = (tmp_path / "full.yaml").read_text()
    full = yaml.safe_load(text)["models"][0]
    assert full["temperature"] is None
    assert {name: full[name] for name in EVERY_OPTION} == EVERY_OPTION
    assert "sk-" not in text


def test_the_reference_example_loads() -> None:
    section = DOCS.read_text(encoding="utf-8").split("## Models (`models:`)")[1].split("\n## ")[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    models = yaml.safe_load(block.group(1))["models"]
    config = DatasetConfig.from_dict({"columns": [{"type": "uuid", "name": "a"}], "models": models})
    thinker, writer = config.models
    assert thinker.temperature is None and thinker.max_completion_tokens == 4096
    assert writer.stop == ("\n\n###", "</answer>") and writer.extra_headers == {
        "X-Tenant": "research"
    }


# --- what the OpenAI client sends ----------------------------------------------------------------


@pytest_asyncio.fixture
async def recorder() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A server on 127.0.0.1 that records each request's raw body and headers and answers a
    fixed chat completion; yields its base URL and the records."""
    records: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        records.append({"body": json.loads(await request.read()), "headers": request.headers})
        return web.json_response({"choices": [{"message": {"content": "ok"}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", records
    finally:
        await runner.cleanup()


async def _sent(base_url: str, **options: Any) -> None:
    config = ModelConfig("writer", provider="openai", base_url=base_url, model="m", **options)
    async with OpenAIClient(config) as client:
        assert await client.complete(MESSAGES) == "ok"


@pytest.mark.asyncio
async def test_the_body_carries_every_request_option(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    base, records = recorder
    await _sent(base, **EVERY_OPTION)
    assert records[0]["body"] == {
        "model": "m",
        "messages": MESSAGES,
        "top_p": 0.9,
        "stop": ["###", "</answer>"],
        "seed": 123,
        "max_completion_tokens": 40,
        "top_k": 40,
        "chat_template_kwargs": {"enable_thinking": False},
    }


@pytest.mark.asyncio
async def test_unset_options_are_not_sent_and_a_single_stop_string_stays_one(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    base, records = recorder
    await _sent(base)
    await _sent(base, temperature=0, stop="END", seed=0, max_tokens=9)
    assert records[0]["body"] == {
        "model": "m",
        "messages": MESSAGES,
        "temperature": 0.7,
        "max_tokens": 512,
    }
    assert records[1]["body"] == {
        "model": "m",
        "messages": MESSAGES,
        "temperature": 0,
        "stop": "END",
        "seed": 0,
        "max_tokens": 9,
    }


@pytest.mark.asyncio
async def test_extra_headers_go_with_every_request_beside_the_key(
    recorder: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, records = recorder
    monkeypatch.setenv("ROWFORGE_TEST_KEY", "sk-test-1")
    await _sent(base, api_key_env="ROWFORGE_TEST_KEY", extra_headers=EVERY_OPTION["extra_headers"])
    await _sent(base)
    headers = records[0]["headers"]
    assert headers["Authorization"] == "Bearer sk-test-1"
    assert headers["X-Tenant"] == "research" and headers["X-Trace"] == "1"
    assert headers["Content-Type"] == "application/json"
    assert "X-Tenant" not in records[1]["headers"]
    assert "Authorization" not in records[1]["headers"]


@pytest.mark.asyncio
async def test_the_mock_server_accepts_every_option_the_client_sends() -> None:
    settings = MockSettings(seed=3)
    async with MockServer(settings) as server:
        config = ModelConfig("w", provider="openai", base_url=server.url, **EVERY_OPTION)
        async with OpenAIClient(config) as client:
            reply = await client.complete(MESSAGES)
    options = {"max_tokens": 40, "stop": ["###", "</answer>"], "seed": 123}
    assert reply == mock_reply(settings, MESSAGES, **options)


# --- the mock honours them ----------------------------------------------------------------------


def test_the_mock_cuts_its_reply_before_the_first_stop_string() -> None:
    settings = MockSettings(seed=1)
    full = mock_reply(settings, MESSAGES)
    word = full.split()[3]
    cut = mock_reply(settings, MESSAGES, stop=["no such text", word])
    assert cut == full[: full.index(word)]
    assert mock_reply(settings, MESSAGES, stop=word) == cut
    assert mock_reply(settings, MESSAGES, stop="no such text") == full
    assert cut_at_stop("a, b. c, d.", [".", ","]) == "a"


def test_a_request_seed_changes_the_reply_reproducibly_and_no_seed_keeps_the_old_one() -> None:
    settings = MockSettings(seed=1)
    replies = {mock_reply(settings, MESSAGES, seed=seed) for seed in range(8)}
    assert len(replies) > 1
    assert mock_reply(settings, MESSAGES, seed=5) == mock_reply(settings, MESSAGES, seed=5)
    assert mock_reply(settings, MESSAGES, seed=None) == mock_reply(settings, MESSAGES)


@pytest.mark.asyncio
async def test_the_in_process_mock_honours_the_configs_options() -> None:
    config = _model(max_completion_tokens=3, max_tokens=100, seed=9, stop="zzz")
    async with MockClient(config) as client:
        reply = await client.complete(MESSAGES)
    assert reply == mock_reply(config.mock, MESSAGES, max_tokens=3, seed=9, stop="zzz")
    assert len(reply.split()) == 3


@pytest.mark.asyncio
async def test_the_mock_server_honours_stop_seed_and_max_completion_tokens() -> None:
    settings = MockSettings(seed=2)
    full = mock_reply(settings, MESSAGES, seed=4)
    stop = full.split()[2]
    body = {
        "model": "m",
        "messages": MESSAGES,
        "seed": 4,
        "stop": [stop],
        "max_tokens": 1,
        "max_completion_tokens": 50,
        "temperature": None,
        "top_p": 1,
        "top_k": 5,  # a field the mock does not know: accepted and ignored, as vLLM does
    }
    async with (
        MockServer(settings) as server,
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/chat/completions", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        content = (await response.json())["choices"][0]["message"]["content"]
    assert content == full[: full.index(stop)]
