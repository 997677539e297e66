"""Transition cost: the reference `transitions` machine against the compiled table, per worker.

Why this exists
---------------
A run creates 10^5 to 10^6 workers, so workers go through `CompiledMachine` (a flattened table)
while the few long-lived subjects (the run, its row groups) go through `ReferenceMachine`
(`transitions`). This benchmark puts numbers on that split, on the machine it runs on.

What is measured
----------------
1. Time per transition. Fresh worker subjects are driven through the worker lifecycle
   pending -start-> running -succeed-> succeeded -release-> drained, every guard answering
   True. Each repeat times one batch with `time.perf_counter_ns`; a repeat's sample is batch
   time / transitions, and the reported number is the median over repeats. The Python loop and
   the call itself are inside both numbers; the same loop around a no-op `fire` is reported as
   `call_overhead_us_per_transition` so the difference can be read off.
2. Reference registration. `ReferenceMachine.add` + `remove` per subject, timed apart from the
   transitions because only the reference path pays it: once one subject at a time (the model
   list stays at 0..1 entries, how the run and row groups use it) and once as a batch (add N,
   then remove N) because `transitions` scans its model list on every `add`, so the cost grows
   with the number of subjects it tracks.
3. Bytes per tracked worker, with `tracemalloc`: a minimal `__slots__` worker (`ident`, `state`)
   like the engine's, 100,000 of them (state set by the compiled machine's `start`), and the
   same worker registered in a `ReferenceMachine` (10,000 of them): the adapter model, the 21
   partials `transitions` attaches to it for the worker spec (`trigger`, `may_trigger`, each
   event and its `may_`, each state's `is_`) and the machine's bookkeeping. Counted: the
   subject, its `ident` int and everything the machine allocates for it; not counted: the list
   the benchmark keeps them in (allocated before tracing starts).

Garbage collection is off inside each timed or traced region (as `timeit` does) and a full
collection runs before each, so one repeat's garbage is not collected on another's clock.
Each repeat uses fresh subjects and, for the reference path, a fresh machine.

Output: exactly one JSON line first (`benchmark`, `machine`, the medians, `speedup`), then a
short table with min / median / max over repeats.

Reproduce
---------
    make bench
    .venv/bin/python benchmarks/transitions_bench.py            # full counts
    .venv/bin/python benchmarks/transitions_bench.py --quick    # smaller counts, for tests
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from _common import machine_description
from rowforge.statemachine import SPECS, TABLES, CompiledMachine, ReferenceMachine

MACHINE = "worker"
LIFECYCLE = ("start", "succeed", "release")
NS_PER_US = 1_000


class Worker:
    """The smallest subject the engine could track: an identity and a state, nothing else.

    `__slots__` because the per-worker footprint is what is being measured; a `__dict__` would
    dominate it.
    """

    __slots__ = ("ident", "state")

    def __init__(self, ident: Hashable, state: str) -> None:
        self.ident = ident
        self.state = state


Fire = Callable[[Worker, str], object]


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does; `--quick` trades precision for time."""

    repeats: int
    reference_subjects: int  # per timed batch of reference transitions
    compiled_subjects: int  # per timed batch of compiled transitions (and the no-op baseline)
    registration_subjects: int  # per timed batch of add + remove
    reference_memory_subjects: int
    compiled_memory_subjects: int


FULL = Sizes(7, 5_000, 100_000, 5_000, 10_000, 100_000)
QUICK = Sizes(3, 500, 10_000, 500, 1_000, 10_000)


def always(subject: Worker) -> bool:
    """Guard verdict for every guard: the benchmark measures the happy path."""
    return True


def worker_guards() -> dict[str, Callable[[Worker], bool]]:
    """One always-True predicate per guard the worker spec names."""
    return {guard.name: always for guard in SPECS[MACHINE].guards}


def check_lifecycle() -> str:
    """Walk `LIFECYCLE` through the worker table and return the final state.

    Refuses to run when the spec no longer has this path to a terminal state, so the benchmark
    cannot silently time something else.
    """
    spec = SPECS[MACHINE]
    edges = TABLES[MACHINE].edges
    state = spec.initial
    for trigger in LIFECYCLE:
        if trigger not in edges[state]:
            raise SystemExit(f"worker spec has no {trigger!r} from {state!r}")
        state = edges[state][trigger].dest
    if state not in spec.terminal:
        raise SystemExit(f"worker lifecycle {LIFECYCLE} ends in non-terminal {state!r}")
    return state


