"""Unit tests of the scheduler's small parts: config, admission, retry policy, early shutdown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowforge.errors import ConfigError, RateLimitError, RetryableError
from rowforge.scheduler import RunConfig, Step, build_plan
from rowforge.scheduler.admission import Admission
from rowforge.scheduler.retry import ErrorKind, RetryPolicy, classify
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.shutdown import EarlyShutdown
from rowforge.scheduler.subjects import Worker


def noop(row: object) -> int:
    return 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("buffer_size", 0, "RunConfig.buffer_size must be positive"),
        ("max_in_flight", -1, "RunConfig.max_in_flight must be positive"),
        (
            "early_shutdown_error_rate",
            1.5,
            r"RunConfig.early_shutdown_error_rate must be in \(0, 1\]",
        ),
        ("on_partial", "ignore", "RunConfig.on_partial must be one of"),
        ("max_parallel_requests", {"gpt": 0}, r"RunConfig.max_parallel_requests\['gpt'\]"),
        ("task_timeout_s", 0, "RunConfig.task_timeout_s must be positive"),
    ],
)
def test_bad_run_config_names_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig(**{field: value})  # type: ignore[arg-type]


def make_workers(steps: list[Step], per_step: int) -> tuple[Admission, list[Worker]]:
    plan = build_plan(steps, per_step, per_step)
    config = RunConfig(max_in_flight=3, max_parallel_requests={"a": 2, "b": 1})
    admission = Admission(plan.steps, config)
    group = RowGroup(plan.row_group(0), plan, ledger=None)  # type: ignore[arg-type]
    workers = [
        Worker(i * 10 + row, step, group, row, 0, 0.0)
        for i, step in enumerate(plan.steps)
        for row in range(per_step)
    ]
    for worker in workers:
        admission.push(worker)
    return admission, workers


def test_admission_is_round_robin_across_steps_and_respects_every_cap() -> None:
    steps = [Step("x", noop, resource="a"), Step("y", noop, resource="b"), Step("z", noop)]
    admission, _ = make_workers(steps, 4)
    admitted = []
    while (worker := admission.next_admissible()) is not None:
        admitted.append(worker.step.name)
    assert admitted == ["x", "y", "z"], "one of each before a second of any"
    assert admission.in_flight == 3 and admission.per_resource == {"a": 1, "b": 1}


def test_admission_is_work_conserving_when_one_resource_is_full() -> None:
    steps = [Step("x", noop, resource="a"), Step("y", noop, resource="b")]
    admission, _ = make_workers(steps, 3)
    first = [admission.next_admissible() for _ in range(3)]
    assert [w.step.name for w in first if w] == ["x", "y", "x"]
    assert admission.next_admissible() is None  # global cap 3 reached
    admission.release(first[1])  # a "b" slot frees; b's cap is 1 and "a" is full at 2
    nxt = admission.next_admissible()
    assert nxt is not None and nxt.step.name == "y"


def test_leases_are_released_exactly_once() -> None:
    admission, _ = make_workers([Step("x", noop, resource="a")], 1)
    worker = admission.next_admissible()
    assert worker is not None
    admission.release(worker)
    assert admission.balanced
    with pytest.raises(RuntimeError, match="released twice"):
        admission.release(worker)


def test_errors_are_classified() -> None:
    assert classify(RateLimitError("429")) is ErrorKind.RATE_LIMIT
    assert classify(RetryableError("503")) is ErrorKind.RETRYABLE
    assert classify(TimeoutError()) is ErrorKind.RETRYABLE
    assert classify(ConnectionResetError()) is ErrorKind.RETRYABLE
    assert classify(ValueError("400 bad request")) is ErrorKind.FATAL


def test_retry_policy_honours_retry_after_and_caps_backoff() -> None:
    policy = RetryPolicy(RunConfig(retry_backoff_s=0.5, retry_backoff_max_s=3, max_retries=2))
    assert policy.delay(RateLimitError("429", retry_after=1.25), 0) == 1.25
    assert [policy.delay(RetryableError("x"), n) for n in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.should_retry(ErrorKind.RETRYABLE, 1, 0)
    assert not policy.should_retry(ErrorKind.RETRYABLE, 2, 0)
    assert policy.should_retry(ErrorKind.RATE_LIMIT, 99, 0), "rate limits spend no retry budget"
    assert not policy.should_retry(ErrorKind.FATAL, 0, 0)


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 10), st.sampled_from([0.2, 0.5, 1.0]))
def test_early_shutdown_trips_once_exactly_when_a_full_window_reaches_the_rate(
    outcomes: list[bool], window: int, rate: float
) -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=window, early_shutdown_error_rate=rate))
    trips = [breaker.record(failed) for failed in outcomes]
    expected = None
    for i in range(window - 1, len(outcomes)):
        if sum(outcomes[i - window + 1 : i + 1]) / window >= rate:
            expected = i
            break
    assert trips.count(True) == (expected is not None)
    if expected is not None:
        assert trips.index(True) == expected


def test_disabled_early_shutdown_never_trips() -> None:
    breaker = EarlyShutdown(RunConfig(early_shutdown_window=2, disable_early_shutdown=True))
    assert not any(breaker.record(True) for _ in range(10))
