"""Adaptive concurrency: back off on rate limits, recover on success, never above the cap."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd

from rowforge.errors import RateLimitError
from rowforge.scheduler import RunConfig, Step, run_steps
from rowforge.scheduler.adaptive import AdaptiveLimit


def test_a_rate_limit_cuts_the_limit_once_per_burst_and_successes_recover_it() -> None:
    limit = AdaptiveLimit(cap=40)
    limit.rate_limited(started=1.0, now=2.0)
    assert limit.current == 28
    limit.rate_limited(started=1.5, now=2.1)  # in flight before the cut: same overload
    assert limit.current == 28
    limit.rate_limited(started=2.2, now=3.0)
    assert limit.current == 19
    for _ in range(2000):
        limit.succeeded()
    assert limit.current == 40, "recovers up to the cap, never beyond"
    for moment in range(100):
        limit.rate_limited(started=10.0 + moment, now=10.5 + moment)
    assert limit.current == 1, "never below one: work is still admitted"


class FussyProvider:
    """Answers 429 whenever more than `allowed` calls are in flight at once."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.in_flight = 0
        self.rate_limited = 0

    async def __call__(self, row: dict[str, Any]) -> int:
        self.in_flight += 1
        try:
            await asyncio.sleep(0.002)
            if self.in_flight > self.allowed:
                self.rate_limited += 1
                raise RateLimitError("429 slow down", retry_after=0.001)
            return 1
        finally:
            self.in_flight -= 1


def run(adaptive: bool) -> tuple[Any, FussyProvider]:
    provider = FussyProvider(allowed=4)
    steps = [
        Step("id", lambda frame: list(frame.index), kind="batch"),
        Step("answer", provider, depends_on=["id"], resource="llm"),
    ]
    config = RunConfig(
        max_parallel_requests={"llm": 32},
        adaptive_concurrency=adaptive,
        max_rate_limit_retries=10_000,
        retry_backoff_s=0.0,
        stall_warning_s=60,
    )
    return run_steps(steps, 150, config=config), provider


def test_adaptive_concurrency_backs_off_a_rate_limiting_provider() -> None:
    fixed, fixed_provider = run(adaptive=False)
    adaptive, adaptive_provider = run(adaptive=True)
    assert fixed.outcome == adaptive.outcome == "completed"
    assert adaptive.stats["adaptive_limits"]["llm"] < 32
    assert fixed.stats["adaptive_limits"] == {}
    assert adaptive_provider.rate_limited * 3 < fixed_provider.rate_limited
    assert isinstance(adaptive.dataset, pd.DataFrame) and len(adaptive.dataset) == 150
