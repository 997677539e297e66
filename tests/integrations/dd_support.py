"""data-designer (the `data-designer` extra, 0.9.7) against rowforge's mock server: test and
benchmark support, with no network beyond 127.0.0.1 and no telemetry.

Import this module before anything imports data-designer's submodules (`import data_designer`
alone, as `pytest.importorskip` does, is fine: it is an empty namespace package). On import it
sets the environment data-designer reads once, when its modules load:

- `NEMO_TELEMETRY_ENABLED=false`. `data_designer.engine.models.telemetry` reads it into
  `TELEMETRY_ENABLED` at import; when false, `TelemetryHandler.enqueue` drops every event, so
  the handler each build opens never posts to https://events.telemetry.data.nvidia.com, and
  `ModelFacade` adds no `X-Title` attribution header. `disable_telemetry()` also clears the
  two module flags, for a process that imported data-designer before this module.
- `DATA_DESIGNER_HOME` (unless set): a temporary directory, removed at exit. `DataDesigner()`
  writes `model_configs.yaml`, `model_providers.yaml` and `managed-assets/` there (by default
  under `~/.data-designer`).
- `NO_PROXY`/`no_proxy` gain 127.0.0.1 and localhost, so an `HTTP(S)_PROXY` in the environment
  cannot route loopback requests (httpx and urllib honour both) off the machine.

Pointing data-designer at the mock: a `ModelProvider(name=PROVIDER, endpoint=<base URL ending
in /v1>, provider_type="openai", api_key=<any non-empty string>)` given to
`DataDesigner(model_providers=[...])`, and `ModelConfig(alias=..., model="mock-1",
provider=PROVIDER, inference_parameters=ChatCompletionInferenceParams(max_parallel_requests=N))`
in the config builder (`DataDesignerConfigBuilder(model_configs=[...])`). In 0.9.7 the model
configs, and with them `max_parallel_requests`, belong to the config builder, not to
`DataDesigner`: so the example configs take `max_parallel_requests` (see `model_configs`).

Two other things in 0.9.7 reach beyond the process, and `make_data_designer` stops both:

- `DataDesigner.create()` profiles the dataset after the build, counting the tokens of LLM
  columns with tiktoken's `cl100k_base`, which tiktoken downloads on first use from
  openaipublic.blob.core.windows.net (offline, each profile logs a failed name lookup).
  `install_offline_tokenizer()` points data-designer's tokenizer getter at a word counter.
- `RunConfig.otel_metrics_port` defaults to 9464: `create()` then serves Prometheus metrics on
  127.0.0.1:9464 (a loopback listener, still a fixed port two runs would fight over).
  `quiet_run_config()` sets it to None.

The mock shim. data-designer sends every message's content as a list of text parts
(`[{"type": "text", "text": ...}]`, as the OpenAI API allows), which `rowforge mock-server`
reads as their text. It asks structured and judge columns for JSON with the JSON schema in the
prompt (`<response_schema>{...}</response_schema>`), not in `response_format`, where a real
model reads it; the mock does not read prompts, so `DataDesignerMockServer` turns a prompted
schema into a `json_schema` `response_format` before the request reaches `MockServer`, and a
structured column gets a JSON document that follows its schema (bare JSON, which
data-designer's parser accepts). Everything else (latency, faults, `/v1/mock/stats`) is
`MockServer`'s.

Seeds. data-designer 0.9.7 has no seed setting: samplers draw from numpy's global RandomState
(`check_random_state(None)`), Faker persons from Faker's shared random plus the stdlib's, and
UUIDs from `uuid.uuid4`. `seed_samplers(seed)` seeds numpy, the stdlib and Faker; then, for a
dataset of one row group (`num_records <= RunConfig.buffer_size`, default 1000), the category,
subcategory, uniform and gaussian samplers, the Faker persons (all fields but the person's own
`uuid`), every expression column and (the mock answering the same request with the same text)
every LLM column repeat exactly; UUID columns never do. With several row groups the async engine
samples them concurrently from the one global RandomState, so which row gets which draw is not
fixed (not even the multiset of values per column, in a 60-record, 6-row-group check).

Run as `python -m tests.integrations.dd_support [--port P] [--latency-ms LO HI] [--seed S]`
from the repository root: serves `DataDesignerMockServer` on 127.0.0.1 like `rowforge
mock-server` (prints the base URL once listening; SIGTERM or SIGINT stops it).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from rowforge.models import MockSettings
from rowforge.models.client import message_text
from rowforge.models.mock_server import MockServer
from rowforge.models.repair import code_request


def _prepare_environment() -> None:
    os.environ["NEMO_TELEMETRY_ENABLED"] = "false"
    if "DATA_DESIGNER_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="rowforge-dd-home-")
        os.environ["DATA_DESIGNER_HOME"] = home
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h]
        os.environ[name] = ",".join([*hosts, *(h for h in LOOPBACK_HOSTS if h not in hosts)])


LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_prepare_environment()

import data_designer.config as dd  # noqa: E402  (after the environment is set)

if TYPE_CHECKING:
    from data_designer.config.config_builder import DataDesignerConfigBuilder
    from data_designer.interface import DataDesigner

ROOT = Path(__file__).resolve().parents[2]

#: The provider name the model configs refer to, and the model the mock answers as.
PROVIDER = "rowforge-mock"
MOCK_MODEL = "mock-1"
#: Any non-empty key: the mock server checks none unless started with `api_key=`.
API_KEY = "sk-rowforge-mock"
#: The model aliases the example configs use (both served by the one mock).
TEXT_ALIAS = "mock-text"
JUDGE_ALIAS = "mock-judge"
DEFAULT_MAX_PARALLEL_REQUESTS = 16


# --- telemetry, tokenizer, run config ---------------------------------------------------------


def disable_telemetry() -> None:
    """Telemetry off even if data-designer was imported before this module set the variable."""
    os.environ["NEMO_TELEMETRY_ENABLED"] = "false"
    for name in ("data_designer.engine.models.telemetry", "data_designer.engine.models.facade"):
        module = sys.modules.get(name)
        if module is not None:
            module.TELEMETRY_ENABLED = False  # type: ignore[attr-defined]


class WordTokenizer:
    """Stands in for tiktoken's cl100k_base in data-designer's column statistics: one token a
    whitespace-separated word (the mock's own token unit)."""

    name = "rowforge-offline-words"

    def encode(self, text: str, **_: Any) -> list[int]:
        return list(range(len(text.split())))


def install_offline_tokenizer() -> None:
    """Make data-designer count tokens without tiktoken's download (idempotent, process-wide).

    `count_text_tokens` looks `get_cl100k_base_tokenizer` up in its module on every call, so
    replacing the module attribute reroutes the profiler and the reasoning-token estimate.
    """
    from data_designer.engine.utils import token_counting

    if not isinstance(getattr(token_counting.get_cl100k_base_tokenizer, "offline", None), bool):
        tokenizer = WordTokenizer()

        def offline_tokenizer() -> WordTokenizer:
            return tokenizer

        offline_tokenizer.offline = True  # type: ignore[attr-defined]
        token_counting.get_cl100k_base_tokenizer = offline_tokenizer  # type: ignore[assignment]


def _keep_home_out_of_home() -> None:
    """If data-designer's constants were imported before this module set DATA_DESIGNER_HOME,
    point the paths `DataDesigner()` writes its default settings to at that directory too."""
    from data_designer.config import default_model_settings as settings
    from data_designer.config.utils import constants

    home = Path(os.environ["DATA_DESIGNER_HOME"])
    if home != constants.DATA_DESIGNER_HOME:
        settings.MODEL_CONFIGS_FILE_PATH = home / constants.MODEL_CONFIGS_FILE_NAME
        settings.MODEL_PROVIDERS_FILE_PATH = home / constants.MODEL_PROVIDERS_FILE_NAME
        settings.MANAGED_ASSETS_PATH = home / "managed-assets"


def quiet_run_config(**overrides: Any) -> dd.RunConfig:
    """data-designer's RunConfig without the metrics listener on 127.0.0.1:9464."""
    return dd.RunConfig(**{"otel_metrics_port": None, **overrides})


def seed_samplers(seed: int) -> None:
    """Seed what 0.9.7's samplers draw from: numpy's global RandomState (category,
    subcategory, uniform, gaussian, ...), the stdlib's `random` and Faker's shared random
    (Faker persons). There is no data-designer seed setting; UUID samplers stay random."""
    import faker
    import numpy

    numpy.random.seed(seed)
    random.seed(seed)
    faker.Faker.seed(seed)


# --- the data designer ------------------------------------------------------------------------


def mock_provider(base_url: str, name: str = PROVIDER) -> dd.ModelProvider:
    """An OpenAI-compatible provider at `base_url` (e.g. `http://127.0.0.1:PORT/v1`)."""
    return dd.ModelProvider(name=name, endpoint=base_url, provider_type="openai", api_key=API_KEY)


def model_configs(
    max_parallel_requests: int = DEFAULT_MAX_PARALLEL_REQUESTS,
    *,
    aliases: tuple[str, ...] = (TEXT_ALIAS, JUDGE_ALIAS),
    timeout_s: int = 60,
) -> list[dd.ModelConfig]:
    """The model configs of the example configs: each alias is the mock model at `PROVIDER`."""
    return [
        dd.ModelConfig(
            alias=alias,
            model=MOCK_MODEL,
            provider=PROVIDER,
            inference_parameters=dd.ChatCompletionInferenceParams(
                max_parallel_requests=max_parallel_requests, timeout=timeout_s
            ),
        )
        for alias in aliases
    ]


def make_data_designer(
    base_url: str, tmp_path: Path | str, *, run_config: dd.RunConfig | None = None
) -> DataDesigner:
    """A `DataDesigner` whose only provider (`PROVIDER`) is the mock at `base_url`.

    Artifacts go to `tmp_path/artifacts`, managed assets (unused: no managed person datasets)
    to `tmp_path/managed-assets`; telemetry is off, tokens are counted offline, the metrics
    listener is off (`quiet_run_config()` unless `run_config` is given), and data-designer
    leaves logging alone (its warnings reach stderr through Python's last-resort handler).
    """
    disable_telemetry()
    install_offline_tokenizer()
    _keep_home_out_of_home()
    from data_designer.interface import DataDesigner

    tmp = Path(tmp_path)
    (tmp / "managed-assets").mkdir(parents=True, exist_ok=True)
    designer = DataDesigner(
        tmp / "artifacts",
        model_providers=[mock_provider(base_url)],
        managed_assets_path=tmp / "managed-assets",
        auto_configure_logging=False,
    )
    designer.set_run_config(run_config if run_config is not None else quiet_run_config())
    return designer


#: The engines `engine()` knows: data-designer's own, and rowforge behind data-designer's API.
ENGINES = ("dd", "rowforge")


@contextlib.contextmanager
def engine(name: str) -> Iterator[None]:
    """`with engine("rowforge"):` data-designer's `create()`/`preview()` run on rowforge
    (`rowforge.integrations.data_designer.enable()`, undone by `disable()` when the block
    ends); `engine("dd")` leaves data-designer's own engine in place. An ImportError means the
    integration is not available."""
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {name!r}")
    if name == "dd":
        yield
        return
    import rowforge.integrations.data_designer as rf  # type: ignore[import-not-found]

    rf.enable()
    try:
        yield
    finally:
        rf.disable()


# --- the mock server --------------------------------------------------------------------------

_PROMPTED_SCHEMA = re.compile(r"<response_schema>\s*(\{.*?\})\s*</response_schema>", re.DOTALL)


def prompted_schema(messages: list[Any]) -> dict[str, Any] | None:
    """The JSON schema the last message carrying `<response_schema>` asks for, if any (the
    instructions name the tag before the schema, so the last match is the schema)."""
    for message in reversed(messages):
        content = message_text(message.get("content")) if isinstance(message, dict) else None
        if content is None:
            continue
        matches = _PROMPTED_SCHEMA.findall(content)
        if matches:
            try:
                schema = json.loads(matches[-1])
            except json.JSONDecodeError:
                return None
            return schema if isinstance(schema, dict) else None
    return None


_ASKED_FOR_CODE = re.compile(r"\* Your response must be code written in ([a-z][\w+#.-]*)\.")


def asked_for_code(messages: list[Any]) -> list[Any]:
    """data-designer's code columns ask for a code block in their own words; the mock model
    answers in a block when asked in rowforge's (`code_request`), so the last user message
    gets those words too."""
    users = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return messages
    last = messages[users[-1]]
    content = message_text(last.get("content"))
    match = _ASKED_FOR_CODE.search(content or "")
    if match is None:
        return messages
    asked = {**last, "content": content + code_request(match.group(1))}
    return [*messages[: users[-1]], asked, *messages[users[-1] + 1 :]]


class DataDesignerMockServer(MockServer):
    """`MockServer` that understands data-designer's requests (see the module docstring), and
    counts the most chat requests it ever answered at once (`peak_in_flight`)."""

    in_flight = 0
    peak_in_flight = 0

    async def _answer(self, body: dict[str, Any]) -> Any:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer_as_asked(body)
        finally:
            self.in_flight -= 1

    async def _answer_as_asked(self, body: dict[str, Any]) -> Any:
        messages = body.get("messages")
        if isinstance(messages, list):
            body = {**body, "messages": asked_for_code(messages)}
        if isinstance(messages, list) and body.get("response_format") is None:
            schema = prompted_schema(messages)
            if schema is not None:
                body = {
                    **body,
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": "response", "schema": schema},
                    },
                }
        return await super()._answer(body)


