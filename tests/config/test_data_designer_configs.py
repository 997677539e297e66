"""data-designer configs, written by data-designer's own config builder, read by rowforge: every
command accepts them, `rowforge convert` writes the mapped config, what cannot be mapped is a
ConfigError naming the column and the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip(
    "data_designer.interface",
    reason="data-designer is not installed (the `data-designer` extra: pip install -e '.[dev]')",
)

from rowforge.api import build
from rowforge.cli import app
from rowforge.config.data_designer import from_data_designer, providers_from
from rowforge.config.dataset import DatasetConfig, load_config, save_config
from rowforge.errors import ConfigError
from rowforge.storage.check import first_violation
from tests.integrations import dd_support as support

#: data-designer's config module, as dd_support imported it (after setting the environment
#: data-designer reads at import: telemetry off).
dd = support.dd

KEY_ENV = "ROWFORGE_DD_TEST_KEY"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[support.DataDesignerMockServer]:
    monkeypatch.setenv(KEY_ENV, "not-a-secret")
    with support.mock_server() as running:
        yield running


def providers_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "model_providers.yaml"
    entry = {"name": support.PROVIDER, "endpoint": url, "provider_type": "openai",
             "api_key": KEY_ENV}
    path.write_text(yaml.safe_dump({"providers": [entry]}))
    return path


def text_model(alias: str = "writer", **inference: Any) -> dd.ModelConfig:
    return dd.ModelConfig(
        alias=alias,
        model="mock-1",
        provider=support.PROVIDER,
        inference_parameters=dd.ChatCompletionInferenceParams(
            max_parallel_requests=8, timeout=30, max_tokens=64, **inference
        ),
    )


def golden_builder() -> dd.DataDesignerConfigBuilder:
    """Every column type rowforge converts, as data-designer's config builder writes them."""
    builder = dd.DataDesignerConfigBuilder(
        model_configs=[text_model(temperature=0.4, top_p=0.9), text_model("judge")]
    )
    builder.add_column(support.category_sampler("topic", support.TOPICS))
    builder.add_column(dd.SamplerColumnConfig(
        name="price", sampler_type=dd.SamplerType.UNIFORM,
        params=dd.UniformSamplerParams(low=1.0, high=9.0)))
    builder.add_column(dd.SamplerColumnConfig(
        name="score", sampler_type=dd.SamplerType.GAUSSIAN,
        params=dd.GaussianSamplerParams(mean=5.0, stddev=2.0)))
    builder.add_column(dd.SamplerColumnConfig(
        name="ticket", sampler_type=dd.SamplerType.UUID, params=dd.UUIDSamplerParams()))
    builder.add_column(dd.SamplerColumnConfig(
        name="flag", sampler_type=dd.SamplerType.BERNOULLI,
        params=dd.BernoulliSamplerParams(p=0.3)))
    builder.add_column(dd.LLMTextColumnConfig(
        name="question", model_alias="writer", prompt="Ask about {{ topic }} ({{ price }}).",
        system_prompt="You are a customer."))
    builder.add_column(dd.LLMStructuredColumnConfig(
        name="product", model_alias="writer", prompt="Describe a {{ topic }} product.",
        output_format=support.Product))
    builder.add_column(dd.ExpressionColumnConfig(name="title", expr="{{ topic }}: {{ question }}"))
    builder.add_processor(dd.DropColumnsProcessorConfig(name="no_flag", column_names=["flag"]))
    return builder


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_golden_config_converts_builds_and_round_trips(
    suffix: str, server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    source = tmp_path / f"dd_config{suffix}"
    golden_builder().write_config(source)
    providers = providers_file(tmp_path, server.url)
    config = load_config(source, providers=providers)

    assert [type(c).TYPE for c in config.columns] == [
        "category", "uniform", "gaussian", "uuid", "bernoulli", "llm_text", "llm_structured",
        "expression",
    ]
    model, judge = config.models
    assert (model.alias, model.provider, model.base_url, model.api_key_env) == (
        "writer", "openai", server.url, KEY_ENV)
    assert (model.temperature, model.top_p, model.max_tokens, model.timeout_s) == (
        0.4, 0.9, 64, 30)
    assert model.max_parallel_requests == 8
    # data-designer sends no temperature unless one is set: neither does the converted model
    assert (judge.temperature, judge.top_p) == (None, None)

    converted = tmp_path / f"rowforge{suffix}"
    save_config(config, converted)
    assert load_config(converted) == config  # the converted config round-trips

    result = build(config, 12, tmp_path / "out")
    assert result.num_records == 12
    assert first_violation(tmp_path / "out") is None
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert "flag" not in frame.columns  # the drop_columns processor
    assert frame["title"].str.startswith(tuple(support.TOPICS)).all()
    for product in frame["product"]:
        support.Product.model_validate(product)


def test_the_cli_accepts_data_designer_configs_and_converts_them(
    server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    source = tmp_path / "dd.yaml"
    golden_builder().write_config(source)
    providers = str(providers_file(tmp_path, server.url))
    runner = CliRunner()
    validated = runner.invoke(app, ["validate", str(source), "--providers", providers])
    assert validated.exit_code == 0, validated.output
    assert "OK:" in validated.output and "8 columns, 2 models" in validated.output

    out = tmp_path / "rowforge.yaml"
    converted = runner.invoke(
        app, ["convert", str(source), "-o", str(out), "--providers", providers]
    )
    assert converted.exit_code == 0, converted.output
    assert yaml.safe_load(out.read_text())["columns"][0]["type"] == "category"

    ran = runner.invoke(app, ["run", str(source), "--providers", providers, "-n", "5", "-o",
                              str(tmp_path / "run")])
    assert ran.exit_code == 0, ran.output
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["actual_num_records"] == 5

    rowforge_config = runner.invoke(app, ["convert", str(out), "-o", str(tmp_path / "x.yaml")])
    assert rowforge_config.exit_code == 2
    assert "not a data-designer config" in rowforge_config.output
    wrong = runner.invoke(app, ["validate", str(out), "--providers", providers])
    assert wrong.exit_code == 2 and "--providers applies to data-designer configs" in wrong.output


def _converted(builder: dd.DataDesignerConfigBuilder, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "dd.yaml"
    builder.write_config(path)
    providers = providers_from([{"name": support.PROVIDER, "endpoint": "http://127.0.0.1:9/v1"}])
    return from_data_designer(yaml.safe_load(path.read_text()), providers=providers)


UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "reasoning content": (
        lambda: dd.LLMTextColumnConfig(
            name="q", model_alias="writer", prompt="Ask about {{ topic }}.",
            extract_reasoning_content=True),
        r"columns\[1\] 'q'.extract_reasoning_content: data-designer's",
    ),
    "a trace": (
        lambda: dd.LLMTextColumnConfig(name="q", model_alias="writer", prompt="{{ topic }}",
                                       with_trace=dd.TraceType.ALL_MESSAGES),
        r"columns\[1\] 'q'.with_trace: data-designer's 'with_trace' \('all_messages'\)",
    ),
    "a person from the managed datasets": (
        lambda: dd.SamplerColumnConfig(
            name="p", sampler_type=dd.SamplerType.PERSON, params=dd.PersonSamplerParams()),
        r"columns\[1\] 'p'.params: data-designer's 'person' sampler draws from its managed "
        r"person datasets .* use the 'person_from_faker' sampler",
    ),
    "a sampled temperature": (
        lambda: dd.LLMTextColumnConfig(name="q", model_alias="sampled", prompt="{{ topic }}"),
        r"model_configs\[1\] 'sampled'.inference_parameters.temperature: data-designer's "
        r"sampled temperature",
    ),
}


@pytest.mark.parametrize("feature", sorted(UNSUPPORTED))
def test_what_cannot_be_mapped_is_refused_naming_column_and_field(
    feature: str, tmp_path: Path
) -> None:
    column, message = UNSUPPORTED[feature]
    sampled = text_model("sampled", temperature=dd.UniformDistribution(
        params=dd.UniformDistributionParams(low=0.1, high=0.9)))
    builder = dd.DataDesignerConfigBuilder(model_configs=[text_model(), sampled])
    builder.add_column(support.category_sampler("topic", support.TOPICS))
    builder.add_column(column())
    with pytest.raises(ConfigError, match=message):
        _converted(builder, tmp_path)


def test_a_providers_extra_body_and_headers_reach_its_models() -> None:
    (fields,) = providers_from([{
        "name": "p", "endpoint": "http://127.0.0.1:9/v1",
        "extra_body": {"chat_template_kwargs": {"thinking": False}},
        "extra_headers": {"X-Team": "data"},
    }]).values()
    assert fields["extra_body"] == {"chat_template_kwargs": {"thinking": False}}
    assert fields["extra_headers"] == {"X-Team": "data"}


def test_providers_must_name_an_environment_variable_and_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"providers\[0\] 'p'.api_key: rowforge reads keys"):
        providers_from([{"name": "p", "endpoint": "http://x/v1", "api_key": "sk-live-123"}])
    with pytest.raises(ConfigError, match="only OpenAI-compatible providers"):
        providers_from([{"name": "p", "endpoint": "http://x/v1", "provider_type": "anthropic"}])
    builder = dd.DataDesignerConfigBuilder(model_configs=[text_model()])
    builder.add_column(support.category_sampler("topic", support.TOPICS))
    path = tmp_path / "dd.yaml"
    builder.write_config(path)
    unknown = r"model_configs\[0\] 'writer'.provider: unknown provider"
    with pytest.raises(ConfigError, match=unknown):
        load_config(path)


def test_a_literal_dataset_config_is_still_read_as_rowforges(tmp_path: Path) -> None:
    """A rowforge config is never mistaken for a data-designer one."""
    path = tmp_path / "rf.yaml"
    path.write_text(yaml.safe_dump({"columns": [{"type": "uuid", "name": "id"}]}))
    assert isinstance(load_config(path), DatasetConfig)


def sampler(name: str, kind: str, params: Any, **options: Any) -> Any:
    return dd.SamplerColumnConfig(name=name, sampler_type=kind, params=params, **options)


def samplers_builder() -> dd.DataDesignerConfigBuilder:
    """data-designer's other samplers and options, as its config builder writes them."""
    builder = dd.DataDesignerConfigBuilder(model_configs=[text_model()])
    builder.add_column(support.category_sampler("topic", ["billing", "shipping"]))
    builder.add_column(sampler("detail", "subcategory", dd.SubcategorySamplerParams(
        category="topic", values={"billing": ["refund", "invoice"], "shipping": ["late"]})))
    builder.add_column(sampler("tries", "binomial", dd.BinomialSamplerParams(n=10, p=0.3)))
    builder.add_column(sampler("calls", "poisson", dd.PoissonSamplerParams(mean=4.0)))
    builder.add_column(sampler("spend", "bernoulli_mixture", dd.BernoulliMixtureSamplerParams(
        p=0.5, dist_name="expon", dist_params={"scale": 10.0})))
    builder.add_column(sampler("wait", "scipy", dd.ScipySamplerParams(
        dist_name="norm", dist_params={"loc": 5.0, "scale": 1.0}, decimal_places=2)))
    builder.add_column(sampler("price", "gaussian", dd.GaussianSamplerParams(
        mean=20.0, stddev=5.0, decimal_places=1)))
    builder.add_column(sampler("opened", "datetime", dd.DatetimeSamplerParams(
        start="2024-01-01", end="2024-12-31", unit="s")))
    builder.add_column(sampler("closed", "timedelta", dd.TimeDeltaSamplerParams(
        dt_min=1, dt_max=5, reference_column_name="opened", unit="D")))
    builder.add_column(sampler(
        "stars", "uniform", dd.UniformSamplerParams(low=1, high=5), convert_to="int",
        conditional_params={"topic == 'shipping'": dd.UniformSamplerParams(low=1, high=2)},
    ))
    builder.add_column(dd.ExpressionColumnConfig(name="calls_again", expr="{{ calls }}",
                                                 dtype="int", drop=True))
    builder.add_column(dd.ExpressionColumnConfig(name="total", expr="{{ calls_again + tries }}",
                                                 dtype="int"))
    return builder


def test_data_designers_other_samplers_and_options_convert_and_build(tmp_path: Path) -> None:
    path = tmp_path / "dd.yaml"
    samplers_builder().write_config(path)
    providers = providers_file(tmp_path, "http://127.0.0.1:9/v1")
    config = load_config(path, providers=providers)
    kinds = {c.name: type(c).TYPE for c in config.columns}
    assert kinds == {
        "topic": "category", "detail": "subcategory", "tries": "binomial", "calls": "poisson",
        "spend": "bernoulli_mixture", "wait": "scipy", "opened": "datetime",
        "closed": "timedelta", "stars": "uniform", "calls_again": "expression",
        "total": "expression", "price": "gaussian",
    }
    save_config(config, tmp_path / "rowforge.yaml")
    assert load_config(tmp_path / "rowforge.yaml") == config

    build(config, 60, tmp_path / "out")  # no LLM column: the endpoint is never called
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert len(frame) == 60 and "calls_again" not in frame.columns  # drop: true
    shipping = frame[frame["topic"] == "shipping"]
    assert set(shipping["detail"]) == {"late"} and set(shipping["stars"]) <= {1, 2}
    assert (frame["total"] == frame["calls"] + frame["tries"]).all()
    assert frame["stars"].dtype.kind == "i"
    assert (frame["price"] == frame["price"].round(1)).all()  # decimal_places
    assert (frame["wait"] == frame["wait"].round(2)).all()
    assert (frame["price"] != frame["price"].round(0)).any()


def test_a_datetime_keeps_data_designers_unit_which_defaults_to_days(tmp_path: Path) -> None:
    builder = dd.DataDesignerConfigBuilder(model_configs=[text_model()])
    builder.add_column(sampler("day", "datetime",
                               dd.DatetimeSamplerParams(start="2024-01-01", end="2024-02-01")))
    builder.add_column(sampler("hour", "datetime", dd.DatetimeSamplerParams(
        start="2024-01-01", end="2024-02-01", unit="h")))
    day, hour = _converted(builder, tmp_path)["columns"]
    assert (day["unit"], hour["unit"]) == ("D", "h")


def test_a_uuid_keeps_data_designers_form(tmp_path: Path) -> None:
    builder = dd.DataDesignerConfigBuilder(model_configs=[text_model()])
    builder.add_column(sampler("plain", "uuid", dd.UUIDSamplerParams()))
    builder.add_column(sampler("short", "uuid", dd.UUIDSamplerParams(
        prefix="REV-", short_form=True, uppercase=True)))
    plain, short = _converted(builder, tmp_path)["columns"]
    assert plain == {"type": "uuid", "name": "plain", "hex": True}
    assert short == {"type": "uuid", "name": "short", "hex": True, "prefix": "REV-",
                     "short_form": True, "uppercase": True}


def test_data_designers_structured_and_judge_example_converts_and_builds(
    server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    """The example config with an LLM structured column and an LLM judge (tests/integrations):
    the judge's value has data-designer's shape, one reasoning and one allowed score per
    score, integer scores as integers."""
    source = tmp_path / "dd.yaml"
    support.structured_judge_config().write_config(source)
    config = load_config(source, providers=providers_file(tmp_path, server.url))
    assert [type(c).TYPE for c in config.columns if c.name == "review_quality"] == ["llm_judge"]
    build(config, 10, tmp_path / "out")
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert len(frame) == 10
    for verdict in frame["review_quality"]:
        for name, options in support.JUDGE_SCORES:
            assert verdict[name]["score"] in options
            assert isinstance(verdict[name]["reasoning"], str)


def test_a_code_column_converts_to_llm_code(tmp_path: Path) -> None:
    builder = dd.DataDesignerConfigBuilder(model_configs=[text_model()])
    builder.add_column(support.category_sampler("topic", support.TOPICS))
    builder.add_column(dd.LLMCodeColumnConfig(
        name="snippet", model_alias="writer", prompt="SQL for {{ topic }}.",
        code_lang="sql:postgres"))
    (_, snippet) = _converted(builder, tmp_path)["columns"]
    assert (snippet["type"], snippet["code_lang"]) == ("llm_code", "sql")


def test_data_designers_skip_example_converts_and_skips_as_it_does(
    server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    """`skip.when` and `propagate_skip` (tests/integrations' skip_gate example): the skipped
    rows keep null in the gated column and its dependent, the column with propagate_skip false
    runs on every row, and a skipped cell sends no request."""
    source = tmp_path / "dd.yaml"
    support.skip_gate_config().write_config(source)
    config = load_config(source, providers=providers_file(tmp_path, server.url))
    before = server.request_count
    build(config, 40, tmp_path / "out")
    requests = server.request_count - before
    assert first_violation(tmp_path / "out") is None
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    low, high = frame[frame["number_of_stars"] <= 2], frame[frame["number_of_stars"] > 2]
    assert len(low) and len(high)
    assert low["complaint_analysis"].notna().all() and low["action_items"].notna().all()
    assert high["complaint_analysis"].isna().all() and high["action_items"].isna().all()
    assert frame["review_summary"].notna().all()
    assert requests == 40 + 2 * len(low)
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["skipped_cells"]["complaint_analysis"] == len(high)


def test_data_designers_samplers_and_persons_example_converts_and_builds(
    server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    """The example config with Faker persons and a prefixed short UUID (tests/integrations):
    templates read the person's fields, the UUID has data-designer's form."""
    source = tmp_path / "dd.yaml"
    support.samplers_text_expression_config().write_config(source)
    config = load_config(source, providers=providers_file(tmp_path, server.url))
    kinds = {c.name: type(c).TYPE for c in config.columns}
    assert (kinds["customer"], kinds["review_id"]) == ("faker_person", "uuid")
    build(config, 20, tmp_path / "out")
    assert first_violation(tmp_path / "out") is None
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert len(frame) == 20
    assert frame["review_id"].str.fullmatch(r"REV-[0-9a-f]{8}").all()
    assert frame["customer"].map(lambda person: 18 <= person["age"] <= 70).all()
    firsts = frame["customer"].map(lambda person: person["first_name"])
    assert (frame["review_title"].str.split(" on ").str[0] == firsts).all()


def test_a_schema_transform_processor_is_refused_naming_it(tmp_path: Path) -> None:
    """data-designer writes a schema transform as a dataset of its own; rowforge has no such
    output, so the processor is refused rather than written into the main dataset."""
    source = tmp_path / "dd.yaml"
    support.processor_chain_config().write_config(source)
    where = rf"processors\[1\] '{support.CHAT_PROCESSOR}'.processor_type: data-designer's"
    with pytest.raises(ConfigError, match=where + " 'schema_transform' processor"):
        load_config(source, providers=providers_file(tmp_path, "http://127.0.0.1:9/v1"))
