"""The early-shutdown breaker and provider health on their own.

Kills survivors of `make mutants` (scheduler, shutdown.py): the breaker's failure count and
labels as failures leave its window, an unlabelled failure, ties in the label tally; the
degraded WARNING's thresholds (ten calls, half of them rejected, once a minute) and its pacing
text; the no-success budget counted from the first call or the last success, and the message
that names the model, the step and the last error.
"""

from __future__ import annotations

from rowforge.errors import RateLimitError, RetryableError
from rowforge.scheduler import RunConfig
from rowforge.scheduler.shutdown import EarlyShutdown, ProviderHealth


def test_the_breaker_forgets_failures_that_left_its_window() -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=3, early_shutdown_error_rate=1.0))
    assert [breaker.record(True, "HTTP 500"), breaker.record(False), breaker.record(False)] == [
        False
    ] * 3
    # The HTTP 500 leaves the window: one failure of three, not two.
    assert not breaker.record(True, "timeout")
    assert breaker.describe() == (
        "1 of the last 3 model tasks failed (timeout x 1; threshold 100%)"
    )
    assert not breaker.record(True, "timeout")
    assert breaker.record(True), "three failures of three reach 100%"
    assert breaker.describe() == (
        "3 of the last 3 model tasks failed (timeout x 2, error x 1; threshold 100%)"
    )
    assert breaker.tripped
    assert not breaker.record(True, "timeout"), "it trips once"


def test_the_breaker_trips_at_exactly_the_rate_and_not_below() -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=4, early_shutdown_error_rate=0.75))
    results = [breaker.record(failed, "x") for failed in (True, False, True, False, True, True)]
    # window after each: ..., [T F T F] 2/4, [F T F T] 2/4, [T F T T] 3/4 -> trips
    assert results == [False, False, False, False, False, True]
    assert breaker.window == 4 and breaker.rate == 0.75 and breaker.enabled


def test_the_tally_orders_by_count_then_label_and_skips_labels_that_left() -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=4, early_shutdown_error_rate=1.0))
    for label in ("b", "a", "c", "c"):
        breaker.record(True, label)
    assert (
        breaker.describe()
        == "4 of the last 4 model tasks failed (c x 2, a x 1, b x 1; threshold 100%)"
    )
    breaker2 = EarlyShutdown(RunConfig(early_shutdown_window=2, early_shutdown_error_rate=1.0))
    for label in ("gone", None, "kept"):
        breaker2.record(label is not None, label)
    assert breaker2.describe() == "1 of the last 2 model tasks failed (kept x 1; threshold 100%)"


def _rejections(health: ProviderHealth, count: int, now: float = 0.0) -> list[str | None]:
    limited = RateLimitError("429")
    return [health.rejected("writer", "answer", limited, now, now) for _ in range(count)]


def test_the_degraded_warning_needs_ten_calls() -> None:
    health = ProviderHealth(RunConfig(max_retry_after_s=60, no_success_budget_s=None))
    warnings = _rejections(health, 10, now=5.0)
    assert warnings[:9] == [None] * 9
    assert warnings[9] == (
        "model 'writer' is degraded: 100% of the last 10 calls were rejected (HTTP 429 x 10); "
        "retrying (honouring Retry-After up to 60s; no_success_budget_s is off: retrying until "
        "the model answers)"
    )
    assert health.warnings == 1


def test_the_degraded_warning_comes_at_exactly_half_the_calls_rejected() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=100))
    for n in range(5):
        health.succeeded("writer", n, n)
    warnings = _rejections(health, 5, now=10.0)
    assert warnings[:4] == [None] * 4
    assert warnings[4] is not None and "50% of the last 10 calls" in warnings[4]
    assert warnings[4].endswith("giving up after 100s without a success)")

    below = ProviderHealth(RunConfig(no_success_budget_s=100))
    for n in range(6):
        below.succeeded("writer", n, n)
    assert _rejections(below, 5, now=10.0) == [None] * 5, "5 of 11 is below half"