@contextlib.contextmanager
def mock_server(
    settings: MockSettings | None = None, **options: Any
) -> Iterator[DataDesignerMockServer]:
    """`with mock_server() as server:` a `DataDesignerMockServer` on 127.0.0.1 (a free port),
    on its own event loop in a daemon thread; `server.url` is the base URL to give
    `make_data_designer`, `server.request_count` what it answered. `options` go to `MockServer`
    (`faults=`, `api_key=`, ...). Stops (hung requests released) when the block ends."""
    from tests.reliability.netguard import ServerThread

    server = DataDesignerMockServer(settings if settings is not None else MockSettings(), **options)
    with ServerThread(server) as running:
        yield running


class MockServerProcess:
    """A `DataDesignerMockServer` in a child process (its CPU is not the client's)."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def stats(self) -> dict[str, Any]:
        """The server's `/v1/mock/stats`: `requests`, `connections`, `faults`."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{self.url}/mock/stats", timeout=10) as response:
            document: dict[str, Any] = json.load(response)
        return document

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def mock_server_process(
    latency_ms: tuple[float, float] = (0.0, 0.0), seed: int = 0, startup_s: float = 30.0
) -> Iterator[MockServerProcess]:
    """`with mock_server_process((50, 50)) as server:` the server in a child process on a free
    127.0.0.1 port; `server.url`, `server.stats()`. Stopped with SIGTERM when the block ends."""
    command = [
        sys.executable, "-m", "tests.integrations.dd_support",
        "--port", "0", "--latency-ms", str(latency_ms[0]), str(latency_ms[1]), "--seed", str(seed),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    server = MockServerProcess(process, "")
    try:
        server.url = _await_url(process, startup_s)
        yield server
    finally:
        server.stop()


def _await_url(process: subprocess.Popen[str], startup_s: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + startup_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], left)
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the mock server exited with {process.wait()} before listening")
        if "listening on " in line:
            return line.rsplit("listening on ", 1)[1].strip()
    raise RuntimeError(f"the mock server did not start within {startup_s:g}s")


