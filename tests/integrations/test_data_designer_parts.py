"""The pieces of the data-designer embedding on their own: processor stages, dropped expression
rows, error mapping. (The end-to-end behaviour is in test_data_designer_engine.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

pytest.importorskip(
    "data_designer.interface",
    reason="data-designer is not installed (the `data-designer` extra: pip install -e '.[dev]')",
)

from data_designer.engine.models import errors as dd_errors

from rowforge.errors import (
    DatasetProcessingError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
    StepOutputError,
)
from rowforge.integrations.data_designer.scheduler import ProcessorStage
from rowforge.integrations.data_designer.steps import _batch_call, retryable_equivalent
from rowforge.scheduler import RowFailed, RunConfig, Step, run_steps


class FakeRunner:
    """data-designer's ProcessorRunner interface: positional frames in and out."""

    def __init__(self, pre: Any = None, post: Any = None) -> None:
        self.pre, self.post = pre, post
        self.seen: list[tuple[str, list[int], int | None]] = []

    def run_pre_batch_on_df(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.seen.append(("pre", list(frame.index), None))
        return self.pre(frame) if self.pre else frame

    def run_post_batch(
        self, frame: pd.DataFrame, *, current_batch_number: int | None, strict_row_count: bool
    ) -> pd.DataFrame:
        assert strict_row_count
        self.seen.append(("post", list(frame.index), current_batch_number))
        return self.post(frame) if self.post else frame


def numbers(frame: pd.DataFrame) -> list[int]:
    return [int(i) for i in frame.index]


STEPS = [Step("n", numbers, kind="batch"), Step("twice", lambda row: 2 * row["n"], depends_on="n")]


def test_processor_stages_see_positional_frames_and_keep_record_indexes() -> None:
    runner = FakeRunner(pre=lambda f: f.assign(n=f["n"] + 100), post=lambda f: f.assign(tag="x"))
    processors = [ProcessorStage(runner, "pre_batch", 4), ProcessorStage(runner, "post_batch", 4)]
    result = run_steps(STEPS, 10, config=RunConfig(buffer_size=4), processors=processors)
    frame = result.dataset
    assert list(frame.index) == list(range(10))  # record indexes survived the round trips
    assert frame.loc[5, "n"] == 105 and frame.loc[5, "twice"] == 210  # pre-batch before cells
    assert (frame["tag"] == "x").all()
    assert {(stage, tuple(rows), batch) for stage, rows, batch in runner.seen} == {
        ("pre", (0, 1, 2, 3), None),
        ("pre", (0, 1, 2, 3), None),
        ("pre", (0, 1), None),
        ("post", (0, 1, 2, 3), 0),
        ("post", (0, 1, 2, 3), 1),
        ("post", (0, 1), 2),
    }


def test_a_processor_that_drops_a_row_is_refused_by_rowforges_guard() -> None:
    runner = FakeRunner(post=lambda f: f.iloc[1:])
    with pytest.raises(DatasetProcessingError):
        run_steps(
            STEPS, 8, config=RunConfig(buffer_size=4),
            processors=[ProcessorStage(runner, "post_batch", 4)],
        )


class Expression:
    """An expression generator that leaves out the rows whose template rendered empty."""

    def __init__(self, keep: Any) -> None:
        self.keep = keep

    async def agenerate(self, frame: pd.DataFrame) -> pd.DataFrame:
        kept = frame[frame["n"].map(lambda n: bool(self.keep(n)))]
        return kept.assign(label=[f"#{n}" for n in kept["n"]])


def test_rows_an_expression_leaves_out_fail_alone() -> None:
    call = _batch_call(Expression(lambda n: n % 3), ("label",), drops_rows=True)
    frame = pd.DataFrame({"n": [0, 1, 2, 3, 4]}, index=[10, 11, 12, 13, 14])
    values = asyncio.run(call(frame))
    assert values[1:3] == ["#1", "#2"] and values[4] == "#4"
    failed = [v for v in values if isinstance(v, RowFailed)]
    assert len(failed) == 2 and "dropped the row" in str(failed[0].error)


def test_a_full_column_generator_that_changes_the_row_count_fails_the_batch() -> None:
    call = _batch_call(Expression(lambda n: n % 3), ("label",), drops_rows=False)
    frame = pd.DataFrame({"n": [0, 1, 2]}, index=[0, 1, 2])
    with pytest.raises(StepOutputError, match="returned 2 rows for 3"):
        asyncio.run(call(frame))


def test_rows_an_expression_invents_are_refused() -> None:
    class Inventing:
        async def agenerate(self, frame: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"label": ["a"]}, index=[99])

    call = _batch_call(Inventing(), ("label",), drops_rows=True)
    with pytest.raises(StepOutputError, match="not given to it"):
        asyncio.run(call(pd.DataFrame({"n": [1, 2]}, index=[0, 1])))


class ProviderError(Exception):
    def __init__(self, retry_after: float | None, status_code: int | None) -> None:
        super().__init__("provider said no")
        self.retry_after, self.status_code = retry_after, status_code


def _raised(error: Exception, cause: Exception) -> Exception:
    try:
        raise error from cause
    except Exception as raised:
        return raised


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (dd_errors.ModelRateLimitError("429"), RateLimitError),
        (dd_errors.ModelTimeoutError("slow"), ProviderTimeoutError),
        (dd_errors.ModelAPIConnectionError("reset"), ProviderConnectionError),
        (dd_errors.ModelInternalServerError("500"), RetryableError),
    ],
)
def test_data_designers_retryable_model_errors_become_rowforges(
    error: Exception, expected: type[Exception]
) -> None:
    mapped = retryable_equivalent(_raised(error, ProviderError(2.5, 503)))
    assert type(mapped) is expected
    assert mapped.retry_after == 2.5  # type: ignore[union-attr]


def test_other_errors_stay_what_they_are() -> None:
    assert retryable_equivalent(dd_errors.ModelBadRequestError("400")) is None
    assert retryable_equivalent(ValueError("bug")) is None
    status = retryable_equivalent(_raised(dd_errors.ModelInternalServerError("x"),
                                          ProviderError(None, 502)))
    assert getattr(status, "status", None) == 502
