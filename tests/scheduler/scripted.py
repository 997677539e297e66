"""Scripted steps for scheduler tests: every call waits until the test decides its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import attrs
import pandas as pd

from rowforge.errors import RateLimitError, RetryableError
from rowforge.scheduler import Step


@attrs.define(eq=False)
class Call:
    """One in-flight call of a scripted step."""

    step: str
    argument: Any
    future: asyncio.Future[Any]
    started: float


class Controller:
    """Creates step functions whose calls park until `resolve` is called on them."""

    def __init__(self) -> None:
        self.pending: list[Call] = []
        self.started = 0
        self.upstream_violations: list[str] = []
        self.calls_after_end = 0
        self.ended = False

    def step_fn(self, name: str, kind: str) -> Callable[[Any], Any]:
        async def scripted(argument: Any) -> Any:
            if self.ended:
                self.calls_after_end += 1
            self.started += 1
            self._check_upstream(name, kind, argument)
            loop = asyncio.get_running_loop()
            call = Call(name, argument, loop.create_future(), loop.time())
            self.pending.append(call)
            try:
                return await call.future
            finally:
                self.pending.remove(call)

        return scripted

    def _check_upstream(self, name: str, kind: str, argument: Any) -> None:
        """INV-9: a call sees only generated upstream values."""
        if kind == "cell":
            missing = [key for key, value in argument.items() if value is None]
        else:
            missing = [column for column in argument.columns if argument[column].isna().any()]
        if missing:
            self.upstream_violations.append(f"{name} started before {missing} were generated")

    def resolve(self, call: Call, outcome: str) -> None:
        if call.future.done():
            return
        if outcome == "ok":
            call.future.set_result(value_for(call.step, call.argument))
        elif outcome == "retryable":
            call.future.set_exception(RetryableError(f"{call.step}: 503 from provider"))
        elif outcome == "rate_limit":
            call.future.set_exception(RateLimitError(f"{call.step}: 429", retry_after=0))
        else:
            call.future.set_exception(ValueError(f"{call.step}: provider rejected the request"))


def value_for(step: str, argument: Any) -> Any:
    """Deterministic output: a cell's value names its inputs; a batch gives one per row."""
    if isinstance(argument, pd.DataFrame):
        return [f"{step}#{index}" for index in argument.index]
    inputs = ",".join(f"{k}={v}" for k, v in sorted(argument.items()))
    return f"{step}({inputs})"


SHAPES: dict[str, list[tuple[str, str, tuple[str, ...], str | None]]] = {
    "chain": [("a", "cell", (), "m1"), ("b", "cell", ("a",), "m1"), ("c", "cell", ("b",), "m2")],
    "seeded": [
        ("seed", "batch", (), None),
        ("a", "cell", ("seed",), "m1"),
        ("b", "cell", ("a",), "m2"),
    ],
    "wide": [("a", "cell", (), "m1"), ("b", "cell", (), "m2"), ("c", "cell", ("a", "b"), "m1")],
    "mid_batch": [
        ("a", "cell", (), "m1"),
        ("judge", "batch", ("a",), "m2"),
        ("b", "cell", ("judge",), "m1"),
    ],
}


def scripted_steps(controller: Controller, shape: str) -> list[Step]:
    return [
        Step(name, controller.step_fn(name, kind), kind=kind, depends_on=deps, resource=resource)
        for name, kind, deps, resource in SHAPES[shape]
    ]


def rate_limited_once(resource: str) -> list[Step]:
    """`id` (a batch of record indexes) and `v`, a step on `resource` that answers 429 the first
    time it is called for each record and its record index after: one rate-limit retry per row."""
    seen: set[int] = set()

    def limited_once(row: dict[str, Any]) -> int:
        if row["id"] not in seen:
            seen.add(row["id"])
            raise RateLimitError("429 slow down", retry_after=0)
        return int(row["id"])

    return [
        Step("id", lambda frame: list(frame.index), kind="batch"),
        Step("v", limited_once, depends_on=["id"], resource=resource),
    ]
