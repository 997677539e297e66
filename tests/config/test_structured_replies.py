"""Structured columns read replies in code fences or with small JSON defects without asking the
model again, and count them in metadata.json; prose is still refused and asked again."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiohttp import web

from rowforge.api import build
from rowforge.config.dataset import DatasetConfig
from rowforge.models.mock_server import MockServer
from tests.reliability.netguard import ServerThread

SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "why": {"type": "string"}},
    "required": ["score", "why"],
}


class ScriptedServer(MockServer):
    """Answers every chat request with the next of `replies`, counting the requests."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self._replies = itertools.cycle(replies)
        self.requests = 0

    async def _answer(self, body: dict[str, Any]) -> web.Response:
        self.requests += 1
        content = next(self._replies)
        return web.json_response({
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": 0,
            "model": body.get("model", "m"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


def config(url: str) -> DatasetConfig:
    return DatasetConfig.from_dict({
        "models": [{"alias": "judge", "provider": "openai", "base_url": url,
                    "max_parallel_requests": 1}],
        "columns": [
            {"type": "uuid", "name": "id"},
            {"type": "llm_structured", "name": "verdict", "model": "judge",
             "prompt": "Judge {{ id }}.", "output_schema": SCHEMA, "max_parse_retries": 1},
        ],
    })


def test_fenced_and_slightly_broken_json_costs_no_second_request(tmp_path: Path) -> None:
    replies = [
        '{"score": 1, "why": "plain"}',
        'Here you go:\n```json\n{"score": 2, "why": "fenced"}\n```',
        "{'score': 3, 'why': 'single quotes',}",
        '```\n{"score": 4, "why": "fenced and cut short"\n```',
    ]
    with ServerThread(ScriptedServer(replies)) as server:
        result = build(config(server.url), 8, tmp_path / "out")
        requests = server.requests
    assert result.num_records == 8
    assert requests == 8  # one per record: nothing was asked again
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert sorted(score for score in (v["score"] for v in frame["verdict"])) == [1, 1, 2, 2, 3, 3,
                                                                                 4, 4]
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["models"]["judge"]["json_replies"] == {"unfenced": 4, "repaired": 4}


def test_prose_is_still_not_json_and_is_asked_for_again(tmp_path: Path) -> None:
    replies = ["I would rather not answer in JSON.", '{"score": 5, "why": "second try"}']
    with ServerThread(ScriptedServer(replies)) as server:
        result = build(config(server.url), 3, tmp_path / "out")
        requests = server.requests
    assert requests == 6  # each record: prose, then the JSON
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert [v["score"] for v in frame["verdict"]] == [5, 5, 5] and result.num_records == 3


@pytest.mark.parametrize("reply", ["", "{}", "[1, 2", "{'score': 'x', 'why': 1}"])
def test_what_repair_cannot_make_valid_fails_the_cell_with_the_reason(
    reply: str, tmp_path: Path
) -> None:
    with ServerThread(ScriptedServer([reply])) as server, pytest.raises(Exception) as caught:
        build(config(server.url), 1, tmp_path / "out")
    assert "does not match the schema after 2 attempts" in str(caught.value)