async def _serve(port: int, settings: MockSettings) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with DataDesignerMockServer(settings, port=port) as server:
        print(f"rowforge mock server (data-designer shim) listening on {server.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="DataDesignerMockServer on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, nargs=2, default=(0.0, 0.0))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = MockSettings(latency_ms=tuple(args.latency_ms), seed=args.seed)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, settings))


# --- example configs ----------------------------------------------------------------------------
# Modelled on data-designer's tutorials (docs/notebook_source/1-the-basics.py and
# 2-structured-outputs-and-jinja-expressions.py in NVIDIA-NeMo/DataDesigner), with the mock as
# the model. No sampler needs a download: persons come from Faker (PERSON_FROM_FAKER), not from
# the managed person datasets (PERSON).

#: The support topics the processor, failure and benchmark configs sample.
TOPICS = ["billing", "shipping", "returns", "accounts"]
CATEGORIES = ["Electronics", "Clothing", "Home & Kitchen", "Books"]
SUBCATEGORIES = {
    "Electronics": ["Smartphones", "Laptops", "Headphones"],
    "Clothing": ["Winter Coats", "Activewear", "Accessories"],
    "Home & Kitchen": ["Appliances", "Cookware", "Decor"],
    "Books": ["Fiction", "Non-Fiction", "Classics"],
}


