"""Steps that produce several columns, and per-step skip conditions that propagate (both engines).

A skipped cell is counted once, as skipped (INV-4); its row is kept with the step's `skip_value`;
a dependent with `propagate_skip` skips that row too, one without runs on the skip value. Both
engines decide the same skips (INV-11) because the row group decides them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.build import build_steps
from rowforge.errors import ConfigError
from rowforge.processors import FunctionProcessor
from rowforge.recipe import load_recipe
from rowforge.scheduler import RowFailed, RunConfig, Step, build_plan, run_steps
from rowforge.storage.check import first_violation

ENGINES = ["async", "sync"]


def numbers(frame: pd.DataFrame) -> list[int]:
    return [int(index) for index in frame.index]


def odd(row: dict[str, Any]) -> bool:
    return row["n"] % 2 == 1


def person(row: dict[str, Any]) -> dict[str, Any]:
    """A cell step with two extra columns."""
    return {"person": f"p{row['n']}", "first": f"f{row['n']}", "last": f"l{row['n']}"}


def people(frame: pd.DataFrame) -> pd.DataFrame:
    """A batch step with an extra column."""
    return pd.DataFrame(
        {"double": [2 * n for n in frame["n"]], "triple": [3 * n for n in frame["n"]]},
        index=frame.index,
    )


calls: list[tuple[str, int]] = []


async def answer(row: dict[str, Any]) -> str:
    calls.append(("answer", row["n"]))
    await asyncio.sleep(0)
    return f"a{row['n']}"


def review(row: dict[str, Any]) -> str:
    calls.append(("review", row["n"]))
    return f"r:{row['answer']}"


def lenient(row: dict[str, Any]) -> str:
    return f"l:{row['answer']}"


batch_calls: list[int] = []  # the number of rows of each call of `lengths`


def lengths(frame: pd.DataFrame) -> list[int]:
    batch_calls.append(len(frame))
    calls.extend(("lengths", n) for n in frame["n"])
    return [len(text) for text in frame["answer"]]


def skip_steps() -> list[Step]:
    return [
        Step("n", numbers, kind="batch"),
        Step("answer", answer, depends_on=["n"], skip_when=odd, skip_value="(none)"),
        Step("review", review, depends_on=["answer"]),  # propagates: skipped where answer was
        Step("lenient", lenient, depends_on=["answer"], propagate_skip=False),
        Step("lengths", lengths, kind="batch", depends_on=["answer"]),
    ]


def run(steps: list[Step], engine: str, num_records: int = 10, **options: Any) -> Any:
    calls.clear()
    batch_calls.clear()
    return run_steps(steps, num_records, config=RunConfig(engine=engine, buffer_size=4), **options)


@pytest.mark.parametrize("engine", ENGINES)
def test_extra_columns_of_cell_and_batch_steps_land_in_the_dataset(engine: str) -> None:
    steps = [
        Step("n", numbers, kind="batch"),
        Step("person", person, depends_on=["n"], extra_columns=("first", "last")),
        Step("double", people, kind="batch", depends_on=["n"], extra_columns=["triple"]),
        # dependencies on extra columns resolve to the steps that produce them
        Step("greeting", lambda row: f"hi {row['first']} {row['triple']}",
             depends_on=["last", "triple"]),
    ]
    result = run(steps, engine)
    frame = result.dataset
    assert list(frame.columns) == ["n", "person", "first", "last", "double", "triple", "greeting"]
    assert result.actual_records == 10
    assert frame.loc[3, "first"] == "f3" and frame.loc[3, "last"] == "l3"
    assert frame.loc[3, "triple"] == 9 and frame.loc[3, "greeting"] == "hi f3 9"
    # accounting is per step: one cell per row for a step, whatever its number of columns
    assert result.generated_cells == {"n": 10, "person": 10, "double": 10, "greeting": 10}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dependency_on_an_extra_column_sees_the_producing_steps_columns(engine: str) -> None:
    steps = [
        Step("n", numbers, kind="batch"),
        Step("person", person, depends_on=["n"], extra_columns=("first", "last")),
        Step("greeting", lambda row: f"hi {row['first']} {row['last']}", depends_on=["last"]),
    ]
    result = run(steps, engine)
    assert result.dataset.loc[4, "greeting"] == "hi f4 l4"
    assert result.generated_cells == {"n": 10, "person": 10, "greeting": 10}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cell_step_that_leaves_out_an_extra_column_fails_that_row(engine: str) -> None:
    def half(row: dict[str, Any]) -> dict[str, Any]:
        out = {"person": "p", "first": "f", "last": "l"}
        if row["n"] == 5:
            del out["last"]
        return out

    steps = [Step("n", numbers, kind="batch"), Step("person", half, depends_on=["n"],
                                                     extra_columns=("first", "last"))]
    result = run(steps, engine)
    assert result.actual_records == 9
    assert result.failed_cells["person"] == 1
    reasons = [r for group in result.row_groups for r in group.drop_reasons]
    assert any("returned no value for columns ['last']" in r for r in reasons), reasons


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_step_without_its_extra_column_raises_naming_it(engine: str) -> None:
    steps = [
        Step("n", numbers, kind="batch"),
        Step("double", lambda f: pd.DataFrame({"double": f["n"]}, index=f.index), kind="batch",
             depends_on=["n"], extra_columns=["triple"]),
    ]
    with pytest.raises(Exception, match="without column 'triple'"):
        run(steps, engine)


def test_columns_produced_twice_or_repeated_are_refused() -> None:
    with pytest.raises(ConfigError, match="column 'first' is produced by both step 'a' and step"):
        build_plan(
            [Step("a", person, extra_columns=["first"]), Step("first", person)], 10, 5
        )
    with pytest.raises(ConfigError, match="extra_columns repeat a column"):
        Step("a", person, extra_columns=["b", "b"])
    with pytest.raises(ConfigError, match="extra_columns must be non-empty strings"):
        Step("a", person, extra_columns=[""])


@pytest.mark.parametrize("engine", ENGINES)
def test_skipped_cells_are_kept_with_the_skip_value_and_propagate(engine: str) -> None:
    result = run(skip_steps(), engine)
    frame = result.dataset
    assert result.outcome == "completed" and result.actual_records == 10
    odd_rows = [n for n in range(10) if n % 2]
    assert frame.loc[odd_rows, "answer"].tolist() == ["(none)"] * 5
    assert frame.loc[odd_rows, "review"].isna().all()  # skipped by propagation
    assert frame.loc[odd_rows, "lenient"].tolist() == ["l:(none)"] * 5  # no propagation
    assert frame.loc[2, "review"] == "r:a2" and frame.loc[2, "lengths"] == 2
    assert frame.loc[odd_rows, "lengths"].isna().all()  # a batch step skips rows too
    # nothing ran on a skipped row, and every skip was counted exactly once (INV-4)
    assert {n for _, n in calls} == {0, 2, 4, 6, 8}
    assert sorted(calls) == sorted(
        (step, n) for step in ("answer", "review", "lengths") for n in (0, 2, 4, 6, 8)
    )
    assert result.skipped_cells == {"n": 0, "answer": 5, "review": 5, "lenient": 0, "lengths": 5}
    assert result.generated_cells == {"n": 10, "answer": 5, "review": 5, "lenient": 10,
                                      "lengths": 5}
    assert set(result.never_started_cells.values()) == {0}


def test_both_engines_decide_the_same_skips() -> None:
    results = [run(skip_steps(), engine) for engine in ENGINES]
    pd.testing.assert_frame_equal(results[0].dataset, results[1].dataset)
    assert results[0].skipped_cells == results[1].skipped_cells


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_step_skipped_on_every_row_is_never_called(engine: str) -> None:
    steps = [
        Step("n", numbers, kind="batch"),
        Step("answer", answer, depends_on=["n"], skip_when=lambda row: True),
        Step("lengths", lengths, kind="batch", depends_on=["answer"]),
    ]
    result = run(steps, engine)
    assert calls == [] and batch_calls == []
    assert result.actual_records == 10
    assert result.skipped_cells == {"n": 0, "answer": 10, "lengths": 10}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_skip_condition_that_raises_skips_the_cell_and_says_so(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(row: dict[str, Any]) -> bool:
        if row["n"] == 3:
            raise KeyError("nope")
        return False

    steps = [Step("n", numbers, kind="batch"), Step("answer", answer, depends_on=["n"],
                                                    skip_when=broken)]
    result = run(steps, engine)
    assert result.skipped_cells["answer"] == 1 and result.actual_records == 10
    assert "step 'answer': skip_when raised for record 3" in caplog.text


@pytest.mark.parametrize("engine", ENGINES)
def test_the_skip_condition_reads_what_pre_batch_processors_left(engine: str) -> None:
    def make_even(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(n=[2 * n for n in frame["n"]])

    steps = [Step("n", numbers, kind="batch"),
             Step("answer", answer, depends_on=["n"], skip_when=odd)]
    result = run(steps, engine, processors=[FunctionProcessor(make_even, "pre_batch")])
    assert result.skipped_cells["answer"] == 0  # every n is even after the processor


def test_skip_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="skip_when must be callable"):
        Step("a", answer, depends_on=["n"], skip_when="n > 1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="propagate_skip must be true or false"):
        Step("a", answer, propagate_skip="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="step 'a': skip_when decides from upstream values"):
        build_plan([Step("a", answer, skip_when=odd)], 10, 5)
    with pytest.raises(ConfigError, match="skip_when cannot be combined with allow_resize"):
        Step("a", numbers, kind="batch", allow_resize=True, skip_when=odd)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_built_output_with_kept_skips_passes_check_and_resumes_its_recipe(
    engine: str, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    result = build_steps(skip_steps(), 10, output, config=RunConfig(engine=engine, buffer_size=4))
    assert result.actual_records == 10
    assert first_violation(output) is None
    metadata = json.loads((output / "metadata.json").read_text())
    assert metadata["skipped_cells"] == {"n": 0, "answer": 5, "review": 5, "lenient": 0,
                                         "lengths": 5}
    frame = pd.read_parquet(output / "parquet-files")
    assert len(frame) == 10
    steps, _, _ = load_recipe(output)
    answer_step = next(step for step in steps if step.name == "answer")
    assert answer_step.skip_when is odd and answer_step.skip_value == "(none)"
    assert not next(step for step in steps if step.name == "lenient").propagate_skip


def test_check_finds_a_written_row_whose_cell_was_neither_generated_nor_kept_skipped(
    tmp_path: Path,
) -> None:
    """The kept-skips evidence is what lets `check` accept skipped cells in written rows:
    without it, the same output is reported."""
    output = tmp_path / "out"
    build_steps(skip_steps(), 10, output, config=RunConfig(buffer_size=4))
    events = output / "events.jsonl"
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    for line in lines:
        line.get("details", {}).pop("kept_skips", None)
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    problem = first_violation(output)
    assert problem is not None and "cells of one column generated" in problem


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_step_fails_single_rows_with_row_failed(engine: str) -> None:
    def picky(frame: pd.DataFrame) -> list[Any]:
        return [RowFailed(ValueError("no threes")) if n % 3 == 0 else n for n in frame["n"]]

    steps = [
        Step("n", numbers, kind="batch"),
        Step("picky", picky, kind="batch", depends_on=["n"]),
        Step("after", lambda row: row["picky"] + 1, depends_on=["picky"]),
    ]
    result = run(steps, engine)
    assert sorted(result.dataset.index) == [1, 2, 4, 5, 7, 8]
    assert result.failed_cells["picky"] == 4 and result.skipped_cells["after"] == 4
    assert result.generated_cells["after"] == 6
    assert result.drop_reasons() == {"step 'picky' failed: ValueError: no threes": 4}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_multi_column_batch_step_fails_a_row_through_its_own_column(engine: str) -> None:
    def pair(frame: pd.DataFrame) -> pd.DataFrame:
        own = [RowFailed(ValueError("odd")) if n % 2 else n for n in frame["n"]]
        return pd.DataFrame({"pair": own, "other": list(frame["n"])}, index=frame.index)

    steps = [Step("n", numbers, kind="batch"),
             Step("pair", pair, kind="batch", depends_on=["n"], extra_columns=["other"])]
    result = run(steps, engine)
    assert sorted(result.dataset.index) == [0, 2, 4, 6, 8]
    assert result.failed_cells["pair"] == 5
