"""llm_code columns: one code block in the asked language, without fence or surrounding text."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rowforge.api import build
from rowforge.config.columns import LLMCodeColumn
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError
from rowforge.models.repair import code_block
from tests.config.test_structured_replies import ScriptedServer
from tests.reliability.netguard import ServerThread


def config(base_url: str | None = None) -> DatasetConfig:
    model = {"alias": "coder"} if base_url is None else {
        "alias": "coder", "provider": "openai", "base_url": base_url, "max_parallel_requests": 1}
    return DatasetConfig.from_dict({
        "models": [model],
        "columns": [
            {"type": "category", "name": "task", "values": ["sorting", "parsing"]},
            {"type": "llm_code", "name": "snippet", "model": "coder", "code_lang": "python",
             "prompt": "Write a {{ task }} function.", "max_parse_retries": 1},
        ],
    })


def test_the_column_holds_the_code_of_the_block(tmp_path: Path) -> None:
    result = build(config(), 10, tmp_path / "out")  # the mock answers a code request in a block
    assert result.num_records == 10
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    for code in frame["snippet"]:
        assert code and "```" not in code and not code.startswith("Here is the code")


def test_a_reply_without_a_block_in_the_language_is_asked_again_then_fails(
    tmp_path: Path,
) -> None:
    replies = ["```sql\nselect 1\n```", "Sure!\n```python\ndef f():\n    return 1\n```"]
    with ServerThread(ScriptedServer(replies)) as server:
        build(config(server.url), 2, tmp_path / "ok")
        requests = server.requests
    assert requests == 4  # each record: the SQL block, then the Python one
    frame = pd.read_parquet(tmp_path / "ok" / "parquet-files")
    assert set(frame["snippet"]) == {"def f():\n    return 1"}

    with ServerThread(ScriptedServer(["no code at all"])) as server, pytest.raises(Exception) as e:
        build(config(server.url), 1, tmp_path / "fail")
    assert "no python code block in the model's reply after 2 attempts" in str(e.value)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("```python\nx = 1\n```", "x = 1"),
        ("Text\n~~~Python\nx = 2\n~~~\nmore text", "x = 2"),
        ("```\nuntagged = True\n```", "untagged = True"),
        ("```python\na\n```\n```python\nb\n```", "b"),  # the last block
        ("```sql\nselect 1\n```", None),
        ("x = 1", None),
        ("````python\nshow ``` inside\n````", "show ``` inside"),
    ],
)
def test_code_block(reply: str, code: str | None) -> None:
    assert code_block(reply, "python") == code


@pytest.mark.parametrize("language", ["", "Python", "c sharp", 3])
def test_the_language_is_checked(language: object) -> None:
    with pytest.raises(ConfigError, match=r"column 's'\.code_lang: must be a language name"):
        LLMCodeColumn(name="s", model="m", prompt="p", code_lang=language)  # type: ignore[arg-type]