def _builder(max_parallel_requests: int, *aliases: str) -> DataDesignerConfigBuilder:
    return dd.DataDesignerConfigBuilder(
        model_configs=model_configs(max_parallel_requests, aliases=aliases)
    )


def category_sampler(
    name: str, values: list[str], weights: list[float] | None = None
) -> Any:
    """A category sampler column (`weights` None: uniform)."""
    return dd.SamplerColumnConfig(
        name=name,
        sampler_type=dd.SamplerType.CATEGORY,
        params=dd.CategorySamplerParams(values=values, weights=weights),
    )


def _stars() -> Any:
    return dd.SamplerColumnConfig(
        name="number_of_stars",
        sampler_type=dd.SamplerType.UNIFORM,
        params=dd.UniformSamplerParams(low=1, high=5),
        convert_to="int",
    )


def samplers_text_expression_config(
    max_parallel_requests: int = DEFAULT_MAX_PARALLEL_REQUESTS,
) -> DataDesignerConfigBuilder:
    """(a) Samplers (category with weights, subcategory, uniform, gaussian, Faker person,
    UUID), an LLM text column, a second LLM text column on the first, two expressions."""
    builder = _builder(max_parallel_requests, TEXT_ALIAS)
    builder.add_column(category_sampler("product_category", CATEGORIES, [3, 2, 2, 1]))
    builder.add_column(
        dd.SamplerColumnConfig(
            name="product_subcategory",
            sampler_type=dd.SamplerType.SUBCATEGORY,
            params=dd.SubcategorySamplerParams(category="product_category", values=SUBCATEGORIES),
        )
    )
    builder.add_column(_stars())
    builder.add_column(
        dd.SamplerColumnConfig(
            name="price",
            sampler_type=dd.SamplerType.GAUSSIAN,
            params=dd.GaussianSamplerParams(mean=60, stddev=15, decimal_places=2),
        )
    )
    builder.add_column(
        dd.SamplerColumnConfig(
            name="customer",
            sampler_type=dd.SamplerType.PERSON_FROM_FAKER,
            params=dd.PersonFromFakerSamplerParams(age_range=[18, 70], locale="en_US"),
        )
    )
    builder.add_column(
        dd.SamplerColumnConfig(
            name="review_id",
            sampler_type=dd.SamplerType.UUID,
            params=dd.UUIDSamplerParams(prefix="REV-", short_form=True),
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="product_name",
            model_alias=TEXT_ALIAS,
            prompt=(
                "Come up with a creative product name for a product in the "
                "'{{ product_category }}' category, focusing on '{{ product_subcategory }}'. "
                "Respond with only the product name."
            ),
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="customer_review",
            model_alias=TEXT_ALIAS,
            prompt=(
                "You are {{ customer.first_name }} from {{ customer.city }}, aged "
                "{{ customer.age }}. Write a review of {{ product_name }}, which you rated "
                "{{ number_of_stars }} stars."
            ),
        )
    )
    builder.add_column(
        dd.ExpressionColumnConfig(
            name="review_title",
            expr="{{ customer.first_name }} on {{ product_subcategory }}: {{ number_of_stars }}/5",
        )
    )
    builder.add_column(
        dd.ExpressionColumnConfig(
            name="price_band", expr="{% if price >= 60 %}premium{% else %}budget{% endif %}"
        )
    )
    return builder


