"""Running the processors of one stage, with the row contract (INV-5).

Any exception from a processor becomes `DatasetGenerationError` naming the row group, stage and
processor, with the original chained. A processor must return a DataFrame with the same rows:
the same number, and the same record indexes in the same order. The record index is how a row
is known in the output (each appears once in the dataset); a processor that calls
`reset_index(drop=True)` or reorders rows keeps the count but would write duplicate or shuffled
record indexes. The runner does not decide what happens then: it stops at the first processor
that broke the contract and returns what it returned, with a sentence saying how. The engine
records the rows given and returned as evidence for the row group's `row_count_unchanged` guard,
which refuses the transition; the engine then fails the row group with `DatasetProcessingError`
and aborts the run (INV-6): nothing is dropped or renumbered silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pandas as pd

from rowforge.errors import DatasetGenerationError, DatasetProcessingError, describe_error
from rowforge.processors.base import Processor, Stage


@attrs.frozen
class StageResult:
    """What a stage produced. `breach` says how a processor broke the row contract, in which
    case `frame` is that processor's output and later processors did not run."""

    frame: pd.DataFrame
    breach: str | None = None


def run_stage(
    processors: Sequence[Processor], stage: Stage, frame: pd.DataFrame, row_group: int
) -> StageResult:
    """Apply every processor of `stage` in order; stop at the first that breaks the row
    contract. A processor that raises, or returns something other than a DataFrame, raises."""
    for processor in processors:
        if processor.stage != stage:
            continue
        where = f"row group {row_group}: {stage} processor {processor.name!r}"
        try:
            result = processor.process(frame)
        except Exception as error:
            raise DatasetGenerationError(f"{where} failed: {describe_error(error)}") from error
        if not isinstance(result, pd.DataFrame):
            raise DatasetProcessingError(
                f"{where} returned {type(result).__name__}, not a DataFrame"
            )
        if len(result) != len(frame):
            return StageResult(
                result,
                f"{where} changed the row count from {len(frame)} to {len(result)}; "
                "processors must keep every row",
            )
        if not result.index.equals(frame.index):
            return StageResult(result, f"{where} {_index_change(frame.index, result.index)}")
        if result.index.name != frame.index.name:
            result.index = frame.index  # same values; keep the index's name for the files
        frame = result
    return StageResult(frame)


def _index_change(before: pd.Index, after: pd.Index) -> str:
    """Say how a processor changed the record indexes (the row count is already equal)."""
    expected, found = before.tolist(), after.tolist()
    pairs = enumerate(zip(expected, found, strict=True))
    position = next((i for i, (a, b) in pairs if a != b), 0)
    reordered = set(expected) == set(found)
    change = "reordered the rows" if reordered else "changed the record indexes"
    return (
        f"{change}: row {position} has record index {found[position]!r}, expected "
        f"{expected[position]!r}; processors must keep each row's record index and order "
        "(do not call reset_index or sort)"
    )
