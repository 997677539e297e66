"""Unit tests of the scheduler's small parts: config, admission, retry policy, early shutdown."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowforge.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
)
from rowforge.scheduler import RunConfig, Step, build_plan
from rowforge.scheduler.admission import Admission
from rowforge.scheduler.retry import ErrorKind, RetryPolicy, classify, failure_label
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.shutdown import EarlyShutdown, ProviderHealth
from rowforge.scheduler.subjects import Worker


def noop(row: object) -> int:
    return 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("buffer_size", 0, "RunConfig.buffer_size must be an int >= 1, got 0"),
        ("buffer_size", 2.5, "RunConfig.buffer_size must be an int >= 1, got 2.5"),
        ("max_in_flight", -1, "RunConfig.max_in_flight must be an int >= 1"),
        ("stall_warning_s", "30", "RunConfig.stall_warning_s must be a positive number, got '30'"),
        (
            "early_shutdown_error_rate",
            1.5,
            r"RunConfig.early_shutdown_error_rate must be in \(0, 1\]",
        ),
        ("on_partial", "ignore", "RunConfig.on_partial must be one of"),
        ("max_parallel_requests", {"gpt": 0}, r"RunConfig.max_parallel_requests\['gpt'\]"),
        ("task_timeout_s", 0, "RunConfig.task_timeout_s must be a positive number"),
        ("retry_budget_s", -1, "RunConfig.retry_budget_s must be a finite number >= 0"),
        ("max_retry_after_s", float("inf"), "RunConfig.max_retry_after_s must be a finite"),
        ("no_success_budget_s", 0, "RunConfig.no_success_budget_s must be a finite number > 0"),
        ("max_retries", 1.5, "RunConfig.max_retries must be an int >= 0 or None"),
        ("max_rate_limit_retries", -1, "RunConfig.max_rate_limit_retries must be an int >= 0"),
    ],
)
def test_bad_run_config_names_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig(**{field: value})  # type: ignore[arg-type]


def make_workers(steps: list[Step], per_step: int) -> tuple[Admission, list[Worker]]:
    plan = build_plan(steps, per_step, per_step)
    config = RunConfig(max_in_flight=3, max_parallel_requests={"a": 2, "b": 1})
    admission = Admission(plan.steps, config)
    group = RowGroup(plan.row_group(0), plan, ledger=None)  # type: ignore[arg-type]
    workers = [
        Worker(i * 10 + row, step, group, row, 0, 0.0)
        for i, step in enumerate(plan.steps)
        for row in range(per_step)
    ]
    for worker in workers:
        admission.push(worker)
    return admission, workers


def test_admission_is_round_robin_across_steps_and_respects_every_cap() -> None:
    steps = [Step("x", noop, resource="a"), Step("y", noop, resource="b"), Step("z", noop)]
    admission, _ = make_workers(steps, 4)
    admitted = []
    while (worker := admission.next_admissible()) is not None:
        admitted.append(worker.step.name)
    assert admitted == ["x", "y", "z"], "one of each before a second of any"
    assert admission.in_flight == 3 and admission.per_resource == {"a": 1, "b": 1}


def test_admission_is_work_conserving_when_one_resource_is_full() -> None:
    steps = [Step("x", noop, resource="a"), Step("y", noop, resource="b")]
    admission, _ = make_workers(steps, 3)
    first = [admission.next_admissible() for _ in range(3)]
    assert [w.step.name for w in first if w] == ["x", "y", "x"]
    assert admission.next_admissible() is None  # global cap 3 reached
    admission.release(first[1])  # a "b" slot frees; b's cap is 1 and "a" is full at 2
    nxt = admission.next_admissible()
    assert nxt is not None and nxt.step.name == "y"


def test_leases_are_released_exactly_once() -> None:
    admission, _ = make_workers([Step("x", noop, resource="a")], 1)
    worker = admission.next_admissible()
    assert worker is not None
    admission.release(worker)
    assert admission.balanced
    with pytest.raises(RuntimeError, match="released twice"):
        admission.release(worker)


def test_errors_are_classified() -> None:
    assert classify(RateLimitError("429")) is ErrorKind.RATE_LIMIT
    assert classify(RetryableError("503")) is ErrorKind.RETRYABLE
    assert classify(TimeoutError()) is ErrorKind.RETRYABLE
    assert classify(ConnectionResetError()) is ErrorKind.RETRYABLE
    assert classify(ValueError("400 bad request")) is ErrorKind.FATAL


def policy_for(**options: object) -> RetryPolicy:
    return RetryPolicy(RunConfig(**options), rng=random.Random(7))  # type: ignore[arg-type]


def test_retry_after_is_honoured_up_to_max_retry_after_s() -> None:
    policy = policy_for(retry_backoff_max_s=3, max_retry_after_s=300)
    for kind, error in [
        (ErrorKind.RATE_LIMIT, RateLimitError("429", retry_after=120)),
        (ErrorKind.RETRYABLE, RetryableError("503", retry_after=120, status=503)),
    ]:
        assert policy.next_delay(kind, error, retries=0, rate_limited=0, spent=0.0) == 120
    limited = RateLimitError("429", retry_after=1000)
    assert (
        policy.next_delay(ErrorKind.RATE_LIMIT, limited, retries=0, rate_limited=0, spent=0) == 300
    )


def test_backoff_is_full_jitter_below_the_exponential_ceiling() -> None:
    policy = policy_for(retry_backoff_s=0.5, retry_backoff_max_s=3)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        draws = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8 and min(draws) < ceiling * 0.2, "spread, not fixed"
    assert policy_for(retry_backoff_s=0.0).backoff(5) == 0.0


def test_transient_errors_retry_until_the_time_budget_is_spent() -> None:
    policy = policy_for(retry_budget_s=10, retry_backoff_s=1, retry_backoff_max_s=4)
    error = RetryableError("503", status=503)

    def delay(spent: float, retries: int = 50) -> float | None:
        return policy.next_delay(
            ErrorKind.RETRYABLE, error, retries=retries, rate_limited=0, spent=spent
        )

    assert delay(0.0) is not None, "no count limit: 50 earlier retries are fine"
    assert all((d := delay(9.5)) is not None and d <= 0.5 for _ in range(50)), "cut to the budget"
    assert delay(10.0) is None and delay(12.0) is None
    assert (
        policy_for(retry_budget_s=0).next_delay(
            ErrorKind.RETRYABLE, error, retries=0, rate_limited=0, spent=0.0
        )
        is None
    )


def test_rate_limits_spend_no_budget_and_optional_caps_still_apply() -> None:
    policy = policy_for(retry_budget_s=1)
    limited = RateLimitError("429")
    assert (
        policy.next_delay(ErrorKind.RATE_LIMIT, limited, retries=0, rate_limited=999, spent=50.0)
        is not None
    )
    capped = policy_for(max_retries=2, max_rate_limit_retries=3)
    error = RetryableError("503")
    assert capped.next_delay(ErrorKind.RETRYABLE, error, retries=1, rate_limited=0, spent=0)
    assert capped.next_delay(ErrorKind.RETRYABLE, error, retries=2, rate_limited=0, spent=0) is None
    assert (
        capped.next_delay(ErrorKind.RATE_LIMIT, limited, retries=0, rate_limited=3, spent=0) is None
    )
    fatal = ValueError("400")
    assert policy.next_delay(ErrorKind.FATAL, fatal, retries=0, rate_limited=0, spent=0) is None


def test_failures_are_labelled_by_status_timeout_or_connection() -> None:
    assert failure_label(RateLimitError("x")) == "HTTP 429"
    assert failure_label(RetryableError("x", status=503)) == "HTTP 503"
    assert failure_label(ProviderTimeoutError("x")) == "timeout"
    assert failure_label(TimeoutError()) == "timeout"
    assert failure_label(ProviderConnectionError("x")) == "connection error"
    assert failure_label(ConnectionResetError()) == "connection error"
    assert failure_label(ValueError("x")) == "ValueError"
    assert RetryableError("x", 2.0).retry_after == 2.0, "the old positional form still works"


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 10), st.sampled_from([0.2, 0.5, 1.0]))
def test_early_shutdown_trips_once_exactly_when_a_full_window_reaches_the_rate(
    outcomes: list[bool], window: int, rate: float
) -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=window, early_shutdown_error_rate=rate))
    trips = [breaker.record(failed) for failed in outcomes]
    expected = None
    for i in range(window - 1, len(outcomes)):  # it trips on a failure, never on a success
        if outcomes[i] and sum(outcomes[i - window + 1 : i + 1]) / window >= rate:
            expected = i
            break
    assert trips.count(True) == (expected is not None)
    if expected is not None:
        assert trips.index(True) == expected


def test_disabled_early_shutdown_never_trips() -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=2, disable_early_shutdown=True))
    assert not any(breaker.record(True) for _ in range(10))


def test_degraded_warning_names_model_share_and_statuses_at_most_once_a_minute() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=300, max_retry_after_s=300))
    limited = RateLimitError("429", retry_after=20)
    unavailable = RetryableError("503", status=503)
    warnings = {}
    for second in range(0, 200):
        if second % 8 == 7:
            health.succeeded("writer", second, second + 0.5)
        error = unavailable if second % 10 == 3 else limited
        warning = health.rejected("writer", "answer", error, second, second + 0.5)
        if warning is not None:
            warnings[second] = warning
    # The 10th call comes at second 8 (9 rejections and the success at 7): warn then, and
    # afterwards at most once per 60 s.
    assert sorted(warnings) == [8, 68, 128, 188]
    assert warnings[188] == (
        "model 'writer' is degraded: 89% of the last 100 calls were rejected (HTTP 429 x 80, "
        "HTTP 503 x 9); retrying (honouring Retry-After up to 300s, the provider asked for "
        "20s; giving up after 300s without a success)"
    )
    assert health.warnings == 4
    assert health.rejected("other", "judge", limited, 0, 1) is None, "per model, not per run"


def test_a_retry_after_beyond_the_maximum_is_named_in_the_warning() -> None:
    health = ProviderHealth(RunConfig(max_retry_after_s=60, no_success_budget_s=None))
    limited = RateLimitError("429", retry_after=600)
    warning = None
    for n in range(10):
        warning = health.rejected("writer", "answer", limited, n, n) or warning
    assert warning is not None
    assert "the provider asked for 600s, waiting 60s" in warning
    assert "no_success_budget_s is off" in warning


def test_the_no_success_budget_runs_from_the_last_success_and_needs_a_rejection() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=100))
    limited = RateLimitError("429")
    health.rejected("writer", "answer", limited, started=10.0, now=11.0)
    assert not health.is_exhausted("writer", 109.9)
    assert health.is_exhausted("writer", 110.0), "100 s after the first call, none succeeded"
    health.succeeded("writer", 111.0, 112.0)
    assert not health.is_exhausted("writer", 500.0), "no rejection since the last success"
    health.rejected("writer", "answer", RetryableError("x", status=503), 300.0, 301.0)
    assert health.is_exhausted("writer", 301.0)
    message, step, error = health.exhausted_message("writer")
    assert message == (
        "model 'writer': no successful call for 100s; the last 1 calls were rejected with "
        "HTTP 503 (service unavailable)"
    )
    assert step == "answer" and isinstance(error, RetryableError)
    assert not ProviderHealth(RunConfig(no_success_budget_s=None)).is_exhausted("writer", 1e9)


def test_the_breaker_describes_failures_by_label() -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=4, early_shutdown_error_rate=0.5))
    outcomes = [(False, None), (True, "HTTP 500"), (False, None), (True, "timeout")]
    assert [breaker.record(failed, label) for failed, label in outcomes] == [False] * 3 + [True]
    assert breaker.describe() == (
        "2 of the last 4 model tasks failed (HTTP 500 x 1, timeout x 1; threshold 50%)"
    )
