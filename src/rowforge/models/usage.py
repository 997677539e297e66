"""Request, token and latency accounting per model: `UsageMeter` and its value `ModelUsage`.

Theory of operation: every client owns one `UsageMeter` (so there is one per model alias) and
reports each request to it: `started()` when the request goes out, then exactly one of
`answered(latency_s, prompt_tokens, completion_tokens)`, `failed(latency_s, label)` or
`cancelled()` when it ends (`ended_by(latency_s, error)` picks between the last two from the
exception). A run reads the meter while it goes on (`snapshot()`, for progress displays) and at
every metadata write (`as_metadata()`, for metadata.json's "models" section).

A run may send millions of requests, so the meter keeps nothing per request: counters, a fixed
log-scale latency histogram (`LatencyHistogram`: buckets 5% wide from 1 ms to 10 minutes, from
which p50/p90/p99 are estimated to within about 2.5%), the largest latency, and the last 64
latencies (their median is the "recent latency", which follows a provider slowing down long
before the run-wide percentiles move). Its size is the same after ten requests and after ten
million.

Only answers feed the latency figures: a failure's latency says how long the client waited for
a timeout or an error page, not how fast the model answers, so it is summed apart (`failed_s`).
Failures are counted by label: the HTTP status the provider answered with ("429", "503"), or
"timeout", "connection", or "invalid" (a reply that is not a chat completion); see
`error_label`. A cancelled request (the run stopped, a caller gave up) is neither answered nor
failed: it only leaves `in_flight`.

Not thread-safe: the meter is updated and read from the run's one event loop, with no await
between the reads and writes of one update, so no lock is needed (and none is taken).
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from rowforge.errors import ProviderConnectionError, ProviderTimeoutError, RowforgeError
from rowforge.models.client import ModelRequestError

#: The histogram's bucket bounds: bucket i holds latencies in (BOUNDS[i-1], BOUNDS[i]] ms
#: (bucket 0 everything up to 1 ms), and one more bucket holds those above the last bound.
LATENCY_FLOOR_MS = 1.0
LATENCY_CEILING_MS = 600_000.0  # 10 minutes: past any sensible request timeout
BUCKET_RATIO = 1.05
_BUCKETS_TO_CEILING = math.ceil(math.log(LATENCY_CEILING_MS / LATENCY_FLOOR_MS, BUCKET_RATIO))
BOUNDS_MS: tuple[float, ...] = tuple(
    LATENCY_FLOOR_MS * BUCKET_RATIO**i for i in range(_BUCKETS_TO_CEILING + 1)
)

#: How many of the latest answers the recent latency is the median of.
RECENT_ANSWERS = 64

#: The percentiles `ModelUsage.latency_ms` reports, by key.
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}


def error_label(error: BaseException) -> str | None:
    """How a meter counts a failed request: the HTTP status as a string ("429", "503"), else
    "timeout", "connection", "invalid" (a `ModelRequestError` without a status: the reply was
    not a chat completion), or "error" (any other retryable failure without a status).

    None for an exception that is not a failed request (cancellation, an interrupt, a bug):
    the request ended without an outcome.
    """
    if not isinstance(error, RowforgeError):
        return None
    status = getattr(error, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return str(status)
    if isinstance(error, ProviderTimeoutError):
        return "timeout"
    if isinstance(error, ProviderConnectionError):
        return "connection"
    if isinstance(error, ModelRequestError):
        return "invalid"
    return "error"


class LatencyHistogram:
    """Counts of latencies in fixed log-scale buckets (`BOUNDS_MS`), plus their min and max.

    A quantile is the geometric middle of the bucket the nearest-rank sample falls in, clamped
    to [min, max]; with buckets 5% wide that is within about 2.5% of the sample itself.
    """

    __slots__ = ("count", "counts", "max_ms", "min_ms")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS_MS) + 1)
        self.count = 0
        self.min_ms = math.inf
        self.max_ms = 0.0

    def add(self, latency_ms: float) -> None:
        """Count one latency; negative or NaN values (a clock gone wrong) count as 0 ms."""
        if not latency_ms >= 0:
            latency_ms = 0.0
        self.counts[bisect.bisect_left(BOUNDS_MS, latency_ms)] += 1
        self.count += 1
        self.min_ms = min(self.min_ms, latency_ms)
        self.max_ms = max(self.max_ms, latency_ms)

    def quantile(self, q: float) -> float | None:
        """The estimated `q`-quantile (0 < q <= 1) in ms; None while nothing was counted."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))  # nearest rank: the rank-th smallest latency
        index = bisect.bisect_left(list(itertools.accumulate(self.counts)), rank)
        if index == len(BOUNDS_MS):  # above the last bound: only the max is known
            return self.max_ms
        middle = BOUNDS_MS[index] / math.sqrt(BUCKET_RATIO)
        return min(max(middle, self.min_ms), self.max_ms)

    def buckets(self) -> list[list[float]]:
        """The non-empty buckets as `[upper_ms, count]`, in order; the bucket above the last
        bound reports the max as its upper end."""
        return [
            [round(BOUNDS_MS[i], 3) if i < len(BOUNDS_MS) else round(self.max_ms, 3), count]
            for i, count in enumerate(self.counts)
            if count
        ]


@attrs.frozen
class ModelUsage:
    """One model's requests at one moment (`UsageMeter.snapshot()`).

    `requests` counts the requests started, `in_flight` those not ended yet, `errors` the failed
    ones by label (see `error_label`). Tokens are what the provider's `usage` reported for the
    answered requests. `recent_latency_s` is the median latency of the last `RECENT_ANSWERS`
    answers and `latency_ms` holds "p50", "p90", "p99" and "max" over all answers; None and an
    empty mapping before the first answer.
    """

    alias: str
    requests: int
    in_flight: int
    errors: Mapping[str, int]
    prompt_tokens: int
    completion_tokens: int
    recent_latency_s: float | None
    latency_ms: Mapping[str, float]