class Product(BaseModel):
    name: str = Field(description="The name of the product")
    description: str = Field(description="A description of the product")
    price: Decimal = Field(description="The price of the product", ge=10, le=1000, decimal_places=2)


class ProductReview(BaseModel):
    rating: int = Field(description="The rating of the product", ge=1, le=5)
    customer_mood: Literal["irritated", "mad", "happy", "neutral", "excited"] = Field(
        description="The mood of the customer"
    )
    review: str = Field(description="A review of the product")


JUDGE_SCORES = [
    ("Helpfulness", {4: "Very helpful", 3: "Helpful", 2: "Somewhat", 1: "Not helpful"}),
    ("Tone", {"Good": "Polite and clear", "Fair": "Mostly fine", "Poor": "Rude or unclear"}),
]


def structured_judge_config(
    max_parallel_requests: int = DEFAULT_MAX_PARALLEL_REQUESTS,
) -> DataDesignerConfigBuilder:
    """(b) Two LLM structured columns (pydantic output formats, the second on the first), an
    LLM judge column with two scores (on `JUDGE_ALIAS`) and an expression on a structured
    field."""
    builder = _builder(max_parallel_requests, TEXT_ALIAS, JUDGE_ALIAS)
    builder.add_column(category_sampler("product_category", CATEGORIES))
    ages = ["18-25", "25-35", "35-50", "50-65", "65+"]
    builder.add_column(category_sampler("target_age_range", ages))
    builder.add_column(
        dd.LLMStructuredColumnConfig(
            name="product",
            model_alias=TEXT_ALIAS,
            prompt=(
                "Create a product in the '{{ product_category }}' category for customers aged "
                "{{ target_age_range }}, priced between $10 and $1000."
            ),
            output_format=Product,
        )
    )
    builder.add_column(
        dd.LLMStructuredColumnConfig(
            name="customer_review",
            model_alias=TEXT_ALIAS,
            prompt=(
                "Write a review of this product:\nName: {{ product.name }}\n"
                "Description: {{ product.description }}\nPrice: {{ product.price }}"
            ),
            output_format=ProductReview,
        )
    )
    builder.add_column(
        dd.LLMJudgeColumnConfig(
            name="review_quality",
            model_alias=JUDGE_ALIAS,
            prompt=(
                "Judge this review of {{ product.name }}:\n{{ customer_review.review }}\n"
                "(rated {{ customer_review.rating }}/5)"
            ),
            scores=[
                dd.Score(
                    name=name,
                    description=f"How good the review's {name.lower()} is.",
                    options=options,
                )
                for name, options in JUDGE_SCORES
            ],
        )
    )
    builder.add_column(
        dd.ExpressionColumnConfig(
            name="review_rating", expr="{{ customer_review.rating }}", dtype="int"
        )
    )
    return builder


