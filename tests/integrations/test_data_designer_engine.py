"""rowforge as data-designer's engine: the same datasets through `DataDesigner.create()`, the
switch, the progress snapshots, and what rowforge hands back to data-designer's own engine."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip(
    "data_designer.interface",
    reason="data-designer is not installed (the `data-designer` extra: pip install -e '.[dev]')",
)

import rowforge.integrations.data_designer as rowforge_dd
from rowforge.errors import ConfigError
from rowforge.integrations.data_designer import scheduler as rowforge_scheduler
from rowforge.progress import ProgressSnapshot
from tests.integrations import dd_support as support

RECORDS = 40


@pytest.fixture
def server() -> Iterator[support.DataDesignerMockServer]:
    with support.mock_server() as running:
        yield running


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rowforge runs data-designer started (a spy on `RowforgeScheduler.run`)."""
    started: list[int] = []
    original = rowforge_scheduler.RowforgeScheduler.run

    async def counting(self: Any) -> None:
        started.append(1)
        await original(self)

    monkeypatch.setattr(rowforge_scheduler.RowforgeScheduler, "run", counting)
    return started


def _build(
    engine: str, server: support.DataDesignerMockServer, tmp_path: Path, example: str,
    records: int = RECORDS, **run_config: Any,
) -> pd.DataFrame:
    with support.engine(engine):
        designer = support.make_data_designer(
            server.url, tmp_path / engine, run_config=support.quiet_run_config(**run_config)
        )
        support.seed_samplers(2026)
        results = designer.create(support.EXAMPLES[example]["config"](), num_records=records)
        return results.load_dataset()


def _without_uuid(column: pd.Series) -> list[Any]:
    return [{k: v for k, v in person.items() if k != "uuid"} for person in column]


@pytest.fixture
def log_emojis_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """data-designer picks the emojis of its log lines with the stdlib's global `random`, the
    stream its person sampler draws ages and education from; its own engine logs more lines
    than it does on rowforge, so the two would see different draws. The emojis get a `Random`
    of their own here, so the sampler's stream depends on the seed alone."""
    import data_designer.logging as dd_logging
    from data_designer.engine.column_generators.generators import samplers

    monkeypatch.setattr(dd_logging, "random", random.Random(0))
    monkeypatch.setattr(samplers, "random", random.Random(0))


@pytest.mark.parametrize("example", sorted(support.EXAMPLES))
def test_each_example_gives_data_designers_own_deterministic_columns(
    example: str,
    server: support.DataDesignerMockServer,
    tmp_path: Path,
    runs: list[int],
    log_emojis_apart: None,
) -> None:
    """Samplers, expressions, LLM text, structured and judge columns, processors and skips:
    with the same seed, the deterministic columns equal those of data-designer's engine, and
    every record is produced."""
    own = _build("dd", server, tmp_path, example)
    assert runs == []
    embedded = _build("rowforge", server, tmp_path, example)
    assert runs == [1], "the build did not run on rowforge"
    assert len(own) == len(embedded) == RECORDS
    assert set(own.columns) == set(embedded.columns)
    for column in support.EXAMPLES[example]["seeded_columns"]:
        if column == "customer":
            assert _without_uuid(own[column]) == _without_uuid(embedded[column])
        else:
            mine, theirs = embedded[column].tolist(), own[column].tolist()
            assert mine == theirs or pd.Series(mine).equals(pd.Series(theirs)), column


def test_several_row_groups_are_written_through_data_designers_storage(
    server: support.DataDesignerMockServer, tmp_path: Path, runs: list[int]
) -> None:
    dataset = _build(
        "rowforge", server, tmp_path, "samplers_text_expression", records=250, buffer_size=100
    )
    assert runs == [1] and len(dataset) == 250
    files = sorted((tmp_path / "rowforge" / "artifacts").rglob("parquet-files/*.parquet"))
    assert len(files) == 3, files
    assert [len(pd.read_parquet(path)) for path in files] == [100, 100, 50]
    assert dataset["review_id"].is_unique


def test_a_preview_runs_on_rowforge(
    server: support.DataDesignerMockServer, tmp_path: Path, runs: list[int]
) -> None:
    with rowforge_dd.enabled():
        designer = support.make_data_designer(server.url, tmp_path)
        preview = designer.preview(support.EXAMPLES["skip_gate"]["config"](), num_records=7)
    assert runs == [1]
    assert preview.dataset is not None and len(preview.dataset) == 7


def test_disable_gives_data_designer_its_own_engine_back(
    server: support.DataDesignerMockServer, tmp_path: Path, runs: list[int]
) -> None:
    from data_designer.engine.dataset_builders.dataset_builder import DatasetBuilder
    from data_designer.engine.models.clients.model_request_executor import ModelRequestExecutor

    prepare, execute = DatasetBuilder._prepare_async_run, ModelRequestExecutor._execute_async
    rowforge_dd.enable()
    rowforge_dd.enable()  # idempotent: a second call must not wrap the first
    assert rowforge_dd.is_enabled()
    rowforge_dd.disable()
    rowforge_dd.disable()
    assert not rowforge_dd.is_enabled()
    assert DatasetBuilder._prepare_async_run is prepare
    assert ModelRequestExecutor._execute_async is execute
    dataset = _build("dd", server, tmp_path, "processor_chain", records=5)
    assert len(dataset) == 5 and runs == []


