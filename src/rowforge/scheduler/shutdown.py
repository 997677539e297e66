"""Deciding that a model provider is broken: the early-shutdown breaker and provider health.

`EarlyShutdown` is a sliding window over the final outcomes of model tasks, i.e. tasks of steps
with a `resource` (samplers, expressions and other local steps never enter it, so they cannot
dilute it). Only final outcomes enter: a success, or a failure (non-retryable error, retry budget
spent). Retries and rate limits are not outcomes yet, so an outage that tasks ride out within
their retry budget never trips it, while a dead provider does once tasks start spending their
budgets. It trips only on a failure, when the window is full and the failure share reaches the
configured rate, so a slow start with a few early errors does not end a run.

`ProviderHealth` watches every call (attempt) of every model:

- a sliding window of the last `WINDOW` calls per model; when at least `DEGRADED_SHARE` of them
  (and at least `MIN_CALLS`) were rejected (429, 5xx, timeouts, connection errors), a WARNING
  names the model, the share and the statuses, at most once per `WARNING_INTERVAL_S` per model;
- the no-success budget: a model that has had no successful call for
  `RunConfig.no_success_budget_s` (counted from its last success, or from its first call) ends
  the run at its next rejected call; the engines raise `EarlyShutdownError` with
  `exhausted_message`. The decision waits for that rejection so that a call paced by a long
  Retry-After still gets its attempt: the run ends at most one wait (Retry-After up to
  `max_retry_after_s`, or backoff up to `retry_backoff_max_s`) plus one call after the budget.

Neither knows about clocks: the engines pass `now` (the loop's time), so tests can too.
"""

from __future__ import annotations

import math
from collections import Counter, deque

from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.retry import explain_label, failure_label


def _tally(counts: Counter[str]) -> str:
    """`HTTP 429 x 80, HTTP 503 x 7`: most frequent first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{label} x {count}" for label, count in ordered if count)


class EarlyShutdown:
    """Tracks the last `window` final outcomes of model tasks and says when to stop."""

    def __init__(self, config: RunConfig) -> None:
        self.enabled = not config.disable_early_shutdown
        self.window = config.early_shutdown_window
        self.rate = config.early_shutdown_error_rate
        self._outcomes: deque[str | None] = deque(maxlen=self.window)  # None: a success
        self._labels: Counter[str] = Counter()
        self._failures = 0
        self.tripped = False

    def record(self, failed: bool, label: str | None = None) -> bool:
        """Add one outcome (`label` names a failure); return True exactly once, on the failure
        that trips the breaker."""
        if len(self._outcomes) == self.window:
            oldest = self._outcomes[0]
            if oldest is not None:
                self._failures -= 1
                self._labels[oldest] -= 1
        entry = (label or "error") if failed else None
        self._outcomes.append(entry)
        if entry is not None:
            self._failures += 1
            self._labels[entry] += 1
        if not failed or self.tripped or not self.enabled or len(self._outcomes) < self.window:
            return False
        if self._failures / self.window >= self.rate:
            self.tripped = True
            return True
        return False

    def describe(self) -> str:
        return (
            f"{self._failures} of the last {len(self._outcomes)} model tasks failed "
            f"({_tally(self._labels)}; threshold {self.rate:.0%})"
        )


class _Model:
    """What `ProviderHealth` knows about one model."""

    __slots__ = (
        "error",
        "last_warning",
        "recent",
        "rejected",
        "retry_after",
        "since",
        "step",
        "streak",
        "streak_labels",
    )

    def __init__(self, window: int, since: float) -> None:
        self.recent: deque[str | None] = deque(maxlen=window)  # None: a success
        self.rejected: Counter[str] = Counter()  # labels in `recent`
        self.last_warning = -math.inf
        self.since = since  # the last success, or the first call
        self.streak = 0  # rejections since the last success
        self.streak_labels: Counter[str] = Counter()
        self.step = ""
        self.error: BaseException | None = None
        self.retry_after: float | None = None

    def add(self, entry: str | None) -> None:
        if len(self.recent) == self.recent.maxlen:
            oldest = self.recent[0]
            if oldest is not None:
                self.rejected[oldest] -= 1
        self.recent.append(entry)
        if entry is not None:
            self.rejected[entry] += 1


class ProviderHealth:
    """Per model: recent call outcomes, the degraded WARNING and the no-success budget."""

    WINDOW = 100
    MIN_CALLS = 10
    DEGRADED_SHARE = 0.5
    WARNING_INTERVAL_S = 60.0

    def __init__(self, config: RunConfig) -> None:
        self.budget_s = config.no_success_budget_s
        self.max_retry_after_s = config.max_retry_after_s
        self._models: dict[str, _Model] = {}
        self.warnings = 0

    def _model(self, resource: str, started: float) -> _Model:
        model = self._models.get(resource)
        if model is None:
            model = self._models[resource] = _Model(self.WINDOW, started)
        return model

    def succeeded(self, resource: str, started: float, now: float) -> None:
        model = self._model(resource, started)
        model.add(None)
        model.since = now
        model.streak = 0
        model.streak_labels.clear()

    def rejected(
        self, resource: str, step: str, error: BaseException, started: float, now: float
    ) -> str | None:
        """Record a rejected call; return the degraded WARNING when one is due."""
        model = self._model(resource, started)
        label = failure_label(error)
        model.add(label)
        model.streak += 1
        model.streak_labels[label] += 1
        model.step, model.error = step, error
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            model.retry_after = float(retry_after)
        calls = len(model.recent)
        share = sum(model.rejected.values()) / calls
        due = now - model.last_warning >= self.WARNING_INTERVAL_S
        if calls < self.MIN_CALLS or share < self.DEGRADED_SHARE or not due:
            return None
        model.last_warning = now
        self.warnings += 1
        return (
            f"model {resource!r} is degraded: {share:.0%} of the last {calls} calls were "
            f"rejected ({_tally(model.rejected)}); retrying ({self._pacing(model)}; "
            f"{self._giving_up()})"
        )

    def _pacing(self, model: _Model) -> str:
        text = f"honouring Retry-After up to {self.max_retry_after_s:g}s"
        asked = model.retry_after
        if asked is not None:
            text += f", the provider asked for {asked:g}s"
            if asked > self.max_retry_after_s:
                text += f", waiting {self.max_retry_after_s:g}s"
        return text

    def _giving_up(self) -> str:
        if self.budget_s is None:
            return "no_success_budget_s is off: retrying until the model answers"
        return f"giving up after {self.budget_s:g}s without a success"

    def is_exhausted(self, resource: str, now: float) -> bool:
        model = self._models.get(resource)
        if model is None or self.budget_s is None:
            return False
        return bool(model.streak) and now >= model.since + self.budget_s

    def exhausted_message(self, resource: str) -> tuple[str, str, BaseException | None]:
        """(what happened, the step that saw the last rejection, that rejection)."""
        model = self._models[resource]
        labels = [label for label, count in model.streak_labels.items() if count]
        if len(labels) == 1 and labels[0].startswith("HTTP "):
            rejected = f"were rejected with {explain_label(labels[0])}"
        elif len(labels) == 1:
            rejected = f"failed ({labels[0]})"
        else:
            rejected = f"failed ({_tally(model.streak_labels)})"
        message = (
            f"model {resource!r}: no successful call for {self.budget_s:g}s; the last "
            f"{model.streak} calls {rejected}"
        )
        return message, model.step, model.error
