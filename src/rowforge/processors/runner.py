"""Running the processors of one stage, with the row-count contract (INV-5).

Any exception from a processor becomes `DatasetGenerationError` naming the row group, stage and
processor, with the original chained; returning something that is not a DataFrame with the same
number of rows becomes `DatasetProcessingError`. The engine then fails the row group and aborts
the run (INV-6): nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rowforge.errors import DatasetGenerationError, DatasetProcessingError, describe_error
from rowforge.processors.base import Processor, Stage


def run_stage(
    processors: Sequence[Processor], stage: Stage, frame: pd.DataFrame, row_group: int
) -> pd.DataFrame:
    """Apply every processor of `stage` in order; return the transformed frame."""
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
            raise DatasetProcessingError(
                f"{where} changed the row count from {len(frame)} to {len(result)}; "
                "processors must keep every row"
            )
        frame = result
    return frame
