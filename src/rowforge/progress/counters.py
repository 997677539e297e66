"""Running totals a progress snapshot reads: kept as things happen, never found by scanning.

The engine already counts cells per column (its ledger) and tasks in flight (admission). What
it did not keep is added here: retries per step and per model by cause, the row groups that
ended by state and the records they settled, and a window of recent rates. Each update is O(1),
so a snapshot costs the same at row 10 as at row 10^7.
"""

from __future__ import annotations

from collections import Counter, deque

#: Retry causes, as metadata.json and the display name them.
RATE_LIMIT = "rate_limit"
TRANSIENT = "transient"


class RetryCounts:
    """Retries the scheduler granted: per step, and per model (resource) by cause."""

    def __init__(self) -> None:
        self.retries: Counter[str] = Counter()  # per step, transient errors (5xx, timeouts)
        self.rate_limited: Counter[str] = Counter()  # per step, 429s
        self.by_model: dict[str, Counter[str]] = {}

    def granted(self, step: str, resource: str | None, rate_limited: bool) -> None:
        """One retry of `step` was scheduled (a rate limit or a transient error)."""
        (self.rate_limited if rate_limited else self.retries)[step] += 1
        if resource is not None:
            cause = RATE_LIMIT if rate_limited else TRANSIENT
            self.by_model.setdefault(resource, Counter())[cause] += 1


class RateWindow:
    """Records settled per second, on average since the start and over the last `window_s`.

    One sample per snapshot; samples older than the window are dropped, so memory is bounded by
    the window over the snapshot interval, not by the run's length.
    """

    def __init__(self, started: float, window_s: float = 10.0) -> None:
        self._started = started
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque([(started, 0)])

    def observe(self, now: float, settled: int) -> tuple[float, float]:
        """Add a sample; return (average, recent) records per second."""
        self._samples.append((now, settled))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window_s:
            self._samples.popleft()
        elapsed = now - self._started
        average = settled / elapsed if elapsed > 0 else 0.0
        then, before = self._samples[0]
        recent = (settled - before) / (now - then) if now > then else average
        return average, recent


def eta_seconds(remaining: int, rate: float) -> float | None:
    """Seconds left at `rate`; None while no rate is known (nothing settled yet)."""
    if remaining <= 0:
        return 0.0
    if rate <= 0:
        return None
    return remaining / rate
