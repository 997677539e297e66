"""Admission on its own: caps never exceeded, leases balanced, queues emptied in order.

Kills survivors of `make mutants` (scheduler, admission.py): the queue count after a queued
worker is removed (`remove`) or every queue is emptied (`discard_queued`), the counters a new
run starts from, the peaks the run's stats report, and adaptive limits that react to rate limits
and successes of their own resource only (`observe`).
"""

from __future__ import annotations

import pytest

from rowforge.errors import ProviderTimeoutError, RateLimitError
from rowforge.scheduler import RunConfig, Step, build_plan
from rowforge.scheduler.admission import Admission
from rowforge.scheduler.rowgroup import RowGroup
from rowforge.scheduler.subjects import Worker
from rowforge.statemachine import TABLES

SUCCEEDED = TABLES["worker"].dest_of("succeed")


def noop(row: object) -> int:
    return 0


def setup(
    steps: list[Step], per_step: int, **config: object
) -> tuple[Admission, dict[str, list[Worker]]]:
    """An admission for `steps` with `per_step` queued first attempts of each step."""
    plan = build_plan(steps, per_step, per_step)
    admission = Admission(plan.steps, RunConfig(**config))  # type: ignore[arg-type]
    group = RowGroup(plan.row_group(0), plan, ledger=None)  # type: ignore[arg-type]
    workers: dict[str, list[Worker]] = {}
    for i, step in enumerate(plan.steps):
        workers[step.name] = [
            Worker(i * 100 + row, step, group, row, 0, 0.0) for row in range(per_step)
        ]
        for worker in workers[step.name]:
            admission.push(worker)
    return admission, workers


def drain(admission: Admission) -> list[Worker]:
    admitted = []
    while (worker := admission.next_admissible()) is not None:
        admitted.append(worker)
    return admitted


def test_a_new_admission_starts_empty_balanced_with_the_configured_caps() -> None:
    steps = [Step("x", noop, resource="a"), Step("y", noop, resource="b"), Step("z", noop)]
    plan = build_plan(steps, 2, 2)
    admission = Admission(plan.steps, RunConfig(max_in_flight=5, max_parallel_requests={"a": 2}))
    assert admission.global_cap == 5
    assert admission.resource_caps == {"a": 2, "b": 32}, "no cap for a step without a resource"
    assert admission.in_flight == 0 and admission.queued == 0
    assert admission.per_resource == {"a": 0, "b": 0}
    assert admission.peak_in_flight == 0 and admission.peak_per_resource == {"a": 0, "b": 0}
    assert admission.balanced
    assert admission.adaptive == {}, "adaptive concurrency is off by default"
    assert admission.cap_now("a") == 2 and admission.cap_now("b") == 32
    assert admission.next_admissible() is None, "nothing queued"


def test_caps_are_reached_never_exceeded_and_the_peaks_say_so() -> None:
    steps = [Step("x", noop, resource="a"), Step("y", noop, resource="b"), Step("z", noop)]
    admission, _ = setup(steps, 4, max_in_flight=4, max_parallel_requests={"a": 2, "b": 1})
    first = drain(admission)
    assert [w.step.name for w in first] == ["x", "y", "z", "x"], "round-robin from the first step"
    assert admission.in_flight == 4 and admission.queued == 8
    assert admission.per_resource == {"a": 2, "b": 1}
    assert all(w.has_leases for w in first)
    assert [w.resource_lease for w in first] == ["a", "b", None, "a"]
    # free the step without a resource: only "z" can use the slot ("a" and "b" are full)
    admission.release(first[2])
    assert admission.in_flight == 3 and not first[2].has_leases
    assert [w.step.name for w in drain(admission)] == ["z"]
    # free an "a" slot: the next "x" takes it, "y" stays behind its cap of 1
    admission.release(first[0])
    assert admission.per_resource == {"a": 1, "b": 1}
    third = drain(admission)
    assert [w.step.name for w in third] == ["x"]
    assert admission.per_resource == {"a": 2, "b": 1}
    assert admission.peak_in_flight == 4
    assert admission.peak_per_resource == {"a": 2, "b": 1}
    assert not admission.balanced


def test_peaks_keep_the_highest_count_after_releases() -> None:
    admission, _ = setup([Step("x", noop, resource="a")], 5, max_parallel_requests={"a": 3})
    running = drain(admission)
    assert len(running) == 3 and admission.peak_per_resource == {"a": 3}
    for worker in running:
        admission.release(worker)
    assert admission.balanced and admission.per_resource == {"a": 0}
    second = drain(admission)
    assert len(second) == 2
    assert admission.peak_in_flight == 3 and admission.peak_per_resource == {"a": 3}
    for worker in second:
        admission.release(worker)
    assert admission.balanced and admission.in_flight == 0 and admission.queued == 0


def test_a_worker_without_a_resource_in_flight_is_not_balanced() -> None:
    admission, _ = setup([Step("z", noop)], 1)
    (worker,) = drain(admission)
    assert admission.in_flight == 1 and admission.per_resource == {}
    assert not admission.balanced
    admission.release(worker)
    assert admission.balanced


def test_a_second_release_is_refused_and_names_the_worker() -> None:
    admission, _workers = setup([Step("x", noop, resource="a")], 1)
    (worker,) = drain(admission)
    admission.release(worker)
    with pytest.raises(RuntimeError, match=r"^worker 0: leases released twice or never held$"):
        admission.release(worker)
    assert admission.in_flight == 0 and admission.per_resource == {"a": 0}


