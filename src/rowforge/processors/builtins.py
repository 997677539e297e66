"""Built-in processors: drop columns, rename columns, build JSON text from Jinja templates."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import jinja2
import pandas as pd

from rowforge.errors import ConfigError
from rowforge.processors.base import Processor, Stage, check_stage
from rowforge.templates import compile_template


def _names(value: Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _mapping(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


@attrs.frozen
class DropColumns(Processor):
    """Remove columns (typically helper columns) before the rows are written."""

    columns: tuple[str, ...] = attrs.field(converter=_names)
    stage: Stage = "post_batch"

    def __attrs_post_init__(self) -> None:
        check_stage(self.stage, self.name)

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise KeyError(f"cannot drop missing columns {missing}; have {list(frame.columns)}")
        return frame.drop(columns=list(self.columns))


@attrs.frozen
class RenameColumns(Processor):
    """Rename columns: `{"old": "new"}`."""

    mapping: dict[str, str] = attrs.field(converter=_mapping)
    stage: Stage = "post_batch"

    def __attrs_post_init__(self) -> None:
        check_stage(self.stage, self.name)

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.mapping if c not in frame.columns]
        if missing:
            raise KeyError(f"cannot rename missing columns {missing}; have {list(frame.columns)}")
        return frame.rename(columns=self.mapping)


def _json_shaped(value: Any) -> Any:
    """Canonical JSON shape (tuples become lists), so equal templates compare equal."""
    if isinstance(value, Mapping):
        return {str(key): _json_shaped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_shaped(item) for item in value]
    return value


@attrs.frozen
class SchemaTransform(Processor):
    """Add a column of JSON text built from a template over each row.

    `template` is any JSON-shaped value (dicts, lists, strings, numbers); every string in it is
    a sandboxed Jinja2 template rendered with the row's columns. The result is serialised with
    `json.dumps`, so the new column always holds valid JSON text. Templates are compiled once.
    """

    column: str
    template: Any = attrs.field(converter=_json_shaped)
    stage: Stage = "post_batch"
    _compiled: Any = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        check_stage(self.stage, self.name)
        object.__setattr__(
            self, "_compiled", _compile(self.template, f"SchemaTransform {self.column!r}")
        )

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame.to_dict(orient="records")
        texts = [json.dumps(_render(self._compiled, row), ensure_ascii=False) for row in rows]
        return frame.assign(**{self.column: texts})


def _compile(template: Any, where: str) -> Any:
    if isinstance(template, str):
        return compile_template(template, where)
    if isinstance(template, Mapping):
        return {str(key): _compile(value, where) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [_compile(item, where) for item in template]
    if template is None or isinstance(template, bool | int | float):
        return template
    kind = type(template).__name__
    raise ConfigError(f"SchemaTransform templates must be JSON-shaped, got {kind}")


def _render(compiled: Any, row: Mapping[Any, Any]) -> Any:
    if isinstance(compiled, jinja2.Template):
        return compiled.render(**row)
    if isinstance(compiled, dict):
        return {key: _render(value, row) for key, value in compiled.items()}
    if isinstance(compiled, list):
        return [_render(item, row) for item in compiled]
    return compiled