class UsageMeter:
    """The requests of one model alias: counters, a latency histogram, the recent latencies.

    Each `started()` is followed by exactly one of `answered`, `failed` or `cancelled`. O(1)
    memory whatever the number of requests; not thread-safe (one event loop updates and reads
    it; see the module docstring).
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.requests = 0
        self.in_flight = 0
        self.answers = 0
        self.cancellations = 0
        self.errors: dict[str, int] = {}  # one entry per label: bounded by the HTTP statuses
        self.prompt_tokens = 0
        self.completion_tokens = 0
        #: Seconds spent waiting on requests that failed (kept out of the latency figures).
        self.failed_s = 0.0
        self.latency = LatencyHistogram()
        self._recent: deque[float] = deque(maxlen=RECENT_ANSWERS)
        #: JSON replies read only after removing a Markdown fence / after a repair (see
        #: `rowforge.models.repair`): each one is a request not sent again.
        self.unfenced = 0
        self.repaired = 0

    def started(self) -> None:
        """A request went out."""
        self.requests += 1
        self.in_flight += 1

    def answered(self, latency_s: float, prompt_tokens: int, completion_tokens: int) -> None:
        """A started request got a chat completion after `latency_s`, whose `usage` reported
        these token counts (0 when it reported none)."""
        self.in_flight -= 1
        self.answers += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.latency.add(latency_s * 1000)
        self._recent.append(latency_s)

    def failed(self, latency_s: float, label: str) -> None:
        """A started request failed after `latency_s`; `label` is what `error_label` says."""
        self.in_flight -= 1
        self.errors[label] = self.errors.get(label, 0) + 1
        if latency_s > 0:
            self.failed_s += latency_s

    def cancelled(self) -> None:
        """A started request ended without an outcome (cancelled, interrupted)."""
        self.in_flight -= 1
        self.cancellations += 1

    def ended_by(self, latency_s: float, error: BaseException) -> None:
        """A started request raised `error`: `failed` with its label when it is a failed
        request, else `cancelled` (see `error_label`)."""
        label = error_label(error)
        if label is None:
            self.cancelled()
        else:
            self.failed(latency_s, label)

    def read_json(self, *, fenced: bool, repaired: bool) -> None:
        """A JSON reply was read, after removing a Markdown fence and/or repairing it."""
        self.unfenced += fenced
        self.repaired += repaired

    @property
    def recent_latency_s(self) -> float | None:
        """The median latency of the last `RECENT_ANSWERS` answers; None before the first."""
        return statistics.median(self._recent) if self._recent else None

    def latency_ms(self) -> dict[str, float]:
        """The answers' latency percentiles in ms ("p50", "p90", "p99", "max"); {} before the
        first answer."""
        if not self.latency.count:
            return {}
        figures = {key: self.latency.quantile(q) for key, q in PERCENTILES.items()}
        figures["max"] = self.latency.max_ms
        return {key: round(value, 3) for key, value in figures.items() if value is not None}

    def snapshot(self) -> ModelUsage:
        """The meter now, as a frozen value; O(buckets), not O(requests)."""
        return ModelUsage(
            alias=self.alias,
            requests=self.requests,
            in_flight=self.in_flight,
            errors=dict(sorted(self.errors.items())),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            recent_latency_s=self.recent_latency_s,
            latency_ms=self.latency_ms(),
        )

    def as_metadata(self) -> dict[str, Any]:
        """The meter as metadata.json's "models" entry of its alias (JSON-ready):

        `requests` (started), `answered`, `cancelled`, `errors` by label, `failed_s`,
        `prompt_tokens`, `completion_tokens`, `latency_ms` ("p50", "p90", "p99", "max"; {} with
        no answer) and `latency_histogram_ms`: the non-empty buckets as `[upper_ms, count]`,
        so a report can draw the distribution. `requests == answered + sum(errors) + cancelled
        + in_flight`. `json_replies` counts the JSON replies (structured columns) that were
        read only after removing a Markdown fence (`unfenced`) or after a repair (`repaired`).
        """
        return {
            "requests": self.requests,
            "answered": self.answers,
            "cancelled": self.cancellations,
            "errors": dict(sorted(self.errors.items())),
            "failed_s": round(self.failed_s, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": self.latency_ms(),
            "latency_histogram_ms": self.latency.buckets(),
            "json_replies": {"unfenced": self.unfenced, "repaired": self.repaired},
        }


def models_metadata(
    meters: Mapping[str, UsageMeterLike],
    retries: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """metadata.json's "models" section: `{alias: meter.as_metadata() + {"retries": {...}}}`,
    by alias.

    `meters` is `ModelRegistry.usage()`; `retries` the retries the scheduler granted per alias
    and cause (`{"writer": {"rate_limit": 3, "transient": 1}}`); an alias it does not name gets
    `"retries": {}`, and a resource with retries but no client (a plain Python step that names
    a resource) gets only its retries. The meters count attempts (each retry is one more
    request); the retries say why the scheduler sent them.
    """
    retries = retries or {}
    return {
        alias: {
            **(meters[alias].as_metadata() if alias in meters else {}),
            "retries": dict(sorted((retries.get(alias) or {}).items())),
        }
        for alias in sorted({*meters, *retries})
    }


class UsageMeterLike(Protocol):
    """What a run reads of a model's meter: `UsageMeter`, or a stand-in in tests."""

    def snapshot(self) -> ModelUsage: ...

    def as_metadata(self) -> dict[str, Any]: ...
