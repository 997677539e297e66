"""The samplers and sampler fields data-designer 0.9.7 has: subcategory, binomial, poisson,
bernoulli_mixture, scipy and timedelta, `convert_to` and `conditional_params`.

Each distribution is checked on 10^5 draws made by the compiled steps' functions on a frame of
10^5 rows (no engine run): the sample mean and variance must lie within five standard errors of
the distribution's. Every row draws from its own generator keyed by (seed, column, record
index), so these checks are deterministic, not flaky; that key is what makes a preview on either
engine, with any row-group size, give the values the step gives for those records.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from rowforge.api import preview
from rowforge.config.columns import (
    NUMPY_DISTRIBUTIONS,
    BernoulliMixtureSampler,
    BernoulliSampler,
    BinomialSampler,
    CategorySampler,
    Column,
    DatetimeSampler,
    ExpressionColumn,
    GaussianSampler,
    PoissonSampler,
    ScipySampler,
    SubcategorySampler,
    TimedeltaSampler,
    UniformSampler,
)
from rowforge.config.compile import NUMPY_DRAWS, compile_config
from rowforge.config.dataset import DatasetConfig
from rowforge.config.validate import validate_config
from rowforge.errors import ConfigError
from rowforge.scheduler import RowFailed, RunConfig

# -- distributions -----------------------------------------------------------------------------
from tests.config.sampling import N, assert_frequency, assert_moments, draws


def test_binomial_draws_are_integers_with_the_binomial_mean_and_variance() -> None:
    values = draws(BinomialSampler(name="hits", n=20, p=0.3))["hits"]
    assert all(isinstance(v, int) and 0 <= v <= 20 for v in values)
    assert_moments(values, 20 * 0.3, 20 * 0.3 * 0.7)


def test_poisson_draws_are_counts_whose_mean_and_variance_are_the_mean() -> None:
    values = draws(PoissonSampler(name="arrivals", mean=3.5))["arrivals"]
    assert all(isinstance(v, int) and v >= 0 for v in values)
    assert_moments(values, 3.5, 3.5)


def test_a_bernoulli_mixture_is_zero_with_probability_one_minus_p_else_the_distribution() -> None:
    p, loc, scale = 0.3, 10.0, 2.0
    column = BernoulliMixtureSampler(
        name="spend", p=p, dist_name="norm", dist_params={"loc": loc, "scale": scale}
    )
    values = draws(column)["spend"]
    assert_frequency(int((values == 0).sum()), N, 1 - p)
    assert_moments(values, p * loc, p * (scale**2 + loc**2) - (p * loc) ** 2)
    assert_moments(values[values != 0], loc, scale**2)


def test_a_bernoulli_mixture_of_a_discrete_distribution_gives_integers() -> None:
    p, mu = 0.5, 4.0
    column = BernoulliMixtureSampler(name="n", p=p, dist_name="poisson", dist_params={"mu": mu})
    values = draws(column)["n"]
    assert all(isinstance(v, int) for v in values)
    assert_moments(values, p * mu, p * (mu + mu**2) - (p * mu) ** 2)


#: Parameters for each distribution the mixture draws with numpy (its scipy parameterisation).
NUMPY_CASES = {
    "norm": {"loc": -1.0, "scale": 3.0},
    "uniform": {"loc": 2.0, "scale": 5.0},
    "expon": {"loc": 1.0, "scale": 2.0},
    "gamma": {"a": 2.5, "loc": 0.5, "scale": 1.5},
    "beta": {"a": 2.0, "b": 5.0, "loc": 1.0, "scale": 4.0},
    "lognorm": {"s": 0.5, "loc": 0.0, "scale": 2.0},
    "poisson": {"mu": 6.0, "loc": 2},
    "binom": {"n": 30, "p": 0.4, "loc": -3},
}


def test_each_numpy_drawn_distribution_has_the_moments_of_its_scipy_namesake() -> None:
    assert set(NUMPY_CASES) == set(NUMPY_DISTRIBUTIONS) == set(NUMPY_DRAWS)
    generator = np.random.default_rng(5)
    for name, params in NUMPY_CASES.items():
        arguments = NUMPY_DISTRIBUTIONS[name].arguments(params)
        values = [NUMPY_DRAWS[name](generator, arguments) for _ in range(N)]
        mean, variance = getattr(scipy.stats, name)(**params).stats(moments="mv")
        assert_moments(values, float(mean), float(variance))


def test_scipy_draws_follow_the_named_scipy_distribution() -> None:
    column = ScipySampler(name="wait", dist_name="gamma", dist_params={"a": 2.0, "scale": 1.5})
    values = draws(column)["wait"]
    assert all(isinstance(v, float) for v in values)
    assert_moments(values, 2.0 * 1.5, 2.0 * 1.5**2)


def test_scipy_draws_of_a_discrete_distribution_are_integers() -> None:
    column = ScipySampler(name="k", dist_name="geom", dist_params={"p": 0.25})
    values = draws(column, rows=200)["k"]
    assert all(isinstance(v, int) and v >= 1 for v in values)


DEPARTMENTS = {"eng": ["web", "ml", "data"], "ops": ["sre"], "sales": ["north", "south"]}


def test_a_subcategory_is_drawn_uniformly_from_the_rows_category_values() -> None:
    frame = draws(
        CategorySampler(name="dept", values=list(DEPARTMENTS), weights=[5, 1, 4]),
        SubcategorySampler(name="team", category="dept", values=DEPARTMENTS),
    )
    assert all(team in DEPARTMENTS[dept] for dept, team in zip(frame.dept, frame.team, strict=True))
    for dept, teams in DEPARTMENTS.items():
        rows = frame[frame.dept == dept]
        for team in teams:
            assert_frequency(int((rows.team == team).sum()), len(rows), 1 / len(teams))


def test_a_timedelta_is_its_reference_plus_a_uniform_whole_number_of_units() -> None:
    low, high = 2, 50
    frame = draws(
        DatetimeSampler(name="ordered", start="2024-01-01", end="2024-12-31"),
        TimedeltaSampler(
            name="shipped", dt_min=low, dt_max=high, unit="h", reference_column_name="ordered"
        ),
    )
    hours = [
        (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)) / dt.timedelta(hours=1)
        for start, end in zip(frame.ordered, frame.shipped, strict=True)
    ]
    assert set(hours) == set(range(low, high))
    assert_moments(hours, (low + high - 1) / 2, ((high - low) ** 2 - 1) / 12)


# -- convert_to and conditional parameters -----------------------------------------------------


@pytest.mark.parametrize("convert_to", ["int", "float", "str"])
def test_convert_to_converts_the_same_draws_as_data_designer_converts_a_series(
    convert_to: str,
) -> None:
    raw = draws(GaussianSampler(name="g", mean=2, stddev=3), rows=2_000)["g"]
    converted = draws(
        GaussianSampler(name="g", mean=2, stddev=3, convert_to=convert_to), rows=2_000
    )
    # data-designer's TypeConversionMixin: `series.round()` before an "int", then `astype`.
    expected = (raw.round() if convert_to == "int" else raw).astype(convert_to)
    assert converted["g"].tolist() == expected.tolist()


def test_a_converted_bernoulli_counts_true_as_one_as_data_designers_bernoulli_gives() -> None:
    raw = draws(BernoulliSampler(name="b", p=0.5), rows=50)["b"]
    converted = draws(BernoulliSampler(name="b", p=0.5, convert_to="str"), rows=50)["b"]
    assert converted.tolist() == [str(int(b)) for b in raw]
    assert set(converted) == {"0", "1"}


def test_conditional_params_apply_where_their_condition_holds_and_the_last_one_wins() -> None:
    column = GaussianSampler(
        name="score",
        mean=0,
        stddev=1,
        conditional_params={
            "group == 'b'": {"mean": 100},
            "group == 'b' and vip": {"mean": 200, "stddev": 2},
        },
    )
    rows = 20_000
    frame = draws(
        CategorySampler(name="group", values=["a", "b"]),
        BernoulliSampler(name="vip", p=0.5),
        column,
        rows=rows,
    )
    plain = draws(GaussianSampler(name="score", mean=0, stddev=1), rows=rows)["score"]
    hundred = draws(GaussianSampler(name="score", mean=100, stddev=1), rows=rows)["score"]
    expected = plain.where(frame.group == "a", hundred)
    vip = (frame.group == "b") & frame.vip
    expected[vip] = draws(GaussianSampler(name="score", mean=200, stddev=2), rows=rows)["score"]
    # Each row draws from its own generator, whichever parameters apply there.
    assert frame.score.tolist() == expected.tolist()
    assert_moments(frame.score[vip], 200, 4)


def test_a_conditional_column_reads_the_columns_its_conditions_name() -> None:
    column = UniformSampler(name="u", conditional_params={"age > 60 or vip": {"high": 2.0}})
    assert column.dependencies() == {"age", "vip"}
    config = DatasetConfig(
        [PoissonSampler(name="age", mean=50), BernoulliSampler(name="vip"), column]
    )
    (step,) = [s for s in compile_config(config).steps if s.name == "u"]
    assert (step.kind, step.depends_on) == ("batch", ("age", "vip"))


def test_conditional_category_values_of_ints_and_floats_make_a_float_column() -> None:
    column = CategorySampler(
        name="c", values=[1, 2], conditional_params={"flag": {"values": [0.5, 1.5]}}
    )
    config = DatasetConfig([BernoulliSampler(name="flag"), column])
    assert str(compile_config(config).column_types["c"]) == "double"


# -- rows that cannot be drawn -----------------------------------------------------------------


def test_a_row_whose_category_has_no_subcategories_fails_alone() -> None:
    values = draws(
        ExpressionColumn(name="dept", template="{{ 'ops' }}"),
        SubcategorySampler(name="team", category="dept", values={"eng": ["web"]}),
        rows=2,
    )["team"]
    failure = values[0]
    assert isinstance(failure, RowFailed)
    assert str(failure.error) == "column 'dept' gives 'ops', which has no subcategories"


def test_rows_whose_reference_is_not_a_datetime_are_dropped_with_the_reason() -> None:
    config = DatasetConfig(
        [
            PoissonSampler(name="n", mean=5),
            ExpressionColumn(name="when", template="{{ '2024-05-01' if n % 2 else 'soon' }}"),
            TimedeltaSampler(name="later", dt_min=1, dt_max=2, reference_column_name="when"),
        ]
    )
    result = preview(config, 40)
    assert result.metadata["outcome"] == "partial"
    assert set(result.dataset["later"]) == {"2024-05-02T00:00:00"}
    (reason,) = result.metadata["row_groups"][0]["drop_reasons"]
    assert reason.startswith("step 'later' failed: ValueError: column 'when' gives 'soon'")


def test_a_converted_value_outside_64_bit_integers_fails_its_row() -> None:
    column = UniformSampler(name="u", low=1e30, high=2e30, convert_to="int")
    (value,) = draws(column, rows=1)["u"]
    assert isinstance(value, RowFailed)
    assert "does not fit in a 64-bit integer" in str(value.error)


# -- determinism on both engines ---------------------------------------------------------------

EVERY_NEW_SAMPLER: tuple[Column, ...] = (
    CategorySampler(name="dept", values=list(DEPARTMENTS)),
    SubcategorySampler(name="team", category="dept", values=DEPARTMENTS),
    BinomialSampler(name="hits", n=12, p=0.4, conditional_params={"dept == 'ops'": {"n": 3}}),
    PoissonSampler(name="arrivals", mean=2.5, convert_to="float"),
    BernoulliMixtureSampler(name="spend", p=0.4, dist_name="gamma", dist_params={"a": 2}),
    BernoulliMixtureSampler(name="tip", p=0.5, dist_name="weibull_min", dist_params={"c": 1.5}),
    ScipySampler(name="wait", dist_name="lognorm", dist_params={"s": 0.4}, convert_to="str"),
    DatetimeSampler(name="ordered", start="2024-01-01", end="2024-03-01", drop=True),
    TimedeltaSampler(name="shipped", dt_min=1, dt_max=9, reference_column_name="ordered"),
)


def test_values_depend_only_on_seed_column_and_record_on_both_engines() -> None:
    config = DatasetConfig(EVERY_NEW_SAMPLER, seed=4)
    on_sync = preview(config, 30, RunConfig(engine="sync", buffer_size=7))
    on_async = preview(config, 30, RunConfig(engine="async", buffer_size=30))
    assert on_sync.metadata["outcome"] == on_async.metadata["outcome"] == "completed"
    pd.testing.assert_frame_equal(on_sync.dataset, on_async.dataset)
    direct = draws(*EVERY_NEW_SAMPLER, rows=30, seed=4).drop(columns="ordered")
    assert on_sync.dataset.to_dict("list") == direct.to_dict("list")
    other = preview(DatasetConfig(EVERY_NEW_SAMPLER, seed=5), 30).dataset
    for name in ("team", "hits", "spend", "tip", "wait", "shipped"):
        assert other[name].tolist() != on_sync.dataset[name].tolist(), name


# -- refused declarations ----------------------------------------------------------------------

DEPT = {"type": "category", "name": "dept", "values": ["eng", "ops"]}
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "subcategory values not a mapping": (
        {"type": "subcategory", "name": "x", "category": "dept", "values": ["a"]},
        "columns[1] 'x'.values: must be a mapping of category values to lists of values",
    ),
    "subcategory with an empty list": (
        {"type": "subcategory", "name": "x", "category": "dept", "values": {"eng": []}},
        "columns[1] 'x'.values['eng']: must be a non-empty list",
    ),
    "subcategory values of two kinds": (
        {"type": "subcategory", "name": "x", "category": "dept", "values": {"a": [1], "b": ["s"]}},
        "columns[1] 'x'.values: must all be of one kind, got numbers and strings",
    ),
    "subcategory category not a name": (
        {"type": "subcategory", "name": "x", "category": 3, "values": {"a": [1]}},
        "columns[1] 'x'.category: must be a column name, got int 3",
    ),
    "subcategory of an unknown column": (
        {"type": "subcategory", "name": "x", "category": "nope", "values": {"a": [1]}},
        "columns[1] 'x': refers to unknown column 'nope'",
    ),
    "binomial n negative": (
        {"type": "binomial", "name": "x", "n": -1, "p": 0.5},
        "columns[1] 'x'.n: must be >= 0, got -1",
    ),
    "binomial n not an integer": (
        {"type": "binomial", "name": "x", "n": 2.5, "p": 0.5},
        "columns[1] 'x'.n: must be an integer, got float 2.5",
    ),
    "binomial p above one": (
        {"type": "binomial", "name": "x", "n": 3, "p": 1.5},
        "columns[1] 'x'.p: must be in [0, 1], got 1.5",
    ),
    "poisson mean negative": (
        {"type": "poisson", "name": "x", "mean": -2},
        "columns[1] 'x'.mean: must be in [0, 1e+18], got -2",
    ),
    "poisson mean a string": (
        {"type": "poisson", "name": "x", "mean": "lots"},
        "columns[1] 'x'.mean: must be a finite number, got str 'lots'",
    ),
    "mixture of an unknown distribution": (
        {"type": "bernoulli_mixture", "name": "x", "p": 0.5, "dist_name": "nope"},
        "columns[1] 'x'.dist_name: must name a scipy.stats distribution such as 'norm'",
    ),
    "mixture missing a required parameter": (
        {"type": "bernoulli_mixture", "name": "x", "p": 0.5, "dist_name": "gamma"},
        "columns[1] 'x'.dist_params.a: is required",
    ),
    "mixture parameter out of its domain": (
        {
            "type": "bernoulli_mixture",
            "name": "x",
            "p": 0.5,
            "dist_name": "norm",
            "dist_params": {"scale": -1},
        },
        "columns[1] 'x'.dist_params.scale: must be a number > 0, got -1",
    ),
    "mixture parameter unknown": (
        {
            "type": "bernoulli_mixture",
            "name": "x",
            "p": 0.5,
            "dist_name": "expon",
            "dist_params": {"rate": 2},
        },
        "columns[1] 'x'.dist_params: unknown parameters ['rate']; known: ['loc', 'scale']",
    ),
    "mixture binomial with a fractional n": (
        {
            "type": "bernoulli_mixture",
            "name": "x",
            "p": 0.5,
            "dist_name": "binom",
            "dist_params": {"n": 2.5, "p": 0.5},
        },
        "columns[1] 'x'.dist_params.n: must be an integer >= 0, got 2.5",
    ),
    "scipy multivariate distribution": (
        {"type": "scipy", "name": "x", "dist_name": "multivariate_normal"},
        "columns[1] 'x'.dist_name: must name a scipy.stats distribution",
    ),
    "scipy parameters out of the domain": (
        {"type": "scipy", "name": "x", "dist_name": "gamma", "dist_params": {"a": -1}},
        "columns[1] 'x'.dist_params: do not fit scipy.stats.gamma: ValueError: Domain error",
    ),
    "scipy parameter not a number": (
        {"type": "scipy", "name": "x", "dist_name": "gamma", "dist_params": {"a": "two"}},
        "columns[1] 'x'.dist_params.a: must be a finite number, got str 'two'",
    ),
    "scipy discrete distribution with a fractional loc": (
        {
            "type": "scipy",
            "name": "x",
            "dist_name": "poisson",
            "dist_params": {"mu": 1, "loc": 0.5},
        },
        "columns[1] 'x'.dist_params.loc: must be an integer for 'poisson', got 0.5",
    ),
    "timedelta unit of years": (
        {
            "type": "timedelta",
            "name": "x",
            "dt_min": 0,
            "dt_max": 2,
            "unit": "Y",
            "reference_column_name": "dept",
        },
        "columns[1] 'x'.unit: must be one of ['D', 'h', 'm', 's'], got str 'Y'",
    ),
    "timedelta empty range": (
        {
            "type": "timedelta",
            "name": "x",
            "dt_min": 5,
            "dt_max": 5,
            "reference_column_name": "dept",
        },
        "columns[1] 'x'.dt_min: must be below dt_max (5 >= 5)",
    ),
    "timedelta negative minimum": (
        {
            "type": "timedelta",
            "name": "x",
            "dt_min": -1,
            "dt_max": 5,
            "reference_column_name": "dept",
        },
        "columns[1] 'x'.dt_min: must be >= 0, got -1",
    ),
    "timedelta longer than any": (
        {
            "type": "timedelta",
            "name": "x",
            "dt_min": 0,
            "dt_max": 10**10,
            "reference_column_name": "dept",
        },
        "columns[1] 'x'.dt_max: is longer than the longest timedelta",
    ),
    "timedelta reference not a name": (
        {
            "type": "timedelta",
            "name": "x",
            "dt_min": 0,
            "dt_max": 5,
            "reference_column_name": ["dept"],
        },
        "columns[1] 'x'.reference_column_name: must be a column name",
    ),
    "convert_to a type it cannot": (
        {"type": "gaussian", "name": "x", "convert_to": "bool"},
        "columns[1] 'x'.convert_to: must be one of ['int', 'float', 'str'], got str 'bool'",
    ),
    "convert_to on a sampler of text": (
        {"type": "category", "name": "x", "values": ["a"], "convert_to": "int"},
        "columns[1] 'x': unknown fields ['convert_to'] for a 'category' column",
    ),
    "conditional_params not a mapping": (
        {"type": "gaussian", "name": "x", "conditional_params": ["dept == 'eng'"]},
        "columns[1] 'x'.conditional_params: must be a mapping of conditions to parameters",
    ),
    "conditional parameters not a mapping": (
        {"type": "gaussian", "name": "x", "conditional_params": {"dept == 'eng'": 5}},
        "columns[1] 'x'.conditional_params[\"dept == 'eng'\"]: must be a mapping of parameters",
    ),
    "conditional parameter unknown": (
        {"type": "gaussian", "name": "x", "conditional_params": {"true": {"sigma": 2}}},
        "columns[1] 'x'.conditional_params['true']: unknown parameters ['sigma'] of a "
        "'gaussian'; known: ['decimal_places', 'mean', 'stddev']",
    ),
    "conditional parameter out of its domain": (
        {"type": "gaussian", "name": "x", "conditional_params": {"true": {"stddev": -2}}},
        "columns[1] 'x'.conditional_params['true'].stddev: must be positive, got -2",
    ),
    "condition that is not an expression": (
        {"type": "gaussian", "name": "x", "conditional_params": {"dept ==": {"mean": 2}}},
        "columns[1] 'x'.conditional_params['dept ==']: bad template at line 1",
    ),
    "condition naming an unknown column": (
        {"type": "gaussian", "name": "x", "conditional_params": {"age > 3": {"mean": 2}}},
        "columns[1] 'x': refers to unknown column 'age'",
    ),
    "condition the sandbox refuses": (
        {"type": "gaussian", "name": "x", "conditional_params": {"''.__class__": {"mean": 2}}},
        "columns[1] 'x'.conditional_params[\"''.__class__\"]: the template sandbox refuses it",
    ),
    "conditional category values of another kind": (
        {
            "type": "category",
            "name": "x",
            "values": ["a"],
            "conditional_params": {"true": {"values": [1]}},
        },
        "columns[1] 'x'.conditional_params['true'].values: must be of the column's one kind, "
        "got numbers and strings",
    ),
    "drop not a boolean": (
        {"type": "uuid", "name": "x", "drop": "yes"},
        "columns[1] 'x'.drop: must be a boolean, got str 'yes'",
    ),
    "expression dtype unknown": (
        {"type": "expression", "name": "x", "template": "{{ dept }}", "dtype": "date"},
        "columns[1] 'x'.dtype: must be one of ['str', 'int', 'float', 'bool'], got str 'date'",
    ),
}


@pytest.mark.parametrize(("raw", "message"), list(REFUSED.values()), ids=list(REFUSED))
def test_a_bad_declaration_is_a_config_error_naming_the_field(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        DatasetConfig.from_dict({"columns": [DEPT, raw]})
    assert str(raised.value).startswith(message), str(raised.value)


#: Found by `validate_config` (and `build`/`preview`), which look at the columns read.
REFUSED_ON_VALIDATE: dict[str, tuple[dict[str, Any], str]] = {
    "subcategory without values for a category value": (
        {"type": "subcategory", "name": "x", "category": "dept", "values": {"eng": ["web"]}},
        "columns[1] 'x'.values: has no subcategories for 'ops', a value of column 'dept'",
    ),
    "timedelta from a column of numbers": (
        {"type": "timedelta", "name": "x", "dt_min": 0, "dt_max": 5, "reference_column_name": "n"},
        "columns[1] 'x'.reference_column_name: column 'n' gives int64 values, not ISO datetimes",
    ),
    "condition reading what the sample lacks": (
        {"type": "gaussian", "name": "x", "conditional_params": {"dept.size > 1": {"mean": 2}}},
        "columns[1] 'x'.conditional_params['dept.size > 1']: fails on sample values",
    ),
}


@pytest.mark.parametrize(
    ("raw", "message"), list(REFUSED_ON_VALIDATE.values()), ids=list(REFUSED_ON_VALIDATE)
)
def test_what_only_validation_sees_is_a_config_error_naming_the_field(
    raw: dict[str, Any], message: str
) -> None:
    config = DatasetConfig.from_dict(
        {"columns": [DEPT, raw, {"type": "poisson", "name": "n", "mean": 1}]}
    )
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    assert str(raised.value).startswith(message), str(raised.value)


# -- scipy is optional -------------------------------------------------------------------------


@pytest.fixture
def without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import scipy.stats` fails, as where the `scipy` extra is not installed."""
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)