def new_workers(count: int, state: str) -> list[Worker]:
    """Fresh subjects, so every repeat starts from the initial state."""
    return [Worker(ident, state) for ident in range(count)]


def drive(fire: Fire, subjects: Sequence[Worker]) -> None:
    """The timed loop: every subject through the whole lifecycle."""
    for subject in subjects:
        for trigger in LIFECYCLE:
            fire(subject, trigger)


def no_op_fire(subject: Worker, trigger: str) -> object:
    """Stands in for `fire` to measure what the loop and a call cost on their own."""
    return None


def timed_ns(action: Callable[[], object]) -> int:
    """Wall time of `action` in ns, with collection done before and kept off during."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        action()
        return time.perf_counter_ns() - start
    finally:
        gc.enable()


def check_all_in(subjects: Sequence[Worker], state: str) -> None:
    """Fail loudly if a timed batch did not actually move every subject."""
    stuck = [s.ident for s in subjects if s.state != state]
    if stuck:
        raise SystemExit(f"{len(stuck)} subjects not in {state!r}, e.g. {stuck[:3]}")


def reference_transition_us(sizes: Sizes, final: str) -> list[float]:
    """Per-transition samples (us) for `ReferenceMachine.fire`; registration is not timed."""
    samples = []
    for _ in range(sizes.repeats):
        machine = ReferenceMachine(SPECS[MACHINE], worker_guards())
        subjects = new_workers(sizes.reference_subjects, "")
        for subject in subjects:
            machine.add(subject)
        elapsed = timed_ns(lambda: drive(machine.fire, subjects))  # noqa: B023
        check_all_in(subjects, final)
        samples.append(elapsed / NS_PER_US / (len(subjects) * len(LIFECYCLE)))
    return samples


def compiled_transition_us(sizes: Sizes, final: str) -> list[float]:
    """Per-transition samples (us) for `CompiledMachine.fire`."""
    machine = CompiledMachine(TABLES[MACHINE], worker_guards())
    samples = []
    for _ in range(sizes.repeats):
        subjects = new_workers(sizes.compiled_subjects, SPECS[MACHINE].initial)
        elapsed = timed_ns(lambda: drive(machine.fire, subjects))  # noqa: B023
        check_all_in(subjects, final)
        samples.append(elapsed / NS_PER_US / (len(subjects) * len(LIFECYCLE)))
    return samples


def call_overhead_us(sizes: Sizes) -> list[float]:
    """Per-transition samples (us) of the same loop around a no-op: the floor of both paths."""
    samples = []
    for _ in range(sizes.repeats):
        subjects = new_workers(sizes.compiled_subjects, SPECS[MACHINE].initial)
        elapsed = timed_ns(lambda: drive(no_op_fire, subjects))  # noqa: B023
        samples.append(elapsed / NS_PER_US / (len(subjects) * len(LIFECYCLE)))
    return samples


def add_remove_one_at_a_time(machine: ReferenceMachine, subjects: Sequence[Worker]) -> None:
    """Register and forget each subject in turn: the model list never exceeds one entry."""
    for subject in subjects:
        machine.add(subject)
        machine.remove(subject)


def add_remove_batch(machine: ReferenceMachine, subjects: Sequence[Worker]) -> None:
    """Register all subjects, then forget them in the same order."""
    for subject in subjects:
        machine.add(subject)
    for subject in subjects:
        machine.remove(subject)


def add_remove_us(
    sizes: Sizes, pattern: Callable[[ReferenceMachine, Sequence[Worker]], None]
) -> list[float]:
    """Per-subject samples (us) of `add` + `remove` following `pattern`."""
    samples = []
    for _ in range(sizes.repeats):
        machine = ReferenceMachine(SPECS[MACHINE], worker_guards())
        subjects = new_workers(sizes.registration_subjects, "")
        elapsed = timed_ns(lambda: pattern(machine, subjects))  # noqa: B023
        samples.append(elapsed / NS_PER_US / len(subjects))
    return samples


def traced_bytes_per_subject(count: int, make: Callable[[int], Worker]) -> float:
    """Bytes `tracemalloc` sees still allocated after `make` built `count` subjects, per subject.

    The holding list is allocated before tracing starts, so only what `make` leaves behind (the
    subject, its ident and whatever a machine attached to it) is counted.
    """
    held: list[Worker | None] = [None] * count
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for ident in range(count):
            held[ident] = make(ident)
        traced, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    del held
    return traced / count


def compiled_bytes_per_worker(sizes: Sizes) -> float:
    """Footprint of a worker whose state the compiled machine keeps."""
    machine = CompiledMachine(TABLES[MACHINE], worker_guards())
    initial = SPECS[MACHINE].initial

    def make(ident: int) -> Worker:
        worker = Worker(ident, initial)
        machine.fire(worker, LIFECYCLE[0])
        return worker

    return traced_bytes_per_subject(sizes.compiled_memory_subjects, make)


def reference_bytes_per_worker(sizes: Sizes) -> float:
    """Footprint of the same worker while registered in a `ReferenceMachine`."""
    machine = ReferenceMachine(SPECS[MACHINE], worker_guards())

    def make(ident: int) -> Worker:
        worker = Worker(ident, "")
        machine.add(worker)
        machine.fire(worker, LIFECYCLE[0])
        return worker

    return traced_bytes_per_subject(sizes.reference_memory_subjects, make)


def spread(samples: Sequence[float]) -> dict[str, float]:
    """Min / median / max of one measurement's repeats."""
    return {
        "min": min(samples),
        "median": statistics.median(samples),
        "max": max(samples),
    }