def test_retries_are_queued_before_first_attempts() -> None:
    admission, workers = setup([Step("x", noop)], 2)
    group = workers["x"][0].row_group
    retry = Worker(99, workers["x"][0].step, group, 5, 1, 0.0)
    admission.push(retry)
    assert admission.queued == 3
    assert drain(admission) == [retry, *workers["x"]]
    assert admission.queued == 0


def test_removing_a_queued_worker_keeps_the_count_and_the_others_admissible() -> None:
    steps = [Step("x", noop), Step("y", noop)]
    admission, workers = setup(steps, 2)
    admission.remove(workers["x"][0])
    assert admission.queued == 3
    admission.remove(workers["y"][1])
    assert admission.queued == 2
    assert drain(admission) == [workers["x"][1], workers["y"][0]]
    assert admission.queued == 0
    with pytest.raises(ValueError):
        admission.remove(workers["x"][0])  # no longer queued


def test_removing_one_of_two_leaves_the_other_admissible() -> None:
    admission, workers = setup([Step("x", noop)], 2)
    admission.remove(workers["x"][1])
    assert admission.queued == 1
    assert drain(admission) == [workers["x"][0]]
    assert admission.queued == 0 and admission.next_admissible() is None


def test_discard_queued_returns_every_queued_worker_in_order_and_empties_the_queues() -> None:
    steps = [Step("x", noop), Step("y", noop)]
    admission, workers = setup(steps, 3, max_in_flight=1)
    (running,) = drain(admission)
    assert running is workers["x"][0]
    dropped = admission.discard_queued()
    assert dropped == [*workers["x"][1:], *workers["y"]]
    assert not any(w.has_leases for w in dropped)
    assert admission.queued == 0 and all(not q for q in admission.queues.values())
    assert admission.discard_queued() == []
    assert admission.queued == 0
    # the running worker still holds its leases; the admission still works afterwards
    assert admission.in_flight == 1
    admission.release(running)
    late = Worker(7, workers["y"][0].step, running.row_group, 0, 0, 0.0)
    admission.push(late)
    assert admission.queued == 1
    assert drain(admission) == [late]
    assert admission.queued == 0


def rate_limited(worker: Worker, started: float, finished: float) -> None:
    worker.outcome = "failed"
    worker.error = RateLimitError("slow down")
    worker.started, worker.finished = started, finished


def test_adaptive_limits_back_off_on_rate_limits_and_recover_on_success() -> None:
    admission, _workers = setup(
        [Step("x", noop, resource="a")],
        20,
        max_parallel_requests={"a": 10},
        adaptive_concurrency=True,
    )
    assert set(admission.adaptive) == {"a"}
    assert admission.cap_now("a") == 10
    running = drain(admission)
    assert len(running) == 10
    # one 429: the limit drops to 7
    rate_limited(running[0], 1.0, 2.0)
    admission.observe(running[0])
    assert admission.cap_now("a") == 7
    # a 429 for a request that started before that cut is the same overload: ignored
    rate_limited(running[1], 1.5, 2.5)
    admission.observe(running[1])
    assert admission.cap_now("a") == 7
    # a request started after the cut cuts again: 4.9 -> 4
    rate_limited(running[2], 3.0, 4.0)
    admission.observe(running[2])
    assert admission.cap_now("a") == 4
    # an ordinary failure leaves the limit alone
    running[3].outcome = "failed"
    running[3].error = ProviderTimeoutError("flaky")
    admission.observe(running[3])
    assert admission.cap_now("a") == 4
    for worker in running:
        admission.release(worker)
    # the lower limit holds for admission: 4 run, not 10
    assert len(drain(admission)) == 4
    assert admission.per_resource == {"a": 4}
    # successes raise it again (about +1 per limit's worth), never above the cap
    worker = running[4]
    worker.outcome, worker.error = SUCCEEDED, None
    for _ in range(5):
        admission.observe(worker)
    assert admission.cap_now("a") == 5
    for _ in range(200):
        admission.observe(worker)
    assert admission.cap_now("a") == 10


def test_only_the_resource_an_attempt_used_reacts_to_it() -> None:
    # the resource names are arbitrary strings; an attempt of a step without a resource must move
    # no limit, whatever the resources are called
    steps = [Step("x", noop, resource="XXXX"), Step("y", noop, resource="b"), Step("z", noop)]
    admission, _workers = setup(steps, 1, adaptive_concurrency=True)
    assert set(admission.adaptive) == {"XXXX", "b"}
    running = {w.step.name: w for w in drain(admission)}
    assert running["z"].resource_lease is None
    for started in (1.0, 2.0, 3.0):
        rate_limited(running["z"], started, started + 0.5)
        admission.observe(running["z"])
    assert admission.cap_now("XXXX") == 32 and admission.cap_now("b") == 32
    rate_limited(running["y"], 1.0, 2.0)
    admission.observe(running["y"])
    assert admission.cap_now("b") == 22 and admission.cap_now("XXXX") == 32


def test_without_adaptive_concurrency_rate_limits_leave_the_caps_alone() -> None:
    admission, _workers = setup([Step("x", noop, resource="a")], 3, max_parallel_requests={"a": 2})
    running = drain(admission)
    rate_limited(running[0], 1.0, 2.0)
    admission.observe(running[0])
    assert admission.adaptive == {} and admission.cap_now("a") == 2
    admission.release(running[0])
    assert len(drain(admission)) == 1
