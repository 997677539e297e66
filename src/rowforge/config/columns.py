"""Column types: what a user declares. Frozen, validated on construction, round-trip to dicts.

Every column has a `name` (the output column) and a `type` tag used in YAML/JSON. Validation
errors are `FieldError`s (a `ConfigError`) naming the column and field: `column 'answer'.prompt:
...` on their own, `columns[2] 'answer'.prompt: ...` once the loader knows the position. Every
field's type is checked too (a YAML typo gives a string where a number or a list belongs), so a
bad value is always a `ConfigError`, never a `TypeError` from deeper down. Turning columns into
executable steps is `rowforge.config.compile`'s job, so this module stays pure data.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs

from rowforge.errors import ConfigError
from rowforge.importing import reference
from rowforge.models.config import FieldError, describe
from rowforge.templates import referenced_columns, template_problem

PERSON_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "city",
    "country",
    "phone_number",
    "job",
    "company",
    "address",
)


#: Integers are stored as Arrow int64; a bound outside it fails only when rows are written.
INT64 = (-(2**63), 2**63 - 1)


def _fail(column: Any, field: str, problem: str) -> FieldError:
    return FieldError(f"column {column.name!r}.{field}: {problem}", field, problem)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(column: Any, *fields: str) -> None:
    """Numeric fields must hold finite numbers (YAML can hand us strings, bools or .inf)."""
    for field in fields:
        value = getattr(column, field)
        if not _is_number(value):
            raise _fail(column, field, f"must be a finite number, got {describe(value)}")
        if not math.isfinite(value):
            raise _fail(column, field, f"must be a finite number, got {value!r}")


def _integers(column: Any, *fields: str) -> None:
    for field in fields:
        value = getattr(column, field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(column, field, f"must be an integer, got {describe(value)}")
        if not INT64[0] <= value <= INT64[1]:
            raise _fail(column, field, f"must fit in a 64-bit integer, got {value}")


def _boolean(column: Any, field: str) -> None:
    value = getattr(column, field)
    if not isinstance(value, bool):
        raise _fail(column, field, f"must be a boolean, got {describe(value)}")


def _names(column: Any, field: str) -> tuple[str, ...]:
    """A list of column names (the converter made lists tuples; anything else is wrong)."""
    value = getattr(column, field)
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
        raise _fail(column, field, f"must be a list of column names, got {describe(value)}")
    return value


def _template(column: Any, field: str, optional: bool = False) -> None:
    source = getattr(column, field)
    if optional and source is None:
        return
    problem = template_problem(source)
    if problem is not None:
        raise _fail(column, field, problem)


@attrs.frozen(kw_only=True)
class Column:
    """Base of every column type."""

    TYPE: ClassVar[str] = ""
    name: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            problem = f"must be an identifier, got {describe(self.name)}"
            raise FieldError(f"column name {problem}", "name", problem)
        self.validate()

    def validate(self) -> None:
        """Check field values; raise `ConfigError` via `_fail`."""

    def dependencies(self) -> set[str]:
        """Columns this one reads."""
        return set()

    def outputs(self) -> tuple[str, ...]:
        """Columns this one produces (one, except for seed datasets)."""
        return (self.name,)

    def to_dict(self) -> dict[str, Any]:
        fields = attrs.asdict(self, recurse=False, filter=lambda a, v: a.init)
        return {"type": self.TYPE, **{k: _plain(v) for k, v in fields.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _tuple(value: Any) -> Any:
    """Lists become tuples; anything else is kept for `validate` to refuse by name."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "booleans"
    if isinstance(value, int | float):
        return "numbers"
    if isinstance(value, str):
        return "strings"
    if isinstance(value, list | tuple):
        return "lists"
    if isinstance(value, Mapping):
        return "mappings"
    return type(value).__name__


# -- samplers ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CategorySampler(Column):
    """One of `values`, with optional `weights` (any positive numbers)."""

    TYPE: ClassVar[str] = "category"
    values: tuple[Any, ...] = attrs.field(converter=_tuple)
    weights: tuple[float, ...] | None = attrs.field(default=None, converter=_tuple)

    def validate(self) -> None:
        if not isinstance(self.values, tuple):
            raise _fail(self, "values", f"must be a list, got {describe(self.values)}")
        if not self.values:
            raise _fail(self, "values", "needs at least one value")
        # One column holds one type: [1, "two"] or [true, 1] could not be written to Parquet.
        kinds = sorted({_kind(v) for v in self.values if v is not None})
        if len(kinds) > 1:
            raise _fail(self, "values", f"must all be of one kind, got {' and '.join(kinds)}")
        big = [v for v in self.values if isinstance(v, int) and not INT64[0] <= v <= INT64[1]]
        if big:
            raise _fail(self, "values", f"integers must fit in 64 bits, got {big[0]}")
        if self.weights is not None:
            if not isinstance(self.weights, tuple):
                raise _fail(
                    self, "weights", f"must be a list of numbers, got {describe(self.weights)}"
                )
            if len(self.weights) != len(self.values):
                raise _fail(
                    self, "weights", f"{len(self.weights)} weights for {len(self.values)} values"
                )
            if not all(_is_number(w) and 0 <= w < math.inf for w in self.weights) or not sum(
                self.weights
            ):
                raise _fail(self, "weights", "must be non-negative finite numbers, not all zero")


