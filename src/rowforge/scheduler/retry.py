"""Error classification, failure labels and retry pacing.

Retryable: `RetryableError` (and its `RateLimitError`, `ProviderTimeoutError`,
`ProviderConnectionError`), `TimeoutError`, `ConnectionError`. Everything else is non-retryable.

Two kinds of retry, two bounds:

- Transient errors (5xx, 408, timeouts, connection errors) spend the task's time budget,
  `retry_budget_s`: the seconds its failed attempts took plus the waits between them. A task
  keeps retrying while budget is left, so an outage of tens of seconds is ridden out; once the
  budget is spent the task fails, and that failure is what the early-shutdown breaker counts.
  The wait is full-jitter exponential backoff, `uniform(0, min(retry_backoff_max_s,
  retry_backoff_s * 2**n))` after the n-th retry (cut to the budget left), so tasks that failed
  together do not come back together; or the provider's Retry-After when it sent one.
- Rate limits (429) are the provider pacing us, not failing: they spend no budget and retry with
  the same pacing. What bounds them is the run's no-success budget (`scheduler.shutdown`): a
  model that only ever rejects ends the run after `no_success_budget_s`.

Retry-After is honoured up to `max_retry_after_s` (longer requests wait that long). The optional
`max_retries` / `max_rate_limit_retries` cap the number of retries per task on top of that.
"""

from __future__ import annotations

import enum
import random

from rowforge.errors import (
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
)
from rowforge.scheduler.config import RunConfig


class ErrorKind(enum.Enum):
    RATE_LIMIT = "rate_limit"
    RETRYABLE = "retryable"
    FATAL = "non_retryable"


def classify(error: BaseException) -> ErrorKind:
    if isinstance(error, RateLimitError):
        return ErrorKind.RATE_LIMIT
    if isinstance(error, RetryableError | TimeoutError | ConnectionError):
        return ErrorKind.RETRYABLE
    return ErrorKind.FATAL


def failure_label(error: BaseException) -> str:
    """How warnings and shutdown messages name a failed call: `HTTP 429`, `HTTP 503`,
    `timeout`, `connection error`, or the exception's type when nothing better is known."""
    status = getattr(error, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return f"HTTP {status}"
    if isinstance(error, ProviderTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, ProviderConnectionError | ConnectionError):
        return "connection error"
    return type(error).__name__


_MEANING = {
    "HTTP 429": "rate limited",
    "HTTP 500": "internal server error",
    "HTTP 502": "bad gateway",
    "HTTP 503": "service unavailable",
    "HTTP 504": "gateway timeout",
}


def explain_label(label: str) -> str:
    """`HTTP 429 (rate limited)`: a label with what the status means, where that is standard."""
    meaning = _MEANING.get(label)
    return f"{label} ({meaning})" if meaning else label


class RetryPolicy:
    """Decides whether a failed attempt gets another one, and after how long.

    `rng` draws the jitter (seeded from `config.seed` by default, so a run's pacing repeats).
    """

    def __init__(self, config: RunConfig, rng: random.Random | None = None) -> None:
        self.budget_s = config.retry_budget_s
        self.max_retry_after_s = config.max_retry_after_s
        self._max_retries = config.max_retries
        self._max_rate_limited = config.max_rate_limit_retries
        self._base = config.retry_backoff_s
        self._cap = config.retry_backoff_max_s
        self._rng = rng if rng is not None else random.Random(f"retry/{config.seed}")

    def next_delay(
        self,
        kind: ErrorKind,
        error: BaseException,
        *,
        retries: int,
        rate_limited: int,
        spent: float,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the task gets no more.

        `retries` counts the task's earlier transient retries, `rate_limited` its earlier rate
        limits, `spent` the seconds of its transient budget used so far, including the attempt
        that just failed.
        """
        if kind is ErrorKind.RATE_LIMIT:
            if self._max_rate_limited is not None and rate_limited >= self._max_rate_limited:
                return None
            return self.pause(error, rate_limited)
        if kind is ErrorKind.RETRYABLE:
            if self._max_retries is not None and retries >= self._max_retries:
                return None
            left = self.budget_s - spent
            if left <= 0:
                return None
            retry_after = self.retry_after(error)
            if retry_after is not None:
                return retry_after
            return min(self.backoff(retries), left)
        return None

    def pause(self, error: BaseException, attempt: int) -> float:
        """The provider's Retry-After (honoured up to `max_retry_after_s`), else the backoff."""
        retry_after = self.retry_after(error)
        return retry_after if retry_after is not None else self.backoff(attempt)

    def retry_after(self, error: BaseException) -> float | None:
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return float(min(retry_after, self.max_retry_after_s))
        return None

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(self._cap, self._base * 2 ** min(attempt, 64))
        return self._rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
