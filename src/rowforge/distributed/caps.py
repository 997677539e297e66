"""Sharing a run's concurrency caps among its Ray workers.

Each worker runs its own engine, and an engine enforces only the caps it is given. A model's
`max_parallel_requests` (or the default) and the run's `max_in_flight` are promises about the
whole run (a provider's rate limit does not care which process calls it), so each worker gets a
share and the shares add up to the configured cap, never more: `cap // workers` each, and the
first `cap % workers` workers one more.

A cap smaller than the number of workers cannot be split that way (a worker with a share of 0
could never call that model), so the run uses as many workers as the smallest cap allows
(`usable_workers`), and says so.

The early-shutdown window is shared the same way: a local run ends when, over its last
`early_shutdown_window` model tasks, the failure rate reaches the threshold; each worker sees
only its part of the tasks, so it judges over its part of the window (at least 1 task). A
provider that fails for everyone then ends a Ray build after about as many failed tasks as a
local one; with whole windows, workers that each finish fewer tasks than the window would
never trip, and the build would end as a failed run instead of an early shutdown.

Not shared: `max_concurrent_row_groups` bounds one engine's open row groups, which is about
that worker's memory, so every worker keeps the configured value.
"""

from __future__ import annotations

import attrs

from rowforge.scheduler.config import RunConfig


def share_of(cap: int, workers: int, index: int) -> int:
    """Worker `index`'s part of `cap` split over `workers` (the parts add up to `cap`)."""
    base, extra = divmod(cap, workers)
    return base + (1 if index < extra else 0)


def smallest_cap(config: RunConfig) -> int:
    """The smallest of the caps that are shared: it bounds how many workers can share them."""
    return min(
        config.max_in_flight,
        config.default_max_parallel_requests,
        *config.max_parallel_requests.values(),
    )


def usable_workers(config: RunConfig) -> int:
    """How many workers the run can use: `config.workers`, or fewer when a shared cap is
    smaller (each worker needs a share of at least 1 of every cap)."""
    return min(config.workers, smallest_cap(config))


def worker_config(config: RunConfig, workers: int, index: int) -> RunConfig:
    """Worker `index`'s `RunConfig`: `config` with its share of every shared cap, run locally
    in the worker (a worker never distributes again)."""
    if not 0 <= index < workers <= smallest_cap(config):
        raise ValueError(
            f"worker {index} of {workers}: the caps allow at most {smallest_cap(config)} workers"
        )
    return attrs.evolve(
        config,
        max_in_flight=share_of(config.max_in_flight, workers, index),
        default_max_parallel_requests=share_of(
            config.default_max_parallel_requests, workers, index
        ),
        max_parallel_requests={
            resource: share_of(cap, workers, index)
            for resource, cap in config.max_parallel_requests.items()
        },
        early_shutdown_window=max(1, share_of(config.early_shutdown_window, workers, index)),
        executor="local",
        ray_address=None,
        workers=1,
    )
