"""A dataset is never something other than what metadata.json says (issue: output safety).

Each test reads the output the way a user does (`pd.read_parquet(dir)`, `pyarrow.dataset`,
`rowforge check`) after the situation that once produced a wrong or unreadable dataset.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pytest
from typer.testing import CliRunner, Result

from rowforge.build import build_steps
from rowforge.errors import ConfigError, DatasetProcessingError
from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata
from rowforge.storage.output_dir import claim_output_dir

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
seed: 1
models:
  - {alias: writer, provider: mock}
columns:
  - {type: integer, name: size, low: 1, high: 9}
  - {type: llm_text, name: blurb, model: writer, prompt: "Describe a size {{ size }} box."}
"""

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0}


def invoke(*args: str | Path) -> Result:
    from rowforge.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args], env={"COLUMNS": "200"})


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def doubled(row: dict[str, int]) -> int:
    return 2 * row["id"]


STEPS = [Step("id", ids, kind="batch"), Step("double", doubled, depends_on=["id"])]


# -- 1. a reused output directory -------------------------------------------------------------


def test_a_second_run_into_a_used_directory_is_refused_with_exit_2_and_nothing_changes(
    tmp_path: Path,
) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    output = tmp_path / "dup"
    first = invoke("run", config, "-n", "300", "-o", output, "--buffer-size", "100")
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in output.rglob("*") if p.is_file()}

    second = invoke("run", config, "-n", "100", "-o", output)

    assert second.exit_code == 2, second.output
    assert "already holds a rowforge output" in second.output
    assert "--overwrite" in second.output
    assert f"rowforge resume {output}'" in second.output  # the runnable command, quoted
    assert "Traceback" not in second.output
    assert {p: p.read_bytes() for p in output.rglob("*") if p.is_file()} == before
    assert len(pd.read_parquet(output / "parquet-files")) == 300


def test_overwrite_replaces_the_earlier_output_so_only_the_new_rows_are_read_back(
    tmp_path: Path,
) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    output = tmp_path / "dup"
    assert invoke("run", config, "-n", "300", "-o", output, "--buffer-size", "100").exit_code == 0

    result = invoke("run", config, "-n", "100", "-o", output, "--overwrite")

    assert result.exit_code == 0, result.output
    assert "rowforge run: completed: 100 of 100" in result.output
    frame = pd.read_parquet(output / "parquet-files")
    assert len(frame) == 100 and list(frame.sort_index().index) == list(range(100))
    assert pads.dataset(output / "parquet-files").to_table().num_rows == 100
    assert read_metadata(output)["actual_num_records"] == 100
    assert first_violation(output) is None
    assert sorted(p.name for p in output.parent.iterdir()) == ["cfg.yaml", "dup"], (
        "the old output was removed, not left beside the new one"
    )


def test_a_directory_with_foreign_files_is_never_deleted_even_with_overwrite(
    tmp_path: Path,
) -> None:
    output = tmp_path / "mine"
    output.mkdir()
    (output / "thesis.tex").write_text("years of work", encoding="utf-8")
    with pytest.raises(ConfigError, match="not empty and is not a rowforge output"):
        claim_output_dir(output, overwrite=True)
    with pytest.raises(ConfigError, match=r"is not empty \(it holds 'thesis.tex'\)"):
        build_steps(STEPS, 10, output)
    assert (output / "thesis.tex").read_text(encoding="utf-8") == "years of work"


def test_an_empty_existing_directory_and_a_new_one_are_both_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for name in ("empty", "new/nested"):
        result = build_steps(STEPS, 10, tmp_path / name, config=RunConfig(**FAST))
        assert result.actual_records == 10


def test_the_python_api_refuses_a_used_directory_and_overwrite_replaces_it(
    tmp_path: Path,
) -> None:
    import rowforge

    config_path = tmp_path / "cfg.yaml"
    config_path.write_text(CONFIG, encoding="utf-8")
    config = rowforge.load_config(config_path)
    rowforge.build(config, 20, tmp_path / "out", rowforge.RunConfig(buffer_size=10))
    with pytest.raises(ConfigError, match="already holds a rowforge output"):
        rowforge.build(config, 5, tmp_path / "out")
    result = rowforge.build(config, 5, tmp_path / "out", overwrite=True)
    assert len(result.load_dataset()) == 5


# -- 3. a processor that renumbers the records ----------------------------------------------


