"""Every shipped example builds: the output honours the contract and the columns hold what the
example promises. The examples run on mock models, so 40 records take well under a second
(support_dialogues waits out its simulated 429s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.api import BuildResult, build
from rowforge.config.dataset import DatasetConfig, load_config
from rowforge.processors import DropColumns, RenameColumns, SchemaTransform
from rowforge.storage.check import first_violation

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NUM_RECORDS = 40
#: Drops a mock example may have: its injected transient faults outlasting the retries.
TRANSIENT = ("HTTP 429", "HTTP 500")


def expected_columns(config: DatasetConfig) -> list[str]:
    """The output columns: the config's columns after its processors."""
    names = list(config.column_names)
    for processor in config.processors:
        if isinstance(processor, DropColumns):
            names = [name for name in names if name not in processor.columns]
        elif isinstance(processor, RenameColumns):
            names = [processor.mapping.get(name, name) for name in names]
        elif isinstance(processor, SchemaTransform):
            names.append(processor.column)
    return names


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Build each example once per module, on demand."""
    root = tmp_path_factory.mktemp("examples")
    built: dict[str, BuildResult] = {}

    def get(name: str) -> BuildResult:
        if name not in built:
            built[name] = build(load_config(EXAMPLES / f"{name}.yaml"), NUM_RECORDS, root / name)
        return built[name]

    return get


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_example_builds_with_consistent_metadata_and_a_clean_check(
    path: Path, outputs: Any
) -> None:
    result = outputs(path.stem)
    metadata = result.metadata
    dataset = result.load_dataset()

    assert metadata["outcome"] in ("completed", "partial"), metadata["first_error"]
    if metadata["outcome"] == "partial":
        for group in metadata["row_groups"]:
            for reason in group["drop_reasons"]:
                assert any(fault in reason for fault in TRANSIENT), reason
    else:
        assert metadata["first_error"] is None

    groups = metadata["row_groups"]
    assert metadata["target_num_records"] == NUM_RECORDS
    assert metadata["actual_num_records"] == len(dataset) == result.num_records
    assert metadata["actual_num_records"] == sum(group["records_written"] for group in groups)
    assert metadata["dropped_records"] == NUM_RECORDS - metadata["actual_num_records"]
    assert metadata["dropped_records"] == sum(group["records_dropped"] for group in groups)
    assert metadata["total_num_batches"] == len(groups)
    assert metadata["file_paths"] == [group["file"] for group in groups if group["file"]]
    assert metadata["num_completed_batches"] == len(metadata["file_paths"])
    assert all((result.output_dir / file).is_file() for file in metadata["file_paths"])
    assert metadata["early_shutdown"] is False
    assert metadata["finished_at"] is not None

    expected = expected_columns(load_config(path))
    assert list(dataset.columns) == expected
    assert list(metadata["schema"]) == expected
    assert dataset.index.is_unique
    assert set(dataset.index) <= set(range(NUM_RECORDS))
    assert dataset.notna().all().all()

    assert first_violation(result.output_dir) is None


def test_support_dialogues_messages_are_json_turns_of_the_user_and_the_assistant(
    outputs: Any,
) -> None:
    dataset = outputs("support_dialogues").load_dataset()
    for issue, reply, text in zip(
        dataset["issue"], dataset["reply"], dataset["messages"], strict=True
    ):
        messages = json.loads(text)
        assert [message["role"] for message in messages] == ["user", "assistant"]
        assert [message["content"] for message in messages] == [issue, reply]


def test_support_dialogues_verdicts_score_each_reply_from_1_to_5(outputs: Any) -> None:
    dataset = outputs("support_dialogues").load_dataset()
    for verdict in dataset["verdict"]:
        assert isinstance(verdict, dict)
        assert set(verdict) == {"score", "reason"}
        assert isinstance(verdict["score"], int) and 1 <= verdict["score"] <= 5
        assert isinstance(verdict["reason"], str)


def test_text_to_sql_rows_are_grounded_in_the_seed_table(outputs: Any) -> None:
    dataset = outputs("text_to_sql").load_dataset()
    tables = pd.read_csv(EXAMPLES / "data" / "tables.csv")
    known = set(zip(tables["table_name"], tables["ddl"], strict=True))
    assert set(zip(dataset["table_name"], dataset["ddl"], strict=True)) <= known
    for sql in dataset["sql"]:
        assert isinstance(sql["query"], str)
        assert all(isinstance(table, str) for table in sql["tables"])


def test_product_qa_renames_the_question_and_answer_to_prompt_and_completion(
    outputs: Any,
) -> None:
    dataset = outputs("product_qa").load_dataset()
    assert {"prompt", "completion"} <= set(dataset.columns)
    assert not {"question", "answer"} & set(dataset.columns)
    for title, name, category in zip(
        dataset["title"], dataset["product_name"], dataset["category"], strict=True
    ):
        assert title == f"{name} - {category}"
