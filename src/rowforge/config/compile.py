"""Compile a `DatasetConfig` into engine steps, processors and per-model caps.

Theory of operation
-------------------
Each column becomes one `Step` named after it (a seed dataset becomes a hidden loader step plus
one cheap batch step per output column; a post-batch `DropColumns` removes the hidden column).
How is data, not code: `COLUMN_COMPILERS`, at the end of this module, maps every registered
column type (`columns.COLUMN_TYPES`) to a `ColumnCompiler`, its steps and its Arrow type; adding
a column type is one entry there, and a test fails while a registered type has none.
Samplers are batch steps: each row draws from its own `random.Random` keyed by (config seed,
column, record index), so values are reproducible and independent of row-group boundaries and
engines. Most read no column and are seed steps; a subcategory reads its category, a timedelta
its reference, a sampler with `conditional_params` the columns its conditions name (each row
draws with the parameters of the condition that holds there). Distributions numpy or scipy draw
get a numpy Generator seeded from the row's `random.Random`. Expressions and LLM columns are cell
steps: a row moves on as soon as its own inputs are ready. Templates are compiled once per
column. A `drop: true` column is removed by a `DropColumns` after the config's processors.

LLM steps call clients from a `ModelRegistry` (`rowforge.models.registry`), an async context
manager the run enters around the engine, so HTTP sessions are opened in the run's event loop
and always closed.

Each column's Arrow type is decided here too (`column_types`), from its type and, for a
structured LLM column, its `output_schema`; a structured reply is conformed to that type in the
step (a reply that cannot be stored fails its cell, and the row is dropped with the reason), so
every file of a run has one schema (see `rowforge.storage.arrow_types`).
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import math
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs
import jinja2
import numpy as np
import pandas as pd
import pyarrow as pa

from rowforge.config.columns import (
    FAKER_PERSON_FIELDS,
    INT64,
    NUMPY_DISTRIBUTIONS,
    PERSON_REFERENCE_DATE,
    SEXES,
    TIME_UNITS,
    BernoulliMixtureSampler,
    BernoulliSampler,
    BinomialSampler,
    CategorySampler,
    Column,
    CustomColumn,
    DatetimeSampler,
    ExpressionColumn,
    FakerPersonSampler,
    GaussianSampler,
    IntegerSampler,
    LLMCodeColumn,
    LLMJudgeColumn,
    LLMStructuredColumn,
    LLMTextColumn,
    NumericSampler,
    PersonSampler,
    PoissonSampler,
    Sampler,
    ScipySampler,
    SeedDatasetColumns,
    SkippableColumn,
    SubcategorySampler,
    TimedeltaSampler,
    UniformSampler,
    UUIDSampler,
    ValidationColumn,
    condition_template,
    scipy_distribution,
)
from rowforge.config.dataset import DatasetConfig
from rowforge.config.seed_files import seed_files
from rowforge.errors import ConfigError, describe_error
from rowforge.importing import resolve
from rowforge.models.registry import ModelRegistry
from rowforge.models.repair import code_block, parse_reply
from rowforge.models.usage import UsageMeter
from rowforge.processors import STAGES, DropColumns, Processor, RenameColumns
from rowforge.scheduler import RowFailed, RunConfig, Step
from rowforge.storage.arrow_types import conform, json_schema_type
from rowforge.templates import compile_template, render
from rowforge.validators import validation_steps, validation_type


@attrs.frozen
class CompiledConfig:
    """What the engine runs for a config."""

    steps: tuple[Step, ...]
    processors: tuple[Processor, ...]
    run_config: RunConfig
    registry: ModelRegistry
    column_types: dict[str, pa.DataType] = attrs.field(factory=dict)


@attrs.frozen
class CompileContext:
    """What a column's compiler may read besides the column itself."""

    seed: int
    #: The run's record count; None when only validating (a check that needs it waits).
    num_records: int | None
    registry: ModelRegistry


C = TypeVar("C", bound=Column)


@attrs.frozen
class ColumnCompiler(Generic[C]):
    """How a column type becomes engine steps, and the Arrow type of its values.

    `steps` returns the column's steps: one named after the column, or (seed data) one per
    output column plus hidden helper steps, which are those not named after an output; a
    post-batch `DropColumns` removes them. `arrow_type` returns None when only the values can
    tell (custom Python, seed data, a category of mixed values): the run then locks the first
    type seen.
    """

    steps: Callable[[C, CompileContext], tuple[Step, ...]]
    arrow_type: Callable[[C], pa.DataType | None]


