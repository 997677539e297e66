"""Optional speedups for the model clients' hot path: the `fast` extra (orjson).

Theory of operation: `OpenAIClient` encodes every request body and decodes every reply. The
standard library's `json` spends about 2 us encoding a chat-completions body and 3 us decoding a
short reply on a 2-core Xeon VM; orjson 0.1 us and 0.8 us (benchmarks/request_cpu.py and
docs/performance.md have the end-to-end numbers). When orjson is importable it is used
automatically; `ROWFORGE_FAST=0` in the environment (read once, at import) switches it off, so
a run can be measured with and without it.

The results do not depend on which library ran: `loads` falls back to `json.loads` for anything
orjson refuses (NaN and Infinity, UTF-16/32 or invalid UTF-8, lone surrogates) and for a payload
with 19 digits in a row (orjson reads an integer beyond 64 bits as a float), so what
`json.loads` accepts is still accepted, giving the same value, and what it refuses still raises
its `ValueError`. `dumps` falls back to `json.dumps` for anything orjson
cannot encode or would encode differently in meaning (NaN and Infinity, which `json.dumps`
writes as `NaN`/`Infinity` and orjson as `null`; non-string keys, which `json.dumps` turns into
strings; integers beyond 64 bits). The bytes on the wire differ only in spacing and in writing
non-ASCII text as UTF-8 instead of `\\u` escapes: the same JSON document.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

#: Whether the optional speedups may be used (`ROWFORGE_FAST=0` switches them off).
ENABLED = os.environ.get("ROWFORGE_FAST", "1").strip() != "0"


def _orjson() -> Any:
    try:
        import orjson
    except ImportError:  # the `fast` extra is not installed
        return None
    return orjson


#: The orjson module when it is installed and enabled, else None.
ORJSON: Any = _orjson() if ENABLED else None

#: 19 digits in a row: a number that orjson might read differently (it reads an integer beyond
#: 64 bits as a float); such payloads go to `json.loads`.
_LONG_DIGITS = re.compile(rb"\d{19}")


def in_use() -> dict[str, bool]:
    """Which optional speedups this process uses, by package name."""
    return {"orjson": ORJSON is not None}


def loads(payload: bytes) -> Any:
    """`json.loads(payload)`, by orjson when it can (see the module docstring)."""
    if ORJSON is not None and _LONG_DIGITS.search(payload) is None:
        try:
            return ORJSON.loads(payload)
        except ORJSON.JSONDecodeError:
            pass
    return json.loads(payload)


def dumps(value: Any) -> bytes:
    """`json.dumps(value)` as UTF-8 bytes, by orjson when that means the same document."""
    if ORJSON is not None:
        try:
            encoded: bytes = ORJSON.dumps(value)
        except ORJSON.JSONEncodeError:
            pass
        else:
            if b"null" not in encoded or not _has_non_finite(value):
                return encoded
    return json.dumps(value).encode("utf-8")


def _has_non_finite(value: Any) -> bool:
    """Whether `value` holds a NaN or an infinity (orjson writes them as null)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(item) for item in value)
    return False
