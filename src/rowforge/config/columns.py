"""Column types: what a user declares. Frozen, validated on construction, round-trip to dicts.

Every column has a `name` (the output column) and a `type` tag used in YAML/JSON. Validation
errors are `ConfigError`s naming the column and field; `DatasetConfig` prefixes the position
(`columns[2]: column 'answer'.prompt: ...`). Turning columns into executable steps is
`rowforge.config.compile`'s job, so this module stays pure data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs

from rowforge.errors import ConfigError
from rowforge.templates import compile_template, referenced_columns

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


def _fail(column: Any, field: str, problem: str) -> ConfigError:
    return ConfigError(f"column {column.name!r}.{field}: {problem}")


def _numbers(column: Any, *fields: str) -> None:
    """Numeric fields must hold numbers (YAML can hand us strings)."""
    for field in fields:
        value = getattr(column, field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(column, field, f"must be a number, got {value!r}")


@attrs.frozen(kw_only=True)
class Column:
    """Base of every column type."""

    TYPE: ClassVar[str] = ""
    name: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"column name must be an identifier, got {self.name!r}")
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


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _optional_tuple(value: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


# -- samplers ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CategorySampler(Column):
    """One of `values`, with optional `weights` (any positive numbers)."""

    TYPE: ClassVar[str] = "category"
    values: tuple[Any, ...] = attrs.field(converter=_tuple)
    weights: tuple[float, ...] | None = attrs.field(default=None, converter=_optional_tuple)

    def validate(self) -> None:
        if not self.values:
            raise _fail(self, "values", "needs at least one value")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise _fail(
                    self, "weights", f"{len(self.weights)} weights for {len(self.values)} values"
                )
            if any(not isinstance(w, int | float) or w < 0 for w in self.weights) or not sum(
                self.weights
            ):
                raise _fail(self, "weights", "must be non-negative numbers, not all zero")


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
        for field in ("low", "high"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise _fail(self, field, f"must be an integer, got {value!r}")
        if self.low > self.high:
            raise _fail(self, "low", f"must not exceed high ({self.low} > {self.high})")


@attrs.frozen(kw_only=True)
class BernoulliSampler(Column):
    """True with probability `p`."""

    TYPE: ClassVar[str] = "bernoulli"
    p: float = 0.5

    def validate(self) -> None:
        _numbers(self, "p")
        if not 0 <= self.p <= 1:
            raise _fail(self, "p", f"must be in [0, 1], got {self.p}")


@attrs.frozen(kw_only=True)
class UUIDSampler(Column):
    """A random UUID4 string (reproducible under the config seed)."""

    TYPE: ClassVar[str] = "uuid"


@attrs.frozen(kw_only=True)
class DatetimeSampler(Column):
    """An ISO-8601 timestamp drawn uniformly between `start` and `end` (ISO strings)."""

    TYPE: ClassVar[str] = "datetime"
    start: str
    end: str

    def validate(self) -> None:
        import datetime as dt

        try:
            start, end = dt.datetime.fromisoformat(self.start), dt.datetime.fromisoformat(self.end)
        except (TypeError, ValueError) as error:
            raise _fail(self, "start", f"start and end must be ISO-8601 dates: {error}") from None
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise _fail(self, "start", "start and end must both have a time zone or both not")
        if not start < end:
            raise _fail(self, "start", f"must be before end ({self.start} >= {self.end})")


@attrs.frozen(kw_only=True)
class PersonSampler(Column):
    """A person attribute from Faker (offline, seeded): name, email, city, job..."""

    TYPE: ClassVar[str] = "person"
    field: str = "name"
    locale: str = "en_US"

    def validate(self) -> None:
        if self.field not in PERSON_FIELDS:
            raise _fail(self, "field", f"must be one of {PERSON_FIELDS}, got {self.field!r}")


# -- templates and models ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExpressionColumn(Column):
    """A sandboxed Jinja2 template over the row, e.g. `"{{ first_name }} {{ last_name }}"`."""

    TYPE: ClassVar[str] = "expression"
    template: str

    def validate(self) -> None:
        compile_template(self.template, f"column {self.name!r}.template")

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
        compile_template(self.prompt, f"column {self.name!r}.prompt")
        if self.system_prompt is not None:
            compile_template(self.system_prompt, f"column {self.name!r}.system_prompt")
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

        schema = dict(self.output_schema)
        if not schema:
            raise _fail(self, "output_schema", "is required")
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            raise _fail(self, "output_schema", f"invalid JSON Schema: {error.message}") from None
        retries = self.max_parse_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise _fail(self, "max_parse_retries", f"must be an integer >= 0, got {retries!r}")


# -- custom and seed data ----------------------------------------------------------------------


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
        if self.allow_resize and self.kind != "batch":
            raise _fail(self, "allow_resize", "needs kind 'batch'")
        if isinstance(self.function, str) and ":" not in self.function:
            raise _fail(self, "function", f"must be 'module:function', got {self.function!r}")
        if not isinstance(self.function, str) and not callable(self.function):
            raise _fail(self, "function", "must be callable or 'module:function'")

    def dependencies(self) -> set[str]:
        return set(self.depends_on)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if not isinstance(self.function, str):
            from rowforge.recipe import reference

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
        if self.order not in ("ordered", "shuffled"):
            raise _fail(self, "order", f"must be 'ordered' or 'shuffled', got {self.order!r}")
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
    """Build a column from its dict form; unknown types and fields raise `ConfigError`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a column must be a mapping, got {type(raw).__name__}")
    kind = raw.get("type")
    cls = COLUMN_TYPES.get(str(kind))
    if cls is None:
        raise ConfigError(f"unknown column type {kind!r}; known: {sorted(COLUMN_TYPES)}")
    fields = {k: v for k, v in raw.items() if k != "type"}
    known = {a.name for a in attrs.fields(cls) if a.init}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"unknown fields {unknown} for a {kind!r} column; known: {sorted(known)}")
    missing = sorted(
        a.name
        for a in attrs.fields(cls)
        if a.init and a.default is attrs.NOTHING and a.name not in fields
    )
    if missing:
        raise ConfigError(f"a {kind!r} column needs fields {missing}")
    return cls(**fields)