def compile_config(
    config: DatasetConfig, run_config: RunConfig | None = None, num_records: int | None = None
) -> CompiledConfig:
    """Steps, processors and a RunConfig whose per-model caps come from the model configs."""
    run_config = run_config or RunConfig()
    caps = {m.alias: m.max_parallel_requests for m in config.models}
    caps.update(run_config.max_parallel_requests)
    run_config = attrs.evolve(run_config, max_parallel_requests=caps, seed=config.seed)
    registry = ModelRegistry(config.models)
    context = CompileContext(config.seed, num_records, registry)
    steps: list[Step] = []
    hidden: list[str] = []
    for column in config.columns:
        compiled = _with_skip(column, compiler_for(column).steps(column, context))
        steps.extend(compiled)
        hidden.extend(step.name for step in compiled if step.name not in column.outputs())
    processors: list[Processor] = list(config.processors)
    if hidden:
        processors.insert(0, DropColumns(hidden))
    dropped = _dropped(config)
    if dropped:
        processors.append(DropColumns(dropped))
    types = {c.name: kind for c in config.columns if (kind := column_type(c)) is not None}
    return CompiledConfig(tuple(steps), tuple(processors), run_config, registry, types)


def _dropped(config: DatasetConfig) -> list[str]:
    """The outputs of the `drop: true` columns, named as they are after the config's processors
    (pre_batch ones run first), less those a processor drops itself: what a `DropColumns` run
    after every processor removes (data-designer drops them after its processors too)."""
    names = [name for column in config.columns if column.drop for name in column.outputs()]
    for stage in STAGES:
        for processor in config.processors:
            if processor.stage != stage:
                continue
            if isinstance(processor, DropColumns):
                names = [name for name in names if name not in processor.columns]
            elif isinstance(processor, RenameColumns):
                names = [processor.mapping.get(name, name) for name in names]
    return names


def _with_skip(column: Column, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The column's own step with its `skip` (condition, value; it then reads the condition's
    columns too) and `propagate_skip`."""
    if not isinstance(column, SkippableColumn) or (column.skip is None and column.propagate_skip):
        return steps
    when = None
    if column.skip is not None:
        template = compile_template(column.skip["when"], f"column {column.name!r}.skip.when")
        when = _skip_condition(template)
    return tuple(
        attrs.evolve(
            step,
            depends_on=sorted({*step.depends_on, *column.skip_reads()}),
            skip_when=when,
            skip_value=None if column.skip is None else column.skip.get("value"),
            propagate_skip=column.propagate_skip,
        )
        if step.name == column.name
        else step
        for step in steps
    )


def _skip_condition(template: jinja2.Template) -> Callable[[dict[str, Any]], bool]:
    """A `skip.when` expression as data-designer evaluates it: the rendered value's truth, so
    `{{ stars > 2 }}` (rendered "True" or "False"), numbers, and text (non-empty is true)."""

    def skip_when(row: dict[str, Any]) -> bool:
        text = render(template, row).strip()
        try:
            return bool(ast.literal_eval(text))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return bool(text)

    return skip_when


def compiler_for(column: Column) -> ColumnCompiler[Any]:
    """The `COLUMN_COMPILERS` entry of `column`'s type, or of the nearest registered base class
    (a subclass compiles like the type it extends)."""
    for cls in type(column).__mro__:
        compiler = COLUMN_COMPILERS.get(cls)
        if compiler is not None:
            return compiler
    raise ConfigError(f"column {column.name!r}: no generator for type {column.TYPE!r}")


def column_type(column: Column) -> pa.DataType | None:
    """The Arrow type of `column`'s values, or None when only the values can tell."""
    return compiler_for(column).arrow_type(column)


def _fixed(kind: pa.DataType) -> Callable[[Column], pa.DataType]:
    return lambda _: kind


def _values_decide(_: Column) -> None:
    return None


def _category_type(column: CategorySampler) -> pa.DataType | None:
    return _values_type(column.values)


def _subcategory_type(column: SubcategorySampler) -> pa.DataType | None:
    return _values_type([value for values in column.values.values() for value in values])


def _values_type(values: Any) -> pa.DataType | None:
    """The Arrow type of a column that holds `values`, or None when they do not share one."""
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string() if all(isinstance(v, str) for v in values) else None


def _structured_type(column: LLMStructuredColumn) -> pa.DataType:
    return json_schema_type(column.output_schema)


#: The Arrow type of each `convert_to`.
_CONVERTED_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}