def test_rejections_that_left_the_window_do_not_count() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=None))
    _rejections(health, 50, now=0.0)
    for n in range(100):
        health.succeeded("writer", n, n)
    # The window holds the last 100 calls: the 50 rejections have left it.
    assert _rejections(health, 10, now=1000.0) == [None] * 10, "10 of 100, not 60"
    warnings = _rejections(health, 40, now=1000.0)
    assert warnings[:39] == [None] * 39
    assert warnings[39] is not None
    assert "50% of the last 100 calls were rejected (HTTP 429 x 50)" in warnings[39]


def test_the_warning_interval_is_exactly_a_minute() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=None))
    assert _rejections(health, 10, now=100.0)[-1] is not None
    assert _rejections(health, 1, now=159.9) == [None]
    assert _rejections(health, 1, now=160.0)[0] is not None
    assert health.warnings == 2


def test_the_pacing_names_the_retry_after_asked_and_the_wait() -> None:
    health = ProviderHealth(RunConfig(max_retry_after_s=30, no_success_budget_s=None))
    warning = None
    for _ in range(10):
        warning = health.rejected("w", "s", RateLimitError("x", retry_after=30), 0, 0)
    assert warning is not None
    assert "(honouring Retry-After up to 30s, the provider asked for 30s; " in warning
    other = ProviderHealth(RunConfig(max_retry_after_s=30, no_success_budget_s=None))
    for _ in range(10):
        warning = other.rejected("w", "s", RateLimitError("x", retry_after=31.5), 0, 0)
    assert warning is not None
    assert "the provider asked for 31.5s, waiting 30s; " in warning


def test_the_budget_counts_from_the_first_call_and_each_model_alone() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=50))
    health.rejected("writer", "answer", RateLimitError("x"), started=7.0, now=40.0)
    health.rejected("writer", "answer", RateLimitError("x"), started=30.0, now=41.0)
    assert not health.is_exhausted("writer", 56.9)
    assert health.is_exhausted("writer", 57.0)
    assert not health.is_exhausted("judge", 1e9), "a model never called is not exhausted"
    health.succeeded("writer", 60.0, 70.0)
    health.rejected("writer", "answer", RateLimitError("x"), started=71.0, now=72.0)
    assert not health.is_exhausted("writer", 119.9)
    assert health.is_exhausted("writer", 120.0), "counted from the success's end"


def test_the_exhausted_message_names_the_streak_since_the_last_success() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=10))
    health.rejected("writer", "answer", RetryableError("x", status=503), 0, 0)
    health.succeeded("writer", 1, 1)
    health.rejected("writer", "draft", TimeoutError("slow"), 2, 2)
    last = ConnectionResetError("reset")
    health.rejected("writer", "judge", last, 3, 3)
    health.rejected("writer", "judge", last, 4, 4)
    message, step, error = health.exhausted_message("writer")
    assert message == (
        "model 'writer': no successful call for 10s; the last 3 calls failed "
        "(connection error x 2, timeout x 1)"
    )
    assert step == "judge" and error is last

    single = ProviderHealth(RunConfig(no_success_budget_s=2.5))
    single.rejected("m", "s", TimeoutError(), 0, 0)
    single.rejected("m", "t", TimeoutError(), 0, 0)
    assert single.exhausted_message("m") == (
        "model 'm': no successful call for 2.5s; the last 2 calls failed (timeout)",
        "t",
        single.exhausted_message("m")[2],
    )
    assert isinstance(single.exhausted_message("m")[2], TimeoutError)


def test_a_success_clears_the_labels_of_the_streak() -> None:
    health = ProviderHealth(RunConfig(no_success_budget_s=10))
    health.rejected("writer", "answer", TimeoutError(), 0, 0)
    health.succeeded("writer", 1, 1)
    health.rejected("writer", "answer", RateLimitError("x"), 2, 2)
    message, _, _ = health.exhausted_message("writer")
    assert message.endswith("the last 1 calls were rejected with HTTP 429 (rate limited)")
