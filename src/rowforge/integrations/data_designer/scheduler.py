"""`RowforgeScheduler`: rowforge's engine behind the interface data-designer's builder drives.

data-designer 0.9.7's `DatasetBuilder` asks `_prepare_async_run` for a scheduler and a buffer
manager, runs `scheduler.run()` on its background event loop, calls `request_cancel()` from the
main thread on Ctrl-C, and afterwards reads `traces`, `early_shutdown`, `partial_row_groups`,
`first_non_retryable_error` and the buffer manager's `actual_num_records`. This class offers
exactly that, and runs the build as one rowforge run:

- the generators are rowforge steps (`steps.GeneratorSteps`);
- data-designer's processors run at rowforge's processor stages (pre-batch after the seed steps,
  post-batch before the write), where rowforge's row-count guard checks what they return;
- each finished row group goes through data-designer's buffer manager and its finalize callback,
  so the parquet files, metadata and loaders are data-designer's own;
- the outcome maps onto data-designer's: a processor, sink or internal failure raises its
  `DatasetGenerationError` (the rowforge error chained), an early shutdown sets `early_shutdown`
  (data-designer then warns of, or raises for, the partial dataset as it always does), and a
  cancellation propagates after every worker was awaited.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from rowforge.display.format import format_count, format_duration, format_rate
from rowforge.errors import DatasetGenerationError, EarlyShutdownError
from rowforge.processors import Processor
from rowforge.progress import ProgressSnapshot
from rowforge.scheduler import Plan, RunConfig, RunResult, run_plan_async

#: The host's progress lines go to data-designer's logger tree, which it configures.
progress_log = logging.getLogger("data_designer.rowforge")

ProgressCallback = Callable[[ProgressSnapshot], None]


class BufferManagerSink:
    """A rowforge sink that hands each finished row group to data-designer's buffer manager
    and then to its finalize callback (which writes the parquet file and metadata). Writes are
    serialised: the buffer manager's counters are not meant for two threads at once."""

    def __init__(self, buffer_manager: Any, on_finalize_row_group: Callable[[int], None] | None):
        self._buffers = buffer_manager
        self._finalize = on_finalize_row_group
        self._lock = threading.Lock()

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        with self._lock:
            self._buffers.init_row_group(row_group, len(frame))
            self._buffers.replace_dataframe(row_group, frame.reset_index(drop=True))
            if self._finalize is not None:  # a preview reads the buffer afterwards instead
                self._finalize(row_group)
        return None


class ProcessorStage(Processor):
    """data-designer's processors of one stage, run by its own `ProcessorRunner`.

    data-designer's processors see a plain positional index; the rows keep their record indexes
    on the way back when their number did not change (when it did, rowforge's row-count guard
    refuses the result, and data-designer's strict check usually raised first)."""

    def __init__(self, runner: Any, stage: str, buffer_size: int) -> None:
        self.stage = "pre_batch" if stage == "pre_batch" else "post_batch"
        self._runner = runner
        self._buffer_size = buffer_size

    @property
    def name(self) -> str:
        return f"data-designer {self.stage} processors"

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        plain = frame.reset_index(drop=True)
        if self.stage == "pre_batch":
            result = self._runner.run_pre_batch_on_df(plain)
        else:
            row_group = int(frame.index[0]) // self._buffer_size if len(frame) else None
            result = self._runner.run_post_batch(
                plain, current_batch_number=row_group, strict_row_count=True
            )
        if len(result) == len(frame):
            result = result.set_axis(frame.index)
        return result  # type: ignore[no-any-return]


class RowforgeScheduler:
    """Runs one data-designer build (or preview) on rowforge's async engine."""

    def __init__(
        self,
        plan: Plan,
        config: RunConfig,
        *,
        sink: BufferManagerSink,
        processors: Sequence[Processor],
        row_groups: Sequence[int] | None,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = 5.0,
    ) -> None:
        self._plan = plan
        self._config = config
        self._sink = sink
        self._processors = tuple(processors)
        self._row_groups = row_groups
        self._on_progress = on_progress
        self._progress_interval_s = progress_interval_s
        self._last_progress_line = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancel_requested = threading.Event()
        self.traces: list[Any] = []
        self.result: RunResult | None = None
        self.latest_snapshot: ProgressSnapshot | None = None
        self._early_shutdown = False
        self._partial_row_groups: tuple[int, ...] = ()
        self._first_error: Exception | None = None

    # -- what data-designer's builder reads --------------------------------------------------

    @property
    def early_shutdown(self) -> bool:
        return self._early_shutdown

    @property
    def partial_row_groups(self) -> tuple[int, ...]:
        """Row groups an early shutdown salvaged with some of their rows."""
        return self._partial_row_groups

    @property
    def first_non_retryable_error(self) -> Exception | None:
        return self._first_error

    def request_cancel(self) -> None:
        """Cancel the run from any thread (data-designer calls it from the main thread on
        Ctrl-C). The run's task is cancelled in its loop; rowforge awaits every worker before
        the cancellation propagates (INV-2)."""
        self._cancel_requested.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._cancel_requested.is_set():
            raise asyncio.CancelledError
        from data_designer.engine.dataset_builders.errors import (
            DatasetGenerationError as HostGenerationError,
        )

        try:
            result = await run_plan_async(
                self._plan,
                config=self._config,
                sink=self._sink,
                processors=self._processors,
                row_groups=self._row_groups,
                on_progress=self._progress,
            )
        except EarlyShutdownError as error:
            # data-designer reports the partial (or empty) dataset itself and points at "the
            # warnings above": this is the one that says which model failed and how.
            progress_log.warning("rowforge ended the build early: %s", error)
            self._finish(error.result)  # type: ignore[attr-defined]
            self._early_shutdown = True
            return
        except DatasetGenerationError as error:
            failed: RunResult | None = getattr(error, "result", None)
            if failed is not None:
                self._finish(failed)
            self._first_error = error
            raise HostGenerationError(f"rowforge: {error}") from error
        self._finish(result)

    def _finish(self, result: RunResult) -> None:
        self.result = result
        first = result.first_exception
        self._first_error = first if isinstance(first, Exception) else None
        self._partial_row_groups = tuple(
            summary.index
            for summary in result.row_groups
            if summary.records_written and summary.records_dropped
        )

    def _progress(self, snapshot: ProgressSnapshot) -> None:
        """Keep the snapshot for the host, hand it to its callback, and log a line every
        `progress_interval_s` (data-designer's `RunConfig.progress_interval`)."""
        self.latest_snapshot = snapshot
        if self._on_progress is not None:
            self._on_progress(snapshot)
        if snapshot.final or snapshot.elapsed_s - self._last_progress_line >= (
            self._progress_interval_s
        ):
            self._last_progress_line = snapshot.elapsed_s
            progress_log.info("%s", progress_line(snapshot))


def progress_line(snapshot: ProgressSnapshot) -> str:
    """One log line: records settled of the target, rate, ETA, requests in flight."""
    done = f"{format_count(snapshot.records_settled)}/{format_count(snapshot.records_target)}"
    return (
        f"rowforge: {done} records ({format_count(snapshot.records_written)} written), "
        f"{format_rate(snapshot.recent_records_per_s).removesuffix('/s')} records/s, "
        f"{snapshot.in_flight} in flight, ETA {format_duration(snapshot.eta_s)}"
    )
