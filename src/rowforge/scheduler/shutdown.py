"""Early shutdown: a sliding window over finished task outcomes.

Only final outcomes enter the window: a success, or a failure (non-retryable error, or retries
exhausted). Deferrals and rate limits are not outcomes yet and never enter it. The breaker trips
only when the window is full and the failure share reaches the configured rate, so a slow start
with a few early errors does not end a run.
"""

from __future__ import annotations

from collections import deque

from rowforge.scheduler.config import RunConfig


class EarlyShutdown:
    """Tracks the last `window` outcomes and says when to stop."""

    def __init__(self, config: RunConfig) -> None:
        self.enabled = not config.disable_early_shutdown
        self.window = config.early_shutdown_window
        self.rate = config.early_shutdown_error_rate
        self._outcomes: deque[bool] = deque(maxlen=self.window)
        self._failures = 0
        self.tripped = False

    def record(self, failed: bool) -> bool:
        """Add one outcome; return True exactly once, when the breaker trips."""
        if len(self._outcomes) == self.window and self._outcomes[0]:
            self._failures -= 1
        self._outcomes.append(failed)
        self._failures += failed
        if self.tripped or not self.enabled or len(self._outcomes) < self.window:
            return False
        if self._failures / self.window >= self.rate:
            self.tripped = True
            return True
        return False

    def describe(self) -> str:
        return (
            f"{self._failures} of the last {self.window} tasks failed (threshold {self.rate:.0%})"
        )