def _typed(type_of: Callable[[C], pa.DataType | None]) -> Callable[[C], pa.DataType | None]:
    """A sampler's Arrow type: its `convert_to`'s, else `type_of` its own parameters and each
    condition's (integers and floats together are floats)."""

    def arrow_type(column: C) -> pa.DataType | None:
        if isinstance(column, NumericSampler) and column.convert_to is not None:
            return _CONVERTED_TYPES[column.convert_to]
        variants = column.variants() if isinstance(column, Sampler) else ()
        types = {type_of(column), *(type_of(variant) for _, variant in variants)}
        if types == {pa.int64(), pa.float64()}:
            return pa.float64()
        return types.pop() if len(types) == 1 else None

    return arrow_type


def _distribution_type(column: BernoulliMixtureSampler | ScipySampler) -> pa.DataType:
    return pa.int64() if _discrete(column) else pa.float64()


def _expression_type(column: ExpressionColumn) -> pa.DataType:
    return {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}.get(
        column.dtype, pa.string()
    )


# -- samplers ----------------------------------------------------------------------------------

#: Draws one value from the row's own generator, given the row's values of the columns the
#: sampler reads (none, for most samplers).
Draw = Callable[[random.Random, dict[str, Any]], Any]


def _rng(seed: int, column: str, index: Any) -> random.Random:
    return random.Random(f"{seed}/{column}/{index}")


def _numpy(rng: random.Random) -> np.random.Generator:
    """A numpy Generator seeded from the row's generator, for what numpy or scipy draw."""
    return np.random.default_rng(rng.getrandbits(128))


def _sampled(draw_for: Callable[[C], Draw]) -> Callable[[C, CompileContext], tuple[Step, ...]]:
    """A sampler's compiler: one batch step drawing each row's value from `draw_for(column)`,
    or from `draw_for` the variant of the condition that holds on the row, then converting it
    (`convert_to`). A sampler that reads no column is a seed step."""

    def steps(column: C, context: CompileContext) -> tuple[Step, ...]:
        reads = sorted(column.dependencies())
        draw = _converted(column, _conditional(column, draw_for))
        sample = _sampler(column.name, context.seed, draw, reads)
        return (Step(column.name, sample, kind="batch", depends_on=reads),)

    return steps


def _sampler(
    name: str, seed: int, draw: Draw, reads: list[str]
) -> Callable[[pd.DataFrame], list[Any]]:
    """Each row's value, or `RowFailed` for a row where none can be drawn (its category has no
    subcategories, its reference is not a datetime, `convert_to` cannot convert the value)."""

    def sample(frame: pd.DataFrame) -> list[Any]:
        columns = [frame[read].tolist() for read in reads]  # Python values, as cells get
        rows = [dict(zip(reads, values, strict=True)) for values in zip(*columns, strict=True)]
        if not reads:
            rows = [{}] * len(frame)
        return [
            _drawn(draw, _rng(seed, name, index), row)
            for index, row in zip(frame.index, rows, strict=True)
        ]

    return sample


def _drawn(draw: Draw, rng: random.Random, row: dict[str, Any]) -> Any:
    try:
        return draw(rng, row)
    except Exception as error:  # this row's inputs or value: the other rows go on
        return RowFailed(error)


def _conditional(column: C, draw_for: Callable[[C], Draw]) -> Draw:
    """`draw_for(column)`, except on rows where a condition of its `conditional_params` holds:
    there the variant of the last condition that holds draws (data-designer's order)."""
    draw = draw_for(column)
    variants = column.variants() if isinstance(column, Sampler) else ()
    if not variants:
        return draw
    choices = [
        (
            compile_template(
                condition_template(condition),
                f"column {column.name!r}.conditional_params[{condition!r}]",
            ),
            draw_for(variant),
        )
        for condition, variant in variants
    ]

    def conditional(rng: random.Random, row: dict[str, Any]) -> Any:
        chosen = draw
        for condition, variant in choices:
            if render(condition, row) == "True":
                chosen = variant
        return chosen(rng, row)

    return conditional


def _to_int(value: Any) -> int:
    """data-designer's "int": rounded half to even (pandas' `round`); a value that does not fit
    in a 64-bit integer fails its row."""
    number = round(int(value) if isinstance(value, bool) else value)
    if not INT64[0] <= number <= INT64[1]:
        raise ValueError(f"{value!r} does not fit in a 64-bit integer")
    return number


#: `convert_to`'s conversions; a boolean counts as 1 or 0, as data-designer's bernoulli gives.
_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "float": float,
    "str": lambda value: str(int(value) if isinstance(value, bool) else value),
}


def _converted(column: Column, draw: Draw) -> Draw:
    """`draw`, its values rounded to the column's `decimal_places` and converted by its
    `convert_to`, when it has them."""
    if not isinstance(column, NumericSampler):
        return draw
    places = column.decimal_places
    if places is not None:
        unrounded = draw
        draw = lambda rng, row: _rounded(unrounded(rng, row), places)  # noqa: E731
    if column.convert_to is None:
        return draw
    convert = _CONVERSIONS[column.convert_to]
    rounded = draw
    return lambda rng, row: convert(rounded(rng, row))


