"""`RunConfig`: every knob of the engine, with defaults a first run can live with.

All values are validated on construction; a bad value raises `ConfigError` naming the field, so
a typo in an embedding application fails before any model is called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from rowforge.errors import ConfigError

Engine = Literal["auto", "async", "sync"]
Executor = Literal["local", "ray"]
OnPartial = Literal["warn", "raise"]


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"RunConfig.{attribute.name} must be a positive number, got {value!r}")


def _at_least_one(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"RunConfig.{attribute.name} must be an int >= 1, got {value!r}")


def _finite_non_negative(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigError(f"RunConfig.{attribute.name} must be a finite number >= 0, got {value!r}")


def _finite_positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(
            f"RunConfig.{attribute.name} must be a finite number > 0 or None, got {value!r}"
        )


def _count(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"RunConfig.{attribute.name} must be an int >= 0 or None, got {value!r}")


def _rate(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ConfigError(f"RunConfig.{attribute.name} must be in (0, 1], got {value!r}")


def _choice(*allowed: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in allowed:
            raise ConfigError(f"RunConfig.{attribute.name} must be one of {allowed}, got {value!r}")

    return check


def _optional(check: Any) -> Any:
    """`check` for a value that may also be None (None switches the feature off)."""

    def optional(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(instance, attribute, value)

    return optional


def _positive_int(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"RunConfig.{attribute.name} must be a positive int or None, got {value!r}"
        )


def _address(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(
            f"RunConfig.{attribute.name} must be a non-empty string (host:port, ray://host:port "
            f"or 'auto') or None, got {value!r}"
        )


def _caps(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, int]) -> None:
    for key, cap in value.items():
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigError(
                f"RunConfig.{attribute.name}[{key!r}] must be an int >= 1, got {cap!r}"
            )


@attrs.frozen(kw_only=True)
class RunConfig:
    """How a run executes (not what it generates).

    Concurrency: `max_in_flight` bounds all running tasks; `max_parallel_requests` bounds the
    tasks of one resource (model alias), falling back to `default_max_parallel_requests`;
    `max_concurrent_row_groups` bounds open row groups (and so memory).

    Failure handling (see `scheduler.retry` and `scheduler.shutdown`): a task retries transient
    errors (5xx, 408, timeouts, connection errors) for up to `retry_budget_s` seconds of failed
    attempts and backoff, waiting a full-jitter exponential backoff (base `retry_backoff_s`, cap
    `retry_backoff_max_s`) or the provider's Retry-After, honoured up to `max_retry_after_s`.
    Rate limits (429) do not spend that budget: they retry with the same pacing until the model
    answers again, and a model that has had no successful call for `no_success_budget_s` while
    its calls are rejected ends the run (`EarlyShutdownError`). `max_retries` and
    `max_rate_limit_retries` are optional extra caps on the number of retries per task (None:
    only the budgets apply). Early shutdown trips when, over the last `early_shutdown_window`
    finished model tasks (steps with a resource), the failure rate reaches
    `early_shutdown_error_rate`. With `adaptive_concurrency`, each resource's limit backs off on
    rate limits and recovers on success, never above its cap (see `scheduler.adaptive`).
    `gc_young_threshold` raises the garbage collector's young threshold to at least this value
    while the run is active (restored afterwards). The default, None, leaves the GC alone: the
    threshold is process-wide, so the embedding application decides. rowforge's CLI, demo and
    benchmarks set 10,000 (`gc_tuning.RECOMMENDED_YOUNG_THRESHOLD`): with CPython's default of
    700, bursts of in-flight requests trigger collections that made throughput fall when the cap
    rose (see `scheduler.gc_tuning`). `progress_interval_s` is how often a run's `on_progress`
    callback receives a `ProgressSnapshot`.

    Where a run executes: `executor="local"` runs the engine in this process; `executor="ray"`
    deals the row groups out to `workers` Ray actors, each running the same engine with its
    share of the caps above (`rowforge.distributed`, docs/scaling.md). `ray_address` joins an
    existing Ray cluster (`"auto"`, `host:port`, `ray://host:port`); None starts a local Ray
    instance for the run and stops it after. Both are ignored by the local executor.
    """

    buffer_size: int = attrs.field(default=1000, validator=_at_least_one)
    max_in_flight: int = attrs.field(default=256, validator=_at_least_one)
    max_parallel_requests: Mapping[str, int] = attrs.field(factory=dict, validator=_caps)
    default_max_parallel_requests: int = attrs.field(default=32, validator=_at_least_one)
    max_concurrent_row_groups: int = attrs.field(default=2, validator=_at_least_one)
    retry_budget_s: float = attrs.field(default=120.0, validator=_finite_non_negative)
    retry_backoff_s: float = attrs.field(default=0.5, validator=_finite_non_negative)
    retry_backoff_max_s: float = attrs.field(default=30.0, validator=_finite_non_negative)
    max_retry_after_s: float = attrs.field(default=300.0, validator=_finite_non_negative)
    no_success_budget_s: float | None = attrs.field(
        default=300.0, validator=_optional(_finite_positive)
    )
    max_retries: int | None = attrs.field(default=None, validator=_optional(_count))
    max_rate_limit_retries: int | None = attrs.field(default=None, validator=_optional(_count))
    task_timeout_s: float | None = attrs.field(default=None, validator=_optional(_positive))
    early_shutdown_window: int = attrs.field(default=50, validator=_at_least_one)
    early_shutdown_error_rate: float = attrs.field(default=0.5, validator=_rate)
    disable_early_shutdown: bool = False
    adaptive_concurrency: bool = False
    on_partial: OnPartial = attrs.field(default="warn", validator=_choice("warn", "raise"))
    stall_warning_s: float = attrs.field(default=30.0, validator=_positive)
    progress_interval_s: float = attrs.field(default=1.0, validator=_positive)
    engine: Engine = attrs.field(default="auto", validator=_choice("auto", "async", "sync"))
    trace: bool = False
    seed: int = 0
    gc_young_threshold: int | None = attrs.field(default=None, validator=_optional(_positive_int))
    executor: Executor = attrs.field(default="local", validator=_choice("local", "ray"))
    ray_address: str | None = attrs.field(default=None, validator=_address)
    workers: int = attrs.field(default=2, validator=_at_least_one)

    def cap_for(self, resource: str | None) -> int | None:
        """The per-resource cap for `resource`, or None for steps that use no resource."""
        if resource is None:
            return None
        return self.max_parallel_requests.get(resource, self.default_max_parallel_requests)