def reset_index(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index(drop=True)


def reverse_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[::-1]


def rename_index(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename_axis("whatever")


@pytest.mark.parametrize(
    ("processor", "stage", "wording"),
    [
        (
            reset_index,
            "post_batch",
            r"changed the record indexes: row 0 has record index 0, "
            r"expected [1-3]0;",
        ),
        (
            reverse_rows,
            "post_batch",
            r"reordered the rows: row 0 has record index (?P<g>\d?)9, "
            r"expected (?P=g)0;",
        ),
        (
            reset_index,
            "pre_batch",
            r"changed the record indexes: row 0 has record index 0, "
            r"expected [1-3]0;",
        ),
    ],
    ids=["reset_index post_batch", "reversed post_batch", "reset_index pre_batch"],
)
def test_a_processor_that_keeps_the_count_but_changes_the_index_fails_the_run(
    tmp_path: Path, processor: object, stage: str, wording: str
) -> None:
    with pytest.raises(DatasetProcessingError) as caught:
        build_steps(
            STEPS,
            40,
            tmp_path / "out",
            config=RunConfig(buffer_size=10, **FAST),
            processors=[function_processor(processor, stage)],  # type: ignore[arg-type]
        )
    message = str(caught.value)
    name = processor.__name__  # type: ignore[attr-defined]
    assert re.search(rf"^row group \d: {stage} processor '{name}' {wording}", message), message
    assert first_violation(tmp_path / "out") is None, "what was written is still consistent"


def test_renaming_the_index_keeps_the_record_index_in_the_files(tmp_path: Path) -> None:
    build_steps(
        STEPS,
        20,
        tmp_path / "out",
        config=RunConfig(buffer_size=10, **FAST),
        processors=[function_processor(rename_index, "post_batch")],
    )
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert frame.index.name == "record_index"
    assert sorted(frame.index) == list(range(20))


def _rewrite_index(path: Path, shift: int) -> None:
    frame = pd.read_parquet(path)
    frame.index = pd.RangeIndex(len(frame)) + shift
    frame.to_parquet(path)


def test_check_reports_duplicate_record_indexes_across_files(tmp_path: Path) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=RunConfig(buffer_size=10, **FAST))
    assert first_violation(output) is None
    files = sorted((output / "parquet-files").glob("batch_*.parquet"))
    for path in files:  # what a reset_index processor used to leave behind
        frame = pd.read_parquet(path).reset_index(drop=True)
        frame.to_parquet(path)
    problem = first_violation(output)
    assert problem is not None
    assert "record index 0 is outside row group 1's records 10..19" in problem


def test_check_reports_a_record_index_outside_its_row_group(tmp_path: Path) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 30, output, config=RunConfig(buffer_size=10, **FAST))
    _rewrite_index(output / "parquet-files" / "batch_00002.parquet", shift=5)
    problem = first_violation(output)
    assert problem == (
        "parquet-files/batch_00002.parquet: record index 5 is outside row group 2's records 20..29"
    )


def test_check_reports_a_record_index_twice_in_one_file(tmp_path: Path) -> None:
    output = tmp_path / "out"
    build_steps(STEPS, 20, output, config=RunConfig(buffer_size=10, **FAST))
    path = output / "parquet-files" / "batch_00000.parquet"
    frame = pd.read_parquet(path)
    frame.index = [0] * len(frame)
    frame.to_parquet(path)
    assert first_violation(output) == (
        "parquet-files/batch_00000.parquet: 9 record indexes appear more than once in the file"
    )


# -- 4. resume with a relative seed path -------------------------------------------------------


def test_resume_finds_a_relative_seed_path_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    output = tmp_path / "sqlout"
    built = invoke(
        "run", "examples/text_to_sql.yaml", "-n", "300", "-o", output, "--buffer-size", "100"
    )
    assert built.exit_code == 0, built.output
    (output / "parquet-files" / "batch_00001.parquet").unlink()

    monkeypatch.chdir(tmp_path)  # resume from elsewhere, with a relative output path
    resumed = invoke("resume", "sqlout")

    assert resumed.exit_code == 0, resumed.output
    assert "rowforge resume: completed: 300 of 300" in resumed.output
    frame = pd.read_parquet(output / "parquet-files")
    assert sorted(frame.index) == list(range(300))
    assert first_violation(output) is None


def test_resume_in_the_same_directory_with_relative_paths_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "examples" / "data").mkdir(parents=True)
    for name in ("text_to_sql.yaml", "data/tables.csv"):
        (work / "examples" / name).write_bytes((ROOT / "examples" / name).read_bytes())
    monkeypatch.chdir(work)
    assert (
        invoke(
            "run", "examples/text_to_sql.yaml", "-n", "200", "-o", "sqlout", "--buffer-size", "100"
        ).exit_code
        == 0
    )
    os.remove("sqlout/parquet-files/batch_00000.parquet")
    resumed = invoke("resume", "sqlout")
    assert resumed.exit_code == 0, resumed.output
    assert first_violation(Path("sqlout")) is None


# -- 5. metadata after allow_resize ------------------------------------------------------------


def explode(frame: pd.DataFrame) -> pd.DataFrame:
    twice = pd.concat([frame, frame])
    twice["twice"] = range(len(twice))
    return twice


def test_a_resize_is_recorded_and_every_count_is_non_negative_and_consistent(
    tmp_path: Path,
) -> None:
    steps = [
        Step("id", ids, kind="batch"),
        Step("twice", explode, kind="batch", depends_on=["id"], allow_resize=True),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        build_steps(steps, 40, tmp_path / "out", config=RunConfig(buffer_size=10, **FAST))
    metadata = read_metadata(tmp_path / "out")
    assert metadata["target_num_records"] == 40
    assert metadata["actual_num_records"] == 80
    assert metadata["dropped_records"] == 0
    assert metadata["resized_records"] == 40
    assert [g["records_resized"] for g in metadata["row_groups"]] == [10, 10, 10, 10]
    assert [g["first_record"] for g in metadata["row_groups"]] == [0, 20, 40, 60]
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert sorted(frame.index) == list(range(80))
    assert first_violation(tmp_path / "out") is None


def test_check_reports_counts_that_contradict_each_other(tmp_path: Path) -> None:
    import json

    output = tmp_path / "out"
    build_steps(STEPS, 20, output, config=RunConfig(buffer_size=10, **FAST))
    document = read_metadata(output)
    document["dropped_records"] = -40
    (output / "metadata.json").write_text(json.dumps(document), encoding="utf-8")
    assert first_violation(output) == (
        "metadata.json: dropped_records is -40; counts are never negative"
    )
