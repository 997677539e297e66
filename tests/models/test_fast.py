"""`rowforge.models.fast`: orjson when installed, with results identical to the json module's."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowforge.models import fast

orjson = pytest.importorskip("orjson")

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _same(left: Any, right: Any) -> bool:
    """Equality that counts NaN equal to NaN (json round-trips it)."""
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


@pytest.fixture(params=["orjson", "json"])
def library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(fast, "ORJSON", orjson if request.param == "orjson" else None)
    return str(request.param)


@given(_json_values)
def test_loads_reads_what_json_reads(value: Any) -> None:
    for encoded in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        payload = encoded.encode("utf-8", "surrogatepass")
        try:
            expected = json.loads(payload)
        except ValueError:
            with pytest.raises(ValueError):
                fast.loads(payload)
            continue
        assert _same(fast.loads(payload), expected)


@given(_json_values)
def test_dumps_writes_the_document_json_writes(value: Any) -> None:
    assert _same(json.loads(fast.dumps(value)), json.loads(json.dumps(value)))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"a": NaN, "b": -Infinity}',  # json accepts them, orjson refuses
        b'{"n": 123456789012345678901234567890}',  # beyond 64 bits
        '{"t": "h\u00e9"}'.encode("utf-16"),  # json detects UTF-16 by its BOM
        b'{"s": "\\ud800"}',  # a lone surrogate
        b'{"k": 1, "k": 2}',  # the last duplicate wins in both
        b"[1e400, -0.0, 1.7976931348623157e308, 5e-324, 18446744073709551615]",
        b"[0.12345678901234567890123, -9223372036854775808]",
        b'{"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3}}',
    ],
)
def test_loads_edge_cases_match_json(library: str, payload: bytes) -> None:
    assert _same(fast.loads(payload), json.loads(payload))


@pytest.mark.parametrize("payload", [b"", b"{", b'{"a": 1,}', b"\xff\xfe\xfa", b"[1] 2"])
def test_loads_refuses_what_json_refuses(library: str, payload: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(payload)
    with pytest.raises(ValueError):
        fast.loads(payload)


@pytest.mark.parametrize(
    "value",
    [
        {"temperature": math.nan},  # json writes NaN, orjson would write null
        {"x": [1.0, math.inf, None]},
        {1: "int key", "s": 2},  # json turns the key into "1"; orjson refuses it
        {"big": 2**70},
        {"text": "h\u00e9 \u2603", "tuple": (1, 2)},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
    ],
)
def test_dumps_edge_cases_mean_what_json_means(library: str, value: Any) -> None:
    assert _same(json.loads(fast.dumps(value)), json.loads(json.dumps(value)))


def test_without_orjson_dumps_is_json_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast, "ORJSON", None)
    value = {"model": "m", "text": "h\u00e9", "n": [1, 2.5, None]}
    assert fast.dumps(value) == json.dumps(value).encode("utf-8")
    assert fast.in_use() == {"orjson": False}


def test_in_use_reports_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast, "ORJSON", orjson)
    assert fast.in_use() == {"orjson": True}


@pytest.mark.parametrize(("setting", "expected"), [("0", "False"), ("1", "True"), (None, "True")])
def test_rowforge_fast_environment_variable(setting: str | None, expected: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "ROWFORGE_FAST"}
    if setting is not None:
        env["ROWFORGE_FAST"] = setting
    completed = subprocess.run(
        [sys.executable, "-c", "from rowforge.models import fast; print(fast.in_use()['orjson'])"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert completed.stdout.strip() == expected