def test_enabled_restores_what_was_there(tmp_path: Path) -> None:
    with rowforge_dd.enabled():
        assert rowforge_dd.is_enabled()
        with rowforge_dd.enabled():
            pass
        assert rowforge_dd.is_enabled()  # the inner block leaves the outer switch on
    assert not rowforge_dd.is_enabled()


def test_the_host_receives_progress_snapshots(
    server: support.DataDesignerMockServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snapshots: list[ProgressSnapshot] = []
    caplog.set_level("INFO", logger="data_designer.rowforge")
    with rowforge_dd.enabled(on_progress=snapshots.append):
        designer = support.make_data_designer(server.url, tmp_path)
        designer.create(support.EXAMPLES["processor_chain"]["config"](), num_records=30)
    assert snapshots and snapshots[-1].final
    assert snapshots[-1].records_written == snapshots[-1].records_target == 30
    steps = {step.name: step for step in snapshots[-1].steps}
    assert steps["question"].done == 30 and steps["answer"].done == 30
    assert "rowforge: 30/30 records (30 written)" in caplog.text


def test_enabling_without_data_designer_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "data_designer.engine.dataset_builders", None)
    with pytest.raises(ConfigError, match=r"pip install 'rowforge\[data-designer\]'"):
        rowforge_dd.enable()
    assert not rowforge_dd.is_enabled()


def test_prompt_templates_compile_once_per_environment_while_rowforge_is_on(
    server: support.DataDesignerMockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data-designer compiles a prompt's Jinja template on every render; with rowforge on,
    once per environment. The rendered prompts are the same (the mock's replies, which depend
    on the prompt, are compared by the example test above)."""
    import jinja2

    compiles: list[str] = []
    original = jinja2.Environment.compile

    def counting(self: Any, source: Any, *args: Any, **kwargs: Any) -> Any:
        compiles.append(str(source)[:40])
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    own = _build("dd", server, tmp_path, "processor_chain", records=30)
    compiled_by_dd = len(compiles)
    compiles.clear()
    embedded = _build("rowforge", server, tmp_path, "processor_chain", records=30)
    assert len(own) == len(embedded) == 30
    assert compiled_by_dd >= 2 * 30  # two prompts per row, each compiled every time
    assert len(compiles) < 30, compiles


def test_side_effect_columns_arrive_as_on_data_designers_engine(
    server: support.DataDesignerMockServer, tmp_path: Path, log_emojis_apart: None
) -> None:
    """An LLM column's `__trace` and `__reasoning_content` side-effect columns are produced by
    its step (`extra_columns`) with the values data-designer's own engine gives them."""
    import data_designer.config as dd
    from data_designer.config.utils.trace_type import TraceType

    def config() -> Any:
        builder = dd.DataDesignerConfigBuilder(
            model_configs=support.model_configs(4, aliases=(support.TEXT_ALIAS,))
        )
        builder.add_column(support.category_sampler("topic", support.TOPICS))
        builder.add_column(
            dd.LLMTextColumnConfig(
                name="question", model_alias=support.TEXT_ALIAS, prompt="Ask about {{ topic }}.",
                with_trace=TraceType.ALL_MESSAGES, extract_reasoning_content=True,
            )
        )
        builder.add_column(dd.ExpressionColumnConfig(name="n", expr="{{ question__trace|length }}"))
        return builder

    datasets = []
    for engine in ("dd", "rowforge"):
        with support.engine(engine):
            designer = support.make_data_designer(server.url, tmp_path / engine)
            support.seed_samplers(5)
            datasets.append(designer.create(config(), num_records=12).load_dataset())
    own, embedded = datasets
    assert {"question__trace", "question__reasoning_content"} <= set(embedded.columns)
    assert set(own.columns) == set(embedded.columns)
    for column in ("topic", "question", "question__trace", "n"):
        assert own[column].astype(str).tolist() == embedded[column].astype(str).tolist(), column


def test_each_models_cap_holds_at_the_server(tmp_path: Path) -> None:
    """The model alias's `max_parallel_requests` caps its step: the server never answers more
    of its requests at once."""
    import data_designer.config as dd

    builder = dd.DataDesignerConfigBuilder(
        model_configs=support.model_configs(3, aliases=(support.TEXT_ALIAS,))
    )
    builder.add_column(support.category_sampler("topic", support.TOPICS))
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="question", model_alias=support.TEXT_ALIAS, prompt="Ask about {{ topic }}."
        )
    )
    settings = support.MockSettings(latency_ms=(20.0, 30.0))
    with support.mock_server(settings) as server, rowforge_dd.enabled():
        designer = support.make_data_designer(server.url, tmp_path)
        dataset = designer.create(builder, num_records=60).load_dataset()
    assert len(dataset) == 60
    assert server.peak_in_flight == 3  # reached, never passed
