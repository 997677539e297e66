"""Admission: ready queues, caps and leases (INV-3, INV-10).

Theory of operation
-------------------
Ready work waits in one FIFO queue per step. `next_admissible` walks the steps round-robin,
starting after the step it served last, and returns the first queued task whose resource has a
free slot while the global in-flight cap has one too. Round-robin over steps keeps one column's
big frontier from starving another step or model (fairness); skipping steps whose resource is
full and taking the next one keeps every free slot busy (work conservation); a cap of 1 is just
a counter that goes 0 -> 1 -> 0, so it cannot deadlock.

Leases are plain counters owned by this object, acquired at admission and released exactly once
when the worker drains; `release` refuses a second release. At the end of every run each counter
is back at zero (checked by the tests).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rowforge.errors import RateLimitError
from rowforge.scheduler.adaptive import AdaptiveLimit
from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.plan import Step
from rowforge.scheduler.subjects import Worker
from rowforge.statemachine import TABLES

_SUCCEEDED = TABLES["worker"].dest_of("succeed")


class Admission:
    """Caps and leases for one run."""

    def __init__(self, steps: Sequence[Step], config: RunConfig) -> None:
        self._steps = [step.name for step in steps]
        self._resource_of = {step.name: step.resource for step in steps}
        self.queues: dict[str, deque[Worker]] = {name: deque() for name in self._steps}
        self.global_cap = config.max_in_flight
        self.resource_caps: dict[str, int] = {}
        for step in steps:
            cap = config.cap_for(step.resource)
            if step.resource is not None and cap is not None:
                self.resource_caps[step.resource] = cap
        self.in_flight = 0
        self.per_resource: dict[str, int] = dict.fromkeys(self.resource_caps, 0)
        self.peak_in_flight = 0
        self.peak_per_resource: dict[str, int] = dict.fromkeys(self.resource_caps, 0)
        self._cursor = 0
        self.queued = 0
        self.adaptive: dict[str, AdaptiveLimit] = (
            {name: AdaptiveLimit(cap) for name, cap in self.resource_caps.items()}
            if config.adaptive_concurrency
            else {}
        )

    def push(self, worker: Worker) -> None:
        """Queue a worker. Retries go first: they finish rows already under way, and a provider
        that fails everything trips early shutdown after a window of tasks, not a row group."""
        if worker.attempt:
            self.queues[worker.step.name].appendleft(worker)
        else:
            self.queues[worker.step.name].append(worker)
        self.queued += 1

    def next_admissible(self) -> Worker | None:
        """Pop the next worker that may run now and give it its leases, or return None."""
        if self.in_flight >= self.global_cap or not self.queued:
            return None
        count = len(self._steps)
        for offset in range(count):
            position = (self._cursor + offset) % count
            name = self._steps[position]
            queue = self.queues[name]
            if not queue:
                continue
            resource = self._resource_of[name]
            if resource is not None and self.per_resource[resource] >= self.cap_now(resource):
                continue
            worker = queue.popleft()
            self.queued -= 1
            self._cursor = position + 1
            self._acquire(worker, resource)
            return worker
        return None

    def cap_now(self, resource: str) -> int:
        """The configured cap, or the adaptive limit below it when adaptive concurrency is on."""
        adaptive = self.adaptive.get(resource)
        return self.resource_caps[resource] if adaptive is None else adaptive.current

    def observe(self, worker: Worker) -> None:
        """Feed a finished attempt to its resource's adaptive limit (when there is one)."""
        adaptive = self.adaptive.get(worker.resource_lease or "")
        if adaptive is None:
            return
        if worker.outcome == _SUCCEEDED:
            adaptive.succeeded()
        elif isinstance(worker.error, RateLimitError):
            adaptive.rate_limited(worker.started, worker.finished)

    def _acquire(self, worker: Worker, resource: str | None) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if resource is not None:
            used = self.per_resource[resource] + 1
            self.per_resource[resource] = used
            self.peak_per_resource[resource] = max(self.peak_per_resource[resource], used)
        worker.resource_lease = resource
        worker.has_leases = True

    def release(self, worker: Worker) -> None:
        """Give back the worker's leases; exactly once (INV-3)."""
        if not worker.has_leases:
            raise RuntimeError(f"worker {worker.ident}: leases released twice or never held")
        worker.has_leases = False
        self.in_flight -= 1
        if worker.resource_lease is not None:
            self.per_resource[worker.resource_lease] -= 1

    def remove(self, worker: Worker) -> None:
        """Take one queued worker out (its row was dropped); it holds no lease."""
        self.queues[worker.step.name].remove(worker)
        self.queued -= 1

    def discard_queued(self) -> list[Worker]:
        """Empty every queue (drain/abort): the returned workers never ran and hold no lease."""
        dropped = [worker for queue in self.queues.values() for worker in queue]
        for queue in self.queues.values():
            queue.clear()
        self.queued = 0
        return dropped

    @property
    def balanced(self) -> bool:
        """Every lease is back: the INV-3 end-of-run condition."""
        return self.in_flight == 0 and not any(self.per_resource.values())
