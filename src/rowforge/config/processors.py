"""Processor entries of a dataset config, and their dict (YAML/JSON) form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from rowforge.errors import ConfigError
from rowforge.processors import (
    DropColumns,
    FunctionProcessor,
    Processor,
    RenameColumns,
    SchemaTransform,
)

PROCESSOR_TYPES: dict[str, type[Processor]] = {
    "drop_columns": DropColumns,
    "rename_columns": RenameColumns,
    "schema_transform": SchemaTransform,
}


def processor_from_dict(raw: Mapping[str, Any]) -> Processor:
    """`{"type": "drop_columns", "columns": [...]}`, or `{"type": "custom", "function":
    "module:fn", "stage": "post_batch"}` for a plain function."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a processor must be a mapping, got {type(raw).__name__}")
    kind = raw.get("type")
    fields = {k: v for k, v in raw.items() if k != "type"}
    if kind == "custom":
        from rowforge.recipe import resolve

        unknown = sorted(set(fields) - {"function", "stage", "name"})
        if unknown or "function" not in fields:
            raise ConfigError(
                f"a custom processor takes function, stage and name; got {sorted(fields)}"
            )
        return FunctionProcessor(
            resolve(str(fields["function"])), fields.get("stage", "post_batch"), fields.get("name")
        )
    cls = PROCESSOR_TYPES.get(str(kind))
    if cls is None:
        known = [*PROCESSOR_TYPES, "custom"]
        raise ConfigError(f"unknown processor type {kind!r}; known: {known}")
    allowed = {a.name for a in attrs.fields(cls) if a.init}  # type: ignore[arg-type]
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ConfigError(f"unknown fields {unknown} for a {kind!r} processor")
    return cls(**fields)


def processor_to_dict(processor: Processor) -> dict[str, Any]:
    if isinstance(processor, FunctionProcessor):
        from rowforge.recipe import reference

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
