"""Processor entries of a dataset config, and their dict (YAML/JSON) form.

`processor_from_dict` checks every field's type before building the processor, so a malformed
entry is a `FieldError` naming the field (`processors[1] 'rename_columns'.mapping: must be a
mapping of old to new names, got list`), never a `TypeError` from the processor class. Whether
the columns a processor names exist is checked by `DatasetConfig`, which knows the columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from rowforge.config.columns import is_reference, json_problem
from rowforge.errors import ConfigError, describe_error
from rowforge.importing import reference, resolve
from rowforge.models.config import FieldError, describe
from rowforge.processors import (
    STAGES,
    DropColumns,
    FunctionProcessor,
    Processor,
    RenameColumns,
    SchemaTransform,
)
from rowforge.templates import template_problem

PROCESSOR_TYPES: dict[str, type[Processor]] = {
    "drop_columns": DropColumns,
    "rename_columns": RenameColumns,
    "schema_transform": SchemaTransform,
}

#: Fields of each processor type in the dict form: (required, optional).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "drop_columns": (("columns",), ("stage",)),
    "rename_columns": (("mapping",), ("stage",)),
    "schema_transform": (("column", "template"), ("stage",)),
    "custom": (("function",), ("stage", "name")),
}


def processor_kind(processor: Processor) -> str:
    """The `type:` tag of a processor (`custom` for a function), else its name."""
    if isinstance(processor, FunctionProcessor):
        return "custom"
    for kind, cls in PROCESSOR_TYPES.items():
        if type(processor) is cls:
            return kind
    return processor.name


def _fail(kind: str, field: str, problem: str) -> FieldError:
    return FieldError(f"a {kind!r} processor's {field or 'fields'}: {problem}", field, problem)


def processor_from_dict(raw: Mapping[str, Any]) -> Processor:
    """`{"type": "drop_columns", "columns": [...]}`, or `{"type": "custom", "function":
    "module:fn", "stage": "post_batch"}` for a plain function."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a processor must be a mapping, got {describe(raw)}")
    kind = raw.get("type")
    known = list(FIELDS)
    if not isinstance(kind, str) or kind not in FIELDS:
        problem = (
            f"unknown processor type {kind!r}; known: {known}"
            if "type" in raw
            else f"is required; one of {known}"
        )
        raise FieldError(f"processor type {problem}", "type", problem)
    fields = {k: v for k, v in raw.items() if k != "type"}
    required, optional = FIELDS[kind]
    unknown = sorted((k for k in fields if k not in required + optional), key=repr)
    if unknown:
        raise _fail(kind, "", f"unknown fields {unknown}; known: {sorted(required + optional)}")
    for name in required:
        if name not in fields:
            raise _fail(kind, name, "is required")
    stage = fields.get("stage", "post_batch")
    if not isinstance(stage, str) or stage not in STAGES:
        raise _fail(kind, "stage", f"must be one of {STAGES}, got {stage!r}")
    if kind == "custom":
        return _custom(fields, stage)
    check = {"drop_columns": _drop, "rename_columns": _rename, "schema_transform": _schema}
    check[kind](kind, fields)
    return PROCESSOR_TYPES[kind](**fields)


def _drop(kind: str, fields: dict[str, Any]) -> None:
    columns = fields["columns"]
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) and c for c in columns):
        raise _fail(kind, "columns", f"must be a list of column names, got {describe(columns)}")


def _rename(kind: str, fields: dict[str, Any]) -> None:
    mapping = fields["mapping"]
    if not isinstance(mapping, Mapping) or not all(
        isinstance(old, str) and old and isinstance(new, str) and new
        for old, new in mapping.items()
    ):
        raise _fail(
            kind, "mapping", f"must be a mapping of old to new names, got {describe(mapping)}"
        )
    targets = list(mapping.values())
    twice = sorted({name for name in targets if targets.count(name) > 1})
    if twice:
        raise _fail(kind, "mapping", f"renames two columns to {twice[0]!r}")


def _schema(kind: str, fields: dict[str, Any]) -> None:
    column = fields["column"]
    if not isinstance(column, str) or not column:
        raise _fail(kind, "column", f"must be a column name, got {describe(column)}")
    template = fields["template"]
    problem = json_problem(template)
    if problem:
        raise _fail(kind, "template", f"must be JSON-shaped: {problem}")
    for path, source in template_strings(template):
        problem = template_problem(source)
        if problem:
            raise _fail(kind, f"template{path}", problem)


def template_strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a SchemaTransform template, with its path in it (`.messages[0].content`)."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [
            pair for key, item in value.items() for pair in template_strings(item, f"{path}.{key}")
        ]
    if isinstance(value, list | tuple):
        return [
            pair for i, item in enumerate(value) for pair in template_strings(item, f"{path}[{i}]")
        ]
    return []


def _custom(fields: dict[str, Any], stage: Any) -> Processor:
    ref, name = fields["function"], fields.get("name")
    if not is_reference(ref):
        raise _fail("custom", "function", f"must be 'module:function', got {describe(ref)}")
    if name is not None and not isinstance(name, str):
        raise _fail("custom", "name", f"must be a string, got {describe(name)}")
    try:
        function = resolve(ref)
    except ConfigError as error:
        raise _fail("custom", "function", str(error)) from None
    except Exception as error:  # importing runs the module's code: anything can happen there
        raise _fail(
            "custom", "function", f"cannot import {ref!r}: {describe_error(error)}"
        ) from None
    if not callable(function):
        raise _fail("custom", "function", f"{ref!r} is not callable: {describe(function)}")
    return FunctionProcessor(function, stage, name)


def processor_to_dict(processor: Processor) -> dict[str, Any]:
    if isinstance(processor, FunctionProcessor):
        ref = reference(processor.fn)
        if ref is None:
            raise ConfigError(f"processor {processor.name!r} has no importable function name")
        return {
            "type": "custom",
            "function": ref,
            "stage": processor.stage,
            "name": processor.label,
        }
    for kind, cls in PROCESSOR_TYPES.items():
        if type(processor) is cls:
            fields = {a.name: getattr(processor, a.name) for a in attrs.fields(cls) if a.init}  # type: ignore[arg-type]
            return {
                "type": kind,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()},
            }
    raise ConfigError(f"processor {processor.name!r} cannot be written to a config file")
