"""Retry pacing and failure labels on their own.

Kills survivors of `make mutants` (scheduler, retry.py): the meaning given to each standard
status, a status that is not a number, a Retry-After of zero, the rate-limit backoff growing with
the rate limits already answered, the ceiling's exponent bound, and the jitter drawn from the
generator the policy was given (or one seeded from the run's seed).
"""

from __future__ import annotations

import random

import pytest

from rowforge.errors import (
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
)
from rowforge.scheduler import RunConfig
from rowforge.scheduler.retry import (
    ErrorKind,
    RetryPolicy,
    classify,
    explain_label,
    failure_label,
)


def policy_for(seed: int = 7, **options: object) -> RetryPolicy:
    return RetryPolicy(RunConfig(**options), rng=random.Random(seed))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "explained"),
    [
        ("HTTP 429", "HTTP 429 (rate limited)"),
        ("HTTP 500", "HTTP 500 (internal server error)"),
        ("HTTP 502", "HTTP 502 (bad gateway)"),
        ("HTTP 503", "HTTP 503 (service unavailable)"),
        ("HTTP 504", "HTTP 504 (gateway timeout)"),
        ("HTTP 418", "HTTP 418"),
        ("timeout", "timeout"),
        ("connection error", "connection error"),
        ("ValueError", "ValueError"),
    ],
)
def test_standard_statuses_are_explained_and_other_labels_kept(label: str, explained: str) -> None:
    assert explain_label(label) == explained


class _Flagged(Exception):
    def __init__(self, status: object) -> None:
        super().__init__("x")
        self.status = status


def test_a_status_that_is_not_a_number_is_not_an_http_status() -> None:
    assert failure_label(_Flagged(True)) == "_Flagged"
    assert failure_label(_Flagged("503")) == "_Flagged"
    assert failure_label(_Flagged(None)) == "_Flagged"
    assert failure_label(_Flagged(503)) == "HTTP 503"
    assert failure_label(ProviderTimeoutError("x", status=504)) == "HTTP 504"
    assert failure_label(ProviderConnectionError("x")) == "connection error"
    assert failure_label(ConnectionRefusedError()) == "connection error"
    assert failure_label(KeyError("k")) == "KeyError"


def test_every_kind_is_classified() -> None:
    assert classify(RateLimitError("x", status=None)) is ErrorKind.RATE_LIMIT
    assert classify(ProviderTimeoutError("x")) is ErrorKind.RETRYABLE
    assert classify(ProviderConnectionError("x")) is ErrorKind.RETRYABLE
    assert classify(TimeoutError()) is ErrorKind.RETRYABLE
    assert classify(KeyError("k")) is ErrorKind.FATAL
    assert [kind.value for kind in ErrorKind] == ["rate_limit", "retryable", "non_retryable"]


def test_a_retry_after_of_zero_means_now_and_a_negative_one_is_ignored() -> None:
    policy = policy_for(retry_backoff_s=100, retry_backoff_max_s=100)
    now = RateLimitError("429", retry_after=0)
    assert policy.retry_after(now) == 0.0
    assert policy.next_delay(ErrorKind.RATE_LIMIT, now, retries=0, rate_limited=0, spent=0) == 0
    assert (
        policy.next_delay(
            ErrorKind.RETRYABLE,
            RetryableError("x", retry_after=0),
            retries=0,
            rate_limited=0,
            spent=0,
        )
        == 0
    )
    assert policy.retry_after(RateLimitError("429", retry_after=-1)) is None
    assert policy.retry_after(RateLimitError("429")) is None
    assert policy.retry_after(RateLimitError("429", retry_after=2.5)) == 2.5
    assert policy.retry_after(RateLimitError("429", retry_after=1e9)) == 300.0  # default max


def test_rate_limit_backoff_grows_with_the_rate_limits_already_answered() -> None:
    policy = policy_for(retry_backoff_s=1, retry_backoff_max_s=1000)
    limited = RateLimitError("429")

    def draws(rate_limited: int) -> list[float]:
        delays = [
            policy.next_delay(
                ErrorKind.RATE_LIMIT, limited, retries=0, rate_limited=rate_limited, spent=0
            )
            for _ in range(200)
        ]
        assert all(d is not None for d in delays)
        return [d for d in delays if d is not None]

    first, sixth = draws(0), draws(5)
    assert max(first) <= 1 and max(sixth) <= 32
    assert max(sixth) > 16, "the ceiling doubles with each rate limit: 32 after five"
    capped = policy_for(retry_backoff_s=1, retry_backoff_max_s=1000, max_rate_limit_retries=2)
    assert capped.next_delay(ErrorKind.RATE_LIMIT, limited, retries=0, rate_limited=1, spent=0)
    assert (
        capped.next_delay(ErrorKind.RATE_LIMIT, limited, retries=0, rate_limited=2, spent=0) is None
    )


def test_transient_backoff_grows_with_retries_and_is_cut_to_the_budget_left() -> None:
    policy = policy_for(retry_backoff_s=1, retry_backoff_max_s=1000, retry_budget_s=1000)
    error = RetryableError("503", status=503)
    delays = [
        policy.next_delay(ErrorKind.RETRYABLE, error, retries=4, rate_limited=0, spent=0.0)
        for _ in range(200)
    ]
    values = [d for d in delays if d is not None]
    assert len(values) == 200 and max(values) <= 16 and max(values) > 8
    cut = [
        policy.next_delay(ErrorKind.RETRYABLE, error, retries=4, rate_limited=0, spent=999.0)
        for _ in range(50)
    ]
    assert all(d is not None and d <= 1.0 for d in cut)
    assert (
        policy.next_delay(ErrorKind.RETRYABLE, error, retries=4, rate_limited=0, spent=999.99)
        is not None
    )
    capped = policy_for(max_retries=1)
    assert capped.next_delay(ErrorKind.RETRYABLE, error, retries=0, rate_limited=0, spent=0)
    assert capped.next_delay(ErrorKind.RETRYABLE, error, retries=1, rate_limited=0, spent=0) is None


def test_the_ceiling_stops_doubling_after_64_retries() -> None:
    policy = policy_for(retry_backoff_s=1, retry_backoff_max_s=1e30)
    draws = [policy.backoff(100) for _ in range(200)]
    assert max(draws) <= 2.0**64
    assert max(draws) > 2.0**63


def test_the_jitter_comes_from_the_generator_given_or_one_seeded_from_the_run() -> None:
    given = policy_for(seed=3, retry_backoff_s=1, retry_backoff_max_s=1)
    expected = random.Random(3)
    assert [given.backoff(0) for _ in range(5)] == [expected.uniform(0.0, 1.0) for _ in range(5)]

    def default_draws(seed: int) -> list[float]:
        policy = RetryPolicy(RunConfig(seed=seed, retry_backoff_s=1, retry_backoff_max_s=1))
        return [policy.backoff(0) for _ in range(5)]

    assert default_draws(1) == default_draws(1), "a run's pacing repeats"
    assert default_draws(1) != default_draws(2)
    assert all(0.0 <= d <= 1.0 for d in default_draws(1))
