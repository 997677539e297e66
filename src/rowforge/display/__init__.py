"""What a person watching a run sees: a live terminal view or plain log lines, the run's log
records, and the final summary (see `progress_display`), with fixed-width figures (`format`)."""

from rowforge.display.format import format_count, format_duration, format_rate
from rowforge.display.progress_display import (
    LOG_FORMAT,
    ProgressDisplay,
    plain_line,
    render_snapshot,
    summary_lines,
)

__all__ = [
    "LOG_FORMAT",
    "ProgressDisplay",
    "format_count",
    "format_duration",
    "format_rate",
    "plain_line",
    "render_snapshot",
    "summary_lines",
]
