"""Each worker's share of the caps: the shares add up to the cap, every share is at least 1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowforge.distributed.caps import share_of, usable_workers, worker_config
from rowforge.scheduler import RunConfig

caps = st.integers(min_value=1, max_value=500)


@given(
    max_in_flight=caps,
    default=caps,
    per_model=st.dictionaries(st.sampled_from(["writer", "judge", "coder"]), caps, max_size=3),
    workers=st.integers(min_value=1, max_value=16),
)
def test_shares_never_exceed_the_caps(
    max_in_flight: int, default: int, per_model: dict[str, int], workers: int
) -> None:
    config = RunConfig(
        max_in_flight=max_in_flight,
        default_max_parallel_requests=default,
        max_parallel_requests=per_model,
        workers=workers,
        executor="ray",
    )
    used = usable_workers(config)
    assert 1 <= used <= workers
    shares = [worker_config(config, used, index) for index in range(used)]
    assert sum(s.max_in_flight for s in shares) == max_in_flight
    assert sum(s.default_max_parallel_requests for s in shares) == default
    for resource, cap in per_model.items():
        assert sum(s.max_parallel_requests[resource] for s in shares) == cap
        assert min(s.max_parallel_requests[resource] for s in shares) >= 1
    assert min(s.max_in_flight for s in shares) >= 1
    assert all(s.executor == "local" and s.workers == 1 for s in shares)


def test_a_cap_smaller_than_the_workers_means_fewer_workers() -> None:
    config = RunConfig(workers=8, max_parallel_requests={"writer": 3})
    assert usable_workers(config) == 3
    assert usable_workers(RunConfig(workers=8)) == 8


def test_a_share_for_too_many_workers_is_refused() -> None:
    config = RunConfig(max_parallel_requests={"writer": 3})
    with pytest.raises(ValueError, match="at most 3 workers"):
        worker_config(config, 4, 0)
    with pytest.raises(ValueError):
        worker_config(config, 2, 2)


def test_the_remainder_goes_to_the_first_workers() -> None:
    assert [share_of(7, 3, i) for i in range(3)] == [3, 2, 2]


def test_each_worker_judges_early_shutdown_over_its_part_of_the_window() -> None:
    config = RunConfig(early_shutdown_window=50)
    windows = [worker_config(config, 3, i).early_shutdown_window for i in range(3)]
    assert windows == [17, 17, 16]
    small = RunConfig(early_shutdown_window=1, max_in_flight=8)
    assert [worker_config(small, 2, i).early_shutdown_window for i in range(2)] == [1, 1]