#: The processors of `processor_chain_config` and the columns its chat transform writes.
DROP_PROCESSOR = "drop_difficulty"
CHAT_PROCESSOR = "chat_format"


def processor_chain_config(
    max_parallel_requests: int = DEFAULT_MAX_PARALLEL_REQUESTS,
) -> DataDesignerConfigBuilder:
    """(c) Samplers, an LLM text `question`, an LLM text `answer` on it, a drop-columns
    processor (drops the sampler `difficulty` from the final dataset; data-designer keeps it
    in the dropped-columns files) and a schema-transform processor writing a chat-format
    dataset of its own (`results.load_processor_dataset(CHAT_PROCESSOR)`)."""
    builder = _builder(max_parallel_requests, TEXT_ALIAS)
    builder.add_column(category_sampler("topic", TOPICS))
    builder.add_column(category_sampler("difficulty", ["easy", "medium", "hard"]))
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="question",
            model_alias=TEXT_ALIAS,
            prompt="Ask a {{ difficulty }} customer-support question about {{ topic }}.",
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="answer",
            model_alias=TEXT_ALIAS,
            system_prompt="You are a patient support agent.",
            prompt="Answer this question: {{ question }}",
        )
    )
    builder.add_processor(
        dd.DropColumnsProcessorConfig(name=DROP_PROCESSOR, column_names=["difficulty"])
    )
    builder.add_processor(
        dd.SchemaTransformProcessorConfig(
            name=CHAT_PROCESSOR,
            template={
                "messages": [
                    {"role": "user", "content": "{{ question }}"},
                    {"role": "assistant", "content": "{{ answer }}"},
                ],
                "topic": "{{ topic | upper }}",
            },
        )
    )
    return builder


