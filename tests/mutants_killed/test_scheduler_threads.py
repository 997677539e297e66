"""`run_uninterrupted` on its own: blocking work that finishes through cancellation.

Kills mutants of `make mutants` (scheduler, threads.py) that the engine tests rarely reach,
because a sink write is seldom still running when a run is cancelled: the function's value
returned and its arguments passed (a dropped `*args`, a `return None`, `while True`->`while
False`); a cancellation that arrives while the function runs is absorbed, the wait goes on and
the value is returned (`continue`->`break`, `if future.done()`->`if not future.done()`); a
cancellation that arrives once the function has finished returns its result (the `return
future.result()` of the `done()` branch); the function's exception propagates, also after a
cancellation. No test sleeps: threading events order the function and the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from rowforge.scheduler.threads import run_uninterrupted

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def until(event: threading.Event) -> None:
    """Let the loop run until `event` is set by the worker thread (at most about 5 s)."""
    for _ in range(5000):
        if event.is_set():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the function never started")


async def spin(times: int = 10) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


class Blocked:
    """A function that blocks in its worker thread until released."""

    def __init__(self, outcome: Callable[[int], int]) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished: list[int] = []
        self.outcome = outcome

    def __call__(self, value: int) -> int:
        self.started.set()
        self.release.wait(5)
        self.finished.append(value)
        return self.outcome(value)


def test_the_functions_value_is_returned_and_its_arguments_passed() -> None:
    assert run(run_uninterrupted(pow, 2, 10)) == 1024
    assert run(run_uninterrupted(lambda: "no args")) == "no args"
    assert run(run_uninterrupted(max, 3, 9, 4)) == 9


def test_the_function_runs_off_the_event_loops_thread() -> None:
    async def scenario() -> tuple[int, int]:
        return threading.get_ident(), await run_uninterrupted(threading.get_ident)

    loop_thread, worker_thread = run(scenario())
    assert loop_thread != worker_thread


def test_a_cancellation_while_the_function_runs_is_absorbed_and_the_value_returned() -> None:
    work = Blocked(lambda value: value * 2)

    async def scenario() -> tuple[int, bool]:
        task = asyncio.create_task(run_uninterrupted(work, 21))
        try:
            await until(work.started)
            assert task.cancel()
            await spin()
            assert not task.done(), "cancellation must not abandon the running function"
            task.cancel()  # a second one is absorbed the same way
            await spin()
            assert not task.done()
            assert work.finished == []
        finally:
            work.release.set()
        value = await task
        return value, task.cancelled()

    assert run(scenario()) == (42, False)
    assert work.finished == [21]


def test_a_cancellation_after_the_function_finished_returns_its_result() -> None:
    # The task is cancelled in the same loop iteration in which the executor's future completes,
    # before the task resumes: the CancelledError finds the future done and returns its result.
    async def scenario() -> tuple[str, bool]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []
        original = loop.run_in_executor

        def capturing(executor: Any, function: Any, *args: Any) -> asyncio.Future[Any]:
            future = original(executor, function, *args)
            futures.append(future)
            return future

        loop.run_in_executor = capturing  # type: ignore[method-assign, assignment]
        gate = threading.Event()

        def work(text: str) -> str:
            gate.wait(5)
            return text.upper()

        task = asyncio.create_task(run_uninterrupted(work, "done"))
        try:
            await spin(3)
            assert len(futures) == 1
            futures[0].add_done_callback(lambda _: task.cancel())
        finally:
            gate.set()
        value = await task
        return value, task.cancelled()

    assert run(scenario()) == ("DONE", False)


def test_the_functions_exception_propagates() -> None:
    def fail(message: str) -> None:
        raise ValueError(message)

    with pytest.raises(ValueError, match=r"^boom$"):
        run(run_uninterrupted(fail, "boom"))


def test_the_functions_exception_propagates_after_a_cancellation_too() -> None:
    def outcome(value: int) -> int:
        raise OSError(f"disk full at {value}")

    work = Blocked(outcome)

    async def scenario() -> None:
        task = asyncio.create_task(run_uninterrupted(work, 3))
        try:
            await until(work.started)
            task.cancel()
            await spin()
            assert not task.done()
        finally:
            work.release.set()
        await task

    with pytest.raises(OSError, match=r"^disk full at 3$"):
        run(scenario())
    assert work.finished == [3]


def test_a_cancelled_executor_future_ends_the_wait_instead_of_spinning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the executor itself cancels the work (its future is cancelled, e.g. while the
    executor shuts down), there is no result to wait for: the `done()` branch raises the
    future's CancelledError. Without it, the loop would await the cancelled future forever."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        monkeypatch.setattr(loop, "run_in_executor", lambda *_: future)
        loop.call_soon(future.cancel)
        await asyncio.wait_for(run_uninterrupted(lambda: 1), timeout=2)

    with pytest.raises(asyncio.CancelledError):
        run(main())
