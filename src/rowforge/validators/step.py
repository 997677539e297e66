"""A `validation` column as one engine step, and the Arrow type of its values.

The column compiles to ONE batch step named after it that depends on the target columns. Per
row group the step splits its rows into chunks of `batch_size`, validates the chunks
concurrently (an `asyncio.TaskGroup` inside the step, so every chunk has ended when the step
returns) and returns one value per row, in order.

A chunk whose validator raises, returns the wrong number of outputs, an output without a
boolean `is_valid`, one that does not match `output_schema`, or whose remote call still fails
after its retries, gives each of its rows a `RowFailed` whose error names the column, the
validator and the cause: those rows are dropped and counted with the reason, never stored with
a made-up verdict (data-designer writes `is_valid: null` for a remote batch that failed; here
the loss is visible in the run's drop reasons). A row whose code column does not hold text
fails alone.

Code validators with several target columns validate each column's text separately; the row's
value is then `{column: output, ...}` (data-designer's shape). data-designer 0.9.7 has a bug
there: for the second and later columns it stores the output of the batch's first row on every
row; here each row holds its own outputs.

Missing optional packages (ruff, sqlfluff, httpx: the `validation` extra) and a function that
cannot be imported are found when the column is compiled, as a `ConfigError` naming the column.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, cast

import attrs
import pandas as pd
import pyarrow as pa

from rowforge.config.validator_params import PYTHON, setting
from rowforge.errors import ConfigError, describe_error
from rowforge.importing import reference, resolve
from rowforge.models.config import describe
from rowforge.scheduler import RowFailed, Step
from rowforge.storage.arrow_types import json_schema_type
from rowforge.validators.function import call_function
from rowforge.validators.python import PYTHON_OUTPUT_TYPE, lint_python, ruff_binary
from rowforge.validators.remote import RemoteValidator, require_httpx
from rowforge.validators.sql import SQL_OUTPUT_TYPE, lint_sql, require_sqlfluff

if TYPE_CHECKING:
    from rowforge.config.columns import ValidationColumn

EXTRA = "pip install 'rowforge[validation]'"

#: Validates one chunk (a DataFrame of the target columns): one output per row, where an
#: exception stands for a row that has none.
Check = Callable[[Any, pd.DataFrame], Awaitable[list[Any]]]


class ValidatorError(Exception):
    """Why a row of a validation column has no verdict: names the column, the validator and
    the cause."""


@attrs.frozen
class Validator:
    """What the step runs: `session()` is entered once per step call (a remote validator's
    HTTP client), `check` once per chunk."""

    label: str
    check: Check
    session: Callable[[], AbstractAsyncContextManager[Any]] = contextlib.nullcontext


def validation_type(column: ValidationColumn) -> pa.DataType | None:
    """A code validator's fixed struct (per target column, when there are several); a function
    or remote validator's `output_schema` type, or None (the values decide) without one."""
    validator = column.validator
    if validator["type"] == "code":
        one = PYTHON_OUTPUT_TYPE if validator["code_lang"] == PYTHON else SQL_OUTPUT_TYPE
        if len(column.target_columns) == 1:
            return one
        return pa.struct([pa.field(name, one) for name in column.target_columns])
    schema = setting(validator, "output_schema")
    return None if schema is None else json_schema_type(schema)


def validation_steps(column: ValidationColumn, _: Any) -> tuple[Step, ...]:
    """The column's one batch step (see the module docstring)."""
    validator = _validator(column)
    size = column.batch_size
    name = column.name

    async def chunk_values(session: Any, chunk: pd.DataFrame) -> list[Any]:
        try:
            outputs = await validator.check(session, chunk)
        except Exception as error:  # the validator's failure is this chunk's, not the run's
            return [_failed(name, validator.label, error)] * len(chunk)
        return [
            _failed(name, validator.label, output) if isinstance(output, Exception) else output
            for output in outputs
        ]

    async def validate(frame: pd.DataFrame) -> list[Any]:
        chunks = [frame.iloc[start : start + size] for start in range(0, len(frame), size)]
        async with validator.session() as session, asyncio.TaskGroup() as group:
            tasks = [group.create_task(chunk_values(session, chunk)) for chunk in chunks]
        return [value for task in tasks for value in task.result()]

    return (Step(name, validate, kind="batch", depends_on=sorted(column.dependencies())),)