@pytest.mark.usefixtures("without_scipy")
def test_without_scipy_a_scipy_column_says_how_to_install_it() -> None:
    with pytest.raises(ConfigError) as raised:
        ScipySampler(name="x", dist_name="gamma", dist_params={"a": 2})
    assert str(raised.value) == (
        "column 'x'.dist_name: needs scipy, which is not installed: pip install 'rowforge[scipy]'"
    )
    with pytest.raises(ConfigError, match=r"'weibull_min' is drawn with scipy, .* install "):
        BernoulliMixtureSampler(name="x", p=1, dist_name="weibull_min", dist_params={"c": 1})


@pytest.mark.usefixtures("without_scipy")
def test_without_scipy_a_mixture_of_a_numpy_drawn_distribution_still_draws() -> None:
    column = BernoulliMixtureSampler(name="x", p=1, dist_name="expon", dist_params={"scale": 2})
    assert all(value > 0 for value in draws(column, rows=20)["x"])


# -- the reference's example -------------------------------------------------------------------


def test_the_column_types_example_of_the_reference_validates_and_generates() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text()
    section = reference.split("## Column types (`type:`)")[1].split("\n## ")[0]
    (example,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    config = DatasetConfig.from_dict(yaml.safe_load(example))
    validate_config(config)
    result = preview(config, 20)
    assert result.metadata["outcome"] == "completed"
    assert "opened" not in result.dataset.columns
    assert set(result.dataset["satisfaction"]) <= set(range(-3, 10))
