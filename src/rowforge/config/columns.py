"""Column types: what a user declares. Frozen, validated on construction, round-trip to dicts.

Every column has a `name` (the output column) and a `type` tag used in YAML/JSON. Validation
errors are `FieldError`s (a `ConfigError`) naming the column and field: `column 'answer'.prompt:
...` on their own, `columns[2] 'answer'.prompt: ...` once the loader knows the position. Every
field's type is checked too (a YAML typo gives a string where a number or a list belongs), so a
bad value is always a `ConfigError`, never a `TypeError` from deeper down. Turning columns into
executable steps is `rowforge.config.compile`'s job, so this module stays pure data.

Every column may be `drop`ped (generated and read by others, not written); every sampler with
parameters takes `conditional_params`, and every numeric one `convert_to` (data-designer's
fields, with its meaning).
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import attrs

from rowforge.config import validator_params
from rowforge.config.seed_files import hub_path_problem, is_hub_path
from rowforge.errors import ConfigError, describe_error
from rowforge.importing import reference
from rowforge.models.config import FieldError, describe
from rowforge.models.repair import code_request
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


#: Metadata of a field added to column types that existed before it: `to_dict` leaves it out
#: at its default, so a config that does not use it saves (and fingerprints) as it did before.
OPTIONAL = {"optional": True}


def _skip(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


@attrs.frozen(kw_only=True)
class Column:
    """Base of every column type.

    `drop`: the column is generated, and other columns may read it, but it is not written.
    """

    TYPE: ClassVar[str] = ""
    name: str
    drop: bool = attrs.field(default=False, metadata=OPTIONAL)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            problem = f"must be an identifier, got {describe(self.name)}"
            raise FieldError(f"column name {problem}", "name", problem)
        _boolean(self, "drop")
        self.validate()

    def validate(self) -> None:
        """Check field values; raise `ConfigError` via `_fail`."""

    def dependencies(self) -> set[str]:
        """Columns this one reads to generate its value."""
        return set()

    def reads(self) -> set[str]:
        """Every column this one reads (a `SkippableColumn` also to decide to skip)."""
        return self.dependencies()

    def outputs(self) -> tuple[str, ...]:
        """Columns this one produces (one, except for seed datasets)."""
        return (self.name,)

    def to_dict(self) -> dict[str, Any]:
        fields = attrs.asdict(self, recurse=False, filter=_written)
        return {"type": self.TYPE, **{k: _plain(v) for k, v in fields.items()}}


@attrs.frozen(kw_only=True)
class SkippableColumn(Column):
    """A column that reads others (expressions, LLM and custom columns), so it may be skipped.

    `skip: {when, value}`: on a row where the Jinja2 expression `when` (data-designer's form,
    `"{{ stars > 2 }}"`) is true, the column is not generated; the row keeps `value` (default
    null) and the cell counts as skipped. `propagate_skip` (default true): a row where a column
    this one reads was skipped skips this one too.
    """

    skip: Mapping[str, Any] | None = attrs.field(default=None, converter=_skip, metadata=OPTIONAL)
    propagate_skip: bool = attrs.field(default=True, metadata=OPTIONAL)

    def __attrs_post_init__(self) -> None:
        _boolean(self, "propagate_skip")
        self._check_skip()
        super().__attrs_post_init__()

    def _check_skip(self) -> None:
        if self.skip is None:
            return
        if not isinstance(self.skip, Mapping):
            raise _fail(
                self, "skip", f"must be a mapping {{when, value}}, got {describe(self.skip)}"
            )
        unknown = sorted(set(self.skip) - {"when", "value"}, key=str)
        if unknown:
            raise _fail(self, "skip", f"unknown fields {unknown}; known: when, value")
        when = self.skip.get("when")
        problem = template_problem(when)
        if problem is not None or not isinstance(when, str):
            raise _fail(self, "skip.when", problem or "is required")
        if not referenced_columns(when, f"column {self.name!r}.skip.when"):
            raise _fail(self, "skip.when", "must read at least one column")
        value = self.skip.get("value")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise _fail(self, "skip.value", f"must be a single value, got {describe(value)}")

    def skip_reads(self) -> set[str]:
        """Columns `skip.when` reads."""
        if self.skip is None:
            return set()
        return referenced_columns(self.skip["when"], f"column {self.name!r}.skip.when")

    def reads(self) -> set[str]:
        return self.dependencies() | self.skip_reads()


def _written(attribute: attrs.Attribute[Any], value: Any) -> bool:
    """Whether `to_dict` writes the field: every init field, an `OPTIONAL` one unless default."""
    if not attribute.init:
        return False
    if not attribute.metadata.get("optional"):
        return True
    factory = getattr(attribute.default, "factory", None)  # an `attrs.Factory`
    return bool(value != (attribute.default if factory is None else factory()))


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

#: The fields of a sampler that are not parameters of its distribution.
_NOT_PARAMETERS = frozenset({"name", "drop", "conditional_params", "convert_to"})


def condition_template(condition: str) -> str:
    """The template a `conditional_params` condition is rendered with; as in data-designer, the
    condition holds on a row where it renders as `True`."""
    return "{{ " + condition + " }}"


def _deep(value: Any, depth: int = 0) -> Any:
    """Lists become tuples at any depth (mappings are copied), so a config equals itself after a
    trip through YAML; what is nested deeper than any config is kept for `validate` to refuse."""
    if depth > _MAX_JSON_DEPTH:
        return value
    if isinstance(value, list | tuple):
        return tuple(_deep(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return {key: _deep(item, depth + 1) for key, item in value.items()}
    return value


@attrs.frozen(kw_only=True)
class Sampler(Column):
    """Base of the samplers that have parameters.

    `conditional_params` (data-designer's) maps conditions, Jinja2 expressions over other
    columns such as `"age > 60"`, to parameters that replace the column's own on the rows where
    the condition holds; when several hold, the last one declared wins, as in data-designer.
    The column then reads the columns its conditions name.
    """

    conditional_params: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, converter=_deep, metadata=OPTIONAL
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.variants()  # a condition's parameters are checked like the column's own

    def value_kinds(self) -> set[str]:
        """The kinds of value (`_kind`) the parameters list, where they list values (categories):
        a condition's parameters must not bring another kind into the column."""
        return set()

    def own_dependencies(self) -> set[str]:
        """Columns the parameters read (a subcategory's category, a timedelta's reference)."""
        return set()

    def dependencies(self) -> set[str]:
        names = self.own_dependencies()
        for condition, variant in self.variants():
            where = f"column {self.name!r}.conditional_params[{condition!r}]"
            names |= referenced_columns(condition_template(condition), where)
            names |= variant.own_dependencies()
        return names

    def variants(self) -> tuple[tuple[str, Self], ...]:
        """(condition, this column with the condition's parameters), in declaration order."""
        if not isinstance(self.conditional_params, Mapping):
            raise _fail(
                self,
                "conditional_params",
                "must be a mapping of conditions to parameters, "
                f"got {describe(self.conditional_params)}",
            )
        kinds = self.value_kinds()
        variants = []
        for condition, params in self.conditional_params.items():
            variant = self._variant(condition, params)
            kinds |= variant.value_kinds()
            if len(kinds) > 1:
                raise _fail(
                    self,
                    f"conditional_params[{condition!r}].values",
                    f"must be of the column's one kind, got {' and '.join(sorted(kinds))}",
                )
            variants.append((condition, variant))
        return tuple(variants)

    def _variant(self, condition: Any, params: Any) -> Self:
        if not isinstance(condition, str) or not condition.strip():
            raise _fail(
                self,
                "conditional_params",
                f"conditions must be Jinja2 expressions (strings), got {describe(condition)}",
            )
        where = f"conditional_params[{condition!r}]"
        problem = template_problem(condition_template(condition))
        if problem:
            raise _fail(self, where, problem)
        if not isinstance(params, Mapping) or not params:
            raise _fail(self, where, f"must be a mapping of parameters, got {describe(params)}")
        known = sorted(
            a.name for a in attrs.fields(type(self)) if a.init and a.name not in _NOT_PARAMETERS
        )
        unknown = sorted((key for key in params if key not in known), key=repr)
        if unknown:
            raise _fail(
                self, where, f"unknown parameters {unknown} of a {self.TYPE!r}; known: {known}"
            )
        try:
            return attrs.evolve(self, conditional_params={}, **params)
        except FieldError as error:
            field = f"{where}.{error.field}" if error.field else where
            raise _fail(self, field, error.problem) from None


#: What `convert_to` accepts (data-designer's conversions of numeric samplers).
CONVERSIONS = ("int", "float", "str")


@attrs.frozen(kw_only=True)
class NumericSampler(Sampler):
    """Base of the samplers of numbers (and bernoulli's booleans, data-designer's 0 and 1).

    `convert_to` converts each value as data-designer does: "int" rounds half to even (pandas'
    `round`), "float" and "str" convert; a boolean counts as 1 or 0. `decimal_places` rounds
    each value to that many places first (data-designer's, for its uniform, gaussian and scipy
    samplers).
    """

    convert_to: Literal["int", "float", "str"] | None = attrs.field(default=None, metadata=OPTIONAL)
    decimal_places: int | None = attrs.field(default=None, metadata=OPTIONAL)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        places = self.decimal_places
        if places is not None and (
            isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 15
        ):
            raise _fail(
                self, "decimal_places", f"must be an integer from 0 to 15, got {describe(places)}"
            )
        if self.convert_to is not None and self.convert_to not in CONVERSIONS:
            raise _fail(
                self,
                "convert_to",
                f"must be one of {list(CONVERSIONS)}, got {describe(self.convert_to)}",
            )


@attrs.frozen(kw_only=True)
class CategorySampler(Sampler):
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
        kinds = sorted(self.value_kinds())
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

    def value_kinds(self) -> set[str]:
        return {_kind(v) for v in self.values if v is not None}


def _scalar_problem(value: Any) -> str | None:
    """Why `value` cannot be one value of a column of scalars (a string, a boolean, a finite
    number, an integer that fits in 64 bits), or None."""
    if isinstance(value, str | bool):
        return None
    if isinstance(value, int):
        return (
            None if INT64[0] <= value <= INT64[1] else f"integers must fit in 64 bits, got {value}"
        )
    if isinstance(value, float):
        return None if math.isfinite(value) else f"numbers must be finite, got {value}"
    return f"must be strings, numbers or booleans, got {describe(value)}"


@attrs.frozen(kw_only=True)
class SubcategorySampler(Sampler):
    """One of `values[c]`, uniformly, where c is the row's value of the column `category`
    (data-designer's `subcategory`: its keys are strings, and a row whose category value has
    no key fails)."""

    TYPE: ClassVar[str] = "subcategory"
    category: str
    values: Mapping[str, tuple[Any, ...]] = attrs.field(converter=_deep)

    def validate(self) -> None:
        if not isinstance(self.category, str) or not self.category.isidentifier():
            raise _fail(self, "category", f"must be a column name, got {describe(self.category)}")
        if not isinstance(self.values, Mapping) or not self.values:
            raise _fail(
                self,
                "values",
                "must be a mapping of category values to lists of values, "
                f"got {describe(self.values)}",
            )
        for key, choices in self.values.items():
            if not isinstance(key, str):
                raise _fail(
                    self, "values", f"keys must be category values (strings), got {describe(key)}"
                )
            if not isinstance(choices, tuple) or not choices:
                raise _fail(
                    self, f"values[{key!r}]", f"must be a non-empty list, got {describe(choices)}"
                )
            problem = next(filter(None, map(_scalar_problem, choices)), None)
            if problem:
                raise _fail(self, f"values[{key!r}]", problem)
        kinds = sorted(self.value_kinds())
        if len(kinds) > 1:
            raise _fail(self, "values", f"must all be of one kind, got {' and '.join(kinds)}")

    def value_kinds(self) -> set[str]:
        return {_kind(v) for choices in self.values.values() for v in choices}

    def own_dependencies(self) -> set[str]:
        return {self.category}


@attrs.frozen(kw_only=True)
class UniformSampler(NumericSampler):
    """A float drawn uniformly from [low, high)."""

    TYPE: ClassVar[str] = "uniform"
    low: float = 0.0
    high: float = 1.0

    def validate(self) -> None:
        _numbers(self, "low", "high")
        if not self.low < self.high:
            raise _fail(self, "low", f"must be below high ({self.low} >= {self.high})")


@attrs.frozen(kw_only=True)
class GaussianSampler(NumericSampler):
    """A float from a normal distribution."""

    TYPE: ClassVar[str] = "gaussian"
    mean: float = 0.0
    stddev: float = 1.0

    def validate(self) -> None:
        _numbers(self, "mean", "stddev")
        if not self.stddev > 0:
            raise _fail(self, "stddev", f"must be positive, got {self.stddev}")


@attrs.frozen(kw_only=True)
class IntegerSampler(NumericSampler):
    """An integer drawn uniformly from [low, high] (both included)."""

    TYPE: ClassVar[str] = "integer"
    low: int = 0
    high: int = 100

    def validate(self) -> None:
        _integers(self, "low", "high")
        if self.low > self.high:
            raise _fail(self, "low", f"must not exceed high ({self.low} > {self.high})")


def _probability(column: Any, field: str) -> None:
    value = getattr(column, field)
    if not _is_number(value):
        raise _fail(column, field, f"must be a number in [0, 1], got {describe(value)}")
    if not 0 <= value <= 1:
        raise _fail(column, field, f"must be in [0, 1], got {value}")


@attrs.frozen(kw_only=True)
class BernoulliSampler(NumericSampler):
    """True with probability `p`."""

    TYPE: ClassVar[str] = "bernoulli"
    p: float = 0.5

    def validate(self) -> None:
        _probability(self, "p")


@attrs.frozen(kw_only=True)
class BinomialSampler(NumericSampler):
    """The number of successes in `n` independent trials that each succeed with probability `p`
    (data-designer's `binomial`)."""

    TYPE: ClassVar[str] = "binomial"
    n: int
    p: float

    def validate(self) -> None:
        _integers(self, "n")
        if self.n < 0:
            raise _fail(self, "n", f"must be >= 0, got {self.n}")
        _probability(self, "p")


#: numpy refuses Poisson rates near 2**63; anything this large is a typo anyway.
POISSON_MAX_MEAN = 1e18


@attrs.frozen(kw_only=True)
class PoissonSampler(NumericSampler):
    """A count of events whose mean (and variance) is `mean` (data-designer's `poisson`)."""

    TYPE: ClassVar[str] = "poisson"
    mean: float

    def validate(self) -> None:
        _numbers(self, "mean")
        if not 0 <= self.mean <= POISSON_MAX_MEAN:
            raise _fail(self, "mean", f"must be in [0, {POISSON_MAX_MEAN:g}], got {self.mean}")


def _finite(value: Any) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not."""
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


#: A distribution parameter's check: what it must be, as a predicate on a finite number.
_PARAMETER_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "real": (lambda v: True, "a finite number"),
    "positive": (lambda v: v > 0, "a number > 0"),
    "probability": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "rate": (lambda v: 0 <= v <= POISSON_MAX_MEAN, f"a number in [0, {POISSON_MAX_MEAN:g}]"),
    "count": (lambda v: isinstance(v, int) and 0 <= v <= INT64[1], "an integer >= 0"),
    "integer": (lambda v: isinstance(v, int) and INT64[0] <= v <= INT64[1], "an integer"),
}


@attrs.frozen
class Distribution:
    """A scipy.stats distribution that `bernoulli_mixture` draws with numpy, without scipy: its
    parameters (scipy's names), each with its check (`_PARAMETER_CHECKS`) and its default (None
    when it is required). How each is drawn is `rowforge.config.compile`'s `NUMPY_DRAWS`."""

    parameters: Mapping[str, tuple[str, float | None]]
    discrete: bool = False

    def arguments(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value: the given one, else its default."""
        return {name: given.get(name, default) for name, (_, default) in self.parameters.items()}

    def problem(self, given: Mapping[str, Any]) -> tuple[str, str] | None:
        """(parameter, what is wrong) for parameters these do not accept, or None."""
        unknown = sorted((key for key in given if key not in self.parameters), key=repr)
        if unknown:
            return "", f"unknown parameters {unknown}; known: {sorted(self.parameters)}"
        for name, (check, default) in self.parameters.items():
            if name not in given:
                if default is None:
                    return name, "is required"
                continue
            test, wanted = _PARAMETER_CHECKS[check]
            if not test(given[name]):
                return name, f"must be {wanted}, got {given[name]!r}"
        return None


_LOCATION_SCALE = {"loc": ("real", 0.0), "scale": ("positive", 1.0)}

#: The distributions `bernoulli_mixture` draws without scipy (others need it), by scipy name.
NUMPY_DISTRIBUTIONS: dict[str, Distribution] = {
    "norm": Distribution(_LOCATION_SCALE),
    "uniform": Distribution(_LOCATION_SCALE),
    "expon": Distribution(_LOCATION_SCALE),
    "gamma": Distribution({"a": ("positive", None), **_LOCATION_SCALE}),
    "beta": Distribution({"a": ("positive", None), "b": ("positive", None), **_LOCATION_SCALE}),
    "lognorm": Distribution({"s": ("positive", None), **_LOCATION_SCALE}),
    "poisson": Distribution({"mu": ("rate", None), "loc": ("integer", 0)}, discrete=True),
    "binom": Distribution(
        {"n": ("count", None), "p": ("probability", None), "loc": ("integer", 0)}, discrete=True
    ),
}

SCIPY_MISSING = "needs scipy, which is not installed: pip install 'rowforge[scipy]'"


def _dist_params(column: Any) -> None:
    """`dist_params` maps parameter names to finite numbers."""
    params = column.dist_params
    if not isinstance(params, Mapping):
        raise _fail(
            column,
            "dist_params",
            f"must be a mapping of parameter names to numbers, got {describe(params)}",
        )
    for key, value in params.items():
        if not isinstance(key, str):
            raise _fail(column, "dist_params", f"keys must be strings, got {describe(key)}")
        if not _finite(value):
            raise _fail(
                column, f"dist_params.{key}", f"must be a finite number, got {describe(value)}"
            )


def scipy_distribution(column: Any) -> Any:
    """`scipy.stats.<dist_name>(**dist_params)` of `column`, checked by drawing once: a
    `FieldError` when scipy is missing, the name is not a univariate scipy.stats distribution
    or the parameters do not fit it (a discrete one also needs an integer `loc`)."""
    try:
        stats = importlib.import_module("scipy.stats")
    except ImportError:
        raise _fail(column, "dist_name", SCIPY_MISSING) from None
    name = column.dist_name
    public = isinstance(name, str) and name.isidentifier() and not name.startswith("_")
    family = getattr(stats, name, None) if public else None
    if not isinstance(family, stats.rv_continuous | stats.rv_discrete):
        raise _fail(
            column,
            "dist_name",
            f"must name a scipy.stats distribution such as 'norm' or 'gamma', got {describe(name)}",
        )
    loc = column.dist_params.get("loc", 0)
    if isinstance(family, stats.rv_discrete) and not float(loc).is_integer():
        raise _fail(column, "dist_params.loc", f"must be an integer for {name!r}, got {loc!r}")
    import numpy as np

    try:
        frozen = family(**column.dist_params)
        frozen.rvs(random_state=np.random.default_rng(0))
    except Exception as error:  # scipy's checks: wrong names, values out of the domain
        raise _fail(
            column, "dist_params", f"do not fit scipy.stats.{name}: {describe_error(error)}"
        ) from None
    return frozen


@attrs.frozen(kw_only=True)
class BernoulliMixtureSampler(NumericSampler):
    """With probability `p` a draw from the distribution `dist_name` with `dist_params`
    (scipy.stats names and parameters), else 0: data-designer's `bernoulli_mixture`.

    The distributions of `NUMPY_DISTRIBUTIONS` are drawn with numpy, so they need no scipy; any
    other univariate scipy.stats distribution is drawn with scipy (the `scipy` extra).
    """

    TYPE: ClassVar[str] = "bernoulli_mixture"
    p: float
    dist_name: str
    dist_params: Mapping[str, Any] = attrs.field(factory=dict, converter=_deep)

    def validate(self) -> None:
        _probability(self, "p")
        if not isinstance(self.dist_name, str):
            raise _fail(
                self, "dist_name", f"must be a distribution name, got {describe(self.dist_name)}"
            )
        _dist_params(self)
        known = NUMPY_DISTRIBUTIONS.get(self.dist_name)
        if known is None:
            try:
                scipy_distribution(self)
            except FieldError as error:
                if error.problem != SCIPY_MISSING:
                    raise
                raise _fail(
                    self,
                    "dist_name",
                    f"{self.dist_name!r} is drawn with scipy, which is not installed: pip "
                    f"install 'rowforge[scipy]'; without it: {sorted(NUMPY_DISTRIBUTIONS)}",
                ) from None
            return
        problem = known.problem(self.dist_params)
        if problem:
            parameter, text = problem
            raise _fail(self, f"dist_params.{parameter}" if parameter else "dist_params", text)


@attrs.frozen(kw_only=True)
class ScipySampler(NumericSampler):
    """A draw from any univariate scipy.stats distribution, `dist_name` with `dist_params`
    (data-designer's `scipy`), with a numpy Generator seeded per row. Needs scipy:
    `pip install 'rowforge[scipy]'`."""

    TYPE: ClassVar[str] = "scipy"
    dist_name: str
    dist_params: Mapping[str, Any] = attrs.field(factory=dict, converter=_deep)

    def validate(self) -> None:
        _dist_params(self)
        scipy_distribution(self)


@attrs.frozen(kw_only=True)
class UUIDSampler(Column):
    """A random UUID4 string (reproducible under the config seed): the canonical form
    `8-4-4-4-12` by default.

    data-designer's forms: `hex` writes the 32 hex digits without dashes, `short_form` only the
    first 8 (so values may repeat: 2^32 possibilities), `uppercase` upper-case digits, and
    `prefix` is put in front (`"REV-"`). `short_form` implies `hex`.
    """

    TYPE: ClassVar[str] = "uuid"
    prefix: str = attrs.field(default="", metadata=OPTIONAL)
    hex: bool = attrs.field(default=False, metadata=OPTIONAL)
    short_form: bool = attrs.field(default=False, metadata=OPTIONAL)
    uppercase: bool = attrs.field(default=False, metadata=OPTIONAL)

    def validate(self) -> None:
        if not isinstance(self.prefix, str):
            raise _fail(self, "prefix", f"must be a string, got {describe(self.prefix)}")
        for field in ("hex", "short_form", "uppercase"):
            _boolean(self, field)


def _iso(value: Any) -> Any:
    """YAML reads an unquoted `2024-01-01` as a date: keep its ISO text."""
    return value.isoformat() if isinstance(value, dt.date) else value


#: A datetime's `unit` (data-designer's letters): year, month, day, hour, minute, second.
DATETIME_UNITS = ("Y", "M", "D", "h", "m", "s")


@attrs.frozen(kw_only=True)
class DatetimeSampler(Sampler):
    """An ISO-8601 timestamp drawn uniformly from [`start`, `end`) (ISO strings), truncated to
    `unit` as data-designer's datetime sampler truncates its draw: `"M"` gives the first instant
    of the drawn moment's month, `2024-03-01T00:00:00`. Every unit writes the full
    `YYYY-MM-DDTHH:MM:SS` text (data-designer's), with the time zone offset when start and end
    have one. rowforge's default `"s"` (data-designer's is `"D"`) keeps the values configs
    without a unit always had. A start that is not on a unit boundary may give values before it
    (its own truncation), as in data-designer; none reaches `end`."""

    TYPE: ClassVar[str] = "datetime"
    start: str = attrs.field(converter=_iso)
    end: str = attrs.field(converter=_iso)
    unit: Literal["Y", "M", "D", "h", "m", "s"] = attrs.field(default="s", metadata=OPTIONAL)

    def validate(self) -> None:
        start, end = self._moment("start"), self._moment("end")
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise _fail(self, "start", "start and end must both have a time zone or both not")
        if not start < end:
            raise _fail(self, "start", f"must be before end ({self.start} >= {self.end})")
        if not isinstance(self.unit, str) or self.unit not in DATETIME_UNITS:
            raise _fail(
                self, "unit", f"must be one of {list(DATETIME_UNITS)}, got {describe(self.unit)}"
            )

    def _moment(self, field: str) -> dt.datetime:
        value = getattr(self, field)
        if not isinstance(value, str):
            raise _fail(self, field, f"must be an ISO-8601 date string, got {describe(value)}")
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError as error:
            raise _fail(self, field, f"must be an ISO-8601 date: {error}") from None


#: A timedelta's `unit` (data-designer's letters) and the `datetime.timedelta` argument it is.
TIME_UNITS = {"D": "days", "h": "hours", "m": "minutes", "s": "seconds"}


@attrs.frozen(kw_only=True)
class TimedeltaSampler(Sampler):
    """The datetime of column `reference_column_name` plus a whole number of `unit`s drawn
    uniformly from [dt_min, dt_max) (data-designer's `timedelta`), as an ISO-8601 timestamp.
    A row whose reference is not an ISO-8601 datetime fails."""

    TYPE: ClassVar[str] = "timedelta"
    dt_min: int
    dt_max: int
    reference_column_name: str
    unit: Literal["D", "h", "m", "s"] = "D"

    def validate(self) -> None:
        _integers(self, "dt_min", "dt_max")
        if self.dt_min < 0:
            raise _fail(self, "dt_min", f"must be >= 0, got {self.dt_min}")
        if not self.dt_min < self.dt_max:
            raise _fail(self, "dt_min", f"must be below dt_max ({self.dt_min} >= {self.dt_max})")
        if not isinstance(self.unit, str) or self.unit not in TIME_UNITS:
            raise _fail(
                self, "unit", f"must be one of {list(TIME_UNITS)}, got {describe(self.unit)}"
            )
        try:
            dt.timedelta(**{TIME_UNITS[self.unit]: self.dt_max - 1})
        except OverflowError:
            raise _fail(
                self, "dt_max", "is longer than the longest timedelta (999999999 days)"
            ) from None
        reference = self.reference_column_name
        if not isinstance(reference, str) or not reference.isidentifier():
            raise _fail(
                self, "reference_column_name", f"must be a column name, got {describe(reference)}"
            )

    def own_dependencies(self) -> set[str]:
        return {self.reference_column_name}


@attrs.frozen(kw_only=True)
class PersonSampler(Sampler):
    """A person attribute from Faker (offline, seeded): name, email, city, job..."""

    TYPE: ClassVar[str] = "person"
    field: str = "name"
    locale: str = "en_US"

    def validate(self) -> None:
        if not isinstance(self.field, str) or self.field not in PERSON_FIELDS:
            raise _fail(self, "field", f"must be one of {PERSON_FIELDS}, got {self.field!r}")
        _locale(self)


def _locale(column: Any) -> None:
    """`locale` names a locale Faker has."""
    if not isinstance(column.locale, str) or not column.locale:
        raise _fail(column, "locale", f"must be a locale such as 'en_US', got {column.locale!r}")
    if not _known_locale(column.locale):
        raise _fail(column, "locale", f"unknown locale {column.locale!r}; Faker has e.g. 'en_US'")


#: The keys of a `faker_person` value, in data-designer's order (`PeopleGenFaker.make_person`;
#: the location keys are its `faker_constants.location`). `age` is an integer, the others text.
FAKER_PERSON_FIELDS = (
    "uuid",
    "locale",
    "first_name",
    "last_name",
    "middle_name",
    "sex",
    "street_number",
    "street_name",
    "city",
    "state",
    "postcode",
    "age",
    "birth_date",
    "country",
    "marital_status",
    "education_level",
    "unit",
    "occupation",
    "phone_number",
    "bachelors_field",
)
#: data-designer 0.9.7's bounds of `age_range` (`MIN_AGE`, `MAX_AGE`) and its default.
MIN_AGE, MAX_AGE = 0, 114
DEFAULT_AGE_RANGE = (18, 114)
#: A `faker_person`'s `sex` (data-designer's `SexT`).
SEXES = ("Male", "Female")
#: The day on which a `faker_person` is `age` years old (see `FakerPersonSampler`).
PERSON_REFERENCE_DATE = dt.date(2025, 1, 1)


@attrs.frozen(kw_only=True)
class FakerPersonSampler(Sampler):
    """A whole synthetic person per row, as data-designer's `person_from_faker` sampler gives
    it: a mapping of `FAKER_PERSON_FIELDS` (names, sex, address, age, birth date, country,
    marital status, education, occupation, phone number, ...) that templates read as
    `{{ customer.first_name }}`, stored as one struct column.

    `sex` ("Male" or "Female") fixes the sex, `city` (a name or a list of names, one drawn per
    row) the city; `age_range` is [min, max], both included, within data-designer's 0..114.
    Faker's text comes from a Faker seeded from the row's generator; the choices data-designer
    makes with Python's global `random` (sex, age, birth date, marital status, education) are
    drawn from the row's generator too, so a value depends only on (seed, column, record).

    data-designer computes the birth date back from `date.today()`, so the same seed gives other
    birth dates on another day (and fails on a 29 February). rowforge counts back from a fixed
    day, `PERSON_REFERENCE_DATE` (2025-01-01), so a run reproduces on any day: the person is
    exactly `age` on that day, born after it less `age + 1` years and no later than it less
    `age` years (a day drawn uniformly). `phone_number` is null under 18, `middle_name` always
    null and `unit` empty, as in data-designer; a location key the locale's Faker lacks (`state`
    outside the US, say) is null.
    """

    TYPE: ClassVar[str] = "faker_person"
    locale: str = "en_US"
    sex: Literal["Male", "Female"] | None = None
    city: str | tuple[str, ...] | None = attrs.field(default=None, converter=_tuple)
    age_range: tuple[int, int] = attrs.field(default=DEFAULT_AGE_RANGE, converter=_tuple)

    def validate(self) -> None:
        _locale(self)
        if self.sex is not None and self.sex not in SEXES:
            raise _fail(
                self, "sex", f"must be one of {list(SEXES)} or null, got {describe(self.sex)}"
            )
        city = self.city
        cities = city if isinstance(city, tuple) else (city,)
        if city is not None and (
            not cities or not all(isinstance(name, str) and name for name in cities)
        ):
            raise _fail(
                self,
                "city",
                "must be a city name or a non-empty list of city names, "
                f"got {describe(_plain(city))}",
            )
        low_high = self.age_range
        if (
            not isinstance(low_high, tuple)
            or len(low_high) != 2
            or not all(isinstance(age, int) and not isinstance(age, bool) for age in low_high)
        ):
            raise _fail(
                self,
                "age_range",
                f"must be a list of two integers [min, max], got {describe(_plain(low_high))}",
            )
        low, high = low_high
        if not MIN_AGE <= low < high <= MAX_AGE:
            raise _fail(
                self,
                "age_range",
                f"must be [min, max] with {MIN_AGE} <= min < max <= {MAX_AGE}, got {[low, high]}",
            )


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


#: What an expression's `dtype` accepts (data-designer's).
EXPRESSION_DTYPES = ("str", "int", "float", "bool")


@attrs.frozen(kw_only=True)
class ExpressionColumn(SkippableColumn):
    """A sandboxed Jinja2 template over the row, e.g. `"{{ first_name }} {{ last_name }}"`.

    `dtype` casts the rendered text as data-designer's expression columns do: "float" and "int"
    read it as a float ("int" then truncates toward zero), "bool" takes a number's truth or else
    whether the text is "true" in any case; a text that cannot be cast fails its row.
    """

    TYPE: ClassVar[str] = "expression"
    template: str
    dtype: Literal["str", "int", "float", "bool"] = attrs.field(default="str", metadata=OPTIONAL)

    def validate(self) -> None:
        _template(self, "template")
        if self.dtype not in EXPRESSION_DTYPES:
            raise _fail(
                self,
                "dtype",
                f"must be one of {list(EXPRESSION_DTYPES)}, got {describe(self.dtype)}",
            )

    def dependencies(self) -> set[str]:
        return referenced_columns(self.template, f"column {self.name!r}.template")


@attrs.frozen(kw_only=True)
class LLMTextColumn(SkippableColumn):
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


_CODE_LANGUAGE = re.compile(r"[a-z][a-z0-9+#._-]*")


@attrs.frozen(kw_only=True)
class LLMCodeColumn(LLMTextColumn):
    """Code from a model (data-designer's `llm-code`): the prompt asks for one Markdown code
    block in `code_lang`, and the column holds that block's code, without the fence or any text
    around it. A reply without such a block is asked for again up to `max_parse_retries` times;
    then the cell fails saying so."""

    TYPE: ClassVar[str] = "llm_code"
    code_lang: str
    max_parse_retries: int = 2

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.code_lang, str) or not _CODE_LANGUAGE.fullmatch(self.code_lang):
            raise _fail(
                self,
                "code_lang",
                "must be a language name as code fences tag it (lowercase, e.g. 'python', "
                f"'sql'), got {describe(self.code_lang)}",
            )
        retries = self.max_parse_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise _fail(
                self, "max_parse_retries", f"must be an integer >= 0, got {describe(retries)}"
            )

    def instructions(self) -> str:
        """What the prompt gains: the request for one code block in the language."""
        return code_request(self.code_lang)


def _option(key: Any) -> Any:
    """A score option as written: an integer written as text ("3", which is all JSON can write
    as a key) is the integer, so a JSON config reads back equal; other keys stay as given."""
    if isinstance(key, str) and _INTEGER_TEXT.fullmatch(key) and str(int(key)) == key:
        return int(key)
    return key


_INTEGER_TEXT = re.compile(r"-?[0-9]+")


def _scores(value: Any) -> Any:
    """A list of score mappings as a tuple of plain dicts (see `_option` for the keys)."""
    if not isinstance(value, list | tuple):
        return value
    return tuple(
        {**item, "options": {_option(k): v for k, v in item["options"].items()}}
        if isinstance(item, Mapping) and isinstance(item.get("options"), Mapping)
        else item
        for item in value
    )


@attrs.frozen(kw_only=True)
class LLMJudgeColumn(LLMTextColumn):
    """A model's verdict on a row by a rubric (data-designer's `llm-judge`): `scores` is a list
    of `{name, description, options: {score: what it means}}`. The value holds, per score,
    `{"reasoning": ..., "score": one of its options}`. The rubric is added to the prompt and the
    reply is checked like a structured column's (asked again up to `max_parse_retries` times).
    """

    TYPE: ClassVar[str] = "llm_judge"
    scores: tuple[Mapping[str, Any], ...] = attrs.field(converter=_scores)
    max_parse_retries: int = 2

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.scores, tuple) or not self.scores:
            raise _fail(self, "scores", f"must be a non-empty list, got {describe(self.scores)}")
        names: list[str] = []
        for index, score in enumerate(self.scores):
            where = f"scores[{index}]"
            if not isinstance(score, Mapping):
                raise _fail(self, where, f"must be a mapping, got {describe(score)}")
            unknown = sorted(set(score) - {"name", "description", "options"})
            if unknown:
                raise _fail(self, where, f"unknown fields {unknown}; known: name, description, "
                                         "options")
            name, description, options = (score.get(k) for k in ("name", "description", "options"))
            if not isinstance(name, str) or not name:
                raise _fail(self, f"{where}.name", f"must be a non-empty string, got {name!r}")
            if name in names:
                raise _fail(self, f"{where}.name", f"repeats score {name!r}")
            names.append(name)
            if not isinstance(description, str):
                raise _fail(self, f"{where}.description", "must be a string")
            if not isinstance(options, Mapping) or not options:
                raise _fail(self, f"{where}.options", "must map each score to what it means")
            for option, meaning in options.items():
                if isinstance(option, bool) or not isinstance(option, str | int):
                    raise _fail(self, f"{where}.options", f"scores must be strings or integers, "
                                                          f"got {option!r}")
                if not isinstance(meaning, str):
                    raise _fail(self, f"{where}.options[{option!r}]", "must be a string")
        retries = self.max_parse_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise _fail(
                self, "max_parse_retries", f"must be an integer >= 0, got {describe(retries)}"
            )

    def output_schema(self) -> dict[str, Any]:
        """The JSON Schema of the verdict: per score, its reasoning and one of its options."""
        properties = {
            score["name"]: {
                "type": "object",
                "properties": {
                    "reasoning": {"type": "string"},
                    "score": _enum_of(list(score["options"])),
                },
                "required": ["reasoning", "score"],
            }
            for score in self.scores
        }
        return {"type": "object", "properties": properties, "required": list(properties)}

    def rubric(self) -> str:
        """The rubric as text for the prompt."""
        lines = ["", "", "Judge by this rubric. For each score give your reasoning and one of "
                 "its allowed values:"]
        for score in self.scores:
            lines.append(f"- {score['name']}: {score['description']}")
            lines.extend(f"  * {value}: {meaning}" for value, meaning in score["options"].items())
        return "\n".join(lines)


def _enum_of(values: list[Any]) -> dict[str, Any]:
    """An enum schema typed by its values when they are all of one kind, so the column stores
    integer scores as integers (mixed kinds are stored as JSON text)."""
    if all(isinstance(v, int) for v in values):
        return {"type": "integer", "enum": values}
    if all(isinstance(v, str) for v in values):
        return {"type": "string", "enum": values}
    return {"enum": values}


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
class CustomColumn(SkippableColumn):
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
        if self.frame is None and is_hub_path(self.path):
            problem = hub_path_problem(self.path)
            if problem is not None:
                raise _fail(self, "path", problem)
        elif self.frame is None and Path(self.path).suffix.lower() not in (".parquet", ".csv"):
            raise _fail(self, "path", f"must be a .parquet or .csv file, got {self.path!r}")
        if not self.columns:
            raise _fail(self, "columns", "needs at least one column")

    def to_dict(self) -> dict[str, Any]:
        if self.frame is not None:
            raise _fail(self, "frame", "a DataFrame seed cannot be written to a config file")
        data = super().to_dict()
        data.pop("frame", None)
        return data


@attrs.frozen(kw_only=True)
class ValidationColumn(SkippableColumn):
    """A verdict on other columns (data-designer's `validation`): the `validator` checks the
    values of `target_columns`, `batch_size` records per call, and each row holds a mapping
    `{"is_valid": bool or None, ...details}`. `validator` is a mapping discriminated by `type`
    (`code`, `function`, `remote`; see `rowforge.config.validator_params`). In Python a
    function validator's `function` may be a callable; it is saved as its import path.
    """

    TYPE: ClassVar[str] = "validation"
    target_columns: tuple[str, ...] = attrs.field(converter=_tuple)
    validator: Mapping[str, Any] = attrs.field(converter=validator_params.normalized)
    batch_size: int = 10

    def validate(self) -> None:
        targets = _names(self, "target_columns")
        if not targets:
            raise _fail(self, "target_columns", "needs at least one column")
        if len(set(targets)) != len(targets):
            raise _fail(self, "target_columns", f"names a column twice: {list(targets)}")
        size = self.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise _fail(self, "batch_size", f"must be an integer >= 1, got {describe(size)}")
        problem = validator_params.validator_problem(self.validator)
        if problem is not None:
            raise _fail(self, *problem)

    def dependencies(self) -> set[str]:
        return set(self.target_columns)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        function = self.validator.get("function")
        if function is not None and not isinstance(function, str):
            ref = reference(function)
            if ref is None:
                raise _fail(
                    self, "validator.function", "has no importable name; use 'module:function'"
                )
            data["validator"] = {**data["validator"], "function": ref}
        return data


COLUMN_TYPES: dict[str, type[Column]] = {
    cls.TYPE: cls
    for cls in (
        CategorySampler,
        SubcategorySampler,
        UniformSampler,
        GaussianSampler,
        IntegerSampler,
        BernoulliSampler,
        BinomialSampler,
        PoissonSampler,
        BernoulliMixtureSampler,
        ScipySampler,
        UUIDSampler,
        DatetimeSampler,
        TimedeltaSampler,
        PersonSampler,
        FakerPersonSampler,
        ExpressionColumn,
        LLMTextColumn,
        LLMStructuredColumn,
        LLMJudgeColumn,
        LLMCodeColumn,
        CustomColumn,
        SeedDatasetColumns,
        ValidationColumn,
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