def _failed(column: str, label: str, error: BaseException) -> RowFailed:
    return RowFailed(ValidatorError(f"column {column!r}: {label} failed: {describe_error(error)}"))


def _validator(column: ValidationColumn) -> Validator:
    kind = column.validator["type"]
    if kind == "code":
        return _code_validator(column)
    if kind == "function":
        return _function_validator(column)
    return _remote_validator(column)


def _missing(column: ValidationColumn, what: str, package: str) -> ConfigError:
    return ConfigError(
        f"column {column.name!r}: the {what} validator needs {package}, which is not "
        f"installed: {EXTRA}"
    )


def _code_validator(column: ValidationColumn) -> Validator:
    lang: str = column.validator["code_lang"]
    lint: Callable[[list[str]], Awaitable[list[dict[str, Any]]]]
    if lang == PYTHON:
        try:
            ruff = ruff_binary()
        except (ImportError, FileNotFoundError):
            raise _missing(column, "python code", "ruff") from None
        lint = lambda texts: lint_python(ruff, texts)  # noqa: E731
    else:
        try:
            require_sqlfluff()
        except ImportError:
            raise _missing(column, f"{lang} code", "sqlfluff") from None
        dialect = lang.removeprefix("sql:")
        lint = lambda texts: lint_sql(texts, dialect)  # noqa: E731
    targets = list(column.target_columns)

    async def check(_: Any, chunk: pd.DataFrame) -> list[Any]:
        """Every text of every target column in one lint call; a row whose value in some
        target column is not text fails alone."""
        texts: list[str] = []
        slots: dict[tuple[int, str], int] = {}
        problems: list[Exception | None] = [None] * len(chunk)
        for target in targets:
            for row, value in enumerate(chunk[target].tolist()):
                if isinstance(value, str):
                    slots[row, target] = len(texts)
                    texts.append(value)
                elif problems[row] is None:
                    problems[row] = ValueError(
                        f"column {target!r} holds {describe(value)}, not code text"
                    )
        outputs = await lint(texts) if texts else []
        values: list[Any] = []
        for row, problem in enumerate(problems):
            if problem is not None:
                values.append(problem)
                continue
            per_column = {target: outputs[slots[row, target]] for target in targets}
            values.append(per_column if len(targets) > 1 else per_column[targets[0]])
        return values

    return Validator(f"code validator ({lang})", check)


def _function_validator(column: ValidationColumn) -> Validator:
    function = column.validator["function"]
    where = f"column {column.name!r}.validator.function"
    if isinstance(function, str):
        try:
            function = resolve(function)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        if not callable(function):
            raise ConfigError(f"{where}: {column.validator['function']!r} is not callable")
    name = reference(function) or getattr(function, "__qualname__", None) or repr(function)
    schema = setting(column.validator, "output_schema")
    targets = list(column.target_columns)

    async def check(_: Any, chunk: pd.DataFrame) -> list[Any]:
        return await call_function(function, chunk[targets].copy(), schema)

    return Validator(f"function validator ({name})", check)


def _remote_validator(column: ValidationColumn) -> Validator:
    try:
        require_httpx()
    except ImportError:
        raise _missing(column, "remote", "httpx") from None
    remote = RemoteValidator(column.validator)
    targets = list(column.target_columns)

    async def check(client: Any, chunk: pd.DataFrame) -> list[Any]:
        records = cast(list[dict[str, Any]], chunk[targets].to_dict(orient="records"))
        return await remote.validate(client, records)

    return Validator(f"remote validator ({remote.url})", check, remote.client)
