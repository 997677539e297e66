"""One Arrow schema per run: JSON-schema types, value conforming, and the schema every file gets.

Theory of operation
-------------------
pyarrow infers a column's type from the values it sees. One row group per file means one
inference per file, so a structured column whose integer field happens to hold only whole
numbers in one row group and `3.5` in another (or lacks an optional key in one) gives files of
different schemas, and `pd.read_parquet(dir)` or `pyarrow.dataset` then refuse the directory.
rowforge decides each column's type once per run instead:

- declared columns: a type derived from the column's config (`rowforge.config.arrow_schema`),
  for structured LLM columns from their `output_schema` via `json_schema_type`:
  integer -> int64, number -> float64, string -> string, boolean -> bool, array -> list of its
  item type, object with properties -> struct (a key that is not required is nullable), a
  `[T, "null"]` type -> nullable T. A part of the schema that allows several shapes (`anyOf`,
  several types, an object without properties) is stored as its JSON text (string), which is
  always one type;
- every other column (custom Python, seed data, processor output): the type of the first row
  group that has a non-null value, locked for the rest of the run; a later row group whose
  values do not convert fails with an error naming the column and both types.

`conform(value, schema)` brings a parsed, schema-valid JSON document to exactly that Arrow
shape (whole floats for integers, ints for numbers, missing optional keys as None, keys the
schema does not declare removed), and raises `ValueError` naming the path for a value that does
not fit. pyarrow itself would silently truncate 3.5 to 3 in an int64 column, so values are
conformed before pyarrow sees them. `RunSchema` applies the types when a file is written.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

JsonSchema = Mapping[str, Any]

_SCALARS: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
}


def _kinds(schema: JsonSchema) -> tuple[str | None, bool]:
    """The one non-null JSON type `schema` allows (None when several or unknown), and whether
    null is allowed too."""
    kind = schema.get("type")
    if isinstance(kind, list):
        others = [k for k in kind if k != "null"]
        nullable = len(others) < len(kind)
        return (others[0] if len(others) == 1 else None), nullable
    if kind is None and "properties" in schema:
        return "object", False
    if kind is None and "enum" in schema:
        values = [v for v in schema["enum"] if v is not None]
        if values and all(isinstance(v, str) for v in values):
            return "string", len(values) < len(schema["enum"])
    return (kind if isinstance(kind, str) else None), False


def _mapping(schema: Any) -> JsonSchema:
    """A sub-schema as a mapping (`true` and other non-mappings allow anything)."""
    return schema if isinstance(schema, Mapping) else {}


def _is_json_text(schema: JsonSchema) -> bool:
    kind, _ = _kinds(schema)
    if kind is None:
        return True  # several types, or none said: several shapes are allowed
    composed = any(key in schema for key in ("anyOf", "oneOf", "allOf", "$ref"))
    if composed and "type" not in schema:
        return True  # the shape comes from sub-schemas; a `type` beside them would fix it
    if kind == "object":
        return not schema.get("properties")
    if kind == "array":
        items = schema.get("items")
        return not isinstance(items, Mapping) or _is_json_text(items)
    return kind not in _SCALARS


def json_schema_type(schema: JsonSchema) -> pa.DataType:
    """The Arrow type that holds every document valid for `schema` (see the module docstring)."""
    if _is_json_text(schema):
        return pa.string()
    kind, _ = _kinds(schema)
    if kind == "object":
        required = set(schema.get("required") or ())
        fields = []
        for name, sub in schema["properties"].items():
            sub = _mapping(sub)
            _, allows_null = _kinds(sub)
            nullable = name not in required or allows_null or _is_json_text(sub)
            fields.append(pa.field(name, json_schema_type(sub), nullable=nullable))
        return pa.struct(fields)
    if kind == "array":
        return pa.list_(json_schema_type(schema["items"]))
    return _SCALARS[str(kind)]


def conform(value: Any, schema: JsonSchema, path: str = "$") -> Any:
    """`value` (already valid for `schema`) shaped for `json_schema_type(schema)`.

    Raises `ValueError` naming the JSON path when a value cannot be stored in that type.
    """
    if _is_json_text(schema):
        return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)
    if value is None:
        return None
    kind, _ = _kinds(schema)
    if kind == "object":
        if not isinstance(value, Mapping):
            raise ValueError(f"{path}: expected an object, got {type(value).__name__}")
        properties = schema["properties"]
        return {
            name: conform(value.get(name), _mapping(sub), f"{path}.{name}")
            for name, sub in properties.items()
        }
    if kind == "array":
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected an array, got {type(value).__name__}")
        return [conform(item, schema["items"], f"{path}[{i}]") for i, item in enumerate(value)]
    return _scalar(value, str(kind), path)


def _scalar(value: Any, kind: str, path: str) -> Any:
    if kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "string":
        if isinstance(value, str):
            return value
    elif isinstance(value, bool):
        pass  # a bool is not a number here, though Python says it is an int
    elif kind == "integer":
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind == "number" and isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise ValueError(f"{path}: {value!r} does not fit the schema's {kind}")


class RunSchema:
    """The Arrow types every file of one run is written with (thread-safe: row groups are
    written from worker threads).

    `declared` maps column names to their types; `existing` (on resume) is the schema of files
    already written, whose types then hold for every column it names.
    """

    def __init__(
        self, declared: Mapping[str, pa.DataType] | None = None, existing: pa.Schema | None = None
    ) -> None:
        self._declared = dict(declared or {})
        self._locked: dict[str, pa.DataType] = {}
        self._written: dict[str, str] = {}  # what the files hold, for metadata.json
        if existing is not None:
            index_columns = _index_columns(existing)
            for field in existing:
                if field.name not in index_columns:
                    self._locked[field.name] = field.type
                    self._written[field.name] = str(field.type)
        self._lock = threading.Lock()

    def table(self, row_group: int, frame: pd.DataFrame) -> pa.Table:
        """`frame` (index = record index) as a table of this run's schema; `ValueError` naming
        the row group and column when a column's values do not fit its type."""
        fields = [pa.field(str(name), self._type_of(frame, name)) for name in frame]
        index_name = str(frame.index.name or "record_index")
        if frame.index.name is None:
            frame = frame.rename_axis(index=index_name)
        schema = pa.schema([*fields, pa.field(index_name, pa.int64())])
        try:
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            column = _failing_column(frame, schema)
            raise ValueError(
                f"row group {row_group}: column {column!r} does not fit the run's type "
                f"{schema.field(column).type if column in schema.names else '?'}: {error}"
            ) from error
        with self._lock:
            for field in fields:
                self._written.setdefault(field.name, str(field.type))
        return table

    def describe(self) -> dict[str, str]:
        """Column -> Arrow type of the files written so far, as metadata.json records it."""
        with self._lock:
            return dict(self._written)

    def _type_of(self, frame: pd.DataFrame, name: Any) -> pa.DataType:
        column = str(name)
        declared = self._declared.get(column)
        if declared is not None:
            return declared
        with self._lock:
            locked = self._locked.get(column)
        if locked is not None:
            return locked
        inferred = pa.Schema.from_pandas(frame[[name]], preserve_index=False).field(0).type
        if pa.types.is_null(inferred):
            return inferred  # nothing to learn from yet: every value is None
        with self._lock:
            return self._locked.setdefault(column, inferred)


def _index_columns(schema: pa.Schema) -> set[str]:
    metadata = schema.pandas_metadata or {}
    return {c for c in metadata.get("index_columns", []) if isinstance(c, str)}


def _failing_column(frame: pd.DataFrame, schema: pa.Schema) -> str:
    """The first column whose values pyarrow cannot convert to its type in `schema`."""
    for name in frame.columns:
        if not fits(frame[name], schema.field(str(name)).type):
            return str(name)
    return str(frame.index.name)


def fits(values: pd.Series, kind: pa.DataType) -> bool:
    """Whether `values` convert to `kind` as `pa.Table.from_pandas` converts them (a Python
    list would be converted more leniently: 10.5 truncated to 10 without an error)."""
    try:
        pa.Array.from_pandas(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True
