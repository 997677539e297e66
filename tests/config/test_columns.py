"""Column types as specifications: each generates what its declaration promises, and every bad
declaration is refused with a `ConfigError` whose message names the field path.

Values are checked through the public `rowforge.api.preview`, so these tests cover the whole
path config -> compile -> engine -> dataset. Every sampler is seeded by (config seed, column,
record index), so the statistical checks below are deterministic, not flaky.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest

from rowforge.api import build, preview
from rowforge.config.columns import (
    PERSON_FIELDS,
    BernoulliSampler,
    CategorySampler,
    Column,
    CustomColumn,
    DatetimeSampler,
    ExpressionColumn,
    GaussianSampler,
    IntegerSampler,
    LLMStructuredColumn,
    LLMTextColumn,
    PersonSampler,
    SeedDatasetColumns,
    UniformSampler,
    UUIDSampler,
)
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError, DatasetGenerationError
from rowforge.models import MockSettings, ModelConfig, mock_reply
from rowforge.scheduler import RunConfig

FAST_MOCK = ModelConfig(alias="mock", mock=MockSettings(latency_ms=(0.0, 2.0)))


def generate(
    *columns: Column,
    n: int = 20,
    seed: int = 0,
    models: tuple[ModelConfig, ...] = (FAST_MOCK,),
    run_config: RunConfig | None = None,
) -> pd.DataFrame:
    result = preview(DatasetConfig(columns, models=models, seed=seed), n, run_config)
    assert result.metadata["outcome"] == "completed", result.metadata
    assert len(result.dataset) == n
    return result.dataset


# -- custom functions, importable as "tests.config.test_columns:<name>" -------------------------


def double_the_integer(row: dict[str, Any]) -> int:
    return int(row["number"]) * 2


def add_one_to_each(frame: pd.DataFrame) -> list[int]:
    return [int(value) + 1 for value in frame["number"]]


async def shout_the_word(row: dict[str, Any]) -> str:
    return str(row["word"]).upper() + "!"


# -- samplers ----------------------------------------------------------------------------------


def test_category_values_come_only_from_the_declared_list() -> None:
    values = ["red", "green", "blue"]
    data = generate(CategorySampler(name="colour", values=values), n=100)
    assert set(data["colour"]) <= set(values)
    assert set(data["colour"]) == set(values), "100 draws from 3 values should see each"


def test_category_weights_are_respected_and_a_zero_weight_value_never_appears() -> None:
    data = generate(
        CategorySampler(name="size", values=["small", "large", "never"], weights=[1, 3, 0]),
        n=300,
    )
    counts = data["size"].value_counts().to_dict()
    assert "never" not in counts
    assert counts["small"] + counts["large"] == 300
    assert 0.65 <= counts["large"] / 300 <= 0.85, counts


def test_uniform_floats_lie_in_the_half_open_interval_from_low_to_high() -> None:
    data = generate(UniformSampler(name="x", low=-2.5, high=7.25), n=300)
    values = data["x"]
    assert ((values >= -2.5) & (values < 7.25)).all()
    assert values.min() < -1.5 and values.max() > 6.25, "draws should spread over the interval"


def test_gaussian_floats_centre_on_the_mean_with_the_declared_spread() -> None:
    data = generate(GaussianSampler(name="g", mean=10.0, stddev=2.0), n=300)
    assert abs(data["g"].mean() - 10.0) < 0.5
    assert 1.5 < data["g"].std() < 2.5


def test_integer_draws_are_integers_between_low_and_high_both_included() -> None:
    data = generate(IntegerSampler(name="k", low=1, high=3), n=300)
    assert pd.api.types.is_integer_dtype(data["k"])
    assert set(data["k"]) == {1, 2, 3}


def test_integer_with_equal_bounds_always_gives_that_value() -> None:
    data = generate(IntegerSampler(name="k", low=7, high=7), n=10)
    assert data["k"].tolist() == [7] * 10


@pytest.mark.parametrize(("p", "expected"), [(0.0, False), (1.0, True)])
def test_bernoulli_with_certain_probability_gives_one_value_only(p: float, expected: bool) -> None:
    data = generate(BernoulliSampler(name="flag", p=p), n=50)
    assert data["flag"].tolist() == [expected] * 50


def test_bernoulli_with_probability_one_half_gives_both_values() -> None:
    data = generate(BernoulliSampler(name="flag", p=0.5), n=100)
    assert set(data["flag"].tolist()) == {True, False}


def test_uuid_values_are_unique_uuid4_strings() -> None:
    data = generate(UUIDSampler(name="id"), n=200)
    for value in data["id"]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert str(parsed) == value
    assert data["id"].is_unique


def test_datetime_values_are_iso_timestamps_between_start_and_end() -> None:
    start, end = "2024-03-01T08:00:00", "2024-03-03T20:30:00"
    data = generate(DatetimeSampler(name="at", start=start, end=end), n=200)
    moments = [dt.datetime.fromisoformat(value) for value in data["at"]]
    low, high = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    assert all(low <= moment <= high for moment in moments)
    assert len(set(moments)) > 150, "two days at one-second resolution should rarely repeat"


def test_person_fields_are_non_empty_strings() -> None:
    data = generate(*(PersonSampler(name=field, field=field) for field in PERSON_FIELDS), n=20)
    for field in PERSON_FIELDS:
        assert all(isinstance(value, str) and value.strip() for value in data[field]), field
    assert all("@" in email for email in data["email"])


def test_person_values_are_the_same_for_the_same_seed_and_differ_for_another() -> None:
    column = PersonSampler(name="customer", field="name")
    first = generate(column, n=20, seed=1)["customer"].tolist()
    again = generate(column, n=20, seed=1)["customer"].tolist()
    other = generate(column, n=20, seed=2)["customer"].tolist()
    assert first == again
    assert first != other


# -- expressions and models --------------------------------------------------------------------


def test_an_expression_renders_its_template_over_the_row() -> None:
    data = generate(
        CategorySampler(name="word", values=["alpha", "beta"]),
        IntegerSampler(name="number", low=0, high=50),
        ExpressionColumn(name="label", template="{{ word | upper }}#{{ number * 2 }}"),
        n=30,
    )
    for word, number, label in zip(data["word"], data["number"], data["label"], strict=True):
        assert label == f"{word.upper()}#{number * 2}"


def test_an_expression_can_read_another_expression() -> None:
    data = generate(
        CategorySampler(name="word", values=["alpha"]),
        ExpressionColumn(name="twice", template="{{ word }}{{ word }}"),
        ExpressionColumn(name="framed", template="[{{ twice }}]"),
        n=3,
    )
    assert data["framed"].tolist() == ["[alphaalpha]"] * 3


@pytest.mark.parametrize(
    ("template", "dtype", "expected"),
    [
        ("{{ 2.7 }}", "int", 2),
        ("{{ -2.7 }}", "int", -2),
        ("{{ '3' }}", "float", 3.0),
        ("{{ 0 }}", "bool", False),
        ("{{ 0.5 }}", "bool", False),
        ("{{ 'TRUE' }}", "bool", True),
        ("{{ 'yes' }}", "bool", False),
        ("{{ 1.5 }}", "str", "1.5"),
    ],
)
def test_an_expression_dtype_casts_the_text_as_data_designers_cast_type_does(
    template: str, dtype: str, expected: Any
) -> None:
    (value,) = generate(ExpressionColumn(name="e", template=template, dtype=dtype), n=1)["e"]
    assert value == expected
    assert type(value) is type(expected)


def test_a_row_whose_expression_cannot_be_cast_is_dropped_with_the_reason() -> None:
    config = DatasetConfig(
        [
            IntegerSampler(name="n", low=0, high=3),
            ExpressionColumn(name="e", template="{{ 'many' if n == 0 else n * 10 }}", dtype="int"),
        ]
    )
    result = preview(config, 40)
    assert result.metadata["outcome"] == "partial"
    assert set(result.dataset["e"]) == {10, 20, 30}
    (reason,) = result.metadata["row_groups"][0]["drop_reasons"]
    assert reason.startswith(
        "step 'e' failed: ValueError: cannot cast 'many' to int: ValueError: could not convert"
    )


def test_a_dropped_column_is_generated_and_read_by_others_but_not_written(tmp_path: Path) -> None:
    columns = [
        IntegerSampler(name="n", low=0, high=9, drop=True),
        ExpressionColumn(name="twice", template="{{ n * 2 }}", dtype="int"),
    ]
    data = generate(*columns, n=20)
    assert list(data.columns) == ["twice"]
    numbers = generate(IntegerSampler(name="n", low=0, high=9), n=20)["n"]
    assert data["twice"].tolist() == [n * 2 for n in numbers]
    written = build(DatasetConfig(columns), 5, tmp_path / "out")
    assert list(pd.read_parquet(written.output_dir / "parquet-files").columns) == ["twice"]


FRUIT = CategorySampler(name="fruit", values=["mango", "papaya", "lychee"])
TEXT = LLMTextColumn(
    name="blurb",
    model="mock",
    system_prompt="You write grocery labels.",
    prompt="Write about {{ fruit }}",
)


def test_llm_text_on_the_mock_model_is_identical_across_two_previews_of_one_config() -> None:
    first = generate(FRUIT, TEXT, n=15)
    second = generate(FRUIT, TEXT, n=15)
    pd.testing.assert_frame_equal(first, second)


def test_llm_text_is_the_mock_models_answer_to_the_rendered_prompts() -> None:
    data = generate(FRUIT, TEXT, n=15)
    for fruit, blurb in zip(data["fruit"], data["blurb"], strict=True):
        messages = [
            {"role": "system", "content": "You write grocery labels."},
            {"role": "user", "content": f"Write about {fruit}"},
        ]
        assert blurb == mock_reply(FAST_MOCK.mock, messages)
        assert blurb.startswith(f"Regarding {fruit},"), "the mock talks about the prompt's word"


def test_llm_text_changes_with_the_mock_models_seed() -> None:
    reseeded = ModelConfig(alias="mock", mock=MockSettings(latency_ms=(0.0, 2.0), seed=99))
    default = generate(FRUIT, TEXT, n=15)
    other = generate(FRUIT, TEXT, n=15, models=(reseeded,))
    assert default["blurb"].tolist() != other["blurb"].tolist()


RATING = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "mood": {"enum": ["happy", "sad"]},
    },
    "required": ["score", "tags", "mood"],
}


def test_llm_structured_cells_are_dicts_valid_for_the_output_schema() -> None:
    data = generate(
        FRUIT,
        LLMStructuredColumn(
            name="rating", model="mock", prompt="Rate {{ fruit }}", output_schema=RATING
        ),
        n=20,
    )
    for cell in data["rating"]:
        document = json.loads(json.dumps(cell, default=list))  # Arrow arrays back to lists
        assert isinstance(cell, dict)
        jsonschema.validate(document, RATING)


#: The mock builds a string for `x`, which `not: {type: string}` can never accept.
IMPOSSIBLE = {
    "type": "object",
    "properties": {"x": {"type": "string", "not": {"type": "string"}}},
    "required": ["x"],
}


def test_llm_structured_output_that_never_fits_the_schema_fails_the_run_naming_the_column() -> None:
    config = DatasetConfig(
        [
            FRUIT,
            LLMStructuredColumn(
                name="verdict", model="mock", prompt="Judge {{ fruit }}", output_schema=IMPOSSIBLE
            ),
        ],
        models=[FAST_MOCK],
    )
    with pytest.raises(DatasetGenerationError) as raised:
        preview(config, 5)
    assert str(raised.value).startswith("no records were written (target 5); reasons: ")
    result = raised.value.result  # type: ignore[attr-defined]
    assert result.outcome == "failed"
    reasons = result.drop_reasons()
    assert sum(reasons.values()) == 5
    for reason in reasons:
        assert reason.startswith(
            "step 'verdict' failed: ValueError: column 'verdict': model output does not match "
            "the schema after 3 attempts: "
        ), reason
        assert reason in str(raised.value)


def test_llm_structured_rows_whose_output_misses_the_schema_are_dropped_and_the_rest_kept() -> None:
    schema = {
        "type": "object",
        "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 1, "not": {"const": 0}}},
        "required": ["x"],
    }
    config = DatasetConfig(
        [
            IntegerSampler(name="number", low=0, high=9),
            LLMStructuredColumn(
                name="pick",
                model="mock",
                prompt="Pick {{ number }}",
                output_schema=schema,
                max_parse_retries=0,
            ),
        ],
        models=[FAST_MOCK],
    )
    result = preview(config, 40)
    metadata = result.metadata
    assert metadata["outcome"] == "partial"
    assert 0 < metadata["dropped_records"] < 40
    assert len(result.dataset) == 40 - metadata["dropped_records"]
    assert all(cell == {"x": 1} for cell in result.dataset["pick"])
    (reason,) = metadata["row_groups"][0]["drop_reasons"]
    assert reason.startswith(
        "step 'pick' failed: ValueError: column 'pick': model output does "
        "not match the schema after 1 attempts: 0 should not be valid"
    )


# -- custom functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "kind", "expected"),
    [
        (double_the_integer, "cell", lambda n: n * 2),
        ("tests.config.test_columns:double_the_integer", "cell", lambda n: n * 2),
        (add_one_to_each, "batch", lambda n: n + 1),
        ("tests.config.test_columns:add_one_to_each", "batch", lambda n: n + 1),
    ],
    ids=["cell-callable", "cell-reference", "batch-callable", "batch-reference"],
)
def test_a_custom_column_calls_its_function_given_as_callable_or_reference(
    function: Any, kind: str, expected: Any
) -> None:
    data = generate(
        IntegerSampler(name="number", low=0, high=1000),
        CustomColumn(name="derived", function=function, depends_on=["number"], kind=kind),
        n=25,
    )
    assert data["derived"].tolist() == [expected(n) for n in data["number"]]


def test_a_custom_cell_function_may_be_async() -> None:
    data = generate(
        CategorySampler(name="word", values=["hey", "ho"]),
        CustomColumn(name="loud", function=shout_the_word, depends_on=["word"]),
        n=10,
    )
    assert data["loud"].tolist() == [word.upper() + "!" for word in data["word"]]


# -- seed datasets -----------------------------------------------------------------------------

SEED_ROWS = [{"code": 1, "city": "Oslo"}, {"code": 2, "city": "Lima"}, {"code": 3, "city": "Pune"}]


@pytest.fixture(params=["csv", "parquet"])
def seed_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"cities.{request.param}"
    frame = pd.DataFrame(SEED_ROWS)
    if request.param == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def records(data: pd.DataFrame) -> list[dict[str, Any]]:
    pairs = zip(data["code"], data["city"], strict=True)
    return [{"code": int(code), "city": str(city)} for code, city in pairs]


def test_an_ordered_seed_dataset_cycles_through_the_file_in_order(seed_file: Path) -> None:
    column = SeedDatasetColumns(name="seed", path=str(seed_file), columns=["code", "city"])
    data = generate(column, n=7)
    assert list(data.columns) == ["code", "city"], "the hidden loader column is dropped"
    assert records(data) == [SEED_ROWS[i % 3] for i in range(7)]


def test_a_shuffled_seed_dataset_with_replacement_samples_whole_rows_of_the_file(
    seed_file: Path,
) -> None:
    column = SeedDatasetColumns(
        name="seed", path=str(seed_file), columns=["code", "city"], order="shuffled"
    )
    data = generate(column, n=60)
    drawn = records(data)
    assert all(row in SEED_ROWS for row in drawn)
    assert all(row in drawn for row in SEED_ROWS), "60 draws from 3 rows should see each"
    assert drawn != [SEED_ROWS[i % 3] for i in range(60)]


def test_a_shuffled_seed_dataset_without_replacement_uses_each_row_once(seed_file: Path) -> None:
    column = SeedDatasetColumns(
        name="seed",
        path=str(seed_file),
        columns=["code", "city"],
        order="shuffled",
        with_replacement=False,
    )
    drawn = records(generate(column, n=3))
    assert sorted(drawn, key=lambda row: row["code"]) == SEED_ROWS


def test_more_records_than_seed_rows_without_replacement_is_refused_before_running(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cities.csv"
    pd.DataFrame(SEED_ROWS).to_csv(path, index=False)
    config = DatasetConfig(
        [
            SeedDatasetColumns(
                name="seed",
                path=str(path),
                columns=["code"],
                order="shuffled",
                with_replacement=False,
            )
        ]
    )
    expected = "column 'seed': 4 records without replacement from 3 seed rows"
    with pytest.raises(ConfigError) as raised:
        preview(config, 4)
    assert str(raised.value) == expected
    with pytest.raises(ConfigError) as raised:
        build(config, 4, tmp_path / "out")
    assert str(raised.value) == expected
    assert not (tmp_path / "out").exists(), "nothing is written for a refused config"


def test_a_seed_dataset_whose_file_is_missing_is_refused_at_preview(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    config = DatasetConfig([SeedDatasetColumns(name="seed", path=str(missing), columns=["code"])])
    with pytest.raises(ConfigError) as raised:
        preview(config, 2)
    assert str(raised.value) == f"columns[0] 'seed'.path: no such file {str(missing)!r}"


# -- determinism -------------------------------------------------------------------------------

MIXED_MODELS = (ModelConfig(alias="writer", mock=MockSettings(latency_ms=(0.0, 3.0), seed=4)),)
MIXED = (
    CategorySampler(name="topic", values=["tea", "coffee", "cocoa"], weights=[2, 1, 1]),
    UniformSampler(name="price", low=1.0, high=9.0),
    GaussianSampler(name="noise"),
    IntegerSampler(name="cups", low=1, high=4),
    BernoulliSampler(name="iced", p=0.3),
    UUIDSampler(name="order_id"),
    DatetimeSampler(name="ordered_at", start="2024-01-01", end="2024-12-31"),
    PersonSampler(name="barista", field="first_name"),
    ExpressionColumn(name="line", template="{{ cups }} x {{ topic }} by {{ barista }}"),
    LLMTextColumn(name="review", model="writer", prompt="Review this order: {{ line }}"),
    LLMStructuredColumn(
        name="rating", model="writer", prompt="Rate: {{ review }}", output_schema=RATING
    ),
)


def test_the_same_seed_gives_an_identical_dataset_and_another_seed_a_different_one() -> None:
    first = generate(*MIXED, n=30, seed=5, models=MIXED_MODELS)
    again = generate(*MIXED, n=30, seed=5, models=MIXED_MODELS)
    other = generate(*MIXED, n=30, seed=6, models=MIXED_MODELS)
    pd.testing.assert_frame_equal(first, again)
    for name in ("topic", "price", "order_id", "ordered_at", "review"):
        assert first[name].tolist() != other[name].tolist(), name


def test_the_async_and_sync_engines_generate_the_same_dataset() -> None:
    run_async = RunConfig(engine="async", buffer_size=10)
    run_sync = RunConfig(engine="sync", buffer_size=10)
    on_async = preview(DatasetConfig(MIXED, models=MIXED_MODELS, seed=5), 25, run_async)
    on_sync = preview(DatasetConfig(MIXED, models=MIXED_MODELS, seed=5), 25, run_sync)
    assert (on_async.metadata["engine"], on_sync.metadata["engine"]) == ("async", "sync")
    assert on_async.metadata["outcome"] == on_sync.metadata["outcome"] == "completed"
    pd.testing.assert_frame_equal(on_async.dataset, on_sync.dataset)


# -- refused declarations ----------------------------------------------------------------------


def uuid_column(name: str = "a") -> dict[str, Any]:
    return {"type": "uuid", "name": name}


def expression(name: str, template: str) -> dict[str, Any]:
    return {"type": "expression", "name": name, "template": template}


def llm_structured(schema: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": "llm_structured",
        "name": "s",
        "model": "mock",
        "prompt": "p",
        "output_schema": schema,
        **extra,
    }


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "unknown column type": (
        {"columns": [{"type": "nope", "name": "a"}]},
        "columns[0] 'a'.type: unknown column type 'nope'; known: ['bernoulli', "
        "'bernoulli_mixture', 'binomial', 'category', 'custom', 'datetime', 'expression', "
        "'faker_person', 'gaussian', 'integer', 'llm_code', 'llm_judge', 'llm_structured', "
        "'llm_text', 'person', 'poisson', 'scipy', 'seed_dataset', 'subcategory', 'timedelta', "
        "'uniform', 'uuid', 'validation']",
    ),
    "unknown field": (
        {"columns": [{"type": "uniform", "name": "a", "lo": 1}]},
        "columns[0] 'a': unknown fields ['lo'] for a 'uniform' column; "
        "known: ['conditional_params', 'convert_to', 'decimal_places', 'drop', 'high', 'low', "
        "'name']",
    ),
    "missing required field": (
        {"columns": [{"type": "expression", "name": "a"}]},
        "columns[0] 'a': a 'expression' column needs fields ['template']",
    ),
    "template refers to a missing column": (
        {"columns": [uuid_column(), expression("b", "{{ a }} and {{ zz }}")]},
        "columns[1] 'b': refers to unknown column 'zz'; known: ['a', 'b']",
    ),
    "custom depends on a missing column": (
        {"columns": [{"type": "custom", "name": "c", "function": "m:f", "depends_on": ["zz"]}]},
        "columns[0] 'c': refers to unknown column 'zz'; known: ['c']",
    ),
    "unknown model alias": (
        {
            "columns": [
                uuid_column(),
                {"type": "llm_text", "name": "b", "prompt": "{{ a }}", "model": "gpt"},
            ]
        },
        "columns[1] 'b'.model: unknown model alias 'gpt'; declared: ['mock']",
    ),
    "duplicate column names": (
        {"columns": [uuid_column("a"), uuid_column("a")]},
        "columns[1] 'a': column 'a' is already defined by columns[0] 'a'",
    ),
    "seed output shadows a column": (
        {
            "columns": [
                uuid_column("code"),
                {"type": "seed_dataset", "name": "seed", "path": "/x.csv", "columns": ["code"]},
            ]
        },
        "columns[1] 'seed': column 'code' is already defined by columns[0] 'code'",
    ),
    "dependency cycle": (
        {"columns": [expression("a", "{{ b }}"), expression("b", "{{ a }}")]},
        "columns: dependency cycle a -> b -> a",
    ),
    "bad jinja syntax": (
        {"columns": [expression("a", "Hello\n{% if %}")]},
        "columns[0] 'a'.template: bad template at line 2: "
        "Expected an expression, got 'end of statement block'",
    ),
    "bad jinja in a system prompt": (
        {
            "columns": [
                {
                    "type": "llm_text",
                    "name": "a",
                    "model": "mock",
                    "prompt": "hi",
                    "system_prompt": "{{ oops",
                }
            ]
        },
        "columns[0] 'a'.system_prompt: bad template at line 1: ",
    ),
    "weights length mismatch": (
        {"columns": [{"type": "category", "name": "a", "values": [1, 2], "weights": [1]}]},
        "columns[0] 'a'.weights: 1 weights for 2 values",
    ),
    "negative weight": (
        {"columns": [{"type": "category", "name": "a", "values": [1, 2], "weights": [-1, 2]}]},
        "columns[0] 'a'.weights: must be non-negative finite numbers, not all zero",
    ),
    "all weights zero": (
        {"columns": [{"type": "category", "name": "a", "values": [1, 2], "weights": [0, 0]}]},
        "columns[0] 'a'.weights: must be non-negative finite numbers, not all zero",
    ),
    "no category values": (
        {"columns": [{"type": "category", "name": "a", "values": []}]},
        "columns[0] 'a'.values: needs at least one value",
    ),
    "uniform low equals high": (
        {"columns": [{"type": "uniform", "name": "u", "low": 1, "high": 1}]},
        "columns[0] 'u'.low: must be below high (1 >= 1)",
    ),
    "integer low above high": (
        {"columns": [{"type": "integer", "name": "k", "low": 5, "high": 1}]},
        "columns[0] 'k'.low: must not exceed high (5 > 1)",
    ),
    "integer bounds not integers": (
        {"columns": [{"type": "integer", "name": "k", "low": 0.5, "high": 1}]},
        "columns[0] 'k'.low: must be an integer",
    ),
    "gaussian stddev zero": (
        {"columns": [{"type": "gaussian", "name": "g", "stddev": 0}]},
        "columns[0] 'g'.stddev: must be positive, got 0",
    ),
    "p above one": (
        {"columns": [{"type": "bernoulli", "name": "b", "p": 1.5}]},
        "columns[0] 'b'.p: must be in [0, 1], got 1.5",
    ),
    "p below zero": (
        {"columns": [{"type": "bernoulli", "name": "b", "p": -0.1}]},
        "columns[0] 'b'.p: must be in [0, 1], got -0.1",
    ),
    "datetime not iso": (
        {"columns": [{"type": "datetime", "name": "d", "start": "yesterday", "end": "2024-01-01"}]},
        "columns[0] 'd'.start: must be an ISO-8601 date: Invalid isoformat string: 'yesterday'",
    ),
    "datetime start after end": (
        {
            "columns": [
                {"type": "datetime", "name": "d", "start": "2024-02-01", "end": "2024-01-01"}
            ]
        },
        "columns[0] 'd'.start: must be before end (2024-02-01 >= 2024-01-01)",
    ),
    "person field unknown": (
        {"columns": [{"type": "person", "name": "p", "field": "ssn"}]},
        f"columns[0] 'p'.field: must be one of {PERSON_FIELDS}, got 'ssn'",
    ),
    "invalid json schema": (
        {"columns": [llm_structured({"type": "frob"})]},
        "columns[0] 's'.output_schema: invalid JSON Schema: "
        "'frob' is not valid under any of the given schemas",
    ),
    "empty json schema": (
        {"columns": [llm_structured({})]},
        "columns[0] 's'.output_schema: is required",
    ),
    "negative parse retries": (
        {"columns": [llm_structured({"type": "object"}, max_parse_retries=-1)]},
        "columns[0] 's'.max_parse_retries: must be an integer >= 0",
    ),
    "custom function not a reference": (
        {"columns": [{"type": "custom", "name": "c", "function": "no_colon"}]},
        "columns[0] 'c'.function: must be 'module:function', got 'no_colon'",
    ),
    "custom kind unknown": (
        {"columns": [{"type": "custom", "name": "c", "function": "m:f", "kind": "row"}]},
        "columns[0] 'c'.kind: must be 'cell' or 'batch', got 'row'",
    ),
    "resize without batch": (
        {"columns": [{"type": "custom", "name": "c", "function": "m:f", "allow_resize": True}]},
        "columns[0] 'c'.allow_resize: needs kind 'batch'",
    ),
    "seed file of another kind": (
        {"columns": [{"type": "seed_dataset", "name": "s", "path": "/x.txt", "columns": ["a"]}]},
        "columns[0] 's'.path: must be a .parquet or .csv file, got '/x.txt'",
    ),
    "seed order unknown": (
        {
            "columns": [
                {
                    "type": "seed_dataset",
                    "name": "s",
                    "path": "/x.csv",
                    "columns": ["a"],
                    "order": "random",
                }
            ]
        },
        "columns[0] 's'.order: must be 'ordered' or 'shuffled', got 'random'",
    ),
    "column name not an identifier": (
        {"columns": [uuid_column("a b")]},
        "columns[0].name: must be an identifier, got str 'a b'",
    ),
    "no columns": ({"columns": []}, "columns: a dataset needs at least one column"),
    "columns not a list": ({"columns": "a"}, "columns: must be a list, got str"),
    "unknown top-level field": (
        {"columns": [uuid_column()], "colums": []},
        "unknown top-level fields ['colums']; known: columns, models, processors, seed",
    ),
    "seed not an integer": (
        {"columns": [uuid_column()], "seed": "x"},
        "seed: must be an integer, got str 'x'",
    ),
    "duplicate model alias": (
        {"columns": [uuid_column()], "models": [{"alias": "m"}, {"alias": "m"}]},
        "models[1].alias: duplicate model alias 'm'",
    ),
    "unknown model field": (
        {"columns": [uuid_column()], "models": [{"alias": "m", "temp": 1}]},
        "models[0] 'm': unknown fields ['temp'] for a model; known: ['alias', 'api_key_env', "
        "'base_url', 'extra_body', 'extra_headers', 'max_completion_tokens', "
        "'max_parallel_requests', 'max_tokens', 'mock', 'model', 'provider', 'seed', "
        "'slow_request_warning_s', 'stop', 'temperature', 'timeout_s', 'top_p']",
    ),
    "mock rate out of range": (
        {"columns": [uuid_column()], "models": [{"alias": "m", "mock": {"error_rate": 2}}]},
        "models[0] 'm'.mock.error_rate: must be in [0, 1], got 2",
    ),
    "unknown processor type": (
        {"columns": [uuid_column()], "processors": [{"type": "sort"}]},
        "processors[0].type: unknown processor type 'sort'; known: "
        "['drop_columns', 'rename_columns', 'schema_transform', 'custom']",
    ),
}


@pytest.mark.parametrize(("raw", "message"), list(REFUSED.values()), ids=list(REFUSED))
def test_a_bad_declaration_is_a_config_error_whose_message_names_the_field(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        DatasetConfig.from_dict(raw)
    assert str(raised.value).startswith(message), str(raised.value)


#: Values of the wrong kind (a YAML typo) must be reported like any other bad value: a
#: `ConfigError` naming the column and the field, not a bare comparison error.
WRONG_KIND: dict[str, tuple[dict[str, Any], str]] = {
    "uniform low not a number": (
        {"type": "uniform", "name": "u", "low": "zero", "high": 1},
        "columns[0] 'u'.low: ",
    ),
    "gaussian stddev not a number": (
        {"type": "gaussian", "name": "g", "stddev": "wide"},
        "columns[0] 'g'.stddev: ",
    ),
    "bernoulli p not a number": (
        {"type": "bernoulli", "name": "b", "p": "half"},
        "columns[0] 'b'.p: ",
    ),
    "datetime mixing naive and aware times": (
        {"type": "datetime", "name": "d", "start": "2024-01-01", "end": "2024-01-02T00:00+00:00"},
        "columns[0] 'd'.start: ",
    ),
}


@pytest.mark.parametrize(("raw", "prefix"), list(WRONG_KIND.values()), ids=list(WRONG_KIND))
def test_a_value_of_the_wrong_kind_is_a_config_error_naming_the_field(
    raw: dict[str, Any], prefix: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        DatasetConfig.from_dict({"columns": [raw]})
    assert str(raised.value).startswith(prefix), str(raised.value)


def test_a_datetime_column_built_in_python_refuses_mixed_time_zones_with_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"column 'd'\.start: "):
        DatetimeSampler(name="d", start="2024-01-01", end="2024-01-02T00:00+00:00")


def test_a_pydantic_model_can_stand_for_the_output_schema() -> None:
    import pydantic

    class Verdict(pydantic.BaseModel):
        score: int
        reason: str

    column = LLMStructuredColumn(
        name="verdict", prompt="Rate it.", model="mock", output_schema=Verdict
    )
    assert column.output_schema == Verdict.model_json_schema()
    result = preview(DatasetConfig(columns=[column]), 3)
    for value in result.dataset["verdict"]:
        Verdict.model_validate(value)


def test_a_seed_dataset_can_come_from_a_dataframe_but_not_be_saved() -> None:
    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "code": [1, 2]})
    seed = SeedDatasetColumns(name="places", frame=frame, columns=["city"])
    result = preview(DatasetConfig(columns=[seed]), 4)
    assert list(result.dataset["city"]) == ["Oslo", "Lima", "Oslo", "Lima"]
    with pytest.raises(ConfigError, match="a DataFrame seed cannot be written to a config file"):
        DatasetConfig(columns=[seed]).to_dict()
    with pytest.raises(ConfigError, match="give exactly one of path"):
        SeedDatasetColumns(name="places", columns=["city"])
