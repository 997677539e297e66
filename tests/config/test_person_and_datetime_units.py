"""A whole synthetic person per row (`faker_person`, data-designer 0.9.7's `person_from_faker`)
and the `unit` of the `datetime` sampler (data-designer's truncation).

As in tests/config/test_more_samplers.py, distributions are checked on 10^5 values made by the
compiled steps' functions on a frame of 10^5 rows (no engine run): every row draws from its own
generator keyed by (seed, column, record index), so the checks are deterministic, and that key
is what makes either engine, with any row-group size, give the same values. Each statistical
check allows five standard errors.

Faker's text costs about 0.2 ms a person, so the 10^5 ages are drawn with Faker replaced by a
stub that returns fixed words (`quick_faker`): the draw function, the row's generator and the
draws it makes are the real ones, which a test checks by comparing the stub's ages with real
Faker's on the same records. Real Faker draws the rest (thousands of people, not 10^5).
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from rowforge.api import build, preview
from rowforge.config.columns import (
    DATETIME_UNITS,
    DEFAULT_AGE_RANGE,
    FAKER_PERSON_FIELDS,
    MAX_AGE,
    MIN_AGE,
    PERSON_REFERENCE_DATE,
    SEXES,
    BernoulliSampler,
    DatetimeSampler,
    ExpressionColumn,
    FakerPersonSampler,
)
from rowforge.config.compile import (
    BACHELORS_FIELDS,
    COLLEGE_LEVELS,
    EDUCATION_LEVELS,
    FAKER_PERSON_TYPE,
    MARITAL_STATUSES,
    column_type,
    compile_config,
)
from rowforge.config.dataset import DatasetConfig
from rowforge.config.validate import validate_config
from rowforge.errors import ConfigError
from rowforge.scheduler import RunConfig
from tests.config.sampling import N, assert_frequency, assert_moments, draws


def age_on(birth: str, day: dt.date) -> int:
    """Whole years from `birth` (ISO date) to `day`."""
    born = dt.date.fromisoformat(birth)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class QuickFaker:
    """A stand-in for `faker.Faker`: every method a `faker_person` calls gives a fixed word."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def seed_instance(self, seed: int) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return lambda: f"<{name}>"


@pytest.fixture
def quick_faker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("faker.Faker", QuickFaker)


# -- a faker_person's value --------------------------------------------------------------------


@pytest.fixture(scope="module")
def people() -> pd.Series:
    """3,000 people of 10 to 30 (so some have no phone), drawn with real Faker."""
    return draws(FakerPersonSampler(name="p", age_range=[10, 30]), rows=3_000)["p"]


def test_a_person_has_data_designers_keys_in_its_order_with_their_kinds(people: pd.Series) -> None:
    for person in people:
        assert tuple(person) == FAKER_PERSON_FIELDS
        assert isinstance(person["age"], int) and 10 <= person["age"] <= 30
        assert person["middle_name"] is None and person["unit"] == ""
        assert person["locale"] == "en_US" and person["sex"] in SEXES
        assert uuid.UUID(person["uuid"]).version == 4
        assert person["marital_status"] in MARITAL_STATUSES
        assert person["education_level"] in EDUCATION_LEVELS
        if person["education_level"] in COLLEGE_LEVELS:
            assert person["bachelors_field"] in BACHELORS_FIELDS
        else:
            assert person["bachelors_field"] == "no_degree"
        text = [k for k in FAKER_PERSON_FIELDS if k not in ("age", "middle_name", "phone_number")]
        assert all(isinstance(person[key], str) for key in text), person
        assert all(person[key] for key in text if key != "unit"), person  # en_US has them all
    # One Arrow type holds every value; it is the column's declared type.
    assert pa.array(list(people), type=FAKER_PERSON_TYPE).type == FAKER_PERSON_TYPE
    assert column_type(FakerPersonSampler(name="p")) == FAKER_PERSON_TYPE
    assert len({person["uuid"] for person in people}) == len(people)
    assert len({person["last_name"] for person in people}) > 100  # Faker's names, not one


def test_a_phone_number_only_from_eighteen(people: pd.Series) -> None:
    minors = [person for person in people if person["age"] < 18]
    adults = [person for person in people if person["age"] >= 18]
    assert minors and adults
    assert all(person["phone_number"] is None for person in minors)
    assert all(isinstance(person["phone_number"], str) for person in adults)


