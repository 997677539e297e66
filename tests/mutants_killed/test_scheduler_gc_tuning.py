"""`young_threshold_at_least`: what tests/scheduler/test_gc_tuning.py leaves unchecked.

Written ahead of `make mutants` over gc_tuning.py, to kill mutants in
`young_threshold_at_least` and `_apply` that the runs of tests/scheduler/test_gc_tuning.py (the
CLI, failed, cancelled, nested, threaded runs) do not tell apart:
- None touches nothing: not even a change made inside its block is undone (`is None` negated
  would register None and fail in `max`);
- only `threshold0` is raised: the middle and old thresholds here differ from each other and
  from CPython's defaults; a young threshold of 1 is raised (`young > 0` -> `young > 1`), 0 is
  left alone (`>=`), a higher one is never lowered (`max` without the current value);
- requests that end out of order (the larger first), equal requests, requests in threads all
  active at once: the largest active request applies, the original comes back after the last;
- a change made by the application while runs are active becomes the value restored, whole
  (all three thresholds), also when it is made while the inner of two runs is active;
- an exception in the block still restores, and propagates;
- `RECOMMENDED_YOUNG_THRESHOLD` is 10,000.

Equivalent: `_baseline = _applied = ""` for `= None` once the last request ends (the next
request sees `current != _applied` and takes the current thresholds as its base either way).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from rowforge.scheduler import gc_tuning
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD, young_threshold_at_least

ORIGINAL = (700, 11, 12)


@pytest.fixture(autouse=True)
def known_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(*ORIGINAL)
    try:
        yield
        assert gc_tuning._requests == [], "every request was withdrawn"
    finally:
        gc.set_threshold(*saved)


def test_the_recommended_young_threshold_is_ten_thousand() -> None:
    assert RECOMMENDED_YOUNG_THRESHOLD == 10_000


def test_none_leaves_the_thresholds_alone_and_undoes_nothing() -> None:
    with young_threshold_at_least(None):
        assert gc.get_threshold() == ORIGINAL
        gc.set_threshold(300, 4, 5)
    assert gc.get_threshold() == (300, 4, 5)
    assert gc_tuning._requests == []


def test_only_the_young_threshold_is_raised() -> None:
    with young_threshold_at_least(5_000):
        assert gc.get_threshold() == (5_000, 11, 12)
    assert gc.get_threshold() == ORIGINAL


@pytest.mark.parametrize(
    ("before", "during"),
    [
        ((1, 3, 4), (5_000, 3, 4)),  # any positive threshold is raised
        ((0, 3, 4), (0, 3, 4)),  # automatic collection stays off
        ((50_000, 3, 4), (50_000, 3, 4)),  # never lowered
        ((5_000, 3, 4), (5_000, 3, 4)),
    ],
)
def test_the_young_threshold_is_raised_to_the_request_only_when_positive_and_lower(
    before: tuple[int, int, int], during: tuple[int, int, int]
) -> None:
    gc.set_threshold(*before)
    with young_threshold_at_least(5_000):
        assert gc.get_threshold() == during
    assert gc.get_threshold() == before


def test_requests_ending_out_of_order_keep_the_largest_active_one() -> None:
    larger = young_threshold_at_least(20_000)
    smaller = young_threshold_at_least(5_000)
    larger.__enter__()
    smaller.__enter__()
    try:
        assert gc.get_threshold() == (20_000, 11, 12)
    finally:
        larger.__exit__(None, None, None)  # the first request ends first
    try:
        assert gc.get_threshold() == (5_000, 11, 12), "the smaller request is still active"
    finally:
        smaller.__exit__(None, None, None)
    assert gc.get_threshold() == ORIGINAL


def test_equal_requests_are_withdrawn_one_at_a_time() -> None:
    with young_threshold_at_least(3_000):
        with young_threshold_at_least(3_000):
            assert gc.get_threshold() == (3_000, 11, 12)
        assert gc.get_threshold() == (3_000, 11, 12)
        assert gc_tuning._requests == [3_000]
    assert gc.get_threshold() == ORIGINAL


def test_concurrent_requests_in_threads_apply_the_largest_and_restore_the_original() -> None:
    requests = [3_000, 9_000, 6_000]
    all_in, all_read = threading.Barrier(len(requests)), threading.Barrier(len(requests))
    seen: list[tuple[int, int, int]] = []

    def run(threshold: int) -> None:
        with young_threshold_at_least(threshold):
            all_in.wait(timeout=10)
            seen.append(gc.get_threshold())
            all_read.wait(timeout=10)

    threads = [threading.Thread(target=run, args=(t,)) for t in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == [(9_000, 11, 12)] * 3
    assert gc.get_threshold() == ORIGINAL


def test_a_change_made_while_the_inner_of_two_runs_is_active_is_what_is_restored() -> None:
    with young_threshold_at_least(5_000):
        with young_threshold_at_least(8_000):
            gc.set_threshold(1_234, 3, 4)
        assert gc.get_threshold() == (5_000, 3, 4), "the change is the new base"
    assert gc.get_threshold() == (1_234, 3, 4)


def test_a_higher_change_made_during_a_run_is_kept_while_it_runs_and_after() -> None:
    with young_threshold_at_least(5_000):
        gc.set_threshold(60_000, 3, 4)
        with young_threshold_at_least(8_000):
            assert gc.get_threshold() == (60_000, 3, 4)
    assert gc.get_threshold() == (60_000, 3, 4)


def test_an_exception_in_the_block_restores_the_thresholds_and_propagates() -> None:
    with pytest.raises(KeyError, match="boom"), young_threshold_at_least(5_000):
        assert gc.get_threshold() == (5_000, 11, 12)
        raise KeyError("boom")
    assert gc.get_threshold() == ORIGINAL
