"""ProgressDisplay on recorded consoles: what it draws, when, and what it prints.

A terminal console (force_terminal) gets the live view; a console on a plain file gets one line
per interval. Time comes from an injected clock, so the redraw cap and the plain-mode cadence
are checked exactly rather than by sleeping."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console
from rich.live import Live

from rowforge.display import ProgressDisplay, plain_line
from tests.display.factory import MODEL_ALIASES, STEP_NAMES, snapshot
from tests.display.vt import replay


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def terminal() -> Console:
    return Console(record=True, force_terminal=True, width=100, height=30, file=io.StringIO())


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=100, height=30), out


@pytest.fixture
def refreshes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts Live.refresh calls (each one a redraw written to the terminal)."""
    calls: list[str] = []
    original = Live.refresh

    def counting(self: Live) -> None:
        calls.append("refresh")
        original(self)

    monkeypatch.setattr(Live, "refresh", counting)
    return calls


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[Live]:
    created: list[Live] = []
    original = Live.start

    def recording(self: Live, refresh: bool = False) -> None:
        created.append(self)
        original(self, refresh)

    monkeypatch.setattr(Live, "start", recording)
    return created


@pytest.fixture(autouse=True)
def rowforge_logger() -> Iterator[logging.Logger]:
    """The "rowforge" logger at WARNING, put back as it was after each test."""
    logger = logging.getLogger("rowforge")
    level, propagate, handlers = logger.level, logger.propagate, list(logger.handlers)
    logger.setLevel(logging.WARNING)
    yield logger
    logger.setLevel(level)
    logger.propagate = propagate
    logger.handlers[:] = handlers


def test_live_view_has_a_line_per_step_and_model(clock: Clock) -> None:
    """The screen while the view is up (replayed through the terminal emulator): a header,
    then one row per step and one per model with their figures."""
    console = terminal()
    with ProgressDisplay(console, clock=clock) as display:
        display.update(snapshot(20, 100))
        clock.now += 1
        display.update(snapshot(40, 100))
        lines = replay(console.file.getvalue(), 100)  # type: ignore[attr-defined]
    assert len(lines) == 4 + len(STEP_NAMES) + len(MODEL_ALIASES)
    assert any("40/100 records settled, 40 written" in line for line in lines)
    for index, name in enumerate(STEP_NAMES):
        [row] = [line for line in lines if line.startswith(name)]
        assert row.split()[2:] == ["40/100", str(index), "0", str(3 * index), str(index)], row
        assert "━" in row
    for alias in MODEL_ALIASES:
        [row] = [line for line in lines if line.startswith(alias)]
        assert "60k/12k" in row
    [judge] = [line for line in lines if line.startswith("judge-large")]
    assert "429:2" in judge and "1.8s" in judge


def test_view_is_transient_and_restores_the_cursor(clock: Clock) -> None:
    """Exit erases every line of the view (cursor-up + erase-line per line) and shows the
    cursor again."""
    console = terminal()
    with ProgressDisplay(console, clock=clock) as display:
        display.update(snapshot(40, 100))
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    tail = raw[raw.rindex("\x1b[?25h") :]
    assert tail.count("\x1b[1A\x1b[2K") == len(STEP_NAMES) + len(MODEL_ALIASES) + 4


def test_no_live_view_without_cell_work(clock: Clock, starts: list[Live]) -> None:
    """A run with no step cells (samplers only) draws nothing, final snapshot included."""
    console = terminal()
    with ProgressDisplay(console, clock=clock) as display:
        for settled in range(0, 101, 10):
            clock.now += 1
            display.update(snapshot(settled, 100, cell_work=False, final=settled == 100))
    assert starts == []
    assert console.export_text() == ""


def test_live_view_starts_with_the_first_snapshot_with_cell_work(
    clock: Clock, starts: list[Live]
) -> None:
    console = terminal()
    with ProgressDisplay(console, clock=clock) as display:
        display.update(snapshot(0, 100, cell_work=False))
        assert starts == []
        clock.now += 1
        display.update(snapshot(5, 100))
        assert len(starts) == 1


