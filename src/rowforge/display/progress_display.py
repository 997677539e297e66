"""`ProgressDisplay`: what a person watching a run sees, from `ProgressSnapshot` values.

One component for both places a run is watched from:

* an interactive terminal: a rich `Live` view redrawn in place (a header, one line per step, one
  line per model), with log records printed above it and nothing left behind when it ends;
* anything else (CI logs, `| tee`, nohup): no control codes at all, one plain line every
  `interval_s` seconds and one at the end, so a log file reads as a history.

Why it is built the way it is:

* `update` is the engine's `on_progress` callback, called from the run's event-loop thread. It
  must cost next to nothing: it stores the snapshot and redraws at most `max_redraws_per_s`
  times a second, 4 by default (a redraw renders rich tables: about 2.5 ms on the 2-core
  machine, so 10 a second cost 5% of a zero-latency run's throughput and 4 cost about 1%;
  `benchmarks/progress_overhead.py`). The final snapshot is always drawn.
* Each terminal size query is a syscall, and rich's Console makes one per render unless its size
  is fixed; the display reads it once at start and fixes it (and re-reads it only after a
  SIGWINCH, when it can install a handler: on the main thread).
* Log records and the view share one Console and one lock. rich prints a record above a running
  Live, but stopping a Live is several writes (final draw, newline, cursor-up/erase of every
  line): a record printed from another thread in between lands inside the region being erased,
  which leaves a "ghost" bar line on screen and cuts the record. Holding the lock around the
  stop and around every print makes each record land wholly before or wholly after the stop.
* Stray `print()`s to a terminal stdout/stderr while the view is up are routed the same way, so
  they cannot break the view either; pipes are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import FrameType, TracebackType
from typing import IO, Any, Self, TextIO, cast

from rich.console import Console, Group, RenderableType
from rich.file_proxy import FileProxy
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from rowforge.display.format import format_count, format_duration, format_rate
from rowforge.progress.snapshot import ModelProgress, ProgressSnapshot, StepProgress

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
BAR_WIDTH = 20
_NAME_WIDTH = 24
_ERRORS_WIDTH = 18

_LEVEL_STYLES = {
    logging.DEBUG: "dim",
    logging.INFO: "",
    logging.WARNING: "yellow",
    logging.ERROR: "bold red",
    logging.CRITICAL: "bold red reverse",
}
_OUTCOME_STYLES = {"complete": "bold green", "partial": "bold yellow"}


def _level_style(levelno: int) -> str:
    """The style of the highest level at or below `levelno` (custom levels fall in between)."""
    style = ""
    for level, level_style in sorted(_LEVEL_STYLES.items()):
        if levelno >= level:
            style = level_style
    return style


def _counts(mapping: Mapping[str, int]) -> str:
    """`{"429": 3, "timeout": 1}` as "429:3 timeout:1", or "-" when empty."""
    parts = [f"{key}:{format_count(value)}" for key, value in sorted(mapping.items()) if value]
    return " ".join(parts) or "-"


def _row_groups(row_groups: Mapping[str, int]) -> str:
    parts = [f"{state} {format_count(n)}" for state, n in row_groups.items() if n]
    return ", ".join(parts) or "-"


def plain_line(label: str, snapshot: ProgressSnapshot) -> str:
    """The snapshot as one line without control codes (the non-terminal mode's output).

    Same figures as the live view, fields separated by " | ", steps and models last so the
    start of the line reads the same from one interval to the next.
    """
    head = (
        f"{label}: {snapshot.state} {format_count(snapshot.records_settled)}"
        f"/{format_count(snapshot.records_target)} records"
        f" ({format_count(snapshot.records_written)} written)"
        f" | {format_rate(snapshot.recent_records_per_s)} recent,"
        f" {format_rate(snapshot.records_per_s)} avg"
        f" | ETA {format_duration(snapshot.eta_s)}"
        f" | elapsed {format_duration(snapshot.elapsed_s)}"
        f" | row groups: {_row_groups(snapshot.row_groups)}"
    )
    steps = [
        f"step {step.name} {format_count(step.settled)}/{format_count(step.total)}"
        f" failed {format_count(step.failed)} skipped {format_count(step.skipped)}"
        f" retries {format_count(step.retries)} 429s {format_count(step.rate_limited)}"
        for step in snapshot.steps
    ]
    models = [
        f"model {model.alias} in flight {format_count(model.in_flight)}"
        f" requests {format_count(model.requests)} errors {_counts(model.errors)}"
        f" tokens {format_count(model.prompt_tokens)}/{format_count(model.completion_tokens)}"
        f" latency {format_duration(model.recent_latency_s)}"
        for model in snapshot.models
    ]
    return " | ".join([head, *steps, *models])


def render_snapshot(label: str, snapshot: ProgressSnapshot) -> RenderableType:
    """The live view of one snapshot: two header lines, a steps table, a models table.

    Every figure goes through the fixed-width formatters and every name is cut with an
    ellipsis, so the view keeps its height and width as the numbers grow.
    """
    header = Text.assemble(
        (label, "bold"),
        " · ",
        (snapshot.state, "cyan"),
        " · ",
        f"{format_count(snapshot.records_settled)}/{format_count(snapshot.records_target)}"
        f" records settled, {format_count(snapshot.records_written)} written",
        " · ",
        f"{format_rate(snapshot.recent_records_per_s)} recent,"
        f" {format_rate(snapshot.records_per_s)} avg",
        no_wrap=True,
        overflow="ellipsis",
    )
    timing = Text(
        f"ETA {format_duration(snapshot.eta_s)} · elapsed {format_duration(snapshot.elapsed_s)}"
        f" · in flight {format_count(snapshot.in_flight)}"
        f" · row groups: {_row_groups(snapshot.row_groups)}",
        no_wrap=True,
        overflow="ellipsis",
    )
    return Group(header, timing, _steps_table(snapshot.steps), _models_table(snapshot.models))


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(
            column,
            justify="left" if index == 0 else "right",
            no_wrap=True,
            overflow="ellipsis",
            max_width=_NAME_WIDTH if index == 0 else None,
        )
    return table


def _steps_table(steps: Iterable[StepProgress]) -> Table:
    table = _table("step", "progress", "done", "failed", "skipped", "retries", "429s")
    for step in steps:
        total = step.total
        table.add_row(
            step.name,
            ProgressBar(total=max(total, 1), completed=min(step.settled, total), width=BAR_WIDTH),
            f"{format_count(step.settled)}/{format_count(total)}",
            Text(format_count(step.failed), style="red" if step.failed else ""),
            format_count(step.skipped),
            format_count(step.retries),
            format_count(step.rate_limited),
        )
    return table


def _models_table(models: Iterable[ModelProgress]) -> Table:
    table = _table("model", "in flight", "requests", "errors", "tokens in/out", "latency")
    for model in models:
        table.add_row(
            model.alias,
            format_count(model.in_flight),
            format_count(model.requests),
            Text(
                _counts(model.errors),
                style="red" if any(model.errors.values()) else "",
                no_wrap=True,
                overflow="ellipsis",
            ),
            f"{format_count(model.prompt_tokens)}/{format_count(model.completion_tokens)}",
            format_duration(model.recent_latency_s),
        )
    return table


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """On the main thread, hold a SIGINT (Ctrl-C) back until the block ends, then deliver it.

    rich writes a frame and only then clears its buffer; a KeyboardInterrupt raised between the
    two (a Ctrl-C arriving while a frame is written) leaves the frame in the buffer, and the next
    write (the view's stop) writes it again without the cursor-up that erases it: a ghost view
    stays on screen. An interrupt raised while a frame is being rendered leaves the view's
    recorded height out of step with the screen the same way. So every write of the display
    runs with the interrupt deferred; the handler that was installed (Python's, asyncio's, the
    CLI's) then gets it, a moment later. Other threads cannot get KeyboardInterrupt; nothing to do.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    caught: list[FrameType | None] = []

    def defer(signum: int, frame: FrameType | None) -> None:
        caught.append(frame)

    if previous is None:  # installed outside Python: leave it alone
        yield
        return
    signal.signal(signal.SIGINT, defer)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)


class _DisplayLogHandler(logging.Handler):
    """Prints log records through the display's Console, under the display's lock.

    Formatting happens outside the lock (a traceback can be long); the print inside it, so a
    record never interleaves with a redraw or with the stop of the live view.
    """

    def __init__(self, display: ProgressDisplay) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self._display = display

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self._display._print_above(Text(message, style=_level_style(record.levelno)))
        except Exception:
            self.handleError(record)


class _LockedFileProxy(FileProxy):
    """rich's stdout/stderr proxy (prints go above the view), taking the display's lock."""

    def __init__(self, lock: threading.RLock, console: Console, file: IO[str]) -> None:
        super().__init__(console, file)
        self._lock = lock

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)

    def flush(self) -> None:
        with self._lock:
            super().flush()


class ProgressDisplay:
    """Shows a run's progress from its snapshots; a context manager.

    `with ProgressDisplay() as display:` installs a log handler on the `logger` logger ("rowforge",
    where the run's warnings go; None installs nothing), so its records print above the view
    instead of through the root handler (`propagate` is off meanwhile). Pass `display.update` as
    the run's `on_progress`. After the block, `display.summary(...)` prints the run's summary;
    updates after the summary are ignored.

    `clock` (seconds, monotonic) times redraws and plain lines; tests inject one. An `update`
    before `start` starts the display; whoever starts it must stop it (the `with` block does),
    or the logger keeps `propagate` off.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        interval_s: float = 10.0,
        label: str = "rowforge run",
        max_redraws_per_s: float = 4.0,
        logger: str | None = "rowforge",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval_s > 0 or not max_redraws_per_s > 0:
            raise ValueError("interval_s and max_redraws_per_s must be positive")
        self.console = console if console is not None else Console(stderr=True)
        self.interval_s = interval_s
        self.label = label
        self._min_redraw_gap_s = 1.0 / max_redraws_per_s
        self._logger_name = logger
        self._clock = clock
        # One lock for every write the display makes: redraws, log records, stop, summary.
        self._lock = threading.RLock()
        self._handler: _DisplayLogHandler | None = None
        self._interactive = False
        self._started = False
        self._stopped = False
        self._summarized = False
        self._live: Live | None = None
        self._latest: ProgressSnapshot | None = None
        self._reporting = False  # a snapshot with cell work was seen
        self._last_draw: float | None = None
        self._last_line: float | None = None
        self._last_printed: ProgressSnapshot | None = None
        self._saved_size: tuple[int | None, int | None] | None = None
        self._resized = False
        self._saved_sigwinch: Any = None
        self._saved_propagate: bool | None = None
        self._saved_stdio: tuple[TextIO, TextIO] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Decide the mode, fix the console size from one reading, install the log handler."""
        if self._started:
            return
        self._started = True
        console = self.console
        self._interactive = console.is_terminal and not console.is_dumb_terminal
        self._fix_size()
        if self._interactive:
            self._watch_resizes()
        if self._logger_name is not None:
            logger = logging.getLogger(self._logger_name)
            logger.addHandler(self.logging_handler())
            self._saved_propagate = logger.propagate
            logger.propagate = False

    def stop(self) -> None:
        """Remove the live view (nothing of it stays on screen), then the log handler.

        A plain-mode display prints the latest snapshot first if its last line is older.
        Idempotent.
        """
        if not self._started or self._stopped:
            return
        with self._lock:
            self._stopped = True
            self._close_view()
            if not self._interactive and self._should_print_last():
                self._print_plain(cast(ProgressSnapshot, self._latest))
        if self._logger_name is not None and self._handler is not None:
            logger = logging.getLogger(self._logger_name)
            logger.removeHandler(self._handler)
            if self._saved_propagate is not None:
                logger.propagate = self._saved_propagate
        self._unwatch_resizes()
        self._restore_size()

    # -- the callback ------------------------------------------------------------------------

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Take a snapshot (the run's `on_progress`); redraw or print when it is time.

        Cheap when it is not time: a few comparisons under an uncontended lock.
        """
        with self._lock:
            if self._summarized or self._stopped:
                return
            if not self._started:
                self.start()
            self._latest = snapshot
            if not self._reporting:
                if not snapshot.has_cell_work:
                    return
                self._reporting = True
            now = self._clock()
            if self._interactive:
                self._update_live(snapshot, now)
            elif (
                snapshot.final
                or self._last_line is None
                or now - self._last_line >= self.interval_s
            ):
                self._print_plain(snapshot)
                self._last_line = now

    def _update_live(self, snapshot: ProgressSnapshot, now: float) -> None:
        if self._resized:
            self._resized = False
            self._apply_terminal_size()
        elif (
            self._live is not None
            and not snapshot.final
            and self._last_draw is not None
            and now - self._last_draw < self._min_redraw_gap_s
        ):
            return  # dropped: the next update that is due draws the latest snapshot
        self._last_draw = now
        with _sigint_deferred():
            if self._live is None:
                self._live = Live(
                    console=self.console,
                    auto_refresh=False,
                    transient=True,
                    redirect_stdout=False,
                    redirect_stderr=False,
                    get_renderable=self._current_renderable,
                )
                self._live.start(refresh=True)
                self._redirect_stdio()
            else:
                self._live.refresh()

    def _current_renderable(self) -> RenderableType:
        return render_snapshot(self.label, self._latest) if self._latest is not None else ""

    # -- logging -----------------------------------------------------------------------------

    def logging_handler(self) -> logging.Handler:
        """The handler that prints records above the view (the same one on every call).

        `with display:` installs it on the "rowforge" logger; install it on other loggers
        yourself (and remove it after) if their records may arrive during a run.
        """
        if self._handler is None:
            self._handler = _DisplayLogHandler(self)
        return self._handler

    def _print_above(self, text: Text) -> None:
        """Print one record: above the live view while it runs, as a plain line otherwise."""
        with self._lock, _sigint_deferred():
            self.console.print(text, soft_wrap=True)

    # -- summary -----------------------------------------------------------------------------

    @property
    def latest(self) -> ProgressSnapshot | None:
        """The newest snapshot the display received (None before the first)."""
        return self._latest

    def summary(
        self,
        outcome: str,
        *,
        snapshot: ProgressSnapshot | None = None,
        records_written: int | None = None,
        records_target: int | None = None,
        elapsed_s: float | None = None,
        parquet_dir: str | os.PathLike[str] | None = None,
        metadata_path: str | os.PathLike[str] | None = None,
        resume_command: str | None = None,
        records_kept: int = 0,
    ) -> None:
        """Print the run's summary once, after removing the live view if it is still up.

        Figures come from `snapshot` (default: the latest one the display got); the keyword
        arguments override them (the CLI knows the written count from the result even when no
        snapshot had cell work). `resume_command`, for an interrupted run, is printed verbatim
        as the way to finish it. `records_kept` (a resume: the records written before it) is
        left out of the rate. Every later `update` and `summary` is a no-op.
        """
        with self._lock, _sigint_deferred():
            if self._summarized:
                return
            self._summarized = True
            self._close_view()
            for line in summary_lines(
                self.label,
                outcome,
                snapshot if snapshot is not None else self._latest,
                records_written=records_written,
                records_target=records_target,
                elapsed_s=elapsed_s,
                parquet_dir=parquet_dir,
                metadata_path=metadata_path,
                resume_command=resume_command,
                records_kept=records_kept,
            ):
                self.console.print(line, soft_wrap=True)

    # -- internals (callers hold self._lock) ----------------------------------------------------

    def _close_view(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            with _sigint_deferred():
                try:
                    live.stop()
                finally:
                    self._restore_stdio()

    def _should_print_last(self) -> bool:
        return (
            self._reporting
            and self._latest is not None
            and self._latest is not self._last_printed
            and not self._summarized
        )

    def _print_plain(self, snapshot: ProgressSnapshot) -> None:
        self._last_printed = snapshot
        with _sigint_deferred():
            self.console.print(Text(plain_line(self.label, snapshot)), soft_wrap=True)

    def _redirect_stdio(self) -> None:
        """Route prints to a terminal stdout/stderr above the view (pipes are left alone)."""
        if self._saved_stdio is not None:
            return
        saved = (sys.stdout, sys.stderr)
        proxies: list[TextIO] = []
        for stream in saved:
            is_tty = False
            with contextlib.suppress(Exception):
                is_tty = not isinstance(stream, FileProxy) and stream.isatty()
            proxies.append(
                cast(TextIO, _LockedFileProxy(self._lock, self.console, stream))
                if is_tty
                else stream
            )
        self._saved_stdio = saved
        sys.stdout, sys.stderr = proxies

    def _restore_stdio(self) -> None:
        if self._saved_stdio is None:
            return
        for proxy in (sys.stdout, sys.stderr):
            if isinstance(proxy, _LockedFileProxy):
                with contextlib.suppress(Exception):
                    proxy.flush()
        sys.stdout, sys.stderr = self._saved_stdio
        self._saved_stdio = None

    # -- terminal size -----------------------------------------------------------------------

    def _fix_size(self) -> None:
        """Read the console's size once and fix it, so rendering stops querying the terminal.

        A console whose caller fixed both width and height is left as it is.
        """
        console = self.console
        saved = (console._width, console._height)
        if saved[0] is not None and saved[1] is not None:
            return
        self._saved_size = saved
        console.size = console.size  # one reading (a syscall), then fixed

    def _restore_size(self) -> None:
        if self._saved_size is not None:
            self.console._width, self.console._height = self._saved_size
            self._saved_size = None

    def _watch_resizes(self) -> None:
        """On SIGWINCH, note a resize (the next update re-reads the size). Only the main thread
        can install a signal handler, and only a size the display fixed itself is re-read."""
        if (
            self._saved_size is None
            or not hasattr(signal, "SIGWINCH")
            or threading.current_thread() is not threading.main_thread()
        ):
            return

        chained: list[Any] = [None]

        def on_resize(signum: int, frame: FrameType | None) -> None:
            self._resized = True
            if callable(chained[0]):
                chained[0](signum, frame)

        with contextlib.suppress(ValueError, OSError):
            chained[0] = signal.signal(signal.SIGWINCH, on_resize)
            self._saved_sigwinch = (chained[0],)

    def _unwatch_resizes(self) -> None:
        if self._saved_sigwinch is None:
            return
        (previous,) = self._saved_sigwinch
        self._saved_sigwinch = None
        with contextlib.suppress(ValueError, OSError, TypeError):
            signal.signal(signal.SIGWINCH, previous)

    def _apply_terminal_size(self) -> None:
        console = self.console
        try:
            columns, lines = os.get_terminal_size(console.file.fileno())
        except (AttributeError, ValueError, OSError):
            return
        if columns > 0 and lines > 0:
            console.size = (columns, lines)


def summary_lines(
    label: str,
    outcome: str,
    snapshot: ProgressSnapshot | None,
    *,
    records_written: int | None = None,
    records_target: int | None = None,
    elapsed_s: float | None = None,
    parquet_dir: str | os.PathLike[str] | None = None,
    metadata_path: str | os.PathLike[str] | None = None,
    resume_command: str | None = None,
    records_kept: int = 0,
) -> list[Text]:
    """The summary as lines (exact counts with thousands separators: this is the record)."""
    written, target, elapsed = records_written, records_target, elapsed_s
    if snapshot is not None:
        written = snapshot.records_written if written is None else written
        target = snapshot.records_target if target is None else target
        elapsed = snapshot.elapsed_s if elapsed is None else elapsed
    head = Text.assemble(
        (f"{label}: ", "bold"),
        (outcome, _OUTCOME_STYLES.get(outcome, "bold red")),
        f": {_exact(written)} of {_exact(target)} records written",
    )
    if elapsed is not None:
        # a resume's `written` includes `records_kept` from before; the rate is this run's own
        done = None if written is None else written - records_kept
        rate = done / elapsed if done is not None and elapsed > 0 else None
        head.append(f" in {format_duration(elapsed)} ({format_rate(rate)})")
    lines = [head]
    if snapshot is not None:
        width = max((len(step.name) for step in snapshot.steps), default=0)
        for step in snapshot.steps:
            lines.append(
                Text(
                    f"  step  {step.name:<{width}}  done {step.done:,}  skipped {step.skipped:,}"
                    f"  failed {step.failed:,}  retries {step.retries:,}"
                    f"  rate-limited {step.rate_limited:,}"
                )
            )
        width = max((len(model.alias) for model in snapshot.models), default=0)
        for model in snapshot.models:
            errors = ", ".join(f"{k}:{v:,}" for k, v in sorted(model.errors.items()) if v)
            lines.append(
                Text(
                    f"  model {model.alias:<{width}}  requests {model.requests:,}"
                    f"  tokens in {model.prompt_tokens:,} out {model.completion_tokens:,}"
                    + (f"  errors {errors}" if errors else "")
                )
            )
    if parquet_dir is not None:
        lines.append(Text(f"  parquet:  {os.fspath(parquet_dir)}/"))
    if metadata_path is not None:
        lines.append(Text(f"  metadata: {os.fspath(metadata_path)}"))
    if resume_command is not None:
        lines.append(Text("Interrupted. To finish the run:", style="bold yellow"))
        lines.append(Text(f"  {resume_command}"))
    return lines


def _exact(count: int | None) -> str:
    return "?" if count is None else f"{count:,}"


__all__ = [
    "LOG_FORMAT",
    "ProgressDisplay",
    "plain_line",
    "render_snapshot",
    "summary_lines",
]
