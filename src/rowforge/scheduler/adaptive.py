"""Adaptive concurrency: back off on rate limits, recover on success (AIMD), below the cap.

A provider that answers 429 is saying "fewer at once". Each resource gets a limit that starts at
its configured cap; a rate-limited attempt cuts it by 30%, and each success adds 1/limit (about
+1 per limit's worth of successes). Requests that were already in flight when the limit was cut
cannot cut it again: a burst of 429s from one overload is one signal, not fifty. The limit stays
in [1, cap], so caps (INV-10) hold and a limit of 1 still admits work (no deadlock).
"""

from __future__ import annotations


class AdaptiveLimit:
    """The current concurrency limit of one resource."""

    __slots__ = ("_cap", "_last_cut", "limit")

    BACK_OFF = 0.7

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self.limit = float(cap)
        self._last_cut = float("-inf")

    @property
    def current(self) -> int:
        return max(1, min(self._cap, int(self.limit)))

    def succeeded(self) -> None:
        self.limit = min(float(self._cap), self.limit + 1.0 / self.limit)

    def rate_limited(self, started: float, now: float) -> None:
        """A 429 for a request that started at `started`; ignored if it predates the last cut."""
        if started < self._last_cut:
            return
        self.limit = max(1.0, self.limit * self.BACK_OFF)
        self._last_cut = now