@attrs.frozen(kw_only=True)
class UniformSampler(Column):
    """A float drawn uniformly from [low, high)."""

    TYPE: ClassVar[str] = "uniform"
    low: float = 0.0
    high: float = 1.0

    def validate(self) -> None:
        _numbers(self, "low", "high")
        if not self.low < self.high:
            raise _fail(self, "low", f"must be below high ({self.low} >= {self.high})")


@attrs.frozen(kw_only=True)
class GaussianSampler(Column):
    """A float from a normal distribution."""

    TYPE: ClassVar[str] = "gaussian"
    mean: float = 0.0
    stddev: float = 1.0

    def validate(self) -> None:
        _numbers(self, "mean", "stddev")
        if not self.stddev > 0:
            raise _fail(self, "stddev", f"must be positive, got {self.stddev}")


@attrs.frozen(kw_only=True)
class IntegerSampler(Column):
    """An integer drawn uniformly from [low, high] (both included)."""

    TYPE: ClassVar[str] = "integer"
    low: int = 0
    high: int = 100

    def validate(self) -> None:
        _integers(self, "low", "high")
        if self.low > self.high:
            raise _fail(self, "low", f"must not exceed high ({self.low} > {self.high})")


@attrs.frozen(kw_only=True)
class BernoulliSampler(Column):
    """True with probability `p`."""

    TYPE: ClassVar[str] = "bernoulli"
    p: float = 0.5

    def validate(self) -> None:
        if not _is_number(self.p):
            raise _fail(self, "p", f"must be a number in [0, 1], got {describe(self.p)}")
        if not 0 <= self.p <= 1:
            raise _fail(self, "p", f"must be in [0, 1], got {self.p}")


@attrs.frozen(kw_only=True)
class UUIDSampler(Column):
    """A random UUID4 string (reproducible under the config seed)."""

    TYPE: ClassVar[str] = "uuid"


def _iso(value: Any) -> Any:
    """YAML reads an unquoted `2024-01-01` as a date: keep its ISO text."""
    return value.isoformat() if isinstance(value, dt.date) else value


@attrs.frozen(kw_only=True)
class DatetimeSampler(Column):
    """An ISO-8601 timestamp drawn uniformly between `start` and `end` (ISO strings)."""

    TYPE: ClassVar[str] = "datetime"
    start: str = attrs.field(converter=_iso)
    end: str = attrs.field(converter=_iso)

    def validate(self) -> None:
        start, end = self._moment("start"), self._moment("end")
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise _fail(self, "start", "start and end must both have a time zone or both not")
        if not start < end:
            raise _fail(self, "start", f"must be before end ({self.start} >= {self.end})")

    def _moment(self, field: str) -> dt.datetime:
        value = getattr(self, field)
        if not isinstance(value, str):
            raise _fail(self, field, f"must be an ISO-8601 date string, got {describe(value)}")
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError as error:
            raise _fail(self, field, f"must be an ISO-8601 date: {error}") from None


@attrs.frozen(kw_only=True)
class PersonSampler(Column):
    """A person attribute from Faker (offline, seeded): name, email, city, job..."""

    TYPE: ClassVar[str] = "person"
    field: str = "name"
    locale: str = "en_US"

    def validate(self) -> None:
        if not isinstance(self.field, str) or self.field not in PERSON_FIELDS:
            raise _fail(self, "field", f"must be one of {PERSON_FIELDS}, got {self.field!r}")
        if not isinstance(self.locale, str) or not self.locale:
            raise _fail(self, "locale", f"must be a locale such as 'en_US', got {self.locale!r}")
        if not _known_locale(self.locale):
            raise _fail(self, "locale", f"unknown locale {self.locale!r}; Faker has e.g. 'en_US'")


def _known_locale(locale: str) -> bool:
    """What Faker accepts: its own normalisation, then its list of locales."""
    import locale as pylocale

    from faker.config import AVAILABLE_LOCALES

    try:
        normalised = pylocale.normalize(locale.replace("-", "_")).split(".")[0]
    except (TypeError, ValueError):
        return False
    return normalised in AVAILABLE_LOCALES