def test_the_birth_date_makes_the_person_their_age_on_the_reference_day(people: pd.Series) -> None:
    for person in people:
        assert age_on(person["birth_date"], PERSON_REFERENCE_DATE) == person["age"], person
    # Every day of the year of birth is possible: the earliest and the latest both occur.
    twenty = [dt.date.fromisoformat(p["birth_date"]) for p in people if p["age"] == 20]
    day = PERSON_REFERENCE_DATE
    earliest, latest = day.replace(year=day.year - 21), day.replace(year=day.year - 20)
    assert all(earliest < born <= latest for born in twenty)
    assert (max(twenty) - min(twenty)).days > 300


def test_ages_are_uniform_over_the_age_range_on_10_5_draws(quick_faker: None) -> None:
    low, high = 20, 70
    ages = draws(FakerPersonSampler(name="p", age_range=[low, high]))["p"].map(lambda p: p["age"])
    assert set(ages) == set(range(low, high + 1))
    count = high - low + 1
    assert_moments(ages, (low + high) / 2, (count**2 - 1) / 12)


def test_the_stub_faker_leaves_the_draws_of_the_row_generator_as_they_are(
    people: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("faker.Faker", QuickFaker)
    stubbed = draws(FakerPersonSampler(name="p", age_range=[10, 30]), rows=3_000)["p"]
    not_faker = ("uuid", "sex", "age", "birth_date", "marital_status", "education_level")
    for real, quick in zip(people, stubbed, strict=True):
        assert [real[k] for k in not_faker] == [quick[k] for k in not_faker]
    assert stubbed[0]["first_name"] in ("<first_name_male>", "<first_name_female>")


def test_the_default_age_range_is_data_designers_18_to_114(quick_faker: None) -> None:
    ages = draws(FakerPersonSampler(name="p"), rows=20_000)["p"].map(lambda p: p["age"])
    assert DEFAULT_AGE_RANGE == (18, 114)
    assert set(ages) == set(range(18, 115))


# -- filters, conditions, templates ------------------------------------------------------------


def test_sex_fixes_the_sex_and_the_names_of_that_sex() -> None:
    from faker.providers.person.en_US import Provider

    female_names, male_names = set(Provider.first_names_female), set(Provider.first_names_male)
    women = draws(FakerPersonSampler(name="p", sex="Female"), rows=500)["p"]
    assert {person["sex"] for person in women} == {"Female"}
    assert all(person["first_name"] in female_names for person in women)
    men = draws(FakerPersonSampler(name="p", sex="Male"), rows=500)["p"]
    assert {person["sex"] for person in men} == {"Male"}
    assert all(person["first_name"] in male_names for person in men)
    either = draws(FakerPersonSampler(name="p"), rows=2_000)["p"]
    assert_frequency(sum(person["sex"] == "Female" for person in either), 2_000, 0.5)


def test_a_city_is_fixed_or_drawn_uniformly_from_the_list() -> None:
    one = draws(FakerPersonSampler(name="p", city="Springfield"), rows=300)["p"]
    assert {person["city"] for person in one} == {"Springfield"}
    assert len({person["state"] for person in one}) > 1  # the rest of the address is Faker's
    cities = ["Lyon", "Oslo", "Quito"]
    listed = draws(FakerPersonSampler(name="p", city=cities), rows=3_000)["p"]
    counts = Counter(person["city"] for person in listed)
    assert set(counts) == set(cities)
    for city in cities:
        assert_frequency(counts[city], 3_000, 1 / 3)


def test_a_locale_without_states_gives_null_states_in_the_same_shape() -> None:
    people = draws(FakerPersonSampler(name="p", locale="en_GB"), rows=50)["p"]
    assert all(tuple(person) == FAKER_PERSON_FIELDS for person in people)
    assert {person["state"] for person in people} == {None}
    assert all(person["locale"] == "en_GB" and person["postcode"] for person in people)


def test_conditional_params_and_drop_work_as_for_other_samplers() -> None:
    config = DatasetConfig(
        [
            BernoulliSampler(name="senior"),
            FakerPersonSampler(
                name="p",
                drop=True,
                conditional_params={"senior": {"age_range": [65, 90], "sex": "Male"}},
            ),
            ExpressionColumn(name="who", template="{{ p.first_name }} {{ p.last_name }}"),
            ExpressionColumn(name="age", template="{{ p.age }}", dtype="int"),
            ExpressionColumn(name="sex", template="{{ p.sex }}"),
        ],
        seed=8,
    )
    frame = preview(config, 60).dataset
    assert "p" not in frame.columns
    seniors, others = frame[frame.senior], frame[~frame.senior]
    assert len(seniors) and len(others)
    assert seniors.age.between(65, 90).all() and set(seniors.sex) == {"Male"}
    assert others.age.between(18, 114).all() and set(others.sex) == set(SEXES)
    assert all(len(name.split()) >= 2 for name in frame.who)


def test_a_template_reads_the_persons_keys() -> None:
    config = DatasetConfig(
        [
            FakerPersonSampler(name="p", age_range=[30, 40]),
            ExpressionColumn(name="hello", template="Hi {{ p.first_name }} from {{ p.city }}!"),
        ],
        seed=2,
    )
    frame = preview(config, 20).dataset
    expected = [f"Hi {p['first_name']} from {p['city']}!" for p in frame.p]
    assert frame.hello.tolist() == expected


def test_validate_reports_a_key_a_person_does_not_have() -> None:
    config = DatasetConfig(
        [
            FakerPersonSampler(name="p"),
            ExpressionColumn(name="hello", template="Hi {{ p.frist_name }}"),
        ]
    )
    with pytest.raises(ConfigError, match=r"'hello'.template: fails on sample values: .*frist"):
        validate_config(config)
    fine = DatasetConfig(
        [FakerPersonSampler(name="p"), ExpressionColumn(name="x", template="{{ p.postcode }}")]
    )
    validate_config(fine)


# -- determinism and storage -------------------------------------------------------------------

PERSON_CONFIG = (
    FakerPersonSampler(name="p", age_range=[10, 40]),
    FakerPersonSampler(name="q", locale="de_DE", city=["Bonn", "Köln"]),
    DatetimeSampler(name="d", start="2024-01-01", end="2024-03-01", unit="h"),
)


def test_values_depend_only_on_seed_column_and_record_on_both_engines() -> None:
    config = DatasetConfig(PERSON_CONFIG, seed=4)
    on_sync = preview(config, 30, RunConfig(engine="sync", buffer_size=7))
    on_async = preview(config, 30, RunConfig(engine="async", buffer_size=30))
    assert on_sync.metadata["outcome"] == on_async.metadata["outcome"] == "completed"
    pd.testing.assert_frame_equal(on_sync.dataset, on_async.dataset)
    direct = draws(*PERSON_CONFIG, rows=30, seed=4)
    assert on_sync.dataset.to_dict("list") == direct.to_dict("list")
    # Record 23 alone, in a run of 5 records from a frame indexed from 20: the same person.
    later = pd.DataFrame(index=range(20, 25))
    (step, *_) = compile_config(config).steps
    assert step.fn(later)[3] == on_sync.dataset["p"][23]
    other_seed = preview(DatasetConfig(PERSON_CONFIG, seed=5), 30).dataset
    renamed = draws(FakerPersonSampler(name="other", age_range=[10, 40]), rows=30, seed=4)
    for name in ("p", "q", "d"):
        assert other_seed[name].tolist() != on_sync.dataset[name].tolist(), name
    assert renamed["other"].tolist() != on_sync.dataset["p"].tolist()


def test_a_build_writes_one_struct_schema_in_every_row_group(tmp_path: Path) -> None:
    # Teenagers in Britain: phones and states are null in many row groups, middle_name in all.
    config = DatasetConfig(
        [
            FakerPersonSampler(name="p", locale="en_GB", age_range=[14, 19]),
            DatetimeSampler(name="d", start="2020-01-01", end="2030-01-01", unit="Y"),
        ],
        seed=6,
    )
    result = build(config, 40, tmp_path / "out", RunConfig(buffer_size=6))
    assert result.num_records == 40
    files = sorted((tmp_path / "out" / "parquet-files").glob("*.parquet"))
    assert len(files) == 7
    schemas = {pq.read_schema(file).field("p").type for file in files}
    assert schemas == {FAKER_PERSON_TYPE}
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    expected = preview(config, 40).dataset
    assert [dict(person) for person in frame["p"]] == expected["p"].tolist()
    assert frame["d"].tolist() == expected["d"].tolist()
    assert {person["phone_number"] is None for person in frame["p"]} == {True, False}


# -- datetime units ----------------------------------------------------------------------------

#: The fields each unit zeroes.
ZEROED = {
    "Y": ("month", "day", "hour", "minute", "second"),
    "M": ("day", "hour", "minute", "second"),
    "D": ("hour", "minute", "second"),
    "h": ("minute", "second"),
    "m": ("second",),
    "s": (),
}
FIRST = {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0}


def truncated(moment: dt.datetime, unit: str) -> dt.datetime:
    return moment.replace(**{name: FIRST[name] for name in ZEROED[unit]})


@pytest.fixture(scope="module")
def by_unit() -> pd.DataFrame:
    """20,000 draws over three years per unit, of a column of the same name and seed: the same
    records' generators, so the same moments before truncation."""
    return pd.DataFrame(
        {
            f"u_{unit}": draws(
                DatetimeSampler(name="t", start="2023-01-01", end="2026-01-01", unit=unit),
                rows=20_000,
            )["t"]
            for unit in DATETIME_UNITS
        }
    )


def test_every_value_is_truncated_to_its_unit_and_within_start_and_end(
    by_unit: pd.DataFrame,
) -> None:
    start, end = dt.datetime(2023, 1, 1), dt.datetime(2026, 1, 1)
    for unit in DATETIME_UNITS:
        values = by_unit[f"u_{unit}"]
        for text in values:
            moment = dt.datetime.fromisoformat(text)
            assert truncated(moment, unit) == moment, (unit, text)
            assert start <= moment < end
            assert text == moment.strftime("%Y-%m-%dT%H:%M:%S")  # data-designer's text
        # What each unit keeps varies: "M" gives months other than January, "m" minutes...
        kept = [f for f in ("month", "day", "hour", "minute", "second") if f not in ZEROED[unit]]
        moments = [dt.datetime.fromisoformat(text) for text in values[:200]]
        for name in kept:
            assert len({getattr(moment, name) for moment in moments}) > 1, (unit, name)


def test_a_unit_truncates_the_moment_the_seconds_draw_gives(by_unit: pd.DataFrame) -> None:
    seconds = [dt.datetime.fromisoformat(text) for text in by_unit["u_s"]]
    for unit in DATETIME_UNITS:
        expected = [truncated(moment, unit).isoformat() for moment in seconds]
        assert by_unit[f"u_{unit}"].tolist() == expected, unit


def test_units_are_uniform_over_time_on_10_5_draws() -> None:
    frame = draws(
        DatetimeSampler(name="day", start="2024-01-01", end="2024-04-10", unit="D"),
        DatetimeSampler(name="month", start="2023-01-01", end="2025-01-01", unit="M"),
    )
    days = Counter(frame["day"])
    assert len(days) == 100
    for count in days.values():
        assert_frequency(count, N, 1 / 100)
    # A month is drawn as often as a uniform moment falls in it: in proportion to its days.
    months = Counter(frame["month"])
    assert len(months) == 24
    for text, count in months.items():
        first = dt.date.fromisoformat(text[:10])
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        assert_frequency(count, N, (following - first).days / 731)


def test_without_a_unit_values_are_the_seconds_they_always_were() -> None:
    plain = DatetimeSampler(name="t", start="2024-01-01T08:00:00", end="2024-01-03")
    assert "unit" not in plain.to_dict() and plain.unit == "s"
    values = draws(plain, rows=500, seed=3)["t"]
    assert values.tolist() == draws(
        DatetimeSampler(name="t", start="2024-01-01T08:00:00", end="2024-01-03", unit="s"),
        rows=500,
        seed=3,
    )["t"].tolist()
    # rowforge's draw before units: start + span x the row generator's first random().
    start, span = dt.datetime(2024, 1, 1, 8), dt.timedelta(hours=40)
    before = [
        (start + span * random.Random(f"3/t/{index}").random()).isoformat(timespec="seconds")
        for index in range(500)
    ]
    assert values.tolist() == before


def test_a_start_off_a_unit_boundary_gives_its_own_truncation_as_data_designer_does() -> None:
    values = draws(
        DatetimeSampler(name="t", start="2024-06-15T10:00:00", end="2026-01-01", unit="Y"),
        rows=300,
    )["t"]
    assert set(values) == {"2024-01-01T00:00:00", "2025-01-01T00:00:00"}


def test_a_time_zone_is_kept_through_truncation() -> None:
    values = draws(
        DatetimeSampler(
            name="t", start="2024-01-01T00:00:00+02:00", end="2024-02-01T00:00:00+02:00", unit="D"
        ),
        rows=200,
    )["t"]
    assert all(text.endswith("T00:00:00+02:00") for text in values)
    assert len(set(values)) == 31


# -- data-designer's own samplers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def data_designer() -> Iterator[dict[str, Any]]:
    """data-designer's modules (the `data-designer` extra), imported after `dd_support` set the
    environment they read (telemetry off)."""
    pytest.importorskip("data_designer.interface", reason="data-designer is not installed")
    importlib.import_module("tests.integrations.dd_support")  # first: it sets the environment
    from data_designer.config.sampler_params import DatetimeSamplerParams
    from data_designer.config.utils import constants
    from data_designer.engine.sampling_gen.data_sources import sources
    from data_designer.engine.sampling_gen.people_gen import PeopleGenFaker
    from data_designer.engine.sampling_gen.person_constants import faker_constants

    yield {
        "constants": constants,
        "faker_constants": faker_constants,
        "PeopleGenFaker": PeopleGenFaker,
        "DatetimeSamplerParams": DatetimeSamplerParams,
        "DatetimeSampler": sources.DatetimeSampler,
    }


def test_the_person_constants_are_data_designers(data_designer: dict[str, Any]) -> None:
    constants, faker_constants = data_designer["constants"], data_designer["faker_constants"]
    assert (MIN_AGE, MAX_AGE) == (constants.MIN_AGE, constants.MAX_AGE)
    assert list(DEFAULT_AGE_RANGE) == constants.DEFAULT_AGE_RANGE
    assert list(SEXES) == faker_constants.sex
    assert list(MARITAL_STATUSES) == faker_constants.marital_status
    assert list(EDUCATION_LEVELS) == faker_constants.education_level
    assert list(COLLEGE_LEVELS) == faker_constants.college_level
    assert list(BACHELORS_FIELDS) == faker_constants.bachelors


@pytest.mark.parametrize("locale", ["en_US", "en_GB", "de_DE", "ja_JP"])
def test_a_person_has_the_keys_and_kinds_data_designers_make_person_gives(
    data_designer: dict[str, Any], locale: str
) -> None:
    from faker import Faker

    maker = data_designer["PeopleGenFaker"](Faker(locale), locale)
    theirs = [maker.make_person(age_range=[20, 60]) for _ in range(20)]
    ours = draws(FakerPersonSampler(name="p", locale=locale, age_range=[20, 60]), rows=20)["p"]

    def kinds(people: Any) -> dict[str, set[str]]:
        return {key: {type(p[key]).__name__ for p in people} for key in FAKER_PERSON_FIELDS}

    assert [tuple(person) for person in theirs] == [FAKER_PERSON_FIELDS] * 20
    assert kinds(ours) == kinds(theirs)


@pytest.mark.parametrize(
    ("unit", "start", "end", "count"),
    [
        ("Y", "2020-01-01", "2024-01-01", 4),
        ("M", "2024-01-01", "2025-01-01", 12),
        ("D", "2024-02-01", "2024-03-01", 29),
        ("h", "2024-02-01", "2024-02-02", 24),
        ("m", "2024-02-01T10:00:00", "2024-02-01T11:00:00", 60),
        ("s", "2024-02-01T10:00:00", "2024-02-01T10:01:00", 60),
    ],
)
def test_each_unit_gives_the_texts_data_designers_datetime_sampler_gives(
    data_designer: dict[str, Any], unit: str, start: str, end: str, count: int
) -> None:
    params = data_designer["DatetimeSamplerParams"](start=start, end=end, unit=unit)
    sampler = data_designer["DatetimeSampler"](params, random_state=1)
    theirs = set(sampler.postproc(pd.Series(sampler.sample(3_000)), None))
    ours = set(draws(DatetimeSampler(name="t", start=start, end=end, unit=unit), rows=3_000)["t"])
    assert len(ours) == count
    assert ours == theirs


# -- refused declarations ----------------------------------------------------------------------

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "person locale unknown": (
        {"type": "faker_person", "name": "x", "locale": "xx_YY"},
        "columns[0] 'x'.locale: unknown locale 'xx_YY'",
    ),
    "person locale not text": (
        {"type": "faker_person", "name": "x", "locale": 3},
        "columns[0] 'x'.locale: must be a locale such as 'en_US', got 3",
    ),
    "person sex lower case": (
        {"type": "faker_person", "name": "x", "sex": "female"},
        "columns[0] 'x'.sex: must be one of ['Male', 'Female'] or null, got str 'female'",
    ),
    "person city empty list": (
        {"type": "faker_person", "name": "x", "city": []},
        "columns[0] 'x'.city: must be a city name or a non-empty list of city names, got list []",
    ),
    "person city a number": (
        {"type": "faker_person", "name": "x", "city": ["Oslo", 7]},
        "columns[0] 'x'.city: must be a city name or a non-empty list of city names",
    ),
    "person age_range of three": (
        {"type": "faker_person", "name": "x", "age_range": [1, 2, 3]},
        "columns[0] 'x'.age_range: must be a list of two integers [min, max], got list [1, 2, 3]",
    ),
    "person age_range of floats": (
        {"type": "faker_person", "name": "x", "age_range": [18.5, 30]},
        "columns[0] 'x'.age_range: must be a list of two integers [min, max]",
    ),
    "person age_range a number": (
        {"type": "faker_person", "name": "x", "age_range": 30},
        "columns[0] 'x'.age_range: must be a list of two integers [min, max], got int 30",
    ),
    "person age_range above data-designer's": (
        {"type": "faker_person", "name": "x", "age_range": [18, 120]},
        "columns[0] 'x'.age_range: must be [min, max] with 0 <= min < max <= 114, got [18, 120]",
    ),
    "person age_range backwards": (
        {"type": "faker_person", "name": "x", "age_range": [40, 40]},
        "columns[0] 'x'.age_range: must be [min, max] with 0 <= min < max <= 114, got [40, 40]",
    ),
    "person conditional age_range": (
        {
            "type": "faker_person",
            "name": "x",
            "conditional_params": {"true": {"age_range": [-1, 3]}},
        },
        "columns[0] 'x'.conditional_params['true'].age_range: must be [min, max] with 0 <= min",
    ),
    "person unknown field": (
        {"type": "faker_person", "name": "x", "field": "name"},
        "columns[0] 'x': unknown fields ['field'] for a 'faker_person' column",
    ),
    "datetime unit of weeks": (
        {"type": "datetime", "name": "x", "start": "2024-01-01", "end": "2025-01-01", "unit": "W"},
        "columns[0] 'x'.unit: must be one of ['Y', 'M', 'D', 'h', 'm', 's'], got str 'W'",
    ),
    "datetime unit in the wrong case": (
        {"type": "datetime", "name": "x", "start": "2024-01-01", "end": "2025-01-01", "unit": "d"},
        "columns[0] 'x'.unit: must be one of ['Y', 'M', 'D', 'h', 'm', 's'], got str 'd'",
    ),
    "datetime unit a number": (
        {"type": "datetime", "name": "x", "start": "2024-01-01", "end": "2025-01-01", "unit": 1},
        "columns[0] 'x'.unit: must be one of ['Y', 'M', 'D', 'h', 'm', 's'], got int 1",
    ),
    "datetime conditional unit": (
        {
            "type": "datetime",
            "name": "x",
            "start": "2024-01-01",
            "end": "2025-01-01",
            "conditional_params": {"true": {"unit": "days"}},
        },
        "columns[0] 'x'.conditional_params['true'].unit: must be one of ['Y', 'M', 'D', 'h', 'm'",
    ),
}