def test_redraws_are_capped_and_the_final_snapshot_is_drawn(
    clock: Clock, refreshes: list[str]
) -> None:
    """1000 snapshots over 0.1 s: at most 10 redraws a second, so 2 here plus the final one
    (which is drawn even though it comes right after a redraw)."""
    console = terminal()
    with ProgressDisplay(console, clock=clock) as display:
        for index in range(1000):
            clock.now += 0.0001
            display.update(snapshot(index // 10, 200))
        drawn_before_final = len(refreshes)
        display.update(snapshot(200, 200, final=True))
        assert len(refreshes) == drawn_before_final + 1
    assert drawn_before_final <= 3
    assert "200/200 records settled" in console.export_text()


def test_terminal_size_is_read_once(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """rich queries the size on every render unless it is fixed; the display fixes it from one
    reading and gives the console back unfixed."""
    queries: list[int] = []

    def get_terminal_size(fd: int = 1) -> os.terminal_size:
        queries.append(fd)
        return os.terminal_size((90, 25))

    monkeypatch.setattr(os, "get_terminal_size", get_terminal_size)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    console = Console(force_terminal=True, file=io.StringIO(), record=True)
    with ProgressDisplay(console, clock=clock) as display:
        for index in range(50):
            clock.now += 0.2
            display.update(snapshot(index, 100))
            logging.getLogger("rowforge").warning("a record above the view")
        assert console.width == 90
    assert len(queries) == 1
    console.size  # noqa: B018 (the property queries the terminal again once unfixed)
    assert len(queries) == 2


def test_warnings_print_above_the_view_styled_and_not_twice(clock: Clock) -> None:
    """A record on "rowforge" goes through the display (yellow), not also through the root
    logger's handler, and the logger is given back as it was at exit."""
    root_records: list[logging.LogRecord] = []
    root_handler = logging.Handler()
    root_handler.emit = root_records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(root_handler)
    logger = logging.getLogger("rowforge")
    console = terminal()
    try:
        with ProgressDisplay(console, clock=clock) as display:
            display.update(snapshot(40, 100))
            logger.warning("slow request: model %s, column %s", "judge-large", "answer")
            assert logger.propagate is False
        logger.warning("after the display")
    finally:
        logging.getLogger().removeHandler(root_handler)
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[33mWARNING rowforge: slow request: model judge-large, column answer" in raw
    assert "after the display" not in raw
    assert [record.getMessage() for record in root_records] == ["after the display"]
    assert logger.propagate is True
    assert display.logging_handler() not in logger.handlers


def test_plain_mode_prints_one_line_per_interval(clock: Clock) -> None:
    """Not a terminal: no control codes, a line at the first snapshot with cell work, one per
    interval after it, and the final one."""
    console, out = plain_console()
    fed = []
    with ProgressDisplay(console, interval_s=10, clock=clock) as display:
        display.update(snapshot(0, 100, cell_work=False))
        for second in range(36):
            clock.now += 1
            fed.append(snapshot(second, 100, elapsed_s=second + 1.0))
            display.update(fed[-1])
        clock.now += 0.5
        fed.append(snapshot(100, 100, elapsed_s=36.5, final=True))
        display.update(fed[-1])
    expected = [plain_line("rowforge run", fed[i]) for i in (0, 10, 20, 30, 36)]
    assert out.getvalue().splitlines() == expected
    assert "\x1b" not in out.getvalue()


def test_plain_mode_prints_the_latest_snapshot_at_exit(clock: Clock) -> None:
    """An interrupted run gets no final snapshot; its last figures still reach the log."""
    console, out = plain_console()
    with ProgressDisplay(console, interval_s=10, clock=clock) as display:
        for second in range(4):
            clock.now += 1
            display.update(snapshot(second, 100))
    assert out.getvalue().splitlines() == [
        plain_line("rowforge run", snapshot(0, 100)),
        plain_line("rowforge run", snapshot(3, 100)),
    ]


def test_plain_line_format() -> None:
    assert plain_line("rowforge run", snapshot(40, 100, elapsed_s=12.0)) == (
        "rowforge run: running 40/100 records (40 written) | 3.67/s recent, 3.33/s avg"
        " | ETA 18s | elapsed 12s | row groups: done 4, running 2"
        " | step question 40/100 failed 0 skipped 0 retries 0 429s 0"
        " | step answer 40/100 failed 1 skipped 0 retries 3 429s 1"
        " | model gpt-small in flight 4 requests 40 errors - tokens 60k/12k latency 800ms"
        " | model judge-large in flight 5 requests 80 errors 429:2 tokens 60k/12k latency 1.8s"
    )


def test_plain_mode_log_lines(clock: Clock) -> None:
    console, out = plain_console()
    with ProgressDisplay(console, clock=clock):
        logging.getLogger("rowforge.scheduler").warning("scheduler stalled for 30 s")
    assert out.getvalue() == "WARNING rowforge.scheduler: scheduler stalled for 30 s\n"


def test_summary(clock: Clock) -> None:
    console, out = plain_console()
    with ProgressDisplay(console, clock=clock) as display:
        display.update(snapshot(100, 100, elapsed_s=50.0, final=True))
    display.summary(
        "partial",
        records_written=97,
        parquet_dir="out/parquet-files",
        metadata_path="out/metadata.json",
        resume_command=".venv/bin/rowforge resume out",
    )
    lines = out.getvalue().splitlines()
    assert lines[1:] == [
        "rowforge run: partial: 97 of 100 records written in 50s (1.94/s)",
        "  step  question  done 100  skipped 0  failed 0  retries 0  rate-limited 0",
        "  step  answer    done 99  skipped 0  failed 1  retries 3  rate-limited 1",
        "  model gpt-small    requests 100  tokens in 150,000 out 30,000",
        "  model judge-large  requests 200  tokens in 150,000 out 30,000  errors 429:2",
        "  parquet:  out/parquet-files/",
        "  metadata: out/metadata.json",
        "Interrupted. To finish the run:",
        "  .venv/bin/rowforge resume out",
    ]


def test_a_resumes_summary_counts_the_kept_records_as_written_but_not_in_the_rate(
    clock: Clock,
) -> None:
    """A resume that found 60 records written and wrote 40 in 20 s ran at 2/s, not 5/s."""
    console, out = plain_console()
    with ProgressDisplay(console, clock=clock, label="rowforge resume") as display:
        display.update(snapshot(40, 40, elapsed_s=20.0, final=True))
    display.summary("completed", records_written=100, records_target=100, records_kept=60)
    assert "rowforge resume: completed: 100 of 100 records written in 20s (2.00/s)" in (
        out.getvalue().splitlines()
    )


def test_run_with_display_leaves_records_written_before_this_run_out_of_the_rate(
    clock: Clock,
) -> None:
    """`run_with_display` (every CLI command): a resume's result counts the kept records; the
    final snapshot counts what this run wrote, and only that goes into the rate."""
    from rowforge.display.running import run_with_display

    console, out = plain_console()
    display = ProgressDisplay(console, clock=clock, label="rowforge resume")

    def work(on_progress: Any) -> int:
        on_progress(snapshot(40, 40, elapsed_s=20.0, final=True))
        return 100

    assert run_with_display(
        "rowforge resume", work, lambda n: ("completed", n), target=100, display=display
    ) == 100
    assert "rowforge resume: completed: 100 of 100 records written in 20s (2.00/s)" in (
        out.getvalue().splitlines()
    )


def test_summary_removes_the_view_first_and_ends_the_output(
    clock: Clock, refreshes: list[str]
) -> None:
    """Called inside the block, the summary stops the view before printing; later updates
    and summaries print nothing."""
    console = terminal()
    with ProgressDisplay(console, clock=clock) as display:
        display.update(snapshot(40, 100))
        display.summary("complete", snapshot=snapshot(100, 100, final=True))
        written = console.file.getvalue()  # type: ignore[attr-defined]
        count = len(refreshes)
        clock.now += 5
        display.update(snapshot(100, 100, final=True))
        display.summary("complete")
    assert console.file.getvalue() == written  # type: ignore[attr-defined]
    assert len(refreshes) == count
    assert written.rindex("\x1b[?25h") < written.index("rowforge run: ")
    head = "rowforge run: complete: 100 of 100 records written in 12s (8.33/s)\n"
    assert head in console.export_text()