# -- templates and models ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExpressionColumn(Column):
    """A sandboxed Jinja2 template over the row, e.g. `"{{ first_name }} {{ last_name }}"`."""

    TYPE: ClassVar[str] = "expression"
    template: str

    def validate(self) -> None:
        _template(self, "template")

    def dependencies(self) -> set[str]:
        return referenced_columns(self.template, f"column {self.name!r}.template")


@attrs.frozen(kw_only=True)
class LLMTextColumn(Column):
    """Text from a model: `prompt` (and optional `system_prompt`) are Jinja2 templates."""

    TYPE: ClassVar[str] = "llm_text"
    prompt: str
    model: str
    system_prompt: str | None = None

    def validate(self) -> None:
        _template(self, "prompt")
        _template(self, "system_prompt", optional=True)
        if not isinstance(self.model, str):
            raise _fail(
                self, "model", f"must be a model alias (a string), got {describe(self.model)}"
            )
        if not self.model:
            raise _fail(self, "model", "names no model alias")

    def dependencies(self) -> set[str]:
        names = referenced_columns(self.prompt, f"column {self.name!r}.prompt")
        if self.system_prompt:
            names |= referenced_columns(self.system_prompt, f"column {self.name!r}.system_prompt")
        return names


def _json_schema(value: Any) -> Any:
    """A pydantic model class stands for its JSON Schema."""
    schema_of = getattr(value, "model_json_schema", None)
    return schema_of() if callable(schema_of) else value


@attrs.frozen(kw_only=True)
class LLMStructuredColumn(LLMTextColumn):
    """A JSON object from a model, validated against `output_schema` (a JSON Schema, or a
    pydantic model class, which is turned into its JSON Schema).

    Invalid output is asked for again up to `max_parse_retries` times; then the cell fails with
    the validation error (its row is dropped and the reason is recorded).
    """

    TYPE: ClassVar[str] = "llm_structured"
    output_schema: Mapping[str, Any] = attrs.field(factory=dict, converter=_json_schema)
    max_parse_retries: int = 2

    def validate(self) -> None:
        super().validate()
        import jsonschema

        if not isinstance(self.output_schema, Mapping):
            raise _fail(
                self,
                "output_schema",
                f"must be a JSON-schema object (a mapping), got {describe(self.output_schema)}",
            )
        if not self.output_schema:
            raise _fail(self, "output_schema", "is required")
        problem = json_problem(self.output_schema)
        if problem:
            raise _fail(self, "output_schema", f"must be plain JSON: {problem}")
        try:
            jsonschema.Draft202012Validator.check_schema(dict(self.output_schema))
        except jsonschema.SchemaError as error:
            raise _fail(self, "output_schema", f"invalid JSON Schema: {error.message}") from None
        retries = self.max_parse_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise _fail(
                self, "max_parse_retries", f"must be an integer >= 0, got {describe(retries)}"
            )


#: Deeper than any real schema; also how a self-referencing YAML anchor is caught.
_MAX_JSON_DEPTH = 64


def json_problem(value: Any, path: str = "", depth: int = 0) -> str | None:
    """Why `value` is not plain JSON (string keys; strings, numbers, booleans, null, lists,
    mappings), naming where inside it; None when it is."""
    if depth > _MAX_JSON_DEPTH:
        return f"nested more than {_MAX_JSON_DEPTH} levels deep (a YAML anchor inside itself?)"
    if value is None or isinstance(value, str | bool | int | float):
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{path}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"keys must be strings, got {describe(key)} at {path or 'the top'}"
            problem = json_problem(item, f"{path}.{key}" if path else key, depth + 1)
            if problem:
                return problem
        return None
    return f"{describe(value)} at {path or 'the top'} is not a JSON value"


# -- custom and seed data ----------------------------------------------------------------------


def is_reference(ref: object) -> bool:
    """`package.module:qualified.name`, every part an identifier."""
    if not isinstance(ref, str):
        return False
    module, _, qualname = ref.partition(":")
    return all(p.isidentifier() for p in module.split(".")) and all(
        p.isidentifier() for p in qualname.split(".")
    )


def _function_ref(value: Any) -> Any:
    return value


