"""SQL parsed by sqlfluff in a dialect, judged as data-designer's `SQLValidator` judges it.

Per text: `sqlfluff.lint(text, dialect=...)`; the parse errors (codes starting with PRS) make
it invalid, each written as `"<code>: <description>"` on its own line of `error_messages`; so
does a `DECIMAL(<precision>)` without a scale (data-designer's extra check). Style rules do not
count. An exception inside sqlfluff makes the text invalid with the exception as the message,
as in data-designer. Output: `{is_valid, error_messages}` ("" when valid).

sqlfluff is pure Python and slow to parse: a batch is linted in a worker thread
(`asyncio.to_thread`), so the event loop keeps running other row groups meanwhile. Lints run
one at a time across threads (a lock): threads would not make CPU-bound Python faster, and
sqlfluff loads its dialects lazily, which is not worth racing. sqlfluff is the `validation`
extra; `require_sqlfluff` imports it when the column is compiled.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import pyarrow as pa

#: The Arrow type of one text's output.
SQL_OUTPUT_TYPE = pa.struct(
    [pa.field("is_valid", pa.bool_()), pa.field("error_messages", pa.string())]
)
DECIMAL_WITHOUT_SCALE = re.compile(r"DECIMAL\(\d+\)")
DECIMAL_MESSAGE = "Custom Check: Found DECIMAL definitions without a scale, which may be incorrect."

_LOCK = threading.Lock()


def require_sqlfluff() -> None:
    """Import sqlfluff (ImportError when missing) and quiet its INFO logging, as data-designer
    does."""
    import sqlfluff  # noqa: F401

    logging.getLogger("sqlfluff").setLevel(logging.WARNING)


async def lint_sql(texts: list[str], dialect: str) -> list[dict[str, Any]]:
    """One output per text, linted in a worker thread."""
    return await asyncio.to_thread(_lint_all, texts, dialect)


def _lint_all(texts: list[str], dialect: str) -> list[dict[str, Any]]:
    return [_lint(text, dialect) for text in texts]


def _lint(text: str, dialect: str) -> dict[str, Any]:
    import sqlfluff

    try:
        with _LOCK:
            violations = sqlfluff.lint(text, dialect=dialect)
    except Exception as error:  # sqlfluff's own failure: the text is invalid, saying why
        return {"is_valid": False, "error_messages": f"Exception during SQL parsing: {error}"}
    errors = "\n".join(
        f"{v['code']}: {v['description']}" for v in violations if v["code"].startswith("PRS")
    )
    if DECIMAL_WITHOUT_SCALE.search(text):
        errors += "\n" + DECIMAL_MESSAGE
    return {"is_valid": not errors, "error_messages": errors}