#: `skip_gate_config` skips `complaint_analysis` (and, propagated, `action_items`) here.
SKIP_WHEN = "{{ number_of_stars > 2 }}"


def skip_gate_config(
    max_parallel_requests: int = DEFAULT_MAX_PARALLEL_REQUESTS,
) -> DataDesignerConfigBuilder:
    """(d) Conditional generation (`skip=`): `complaint_analysis` has `SkipConfig(when=SKIP_WHEN)`
    (no request; the cell is None), `action_items` requires it and inherits the skip
    (`propagate_skip=True`, the default), `review_summary` requires it with
    `propagate_skip=False` and is generated for every row."""
    builder = _builder(max_parallel_requests, TEXT_ALIAS)
    builder.add_column(category_sampler("product_category", CATEGORIES))
    builder.add_column(_stars())
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="complaint_analysis",
            model_alias=TEXT_ALIAS,
            prompt=(
                "A customer rated a {{ product_category }} product {{ number_of_stars }}/5. "
                "Write a short root-cause analysis of why they are unhappy."
            ),
            skip=dd.SkipConfig(when=SKIP_WHEN),
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="action_items",
            model_alias=TEXT_ALIAS,
            prompt="Complaint analysis: {{ complaint_analysis }}\nList two action items.",
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="review_summary",
            model_alias=TEXT_ALIAS,
            propagate_skip=False,
            prompt=(
                "Summarise a {{ number_of_stars }}-star review of a {{ product_category }} product."
                "{% if complaint_analysis %} Complaint: {{ complaint_analysis }}{% endif %}"
            ),
        )
    )
    return builder


#: Per example: its LLM columns (one request per row each, unless skipped) and the columns a
#: fixed `seed_samplers` seed reproduces (single row group; see the module docstring).
EXAMPLES: dict[str, dict[str, Any]] = {
    "samplers_text_expression": {
        "config": samplers_text_expression_config,
        "llm_columns": ["product_name", "customer_review"],
        "seeded_columns": [
            "product_category", "product_subcategory", "number_of_stars", "price", "customer",
            "review_title", "price_band", "product_name", "customer_review",
        ],
        "random_columns": ["review_id"],
    },
    "structured_judge": {
        "config": structured_judge_config,
        "llm_columns": ["product", "customer_review", "review_quality"],
        "seeded_columns": [
            "product_category", "target_age_range", "product", "customer_review",
            "review_quality", "review_rating",
        ],
        "random_columns": [],
    },
    "processor_chain": {
        "config": processor_chain_config,
        "llm_columns": ["question", "answer"],
        "seeded_columns": ["topic", "question", "answer"],
        "random_columns": [],
    },
    "skip_gate": {
        "config": skip_gate_config,
        "llm_columns": ["complaint_analysis", "action_items", "review_summary"],
        "seeded_columns": [
            "product_category", "number_of_stars", "complaint_analysis", "action_items",
            "review_summary",
        ],
        "random_columns": [],
    },
}  # fmt: skip


if __name__ == "__main__":
    main()
