"""The `validator` mapping of a `validation` column: what each validator type takes, checked.

A validation column (`rowforge.config.columns.ValidationColumn`) names its validator with a
mapping discriminated by `type`, as a YAML file writes it:

- `{type: code, code_lang}`: Python (linted by ruff) or one of the SQL dialects (parsed by
  sqlfluff), data-designer's `CodeValidatorParams`;
- `{type: function, function, output_schema}`: a Python callable `fn(frame) -> frame`, or
  `"module:function"` (data-designer's `local_callable`);
- `{type: remote, endpoint_url, output_schema, timeout, max_retries, retry_backoff,
  max_parallel_requests}`: an HTTP endpoint (data-designer's `remote`).

The mapping is kept as written (only a pydantic model given as `output_schema` becomes its JSON
Schema, and sequences become lists, so a config equals itself after a trip through YAML);
`setting(validator, field)` reads a field with its default. `validator_problem` returns the
first problem as (field path under `validator`, what is wrong), which the column turns into a
`FieldError` (`column 'check'.validator.code_lang: ...`). This module is pure data: running a
validator is `rowforge.validators`' job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rowforge.models.config import describe

#: `code_lang` values: Python, and the SQL dialects data-designer lints (its `SQL_DIALECTS`).
PYTHON = "python"
SQL_DIALECTS = ("sql:sqlite", "sql:postgres", "sql:mysql", "sql:tsql", "sql:bigquery", "sql:ansi")
CODE_LANGS = (PYTHON, *SQL_DIALECTS)

#: Each validator type's fields (beside `type`) and their defaults; `REQUIRED` has none.
REQUIRED = object()
FIELDS: dict[str, dict[str, Any]] = {
    "code": {"code_lang": REQUIRED},
    "function": {"function": REQUIRED, "output_schema": None},
    "remote": {
        "endpoint_url": REQUIRED,
        "output_schema": None,
        "timeout": 30.0,
        "max_retries": 3,
        "retry_backoff": 2.0,
        "max_parallel_requests": 4,
    },
}

#: Deeper than any real schema; also how a self-referencing YAML anchor is caught.
_MAX_DEPTH = 64


def normalized(value: Any) -> Any:
    """The validator mapping as stored: a plain dict whose sequences are lists at any depth (a
    pydantic model class as `output_schema` becomes its JSON Schema); anything else is kept for
    `validator_problem` to refuse by name."""
    if not isinstance(value, Mapping):
        return value
    data = dict(value)
    schema_of = getattr(data.get("output_schema"), "model_json_schema", None)
    if callable(schema_of):
        data["output_schema"] = schema_of()
    return {key: _listed(item) for key, item in data.items()}


def _listed(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, list | tuple):
        return [_listed(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        return {key: _listed(item, depth + 1) for key, item in value.items()}
    return value


def setting(validator: Mapping[str, Any], field: str) -> Any:
    """`validator[field]`, or the field's default when it is not given."""
    return validator.get(field, FIELDS[validator["type"]][field])


def validator_problem(validator: Any) -> tuple[str, str] | None:
    """(field path, problem) for the first thing wrong with `validator`, or None."""
    if not isinstance(validator, Mapping):
        return "validator", f"must be a mapping with a type, got {describe(validator)}"
    kind = validator.get("type")
    if kind not in FIELDS:
        wanted = f"one of {sorted(FIELDS)}"
        if "type" not in validator:
            return "validator.type", f"is required; {wanted}"
        return "validator.type", f"must be {wanted}, got {describe(kind)}"
    known = FIELDS[kind]
    unknown = sorted((key for key in validator if key != "type" and key not in known), key=repr)
    if unknown:
        return "validator", (
            f"unknown fields {unknown} for a {kind!r} validator; known: {sorted(known)}"
        )
    for field, default in known.items():
        if default is REQUIRED and field not in validator:
            return f"validator.{field}", f"is required for a {kind!r} validator"
    checks = {"code": _code_problem, "function": _function_problem, "remote": _remote_problem}
    problem = checks[kind](validator)
    if problem is None and "output_schema" in known:
        problem = _schema_problem(setting(validator, "output_schema"))
    return problem


def _code_problem(validator: Mapping[str, Any]) -> tuple[str, str] | None:
    lang = validator["code_lang"]
    if not isinstance(lang, str) or lang not in CODE_LANGS:
        return "validator.code_lang", f"must be one of {list(CODE_LANGS)}, got {describe(lang)}"
    return None


def _function_problem(validator: Mapping[str, Any]) -> tuple[str, str] | None:
    from rowforge.config.columns import is_reference  # imported late: columns imports this

    function = validator["function"]
    if isinstance(function, str):
        if not is_reference(function):
            return "validator.function", f"must be 'module:function', got {function!r}"
    elif not callable(function):
        return "validator.function", (
            f"must be callable or 'module:function', got {describe(function)}"
        )
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _remote_problem(validator: Mapping[str, Any]) -> tuple[str, str] | None:
    url = validator["endpoint_url"]
    if not isinstance(url, str) or not _is_http_url(url):
        return "validator.endpoint_url", (
            f"must be an http:// or https:// URL with a host, got {describe(url)}"
        )
    for field in ("timeout", "retry_backoff"):
        value = setting(validator, field)
        if not _number(value) or not value > 0:
            return f"validator.{field}", f"must be a number > 0 (seconds), got {describe(value)}"
    retries = setting(validator, "max_retries")
    if not _integer(retries) or retries < 0:
        return "validator.max_retries", f"must be an integer >= 0, got {describe(retries)}"
    parallel = setting(validator, "max_parallel_requests")
    if not _integer(parallel) or parallel < 1:
        return "validator.max_parallel_requests", (
            f"must be an integer >= 1, got {describe(parallel)}"
        )
    return None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _schema_problem(schema: Any) -> tuple[str, str] | None:
    """An `output_schema` is a JSON Schema of one row's output: an object, which declares
    `is_valid` when it lists properties (the column stores the properties it declares, so one
    without `is_valid` would lose the verdict). data-designer's describes its whole answer,
    `{"data": [outputs]}`; its `properties.data.items` is what this one is."""
    if schema is None:
        return None
    field = "validator.output_schema"
    if not isinstance(schema, Mapping) or not schema:
        return field, f"must be a JSON Schema (a non-empty mapping), got {describe(schema)}"
    import jsonschema

    from rowforge.config.columns import json_problem  # imported late: columns imports this

    problem = json_problem(schema)
    if problem:
        return field, f"must be plain JSON: {problem}"
    try:
        jsonschema.Draft202012Validator.check_schema(dict(schema))
    except jsonschema.SchemaError as error:
        return field, f"invalid JSON Schema: {error.message}"
    kind = schema.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" not in kinds:
        return field, f"must describe an object (each row's output is one), got type {kind!r}"
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and properties and "is_valid" not in properties:
        return field, "must declare the property 'is_valid' among its properties"
    return None