def _rounded(value: Any, places: int) -> Any:
    """A float rounded to `places`; integers and booleans are whole already."""
    return round(value, places) if isinstance(value, float) else value


def _draw_category(column: CategorySampler) -> Draw:
    values, weights = list(column.values), column.weights
    return lambda rng, _: rng.choices(values, weights=weights)[0]


def _draw_subcategory(column: SubcategorySampler) -> Draw:
    values, category = column.values, column.category

    def subcategory(rng: random.Random, row: dict[str, Any]) -> Any:
        value = row[category]
        choices = values.get(value) if isinstance(value, str) else None
        if choices is None:
            raise ValueError(f"column {category!r} gives {value!r}, which has no subcategories")
        return rng.choice(choices)

    return subcategory


def _draw_uniform(column: UniformSampler) -> Draw:
    return lambda rng, _: rng.uniform(column.low, column.high)


def _draw_gaussian(column: GaussianSampler) -> Draw:
    return lambda rng, _: rng.gauss(column.mean, column.stddev)


def _draw_integer(column: IntegerSampler) -> Draw:
    return lambda rng, _: rng.randint(column.low, column.high)


def _draw_bernoulli(column: BernoulliSampler) -> Draw:
    return lambda rng, _: rng.random() < column.p


def _draw_binomial(column: BinomialSampler) -> Draw:
    return lambda rng, _: int(_numpy(rng).binomial(column.n, column.p))


def _draw_poisson(column: PoissonSampler) -> Draw:
    return lambda rng, _: int(_numpy(rng).poisson(column.mean))


#: How `bernoulli_mixture` draws the distributions of `columns.NUMPY_DISTRIBUTIONS` with numpy,
#: given every parameter (scipy's names and meaning: `loc` shifts, `scale` stretches).
NUMPY_DRAWS: dict[str, Callable[[np.random.Generator, dict[str, Any]], Any]] = {
    "norm": lambda numpy, a: float(numpy.normal(a["loc"], a["scale"])),
    "uniform": lambda numpy, a: float(numpy.uniform(a["loc"], a["loc"] + a["scale"])),
    "expon": lambda numpy, a: a["loc"] + float(numpy.exponential(a["scale"])),
    "gamma": lambda numpy, a: a["loc"] + float(numpy.gamma(a["a"], a["scale"])),
    "beta": lambda numpy, a: a["loc"] + a["scale"] * float(numpy.beta(a["a"], a["b"])),
    "lognorm": lambda numpy, a: a["loc"] + float(numpy.lognormal(math.log(a["scale"]), a["s"])),
    "poisson": lambda numpy, a: a["loc"] + int(numpy.poisson(a["mu"])),
    "binom": lambda numpy, a: a["loc"] + int(numpy.binomial(a["n"], a["p"])),
}


def _discrete(column: BernoulliMixtureSampler | ScipySampler) -> bool:
    """Whether the column's distribution gives integers."""
    if isinstance(column, BernoulliMixtureSampler) and column.dist_name in NUMPY_DISTRIBUTIONS:
        return NUMPY_DISTRIBUTIONS[column.dist_name].discrete
    stats = importlib.import_module("scipy.stats")
    return isinstance(scipy_distribution(column).dist, stats.rv_discrete)


def _from_scipy(column: BernoulliMixtureSampler | ScipySampler) -> Callable[[random.Random], Any]:
    """A draw from the column's scipy.stats distribution, by the row's numpy Generator."""
    frozen = scipy_distribution(column)
    value = int if _discrete(column) else float
    return lambda rng: value(frozen.rvs(random_state=_numpy(rng)))


def _draw_scipy(column: ScipySampler) -> Draw:
    draw = _from_scipy(column)
    return lambda rng, _: draw(rng)


def _from_numpy(column: BernoulliMixtureSampler) -> Callable[[random.Random], Any]:
    """A draw from the column's distribution of `NUMPY_DISTRIBUTIONS`, by the row's Generator."""
    arguments = NUMPY_DISTRIBUTIONS[column.dist_name].arguments(column.dist_params)
    numpy_draw = NUMPY_DRAWS[column.dist_name]
    return lambda rng: numpy_draw(_numpy(rng), arguments)


