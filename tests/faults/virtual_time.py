"""An event loop whose clock jumps to the next timer whenever nothing is ready.

A run that waits minutes of backoff, Retry-After and budgets (the real defaults) finishes in
milliseconds, with `loop.time()` saying how long it would have taken. Only for code that does no
real I/O: `run_virtual` replaces the engines' writer thread by an inline call, so nothing happens
outside the loop while virtual time jumps.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


#: Loop iterations a run may take. The runs here need a few ten thousand; a busy loop that
#: keeps scheduling work due "now" never moves the virtual clock, so it fails here instead.
MAX_ITERATIONS = 1_000_000


class _JumpingSelector:
    """Delegates to a real selector; a wait with a timeout and nothing ready advances the clock."""

    def __init__(self, real: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._real = real
        self._loop = loop
        self.iterations = 0

    def select(self, timeout: float | None = None) -> list[Any]:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise RuntimeError(
                f"{MAX_ITERATIONS} loop iterations at virtual time {self._loop.now:.3f}: "
                "a busy loop (work rescheduled without waiting)?"
            )
        events = self._real.select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only real I/O can wake us
            return self._real.select(None)
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self._selector = _JumpingSelector(self._selector, self)  # type: ignore[has-type,assignment]

    def time(self) -> float:
        return self.now


async def _inline(function: Any, *args: Any) -> Any:
    return function(*args)


async def _within(coroutine: Coroutine[Any, Any, T], limit_s: float) -> T:
    async with asyncio.timeout(limit_s):
        return await coroutine


def run_virtual(
    monkeypatch: pytest.MonkeyPatch, coroutine: Coroutine[Any, Any, T], limit_s: float = 7200.0
) -> tuple[T | BaseException, float]:
    """Run `coroutine` on a virtual clock; returns its result (or the exception it raised) and
    the virtual seconds it took. After `limit_s` virtual seconds it is cancelled and the
    outcome is a `TimeoutError` (a run that never ends fails instead of hanging the test)."""
    import rowforge.scheduler.dispatcher as dispatcher
    import rowforge.scheduler.sync_engine as sync_engine

    monkeypatch.setattr(dispatcher, "run_uninterrupted", _inline)
    monkeypatch.setattr(sync_engine, "run_uninterrupted", _inline)
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        loop = runner.get_loop()
        started = loop.time()
        try:
            outcome: T | BaseException = runner.run(_within(coroutine, limit_s))
        except Exception as error:
            outcome = error
        return outcome, loop.time() - started