def measure(sizes: Sizes) -> dict[str, Any]:
    """Run every measurement; timings first, so tracing never overlaps a clock."""
    final = check_lifecycle()
    timings = {
        "reference_us_per_transition": reference_transition_us(sizes, final),
        "compiled_us_per_transition": compiled_transition_us(sizes, final),
        "call_overhead_us_per_transition": call_overhead_us(sizes),
        "reference_add_remove_us": add_remove_us(sizes, add_remove_one_at_a_time),
        "reference_add_remove_batch_us": add_remove_us(sizes, add_remove_batch),
    }
    compiled_bytes = compiled_bytes_per_worker(sizes)
    reference_bytes = reference_bytes_per_worker(sizes)
    medians = {name: statistics.median(samples) for name, samples in timings.items()}
    return {
        "benchmark": "transitions",
        "machine": machine_description(),
        **{name: round(value, 4) for name, value in medians.items()},
        "compiled_bytes_per_worker": round(compiled_bytes, 1),
        "reference_bytes_per_worker": round(reference_bytes, 1),
        "speedup": round(
            medians["reference_us_per_transition"] / medians["compiled_us_per_transition"], 1
        ),
        "lifecycle": list(LIFECYCLE),
        "sizes": vars(sizes),
        "spread_us": {
            name: {k: round(v, 4) for k, v in spread(samples).items()}
            for name, samples in timings.items()
        },
    }


def print_table(result: dict[str, Any]) -> None:
    """The human-readable summary under the JSON line."""
    sizes = result["sizes"]
    rows = [  # label, result key, sizes key
        ("reference fire, us/transition", "reference_us_per_transition", "reference_subjects"),
        ("compiled fire, us/transition", "compiled_us_per_transition", "compiled_subjects"),
        ("loop + no-op call, us/call", "call_overhead_us_per_transition", "compiled_subjects"),
        ("ref add+remove 1 by 1, us", "reference_add_remove_us", "registration_subjects"),
        ("ref add+remove batch, us", "reference_add_remove_batch_us", "registration_subjects"),
    ]
    print(f"{'measurement':34} {'subjects':>9} {'min':>9} {'median':>9} {'max':>9}")
    for label, key, size_key in rows:
        s = result["spread_us"][key]
        print(
            f"{label:34} {sizes[size_key]:>9,}"
            f" {s['min']:>9.3f} {s['median']:>9.3f} {s['max']:>9.3f}"
        )
    print()
    print(f"{'bytes per tracked worker':34} {'subjects':>9} {'bytes':>9}")
    print(
        f"{'compiled (subject only)':34} {sizes['compiled_memory_subjects']:>9,}"
        f" {result['compiled_bytes_per_worker']:>9,.1f}"
    )
    print(
        f"{'reference (subject + model)':34} {sizes['reference_memory_subjects']:>9,}"
        f" {result['reference_bytes_per_worker']:>9,.1f}"
    )
    print()
    print(
        f"compiled is {result['speedup']}x faster per transition (medians over"
        f" {sizes['repeats']} repeats; {result['machine']['cpu_model']},"
        f" Python {result['machine']['python']})"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """`--quick` for tests: same measurements, smaller counts, fewer repeats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts (for tests)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the JSON line, then the table."""
    args = parse_args(argv)
    result = measure(QUICK if args.quick else FULL)
    print(json.dumps(result), flush=True)
    print_table(result)


if __name__ == "__main__":
    main()