def _draw_bernoulli_mixture(column: BernoulliMixtureSampler) -> Draw:
    """data-designer's mixture: with probability p a draw from the distribution, else 0."""
    by_numpy = column.dist_name in NUMPY_DISTRIBUTIONS
    draw = _from_numpy(column) if by_numpy else _from_scipy(column)
    zero = 0 if _discrete(column) else 0.0
    return lambda rng, _: draw(rng) if rng.random() < column.p else zero


def _draw_uuid(column: UUIDSampler) -> Draw:
    def draw(rng: random.Random, _: Any) -> str:
        value = uuid.UUID(int=rng.getrandbits(128), version=4)
        text = value.hex[:8] if column.short_form else value.hex if column.hex else str(value)
        return column.prefix + (text.upper() if column.uppercase else text)

    return draw


#: What a datetime's `unit` zeroes: the fields below it (as numpy's `datetime64[unit]` cast,
#: data-designer's truncation, does).
_TRUNCATIONS: dict[str, Callable[[dt.datetime], dt.datetime]] = {
    "Y": lambda t: t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
    "M": lambda t: t.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    "D": lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0),
    "h": lambda t: t.replace(minute=0, second=0, microsecond=0),
    "m": lambda t: t.replace(second=0, microsecond=0),
    "s": lambda t: t.replace(microsecond=0),
}


def _draw_datetime(column: DatetimeSampler) -> Draw:
    """A uniform moment in [start, end), truncated to the unit, as `YYYY-MM-DDTHH:MM:SS` (and
    the offset of an aware start). With unit "s" the text is the one rowforge always wrote."""
    start = dt.datetime.fromisoformat(column.start)
    span = dt.datetime.fromisoformat(column.end) - start
    truncate = _TRUNCATIONS[column.unit]
    return lambda rng, _: truncate(start + span * rng.random()).isoformat(timespec="seconds")


def _draw_timedelta(column: TimedeltaSampler) -> Draw:
    reference, unit = column.reference_column_name, TIME_UNITS[column.unit]

    def timedelta(rng: random.Random, row: dict[str, Any]) -> str:
        offset = dt.timedelta(**{unit: rng.randrange(column.dt_min, column.dt_max)})
        return (_moment(reference, row[reference]) + offset).isoformat(timespec="seconds")

    return timedelta


def _moment(reference: str, value: Any) -> dt.datetime:
    """A reference column's value as a datetime: ISO-8601 text (what a `datetime` column gives)
    or a datetime or date (what custom Python may give)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"column {reference!r} gives {value!r}, which is not an ISO-8601 datetime")


def _draw_person(column: PersonSampler) -> Draw:
    from faker import Faker

    faker = Faker(column.locale)
    attribute = column.field

    def person(rng: random.Random, _: Any) -> str:
        faker.seed_instance(rng.getrandbits(64))
        return str(getattr(faker, attribute)())

    return person


#: What data-designer's `person_from_faker` draws without Faker (its `faker_constants`).
MARITAL_STATUSES = ("married_present", "divorced", "never_married", "separated", "widowed")
EDUCATION_LEVELS = (
    "secondary_education",
    "some_college",
    "bachelors",
    "associates",
    "graduate",
    "doctorate",
)
#: The education levels that come with a `bachelors_field` (others give "no_degree").
COLLEGE_LEVELS = ("bachelors", "graduate", "doctorate")
BACHELORS_FIELDS = ("stem", "business", "education", "arts_humanities", "stem_related")

#: A `faker_person`'s Arrow type: every key, always; `age` an integer, the rest (nullable) text.
FAKER_PERSON_TYPE = pa.struct(
    [pa.field(key, pa.int64() if key == "age" else pa.string()) for key in FAKER_PERSON_FIELDS]
)


def _draw_faker_person(column: FakerPersonSampler) -> Draw:
    """data-designer's `PeopleGenFaker.make_person`, drawn from the row's generator: its Faker
    seeded from it (as `_draw_person`), and its own choices (uuid, sex, age, birth date, marital
    status, education, a city of the list) made with it. Faker's methods are looked up once; a
    method the locale lacks gives None, as data-designer's `try_fake_else_none` does."""
    from faker import Faker

    faker = Faker(column.locale)

    def method(name: str) -> Callable[[], str | None]:
        found = getattr(faker, name, None)

        def call() -> str | None:
            try:
                value = found() if found is not None else None
            except AttributeError:  # the locale's provider lacks what the method uses
                return None
            return None if value is None else str(value)

        return call

    names = {sex: (method(f"first_name_{sex.lower()}"), method(f"last_name_{sex.lower()}"))
             for sex in SEXES}
    building, street, city, state, postcode, country, job, phone = map(
        method,
        ("building_number", "street_name", "city", "state", "postcode", "country", "job",
         "phone_number"),
    )
    low, high = column.age_range

    def draw_city(rng: random.Random) -> str | None:
        if isinstance(column.city, tuple):
            return rng.choice(column.city)
        return column.city if column.city is not None else city()

    def person(rng: random.Random, _: Any) -> dict[str, Any]:
        faker.seed_instance(rng.getrandbits(64))
        sex: str = column.sex if column.sex is not None else rng.choice(SEXES)
        first, last = names[sex]
        age = rng.randint(low, high)
        education = rng.choice(EDUCATION_LEVELS)
        return {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "locale": column.locale,
            "first_name": first(),
            "last_name": last(),
            "middle_name": None,
            "sex": sex,
            "street_number": building(),
            "street_name": street(),
            "city": draw_city(rng),
            "state": state(),
            "postcode": postcode(),
            "age": age,
            "birth_date": _birth_date(rng, age).isoformat(),
            "country": country(),
            "marital_status": rng.choice(MARITAL_STATUSES),
            "education_level": education,
            "unit": "",
            "occupation": job(),
            "phone_number": phone() if age >= 18 else None,
            "bachelors_field": (
                rng.choice(BACHELORS_FIELDS) if education in COLLEGE_LEVELS else "no_degree"
            ),
        }

    return person