@pytest.mark.parametrize(("raw", "message"), list(REFUSED.values()), ids=list(REFUSED))
def test_a_bad_declaration_is_a_config_error_naming_the_field(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        DatasetConfig.from_dict({"columns": [raw]})
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_person_config_saves_every_field_and_reads_back_equal() -> None:
    column = FakerPersonSampler(name="p", sex="Female", city=["Oslo", "Bergen"], age_range=[20, 30])
    assert column.to_dict() == {
        "type": "faker_person",
        "name": "p",
        "locale": "en_US",
        "sex": "Female",
        "city": ["Oslo", "Bergen"],
        "age_range": [20, 30],
    }
    assert DatasetConfig.from_dict({"columns": [column.to_dict()]}).columns == (column,)


def test_the_references_example_person_and_month_follow_their_fields() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text()
    section = reference.split("## Column types (`type:`)")[1].split("\n## ")[0]
    (example,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    config = DatasetConfig.from_dict(yaml.safe_load(example))
    frame = preview(config, 20).dataset
    assert all(p["sex"] == "Female" and 25 <= p["age"] <= 65 for p in frame["customer"])
    assert {p["city"] for p in frame["customer"]} <= {"Austin", "Denver"}
    assert frame["greeting"].tolist() == [
        f"Dear {p['first_name']} of {p['city']}" for p in frame["customer"]
    ]
    assert all(text.endswith("-01T00:00:00") for text in frame["signup_month"])
