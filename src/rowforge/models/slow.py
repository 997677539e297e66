"""The slow-request warning, shared by every model client.

Theory of operation: entering `SlowRequestWarning` schedules a timer on the running loop with
`loop.call_at`; when it fires it logs a WARNING on logger "rowforge" (model alias, the column
whose step made the request, seconds pending) and schedules itself for the next multiple of the
interval, so a request that stays pending is reported once per interval. Leaving the block,
however it is left (result, exception, cancellation), cancels the pending timer in `__exit__`.
There is no task: nothing outlives the request, and a request that ends before the interval
costs one timer-heap entry and no log line.
"""

from __future__ import annotations

import asyncio
import logging
import math
from types import TracebackType

from rowforge.step_context import CURRENT_STEP

log = logging.getLogger("rowforge")


class SlowRequestWarning:
    """`with SlowRequestWarning(alias, interval):` around one request, inside the running loop."""

    def __init__(self, alias: str, interval_s: float) -> None:
        self.alias = alias
        self.column = CURRENT_STEP.get()  # the step that made the request, when a run did
        self.interval_s = interval_s
        #: How many warnings this request logged (for tests and callers that count slowness).
        self.warnings = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> SlowRequestWarning:
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._timer = self._loop.call_at(self._started + self.interval_s, self._warn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _warn(self) -> None:
        assert self._loop is not None
        self.warnings += 1
        elapsed = self._loop.time() - self._started
        caller = f" (column {self.column!r})" if self.column is not None else ""
        log.warning(
            "model %r%s: request still pending after %.1fs (warning every %gs until it ends)",
            self.alias,
            caller,
            elapsed,
            self.interval_s,
        )
        # The next multiple of the interval, so a late timer does not push later ones back.
        periods = math.floor(elapsed / self.interval_s) + 1
        self._timer = self._loop.call_at(self._started + periods * self.interval_s, self._warn)
