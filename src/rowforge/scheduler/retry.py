"""Error classification and retry pacing.

Retryable: `RetryableError` (and its `RateLimitError`), `TimeoutError`, `ConnectionError`.
Everything else is non-retryable. Rate limits retry without spending the retry budget (they are
the provider pacing us, not failing) up to `max_rate_limit_retries`, so a provider that only ever
answers 429 still ends the run instead of hanging it.
"""

from __future__ import annotations

import enum

from rowforge.errors import RateLimitError, RetryableError
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


class RetryPolicy:
    """Decides whether a failed attempt gets another one, and after how long."""

    def __init__(self, config: RunConfig) -> None:
        self._max_retries = config.max_retries
        self._max_rate_limited = config.max_rate_limit_retries
        self._base = config.retry_backoff_s
        self._cap = config.retry_backoff_max_s

    def should_retry(self, kind: ErrorKind, retries: int, rate_limited: int) -> bool:
        """`retries` counts earlier non-rate-limit retries; `rate_limited` earlier 429s."""
        if kind is ErrorKind.RATE_LIMIT:
            return rate_limited < self._max_rate_limited
        if kind is ErrorKind.RETRYABLE:
            return retries < self._max_retries
        return False

    def delay(self, error: BaseException, attempt: int) -> float:
        """Exponential backoff from `retry_backoff_s`, honouring a provider's Retry-After."""
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return float(min(retry_after, self._cap))
        return float(min(self._base * (2**attempt), self._cap))
