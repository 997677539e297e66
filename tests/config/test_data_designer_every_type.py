"""One golden data-designer config with every column type rowforge converts, written by
data-designer's own config builder: it converts, the converted YAML round-trips, it builds on
the mock provider, and the dataset has the columns, value kinds and shapes data-designer's own
engine gives for the same config (both engines run here, on the same mock server)."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

pytest.importorskip(
    "data_designer.interface",
    reason="data-designer is not installed (the `data-designer` extra: pip install -e '.[dev]')",
)

from rowforge.api import build
from rowforge.config.dataset import load_config, save_config
from rowforge.errors import ConfigError
from rowforge.storage.check import first_violation
from tests.integrations import dd_support as support

dd = support.dd

ROWS = 24
#: How the converted config names the local validation function (data-designer writes only
#: `code_is_short`, which nothing can import; the documented fix is this form).
FUNCTION_REFERENCE = f"{__name__}:code_is_short"


#: The remote validator's answer, as data-designer's `output_schema` describes it (the whole
#: answer); rowforge's describes one row, `ROW_SCHEMA`.
ROW_SCHEMA = {
    "type": "object",
    "properties": {"is_valid": {"type": "boolean"}, "checked": {"type": "string"}},
    "required": ["is_valid", "checked"],
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"data": {"type": "array", "items": ROW_SCHEMA}},
    "required": ["data"],
}


def code_is_short(frame: pd.DataFrame) -> pd.DataFrame:
    """The local validation function: valid when the code has fewer than 40 characters."""
    lengths = frame["code"].str.len()
    return pd.DataFrame({"is_valid": lengths < 40, "length": lengths})


class _Validator(BaseHTTPRequestHandler):
    """A remote validator: `{"data": [records]}` in, `{"data": [outputs]}` out."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        outputs = [{"is_valid": record["topic"] != "billing", "checked": record["topic"]}
                   for record in body["data"]]
        payload = json.dumps({"data": outputs}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def validator_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Validator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/validate"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[support.DataDesignerMockServer]:
    monkeypatch.setenv("ROWFORGE_DD_EVERY_KEY", "not-a-secret")
    with support.mock_server() as running:
        yield running


def sampler(name: str, kind: str, params: Any, **options: Any) -> Any:
    return dd.SamplerColumnConfig(name=name, sampler_type=kind, params=params, **options)


def every_type_builder(seed_file: Path, validator_url: str) -> dd.DataDesignerConfigBuilder:
    """Every data-designer column type (and sampler type) rowforge converts."""
    models = support.model_configs(8, aliases=("writer",))
    builder = dd.DataDesignerConfigBuilder(model_configs=models)
    builder.with_seed_dataset(dd.LocalFileSeedSource(path=str(seed_file)))
    builder.add_column(support.category_sampler("topic", ["billing", "shipping", "returns"]))
    builder.add_column(sampler("detail", "subcategory", dd.SubcategorySamplerParams(
        category="topic",
        values={"billing": ["refund"], "shipping": ["late"], "returns": ["label"]})))
    builder.add_column(sampler("price", "uniform", dd.UniformSamplerParams(low=1, high=9)))
    builder.add_column(sampler("mood", "gaussian", dd.GaussianSamplerParams(mean=0, stddev=1)))
    builder.add_column(sampler("broken", "bernoulli", dd.BernoulliSamplerParams(p=0.5)))
    builder.add_column(sampler("tries", "binomial", dd.BinomialSamplerParams(n=5, p=0.5)))
    builder.add_column(sampler("calls", "poisson", dd.PoissonSamplerParams(mean=3)))
    builder.add_column(sampler("spend", "bernoulli_mixture", dd.BernoulliMixtureSamplerParams(
        p=0.5, dist_name="expon", dist_params={"scale": 2.0})))
    builder.add_column(sampler("wait", "scipy", dd.ScipySamplerParams(
        dist_name="gamma", dist_params={"a": 2.0})))
    builder.add_column(sampler("ticket", "uuid", dd.UUIDSamplerParams(
        prefix="T-", short_form=True, uppercase=True)))
    builder.add_column(sampler("opened", "datetime", dd.DatetimeSamplerParams(
        start="2024-01-01", end="2024-03-01", unit="D")))
    builder.add_column(sampler("closed", "timedelta", dd.TimeDeltaSamplerParams(
        dt_min=1, dt_max=4, reference_column_name="opened", unit="D")))
    builder.add_column(sampler("customer", "person_from_faker", dd.PersonFromFakerSamplerParams(
        age_range=[20, 60])))
    builder.add_column(dd.ExpressionColumnConfig(
        name="code",
        expr="{% if broken %}def broken(:{% else %}total = {{ calls }} + 1{% endif %}"))
    builder.add_column(dd.ExpressionColumnConfig(
        name="query",
        expr="{% if broken %}SELEC FROM WHERE{% else %}SELECT {{ calls }} AS n{% endif %}"))
    builder.add_column(dd.ExpressionColumnConfig(name="n", expr="{{ calls }}", dtype="int"))
    builder.add_column(dd.LLMTextColumnConfig(
        name="question", model_alias="writer",
        prompt="{{ customer.first_name }} asks about {{ topic }} ({{ persona }})."))
    builder.add_column(dd.LLMStructuredColumnConfig(
        name="product", model_alias="writer", prompt="Describe a {{ topic }} product.",
        output_format=support.Product))
    builder.add_column(dd.LLMJudgeColumnConfig(
        name="verdict", model_alias="writer", prompt="Judge: {{ question }}",
        scores=[dd.Score(name="Clarity", description="How clear",
                         options={1: "Unclear", 2: "Clear"})]))
    builder.add_column(dd.LLMCodeColumnConfig(
        name="snippet", model_alias="writer", prompt="Code for {{ topic }}.",
        code_lang="python"))
    builder.add_column(dd.ValidationColumnConfig(
        name="code_check", target_columns=["code"], validator_type="code",
        validator_params=dd.CodeValidatorParams(code_lang="python")))
    builder.add_column(dd.ValidationColumnConfig(
        name="query_check", target_columns=["query"], validator_type="code",
        validator_params=dd.CodeValidatorParams(code_lang="sql:sqlite")))
    builder.add_column(dd.ValidationColumnConfig(
        name="length_check", target_columns=["code"], validator_type="local_callable",
        validator_params=dd.LocalCallableValidatorParams(validation_function=code_is_short)))
    builder.add_column(dd.ValidationColumnConfig(
        name="topic_check", target_columns=["topic"], validator_type="remote",
        validator_params=dd.RemoteValidatorParams(
            endpoint_url=validator_url, retry_backoff=1.1, output_schema=ANSWER_SCHEMA),
        batch_size=5))
    return builder


def write_golden(tmp_path: Path, validator_url: str) -> tuple[dd.DataDesignerConfigBuilder, Path]:
    seed_file = tmp_path / "personas.parquet"
    pd.DataFrame({"persona": ["a student", "a nurse", "a pilot"]}).to_parquet(seed_file)
    builder = every_type_builder(seed_file, validator_url)
    source = tmp_path / "dd.yaml"
    builder.write_config(source)
    return builder, source


def providers(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "providers.yaml"
    entry = {"name": support.PROVIDER, "endpoint": url, "api_key": "ROWFORGE_DD_EVERY_KEY"}
    path.write_text(yaml.safe_dump({"providers": [entry]}))
    return path


def with_function_reference(source: Path) -> None:
    """The documented edit: the validation function as `module:function`."""
    text = source.read_text()
    source.write_text(text.replace("validation_function: code_is_short",
                                   f"validation_function: {FUNCTION_REFERENCE}"))


def test_the_function_name_data_designer_writes_is_refused_until_it_is_importable(
    tmp_path: Path, validator_url: str
) -> None:
    _, source = write_golden(tmp_path, validator_url)
    where = r"columns\[\d+\] 'length_check'.validator_params.validation_function"
    with pytest.raises(ConfigError, match=where + r": .*'package.module:code_is_short'"):
        load_config(source, providers=providers(tmp_path, "http://127.0.0.1:9/v1"))
    with_function_reference(source)
    config = load_config(source, providers=providers(tmp_path, "http://127.0.0.1:9/v1"))
    (check,) = [c for c in config.columns if c.name == "length_check"]
    assert check.to_dict()["validator"]["function"] == FUNCTION_REFERENCE
    (remote,) = [c for c in config.columns if c.name == "topic_check"]
    assert remote.to_dict()["validator"]["output_schema"] == ROW_SCHEMA


def test_a_validator_schema_that_is_not_of_the_whole_answer_is_refused(
    tmp_path: Path, validator_url: str
) -> None:
    _, source = write_golden(tmp_path, validator_url)
    with_function_reference(source)
    raw = yaml.safe_load(source.read_text())
    (remote,) = [c for c in raw["data_designer"]["columns"] if c["name"] == "topic_check"]
    remote["validator_params"]["output_schema"] = ROW_SCHEMA
    source.write_text(yaml.safe_dump(raw))
    where = r"columns\[\d+\] 'topic_check'.validator_params.output_schema: expected"
    with pytest.raises(ConfigError, match=where):
        load_config(source, providers=providers(tmp_path, "http://127.0.0.1:9/v1"))


def kind(value: Any) -> Any:
    """A value's shape: its kind, and for a mapping or list the shapes inside."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars, as Parquet reads lists back
        value = value.tolist()
    if value is None or (isinstance(value, float) and value != value):
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | dt.date | pd.Timestamp):
        return "text or time"
    if isinstance(value, dict):
        return {key: kind(item) for key, item in value.items()}
    if isinstance(value, list):
        return ["list", *sorted({json.dumps(kind(item)) for item in value})]
    return type(value).__name__


def kinds(frame: pd.DataFrame, column: str) -> set[str]:
    return {json.dumps(kind(value), sort_keys=True) for value in frame[column]}


def test_every_column_type_converts_builds_and_matches_data_designers_output(
    server: support.DataDesignerMockServer, validator_url: str, tmp_path: Path
) -> None:
    builder, source = write_golden(tmp_path, validator_url)
    with_function_reference(source)
    config = load_config(source, providers=providers(tmp_path, server.url))
    converted = tmp_path / "rowforge.yaml"
    save_config(config, converted)
    assert load_config(converted) == config

    build(config, ROWS, tmp_path / "rowforge-out")
    assert first_violation(tmp_path / "rowforge-out") is None
    ours = pd.read_parquet(tmp_path / "rowforge-out" / "parquet-files")
    assert len(ours) == ROWS

    designer = support.make_data_designer(server.url, tmp_path / "dd")
    theirs = designer.create(builder, num_records=ROWS).load_dataset()
    assert len(theirs) == ROWS
    assert sorted(ours.columns) == sorted(theirs.columns)

    # One documented difference: the product's price may be a number or text (its schema's
    # anyOf), which rowforge stores as JSON text (docs/metadata.md, "One schema per run")
    theirs["product"] = theirs["product"].map(lambda p: {**p, "price": json.dumps(p["price"])})
    for column in theirs.columns:
        assert kinds(ours, column) == kinds(theirs, column), column

    assert ours["broken"].nunique() == theirs["broken"].nunique() == 2
    for frame in (ours, theirs):  # the same verdicts on both engines
        valid = frame["broken"] == 0
        assert (frame["code_check"].map(lambda v: v["is_valid"]) == valid).all()
        assert (frame["query_check"].map(lambda v: v["is_valid"]) == valid).all()
        assert (frame["topic_check"].map(lambda v: v["checked"]) == frame["topic"]).all()
    assert all(re.fullmatch(r"T-[0-9A-F]{8}", t) for t in ours["ticket"])
    assert (ours["opened"].str.fullmatch(r"2024-0[12]-\d\dT00:00:00")).all()
    assert (ours["length_check"].map(lambda v: v["length"]) == ours["code"].str.len()).all()
    assert ours["customer"].map(lambda p: 20 <= p["age"] <= 60).all()
    assert ours["persona"].isin(["a student", "a nurse", "a pilot"]).all()

