"""Server-side fault injection for the mock HTTP server: a provider having a bad day.

Theory of operation: `MockSettings` describe how the mock *model* misbehaves (and the in-process
`MockClient` sees the same); a `FaultPlan` describes how the *provider in front of it* does,
which only exists over HTTP: rate limits with or without Retry-After, 5xx shares, outages,
hangs, connections reset mid-response and bodies that trickle in slowly. `MockServer(faults=...)`
asks a `FaultInjector` what to do with each request before the model sees it:

1. inside the outage window (`outage_start_s` to `outage_start_s + outage_s` after the server
   started) every request gets a 503;
2. otherwise one draw decides between a 429 (`rate_limit_rate`, with a `Retry-After` header only
   when `retry_after_s` is set), a `status` answer (`status_rate`, e.g. 500 or 503), a hang
   (`hang_rate`: no answer until the client gives up or the server stops), a reset
   (`reset_rate`: headers and half the body of a normal reply, then the connection is closed),
   or a normal reply;
3. a normal reply is sent in `trickle_bytes` chunks `trickle_ms` apart when `trickle_ms` > 0.

The draw is seeded by (seed, the request's body, how many times that body was seen), the way
`MockModel` draws, so a run's faults do not depend on how its requests interleave, and a retry
draws again. A body's count is forgotten once it got a normal reply. The outage is by the
clock, so it is as deterministic as time is. `counts` says what was injected, per kind.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import attrs

from rowforge.errors import ConfigError

Fault = Literal["outage", "rate_limit", "status", "hang", "reset"]


def _share(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"FaultPlan.{attribute.name} must be in [0, 1], got {value!r}")


def _seconds(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigError(f"FaultPlan.{attribute.name} must be a finite number >= 0, got {value!r}")


def _status(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == 408 or 500 <= value <= 599)
    ):
        raise ConfigError(f"FaultPlan.{attribute.name} must be 408 or a 5xx status, got {value!r}")


def _chunk(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"FaultPlan.{attribute.name} must be an int >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class FaultPlan:
    """What the mock server does to requests before (and while) answering them.

    The shares `rate_limit_rate`, `status_rate`, `hang_rate` and `reset_rate` are disjoint
    slices of one draw per request, so they sum to at most 1.
    """

    rate_limit_rate: float = attrs.field(default=0.0, validator=_share)
    #: The `Retry-After` (seconds) an injected 429 carries; None sends none.
    retry_after_s: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_seconds)
    )
    status_rate: float = attrs.field(default=0.0, validator=_share)
    status: int = attrs.field(default=503, validator=_status)
    outage_s: float = attrs.field(default=0.0, validator=_seconds)
    outage_start_s: float = attrs.field(default=0.0, validator=_seconds)
    hang_rate: float = attrs.field(default=0.0, validator=_share)
    reset_rate: float = attrs.field(default=0.0, validator=_share)
    trickle_ms: float = attrs.field(default=0.0, validator=_seconds)
    trickle_bytes: int = attrs.field(default=16, validator=_chunk)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        total = self.rate_limit_rate + self.status_rate + self.hang_rate + self.reset_rate
        if total > 1 + 1e-9:
            raise ConfigError(
                "FaultPlan rate_limit_rate + status_rate + hang_rate + reset_rate must be at "
                f"most 1, got {total!r}"
            )

    @property
    def active(self) -> bool:
        return bool(
            self.rate_limit_rate
            or self.status_rate
            or self.outage_s
            or self.hang_rate
            or self.reset_rate
            or self.trickle_ms
        )


#: No faults: the server answers like a healthy provider.
NO_FAULTS = FaultPlan()


def body_key(body: Any) -> bytes:
    """A stable digest of a request body: equal bodies get equal keys in every process."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class FaultInjector:
    """Decides, per request, which fault of `plan` (if any) the server injects.

    `clock` (default `time.monotonic`) times the outage window from construction; tests may
    pass their own.
    """

    def __init__(self, plan: FaultPlan, clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = plan
        self._clock = clock
        self.started = clock()
        self._seen: dict[bytes, int] = {}
        self.counts: Counter[str] = Counter()

    def in_outage(self) -> bool:
        plan = self.plan
        elapsed = self._clock() - self.started
        return plan.outage_s > 0 and plan.outage_start_s <= elapsed < plan.outage_start_s + (
            plan.outage_s
        )

    def decide(self, key: bytes) -> Fault | None:
        """The fault for this request (`key` from `body_key`), counted in `counts`."""
        fault = self._draw(key)
        if fault is not None:
            self.counts[fault] += 1
        return fault

    def _draw(self, key: bytes) -> Fault | None:
        if self.in_outage():
            return "outage"
        plan = self.plan
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        digest = hashlib.blake2b(repr((plan.seed, key, seen)).encode(), digest_size=16)
        draw = random.Random(int.from_bytes(digest.digest(), "big")).random()
        edge = 0.0
        slices: tuple[tuple[float, Fault], ...] = (
            (plan.rate_limit_rate, "rate_limit"),
            (plan.status_rate, "status"),
            (plan.hang_rate, "hang"),
            (plan.reset_rate, "reset"),
        )
        for share, fault in slices:
            edge += share
            if draw < edge:
                return fault
        return None

    def settle(self, key: bytes) -> None:
        """The request got a whole, normal reply: its next occurrence draws from scratch."""
        self._seen.pop(key, None)
