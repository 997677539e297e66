"""`AdaptiveLimit`'s arithmetic on its own.

Kills mutants of `make mutants` (scheduler, adaptive.py) that the engine's adaptive-concurrency
tests cannot pin down, since they only see the limit through how many requests overlap: the start
at the cap (as a float), the 0.7 cut and its floor of 1.0 (`max`->`min`, `1.0`->`2.0`), the
+1/limit recovery and its ceiling at the cap (`+`->`-`, `/`->`*`, `min`->`max`), `current`
truncating and clamping into [1, cap], and the rule that a 429 from a request started before the
last cut is ignored while one started exactly at the last cut is not (`<` vs `<=`), with the
first 429 always counting (the last cut starts at minus infinity) and each cut moving the mark to
its `now`.
"""

from __future__ import annotations

import pytest

from rowforge.scheduler.adaptive import AdaptiveLimit


def test_the_limit_starts_at_the_cap_as_a_float() -> None:
    limit = AdaptiveLimit(10)
    assert limit.limit == 10.0
    assert isinstance(limit.limit, float)
    assert limit.current == 10
    assert AdaptiveLimit(1).current == 1
    assert AdaptiveLimit(3).limit == 3.0


def test_the_back_off_factor_is_seventy_percent() -> None:
    assert AdaptiveLimit.BACK_OFF == 0.7


def test_a_rate_limit_cuts_the_limit_by_thirty_percent_each_time() -> None:
    limit = AdaptiveLimit(10)
    limit.rate_limited(started=0.0, now=1.0)
    assert limit.limit == 10 * 0.7 == 7.0
    assert limit.current == 7
    limit.rate_limited(started=1.0, now=2.0)
    assert limit.limit == 7.0 * 0.7  # 4.8999999999999995
    assert limit.current == 4, "4.9 is truncated, not rounded"
    limit.rate_limited(started=2.0, now=3.0)
    assert limit.limit == 7.0 * 0.7 * 0.7
    assert limit.current == 3


def test_the_cut_never_takes_the_limit_below_one() -> None:
    two = AdaptiveLimit(2)
    two.rate_limited(started=0.0, now=1.0)
    assert two.limit == pytest.approx(1.4)
    assert two.current == 1
    two.rate_limited(started=1.0, now=2.0)
    assert two.limit == 1.0, "0.98 is floored to 1.0"
    assert two.current == 1
    one = AdaptiveLimit(1)
    one.rate_limited(started=0.0, now=1.0)
    assert one.limit == 1.0
    assert one.current == 1


def test_a_success_adds_one_over_the_limit() -> None:
    limit = AdaptiveLimit(10)
    limit.rate_limited(started=0.0, now=1.0)
    limit.succeeded()
    assert limit.limit == 7.0 + 1.0 / 7.0
    assert limit.current == 7
    before = limit.limit
    limit.succeeded()
    assert limit.limit == before + 1.0 / before


def test_about_a_limits_worth_of_successes_adds_one() -> None:
    limit = AdaptiveLimit(100)
    limit.limit = 4.0
    for _ in range(4):
        limit.succeeded()
    assert 4.9 < limit.limit < 5.0
    assert limit.current == 4
    limit.succeeded()
    assert limit.current == 5


def test_recovery_stops_at_the_cap() -> None:
    limit = AdaptiveLimit(3)
    limit.succeeded()
    assert limit.limit == 3.0
    limit.limit = 2.9
    limit.succeeded()
    assert limit.limit == 3.0, "2.9 + 1/2.9 is capped at 3"
    assert limit.current == 3


def test_current_truncates_and_clamps_into_one_to_cap() -> None:
    limit = AdaptiveLimit(5)
    limit.limit = 3.99
    assert limit.current == 3
    limit.limit = 1.0
    assert limit.current == 1
    limit.limit = 0.5
    assert limit.current == 1
    limit.limit = 0.0
    assert limit.current == 1
    limit.limit = 5.0
    assert limit.current == 5
    limit.limit = 5.9
    assert limit.current == 5
    limit.limit = 9.0
    assert limit.current == 5
    assert isinstance(limit.current, int)


def test_the_first_rate_limit_always_counts() -> None:
    limit = AdaptiveLimit(10)
    limit.rate_limited(started=-1e300, now=-1e299)
    assert limit.limit == 7.0


def test_a_rate_limit_for_a_request_started_before_the_last_cut_is_ignored() -> None:
    limit = AdaptiveLimit(10)
    limit.rate_limited(started=1.0, now=5.0)
    assert limit.limit == 7.0
    limit.rate_limited(started=4.999, now=6.0)
    assert limit.limit == 7.0, "in flight when the limit was cut: the same overload"
    limit.rate_limited(started=1.0, now=7.0)
    assert limit.limit == 7.0
    # An ignored 429 does not move the mark: started 5.5 is still after the cut at 5.0.
    limit.rate_limited(started=5.5, now=8.0)
    assert limit.limit == 7.0 * 0.7


def test_a_rate_limit_for_a_request_started_exactly_at_the_last_cut_counts() -> None:
    limit = AdaptiveLimit(10)
    limit.rate_limited(started=0.0, now=5.0)
    limit.rate_limited(started=5.0, now=6.0)
    assert limit.limit == 7.0 * 0.7
    # The mark moved to the second cut's `now` (6.0), not its `started`.
    limit.rate_limited(started=5.5, now=7.0)
    assert limit.limit == 7.0 * 0.7
    limit.rate_limited(started=6.0, now=7.0)
    assert limit.limit == 7.0 * 0.7 * 0.7


def test_successes_do_not_move_the_last_cut() -> None:
    limit = AdaptiveLimit(10)
    limit.rate_limited(started=0.0, now=5.0)
    limit.succeeded()
    after_success = limit.limit
    limit.rate_limited(started=4.0, now=9.0)
    assert limit.limit == after_success