def _birth_date(rng: random.Random, age: int) -> dt.date:
    """A birth date of someone exactly `age` years old on `PERSON_REFERENCE_DATE`: a day drawn
    uniformly after that day less `age + 1` years, up to that day less `age` years."""
    day = PERSON_REFERENCE_DATE
    earliest = day.replace(year=day.year - age - 1)
    latest = day.replace(year=day.year - age)
    return earliest + dt.timedelta(days=rng.randint(1, (latest - earliest).days))


# -- expressions and custom Python -------------------------------------------------------------


def _expression_steps(column: ExpressionColumn, _: CompileContext) -> tuple[Step, ...]:
    deps = sorted(column.dependencies())
    template = compile_template(column.template, f"column {column.name!r}.template")
    if column.dtype == "str":
        return (Step(column.name, lambda row: render(template, row), depends_on=deps),)
    cast = _CASTS[column.dtype]

    def expression(row: dict[str, Any]) -> Any:
        text = render(template, row)
        try:
            return cast(text)
        except (ValueError, OverflowError) as error:  # the row fails, as in data-designer
            raise ValueError(
                f"cannot cast {text!r} to {column.dtype}: {describe_error(error)}"
            ) from None

    return (Step(column.name, expression, depends_on=deps),)


def _int_of(text: str) -> int:
    """data-designer's `int(float(text))`; what does not fit in a 64-bit integer fails."""
    number = int(float(text))
    if not INT64[0] <= number <= INT64[1]:
        raise ValueError("does not fit in a 64-bit integer")
    return number


def _bool_of(text: str) -> bool:
    """data-designer's: a number's truth, else whether the text is "true" in any case."""
    try:
        return bool(int(float(text)))
    except ValueError:
        return text.lower() == "true"


#: An expression's `dtype` casts of its rendered text (data-designer's `_cast_type`).
_CASTS: dict[str, Callable[[str], Any]] = {"int": _int_of, "float": float, "bool": _bool_of}


def _custom_steps(column: CustomColumn, _: CompileContext) -> tuple[Step, ...]:
    deps = sorted(column.dependencies())
    function = column.function
    if isinstance(function, str):
        function = resolve(function)
    step = Step(
        column.name,
        function,
        kind=column.kind,
        depends_on=deps,
        allow_resize=column.allow_resize,
    )
    return (step,)


# -- seed data ---------------------------------------------------------------------------------


def _seed_loader(
    column: SeedDatasetColumns, seed: int, num_records: int | None
) -> Callable[[pd.DataFrame], list[dict[str, Any]]]:
    files = [] if column.frame is not None else seed_files(
        column.path, f"column {column.name!r}.path"
    )
    cache: dict[str, pd.DataFrame] = {}

    def table() -> pd.DataFrame:
        if "data" not in cache:
            path = column.path or "the DataFrame"
            if column.frame is not None:
                data = pd.DataFrame(column.frame)
            else:
                data = pd.concat([_read_seed_file(file) for file in files], ignore_index=True)
            missing = [c for c in column.columns if c not in data.columns]
            if missing:
                raise ConfigError(f"column {column.name!r}: {path} has no columns {missing}")
            if data.empty:
                raise ConfigError(f"column {column.name!r}: {path} has no rows")
            cache["data"] = data[list(column.columns)].reset_index(drop=True)
        return cache["data"]

    if column.order == "shuffled" and not column.with_replacement and num_records is not None:
        rows = len(table())
        if num_records > rows:
            raise ConfigError(
                f"column {column.name!r}: {num_records} records without "
                f"replacement from {rows} seed rows"
            )

    def load(frame: pd.DataFrame) -> list[dict[str, Any]]:
        data = table()
        size = len(data)
        if column.order == "ordered":
            picks = [index % size for index in frame.index]
        elif column.with_replacement:
            picks = [_rng(seed, column.name, index).randrange(size) for index in frame.index]
        else:
            order = list(range(size))
            random.Random(f"{seed}/{column.name}").shuffle(order)
            picks = [order[index % size] for index in frame.index]
        records = data.to_dict(orient="records")
        return [records[pick] for pick in picks]

    return load


