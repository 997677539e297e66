"""The data-designer test support: each example config builds through `DataDesigner.create()`
against the mock server (with data-designer's own engine unless `ENGINES` says otherwise), every
record arrives, and no connection goes anywhere but the mock server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "data_designer.interface",
    reason="data-designer is not installed (the `data-designer` extra: pip install -e '.[dev]')",
)

from tests.integrations import dd_support as support
from tests.reliability.netguard import NetworkGuard

#: The engines every test runs on; add "rowforge" to run them through
#: `rowforge.integrations.data_designer.enable()` as well.
ENGINES = ("dd", "rowforge")
RECORDS = 20


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    with support.engine(request.param):
        yield request.param


@pytest.fixture
def server() -> Iterator[support.DataDesignerMockServer]:
    with support.mock_server() as running:
        yield running


def _create(
    server: support.DataDesignerMockServer, tmp_path: Path, example: str, records: int = RECORDS
) -> tuple[Any, int]:
    """Build `example` through `DataDesigner.create`; returns the results and the number of
    requests the server got beyond one per LLM cell (the per-alias health checks)."""
    designer = support.make_data_designer(server.url, tmp_path)
    before = server.request_count
    results = designer.create(support.EXAMPLES[example]["config"](), num_records=records)
    return results, server.request_count - before


def _aliases(example: str) -> int:
    builder = support.EXAMPLES[example]["config"]()
    return len({alias for c in builder.get_column_configs() for alias in c.get_model_aliases()})


def test_samplers_llm_text_and_expressions(
    engine: str, server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    results, requests = _create(server, tmp_path, "samplers_text_expression")
    dataset = results.load_dataset()
    assert len(dataset) == RECORDS and results.count_records() == RECORDS
    extra = requests - RECORDS * 2
    assert 0 <= extra <= _aliases("samplers_text_expression")
    for row in dataset.to_dict(orient="records"):
        assert row["product_subcategory"] in support.SUBCATEGORIES[row["product_category"]]
        assert 1 <= row["number_of_stars"] <= 5
        assert row["review_id"].startswith("REV-")
        assert row["review_title"] == (
            f"{row['customer']['first_name']} on {row['product_subcategory']}: "
            f"{row['number_of_stars']}/5"
        )
        assert row["price_band"] == ("premium" if row["price"] >= 60 else "budget")
        assert row["product_name"].startswith("Regarding ")
        assert row["customer_review"].startswith("Regarding ")


def test_structured_columns_and_a_judge(
    engine: str, server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    results, requests = _create(server, tmp_path, "structured_judge")
    dataset = results.load_dataset()
    assert len(dataset) == RECORDS
    assert 0 <= requests - RECORDS * 3 <= _aliases("structured_judge")
    for row in dataset.to_dict(orient="records"):
        support.Product.model_validate(row["product"])
        review = support.ProductReview.model_validate(row["customer_review"])
        assert row["review_rating"] == review.rating
        for name, options in support.JUDGE_SCORES:
            assert row["review_quality"][name]["score"] in options
            assert isinstance(row["review_quality"][name]["reasoning"], str)


def test_processors_drop_a_column_and_write_a_chat_dataset(
    engine: str, server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    results, requests = _create(server, tmp_path, "processor_chain")
    dataset = results.load_dataset()
    assert len(dataset) == RECORDS
    assert 0 <= requests - RECORDS * 2 <= _aliases("processor_chain")
    assert "difficulty" not in dataset.columns
    assert {"topic", "question", "answer"} <= set(dataset.columns)
    chat = results.load_processor_dataset(support.CHAT_PROCESSOR)
    assert len(chat) == RECORDS
    pairs = sorted(
        (topic.upper(), question, answer)
        for topic, question, answer in zip(
            dataset["topic"], dataset["question"], dataset["answer"], strict=True
        )
    )
    transformed = sorted(
        (row["topic"], row["messages"][0]["content"], row["messages"][1]["content"])
        for row in chat.to_dict(orient="records")
    )
    assert transformed == pairs
    roles = {tuple(m["role"] for m in row) for row in chat["messages"]}
    assert roles == {("user", "assistant")}


def test_skip_when_and_its_propagation(
    engine: str, server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    results, requests = _create(server, tmp_path, "skip_gate")
    dataset = results.load_dataset()
    assert len(dataset) == RECORDS
    rows = dataset.to_dict(orient="records")
    low = [row for row in rows if row["number_of_stars"] <= 2]
    high = [row for row in rows if row["number_of_stars"] > 2]
    assert low and high, "a 20-record uniform 1..5 sample without both kinds of row"
    for row in low:
        assert row["complaint_analysis"].startswith("Regarding ")
        assert row["action_items"].startswith("Regarding ")
    for row in high:
        assert _missing(row["complaint_analysis"]) and _missing(row["action_items"])
    assert all(row["review_summary"].startswith("Regarding ") for row in rows)
    # Skipped cells send no request: one per row for the summary, two per low row.
    assert 0 <= requests - (RECORDS + 2 * len(low)) <= _aliases("skip_gate")


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def test_preview_runs_against_the_mock(
    engine: str, server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    designer = support.make_data_designer(server.url, tmp_path)
    preview = designer.preview(support.processor_chain_config(), num_records=5)
    assert preview.dataset is not None and len(preview.dataset) == 5
    assert "difficulty" not in preview.dataset.columns
    assert len(preview.processor_artifacts[support.CHAT_PROCESSOR]) == 5


def test_a_fixed_seed_repeats_samplers_expressions_and_mock_replies(
    engine: str, server: support.DataDesignerMockServer, tmp_path: Path
) -> None:
    example = support.EXAMPLES["samplers_text_expression"]
    runs = []
    for attempt in range(2):
        support.seed_samplers(11)
        results, _ = _create(server, tmp_path / str(attempt), "samplers_text_expression")
        runs.append(results.load_dataset())
    first, second = runs
    for column in example["seeded_columns"]:
        if column == "customer":  # a Faker person carries a uuid4 of its own
            people = [
                [{k: v for k, v in person.items() if k != "uuid"} for person in run["customer"]]
                for run in runs
            ]
            assert people[0] == people[1]
        else:
            assert first[column].tolist() == second[column].tolist(), column
    for column in example["random_columns"]:
        assert first[column].tolist() != second[column].tolist(), column


def _is_loopback(host: Any) -> bool:
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return host == "localhost"


def test_data_designer_connects_only_to_the_mock_server(
    engine: str,
    server: support.DataDesignerMockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Health checks, generation, telemetry and profiling (tiktoken) included: every
    connection and name lookup is the mock server's 127.0.0.1 port."""
    guard = NetworkGuard(monkeypatch, forbid=False)
    results, _ = _create(server, tmp_path, "structured_judge", records=8)
    attempts = guard.addresses()
    assert len(results.load_dataset()) == 8
    assert attempts, "the guard saw no connection at all"
    for via, address in attempts:
        if via == "loop.create_connection" and address[0] == "sock":
            address = address[1]
        host, port = address[0], address[1]
        assert _is_loopback(host), (via, address)
        assert port in (server.port, str(server.port)), (via, address)
    from data_designer.engine.models import facade, telemetry

    assert telemetry.TELEMETRY_ENABLED is False and facade.TELEMETRY_ENABLED is False


def test_the_server_process_answers_data_designer_and_counts(engine: str, tmp_path: Path) -> None:
    """The out-of-process server the benchmark uses: `stats()` counts what it answered."""
    with support.mock_server_process(latency_ms=(1, 2)) as server:
        designer = support.make_data_designer(server.url, tmp_path)
        results = designer.create(support.processor_chain_config(), num_records=5)
        stats = server.stats()
    assert len(results.load_dataset()) == 5
    assert 0 <= stats["requests"] - 5 * 2 <= _aliases("processor_chain")
    assert server.process.returncode == 0