@attrs.frozen(kw_only=True)
class CustomColumn(Column):
    """A Python callable (sync or async): per cell `fn(row) -> value`, or per batch
    `fn(frame) -> values`. In YAML, `function` is `"module:function"`."""

    TYPE: ClassVar[str] = "custom"
    function: str | Callable[..., Any] = attrs.field(converter=_function_ref)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    kind: Literal["cell", "batch"] = "cell"
    allow_resize: bool = False

    def validate(self) -> None:
        if self.kind not in ("cell", "batch"):
            raise _fail(self, "kind", f"must be 'cell' or 'batch', got {self.kind!r}")
        _boolean(self, "allow_resize")
        if self.allow_resize and self.kind != "batch":
            raise _fail(self, "allow_resize", "needs kind 'batch'")
        _names(self, "depends_on")
        if isinstance(self.function, str):
            if not is_reference(self.function):
                raise _fail(self, "function", f"must be 'module:function', got {self.function!r}")
        elif not callable(self.function):
            raise _fail(
                self,
                "function",
                f"must be callable or 'module:function', got {describe(self.function)}",
            )

    def dependencies(self) -> set[str]:
        return set(self.depends_on)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if not isinstance(self.function, str):
            ref = reference(self.function)
            if ref is None:
                raise _fail(self, "function", "has no importable name; use 'module:function'")
            data["function"] = ref
        return data


@attrs.frozen(kw_only=True)
class SeedDatasetColumns(Column):
    """Rows from a Parquet or CSV file (`path`) or, in Python, a DataFrame (`frame`): one output
    column per name in `columns`.

    `order`: "ordered" cycles through the rows in order; "shuffled" samples rows (with or
    without replacement; without replacement needs enough rows). `name` only names the seed
    source in messages. A config with a `frame` cannot be written to YAML.
    """

    TYPE: ClassVar[str] = "seed_dataset"
    columns: tuple[str, ...] = attrs.field(converter=_tuple)
    path: str = ""
    order: Literal["ordered", "shuffled"] = "ordered"
    with_replacement: bool = True
    frame: Any = attrs.field(default=None, eq=False, repr=False)

    def outputs(self) -> tuple[str, ...]:
        return self.columns

    def validate(self) -> None:
        names = _names(self, "columns")
        if len(set(names)) != len(names):
            raise _fail(self, "columns", f"names the same column twice: {list(names)}")
        if self.order not in ("ordered", "shuffled"):
            raise _fail(self, "order", f"must be 'ordered' or 'shuffled', got {self.order!r}")
        _boolean(self, "with_replacement")
        if not isinstance(self.path, str):
            raise _fail(self, "path", f"must be a file path (a string), got {describe(self.path)}")
        if (self.frame is None) == (not self.path):
            raise _fail(self, "path", "give exactly one of path (a file) and frame (a DataFrame)")
        if self.frame is None and Path(self.path).suffix.lower() not in (".parquet", ".csv"):
            raise _fail(self, "path", f"must be a .parquet or .csv file, got {self.path!r}")
        if not self.columns:
            raise _fail(self, "columns", "needs at least one column")

    def to_dict(self) -> dict[str, Any]:
        if self.frame is not None:
            raise _fail(self, "frame", "a DataFrame seed cannot be written to a config file")
        data = super().to_dict()
        data.pop("frame", None)
        return data


COLUMN_TYPES: dict[str, type[Column]] = {
    cls.TYPE: cls
    for cls in (
        CategorySampler,
        UniformSampler,
        GaussianSampler,
        IntegerSampler,
        BernoulliSampler,
        UUIDSampler,
        DatetimeSampler,
        PersonSampler,
        ExpressionColumn,
        LLMTextColumn,
        LLMStructuredColumn,
        CustomColumn,
        SeedDatasetColumns,
    )
}


def column_from_dict(raw: Mapping[str, Any]) -> Column:
    """Build a column from its dict form; unknown types and fields raise `ConfigError`
    (a `FieldError` when one field is to blame)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a column must be a mapping, got {describe(raw)}")
    kind = raw.get("type")
    cls = COLUMN_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        problem = f"unknown column type {kind!r}; known: {sorted(COLUMN_TYPES)}"
        if "type" not in raw:
            problem = f"is required; one of {sorted(COLUMN_TYPES)}"
        raise FieldError(f"column type {problem}", "type", problem)
    fields = {k: v for k, v in raw.items() if k != "type"}
    if "frame" in fields and cls is SeedDatasetColumns:
        problem = "only a Python config can hold a DataFrame; in a file, give path"
        raise FieldError(f"column frame: {problem}", "frame", problem)
    known = {a.name for a in attrs.fields(cls) if a.init and a.name != "frame"}
    unknown = sorted((k for k in fields if k not in known), key=repr)
    if unknown:
        problem = f"unknown fields {unknown} for a {kind!r} column; known: {sorted(known)}"
        raise FieldError(problem, "", problem)
    missing = sorted(
        a.name
        for a in attrs.fields(cls)
        if a.init and a.default is attrs.NOTHING and a.name not in fields
    )
    if missing:
        raise ConfigError(f"a {kind!r} column needs fields {missing}")
    return cls(**fields)