def _read_seed_file(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)


def _field_of(loader: str, name: str) -> Callable[[pd.DataFrame], list[Any]]:
    return lambda frame: [record[name] for record in frame[loader]]


def _seed_steps(column: SeedDatasetColumns, context: CompileContext) -> tuple[Step, ...]:
    """A hidden loader step (one record per row) and one cheap batch step per output column."""
    loader = f"_seed_{column.name}"
    load = _seed_loader(column, context.seed, context.num_records)
    return (
        Step(loader, load, kind="batch"),
        *(
            Step(name, _field_of(loader, name), kind="batch", depends_on=[loader])
            for name in column.columns
        ),
    )


# -- models ------------------------------------------------------------------------------------


def _messages(column: LLMTextColumn) -> Callable[[dict[str, Any]], list[dict[str, str]]]:
    """The chat messages for a row: the column's templates compiled once, rendered per row."""
    prompt = compile_template(column.prompt, f"column {column.name!r}.prompt")
    system = (
        None
        if column.system_prompt is None
        else compile_template(column.system_prompt, f"column {column.name!r}.system_prompt")
    )

    def messages(row: dict[str, Any]) -> list[dict[str, str]]:
        rendered = [{"role": "user", "content": render(prompt, row)}]
        if system is not None:
            rendered.insert(0, {"role": "system", "content": render(system, row)})
        return rendered

    return messages


def _llm_step(
    column: LLMTextColumn, deps: list[str], generate: Callable[[dict[str, Any]], Any]
) -> Step:
    """A cell step naming its model as the resource, so the model's cap and the early-shutdown
    window apply to it."""
    return Step(column.name, generate, depends_on=deps, resource=column.model)


def _llm_text_steps(column: LLMTextColumn, context: CompileContext) -> tuple[Step, ...]:
    deps = sorted(column.dependencies())
    messages = _messages(column)
    registry = context.registry

    async def generate(row: dict[str, Any]) -> Any:
        rendered = messages(row)
        return await registry.client(column.model).complete(rendered)

    return (_llm_step(column, deps, generate),)


def _llm_structured_steps(column: LLMStructuredColumn, context: CompileContext) -> tuple[Step, ...]:
    """Asks again (up to `max_parse_retries` times) while the reply is not JSON valid for the
    schema or cannot be stored in the column's Arrow type; then the cell fails saying why.
    A reply in a Markdown fence or with small JSON defects is read without asking again
    (`rowforge.models.repair`), and counted on the model's meter."""
    deps = sorted(column.dependencies())
    messages = _messages(column)
    registry = context.registry
    schema = dict(column.output_schema)
    retries = column.max_parse_retries

    async def generate(row: dict[str, Any]) -> Any:
        rendered = messages(row)
        client = registry.client(column.model)
        problem = ""
        for _ in range(retries + 1):
            reply = await client.complete(rendered, json_schema=schema)
            document, problem = _parse(reply, schema, registry.usage().get(column.model))
            if not problem:
                try:
                    return conform(document, schema)
                except ValueError as misfit:
                    problem = f"cannot be stored in the column's type: {misfit}"
        raise ValueError(
            f"column {column.name!r}: model output does not match the schema "
            f"after {retries + 1} attempts: {problem}"
        )

    return (_llm_step(column, deps, generate),)


def _llm_code_steps(column: LLMCodeColumn, context: CompileContext) -> tuple[Step, ...]:
    """Asks for one code block in the column's language; a reply without one is asked for
    again (up to `max_parse_retries` times), then the cell fails saying so."""
    deps = sorted(column.dependencies())
    asking = attrs.evolve(
        column, prompt=column.prompt + "{% raw %}" + column.instructions() + "{% endraw %}"
    )
    messages = _messages(asking)
    registry = context.registry
    attempts = column.max_parse_retries + 1

    async def generate(row: dict[str, Any]) -> str:
        rendered = messages(row)
        for _ in range(attempts):
            reply = await registry.client(column.model).complete(rendered)
            code = code_block(reply, column.code_lang)
            if code is not None:
                return code
        raise ValueError(
            f"column {column.name!r}: no {column.code_lang} code block in the model's reply "
            f"after {attempts} attempts"
        )

    return (_llm_step(column, deps, generate),)


def _as_structured(column: LLMJudgeColumn) -> LLMStructuredColumn:
    """A judge column is a structured column whose schema and rubric come from its scores.
    The rubric is added as raw text, so braces in it are never read as template syntax."""
    rubric = "{% raw %}" + column.rubric() + "{% endraw %}"
    return LLMStructuredColumn(
        name=column.name,
        prompt=column.prompt + rubric,
        model=column.model,
        system_prompt=column.system_prompt,
        output_schema=column.output_schema(),
        max_parse_retries=column.max_parse_retries,
    )


def _llm_judge_steps(column: LLMJudgeColumn, context: CompileContext) -> tuple[Step, ...]:
    return _llm_structured_steps(_as_structured(column), context)


def _judge_type(column: LLMJudgeColumn) -> pa.DataType:
    return json_schema_type(column.output_schema())


def _parse(reply: str, schema: dict[str, Any], meter: UsageMeter | None) -> tuple[Any, str]:
    """The parsed document and "" when `reply` is JSON valid for `schema`, else what is wrong.
    A fence removed or a repair made is counted on `meter`."""
    import jsonschema

    parsed = parse_reply(reply)
    if parsed.problem is not None:
        return None, parsed.problem
    document = parsed.document
    if meter is not None and (parsed.fenced or parsed.repaired):
        meter.read_json(fenced=parsed.fenced, repaired=parsed.repaired)
    mismatch = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(document)
    )
    return document, "" if mismatch is None else mismatch.message


# -- the table ---------------------------------------------------------------------------------

#: Every column type of `rowforge.config.columns.COLUMN_TYPES` and how it compiles. A new column
#: type is one entry here (tests/config/test_compile_table.py fails while one is missing).
COLUMN_COMPILERS: dict[type[Column], ColumnCompiler[Any]] = {
    CategorySampler: ColumnCompiler(_sampled(_draw_category), _typed(_category_type)),
    SubcategorySampler: ColumnCompiler(_sampled(_draw_subcategory), _typed(_subcategory_type)),
    UniformSampler: ColumnCompiler(_sampled(_draw_uniform), _typed(_fixed(pa.float64()))),
    GaussianSampler: ColumnCompiler(_sampled(_draw_gaussian), _typed(_fixed(pa.float64()))),
    IntegerSampler: ColumnCompiler(_sampled(_draw_integer), _typed(_fixed(pa.int64()))),
    BernoulliSampler: ColumnCompiler(_sampled(_draw_bernoulli), _typed(_fixed(pa.bool_()))),
    BinomialSampler: ColumnCompiler(_sampled(_draw_binomial), _typed(_fixed(pa.int64()))),
    PoissonSampler: ColumnCompiler(_sampled(_draw_poisson), _typed(_fixed(pa.int64()))),
    BernoulliMixtureSampler: ColumnCompiler(
        _sampled(_draw_bernoulli_mixture), _typed(_distribution_type)
    ),
    ScipySampler: ColumnCompiler(_sampled(_draw_scipy), _typed(_distribution_type)),
    UUIDSampler: ColumnCompiler(_sampled(_draw_uuid), _fixed(pa.string())),
    DatetimeSampler: ColumnCompiler(_sampled(_draw_datetime), _fixed(pa.string())),
    TimedeltaSampler: ColumnCompiler(_sampled(_draw_timedelta), _fixed(pa.string())),
    PersonSampler: ColumnCompiler(_sampled(_draw_person), _fixed(pa.string())),
    FakerPersonSampler: ColumnCompiler(_sampled(_draw_faker_person), _fixed(FAKER_PERSON_TYPE)),
    ExpressionColumn: ColumnCompiler(_expression_steps, _expression_type),
    LLMTextColumn: ColumnCompiler(_llm_text_steps, _fixed(pa.string())),
    LLMStructuredColumn: ColumnCompiler(_llm_structured_steps, _structured_type),
    LLMJudgeColumn: ColumnCompiler(_llm_judge_steps, _judge_type),
    LLMCodeColumn: ColumnCompiler(_llm_code_steps, _fixed(pa.string())),
    CustomColumn: ColumnCompiler(_custom_steps, _values_decide),
    SeedDatasetColumns: ColumnCompiler(_seed_steps, _values_decide),
    ValidationColumn: ColumnCompiler(validation_steps, validation_type),
}
