"""Scheduler efficiency: makespan against the resource lower bound, with simulated model latency.

What is measured
----------------
Every step is an `async def` that does `await asyncio.sleep(latency)`, the latency drawn from
uniform(40 ms, 60 ms) (mean 50 ms) by a `random.Random` seeded with the shape and step name, so
each step draws the same sequence in every run. Each resource (model) is capped at 64 parallel
requests (`max_parallel_requests`); `max_in_flight=1024` so the global cap never binds;
`buffer_size=1000`; `max_concurrent_row_groups=4` by default (`--row-groups`). Four DAG shapes:

- narrow: a -> b -> c -> d, all on model-a
- deep: a -> b -> c -> d on model-a, plus an independent step on model-b
- wide: five independent steps, all on model-a
- dual-model: generators g1 -> g2 -> g3 on model-a; judge ji on model-b depends on gi

For each shape and row count the run's wall-clock makespan is compared with the lower bound
max over resources of (sum of latencies drawn on the resource / cap), which equals
requests x actual mean latency / cap. efficiency = lower_bound / makespan; the goal is >= 0.95 at
10k rows. The bound ignores the critical path of one row (at most 4 x 60 ms here) and asyncio's
timer overshoot; `sleep_overshoot_ms` (measured inside the steps) and `slot_utilisation`
(observed busy time / (cap x makespan)) separate the two from scheduling gaps.

Reproduce
---------
    .venv/bin/python benchmarks/scheduler_efficiency.py            # 1k and 10k rows, 4 shapes
    .venv/bin/python benchmarks/scheduler_efficiency.py --quick    # 1k rows, narrow + dual-model
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from _common import emit_json, print_table
from rowforge.scheduler import RunConfig, Step, run_steps
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD

MODEL_A, MODEL_B = "model-a", "model-b"
CAP = 64
MAX_IN_FLIGHT = 1024
BUFFER_SIZE = 1000
LATENCY_LOW_S, LATENCY_HIGH_S = 0.040, 0.060
GOAL_EFFICIENCY = 0.95

# name -> (step name, depends_on, resource) in declaration order
SHAPES: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "narrow": [
        ("a", (), MODEL_A),
        ("b", ("a",), MODEL_A),
        ("c", ("b",), MODEL_A),
        ("d", ("c",), MODEL_A),
    ],
    "deep": [
        ("a", (), MODEL_A),
        ("b", ("a",), MODEL_A),
        ("c", ("b",), MODEL_A),
        ("d", ("c",), MODEL_A),
        ("side", (), MODEL_B),
    ],
    "wide": [(f"w{i}", (), MODEL_A) for i in range(1, 6)],
    "dual-model": [
        ("g1", (), MODEL_A),
        ("g2", ("g1",), MODEL_A),
        ("g3", ("g2",), MODEL_A),
        ("j1", ("g1",), MODEL_B),
        ("j2", ("g2",), MODEL_B),
        ("j3", ("g3",), MODEL_B),
    ],
}


@attrs.define
class Calls:
    """What one step's calls drew and how long they really slept."""

    drawn: list[float] = attrs.field(factory=list)
    observed: list[float] = attrs.field(factory=list)


def sleeper(name: str, rng: random.Random, calls: Calls) -> Callable[[Any], Awaitable[str]]:
    """An async step that sleeps for a seeded, jittered latency and records it."""

    async def call(row: Any) -> str:
        latency = rng.uniform(LATENCY_LOW_S, LATENCY_HIGH_S)
        calls.drawn.append(latency)
        start = time.perf_counter()
        await asyncio.sleep(latency)
        calls.observed.append(time.perf_counter() - start)
        return name

    return call


def build_steps(shape: str) -> tuple[list[Step], dict[str, Calls]]:
    steps: list[Step] = []
    calls: dict[str, Calls] = {}
    for name, depends_on, resource in SHAPES[shape]:
        calls[name] = Calls()
        rng = random.Random(f"{shape}:{name}")
        fn = sleeper(name, rng, calls[name])
        steps.append(Step(name, fn, depends_on=depends_on, resource=resource))
    return steps, calls


def measure(shape: str, rows: int, row_groups: int) -> dict[str, Any]:
    steps, calls = build_steps(shape)
    config = RunConfig(
        buffer_size=BUFFER_SIZE,
        max_in_flight=MAX_IN_FLIGHT,
        max_parallel_requests={MODEL_A: CAP, MODEL_B: CAP},
        max_concurrent_row_groups=row_groups,
        engine="async",
        gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD,
    )
    start = time.perf_counter()
    result = run_steps(steps, rows, config=config)
    makespan = time.perf_counter() - start
    if result.outcome != "completed" or result.actual_records != rows:
        raise SystemExit(f"{shape}: run did not complete: {result.outcome}")

    resource_of = {step.name: step.resource for step in steps}
    per_resource: dict[str, dict[str, Any]] = {}
    bounds: dict[str, float] = {}
    for resource in sorted({r for r in resource_of.values() if r is not None}):
        mine = [c for name, c in calls.items() if resource_of[name] == resource]
        drawn = [x for c in mine for x in c.drawn]
        seen = [x for c in mine for x in c.observed]
        bounds[resource] = sum(drawn) / CAP
        per_resource[resource] = {
            "requests": len(drawn),
            "mean_latency_s": round(statistics.fmean(drawn), 6),
            "lower_bound_s": round(bounds[resource], 4),
            "slot_utilisation": round(sum(seen) / (CAP * makespan), 4),
            "sleep_overshoot_ms": round((sum(seen) - sum(drawn)) / len(drawn) * 1e3, 3),
            "peak_parallel": result.stats["peak_per_resource"].get(resource, 0),
        }
    bound_resource = max(bounds, key=bounds.__getitem__)
    lower_bound = bounds[bound_resource]
    return {
        "shape": shape,
        "rows": rows,
        "tasks": sum(len(c.drawn) for c in calls.values()),
        "makespan_s": round(makespan, 4),
        "lower_bound_s": round(lower_bound, 4),
        "bound_by": bound_resource,
        "efficiency": round(lower_bound / makespan, 4),
        "peak_in_flight": result.stats["peak_in_flight"],
        "peak_open_row_groups": result.stats["peak_open_row_groups"],
        "per_resource": per_resource,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k rows, narrow and dual-model")
    parser.add_argument("--rows", type=int, nargs="+", help="row counts (default 1000 10000)")
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), help="shapes to run")
    parser.add_argument("--row-groups", type=int, default=4, help="max_concurrent_row_groups")
    args = parser.parse_args()
    sizes = args.rows or ([1000] if args.quick else [1000, 10_000])
    shapes = args.shapes or (["narrow", "dual-model"] if args.quick else list(SHAPES))

    results = [measure(shape, rows, args.row_groups) for rows in sizes for shape in shapes]
    largest = max(sizes)
    at_largest = [r for r in results if r["rows"] == largest]
    emit_json(
        "scheduler_efficiency",
        {
            "mode": "quick" if args.quick else "full",
            "engine": "async",
            "latency": f"uniform({LATENCY_LOW_S}, {LATENCY_HIGH_S}) s, seeded per shape:step",
            "cap_per_resource": CAP,
            "max_in_flight": MAX_IN_FLIGHT,
            "buffer_size": BUFFER_SIZE,
            "max_concurrent_row_groups": args.row_groups,
            "goal_efficiency": GOAL_EFFICIENCY,
            "goal_rows": 10_000,
            "goal_met_at_10k": (
                all(r["efficiency"] >= GOAL_EFFICIENCY for r in at_largest)
                if largest == 10_000
                else None
            ),
            "results": results,
        },
    )
    print()
    print(
        f"scheduler efficiency: cap {CAP}/model, latency uniform 40-60 ms, "
        f"max_concurrent_row_groups={args.row_groups}"
    )
    print_table(
        [
            "shape",
            "rows",
            "tasks",
            "makespan s",
            "lower bound s",
            "bound by",
            "efficiency",
            "slot util",
        ],
        [
            [
                r["shape"],
                r["rows"],
                r["tasks"],
                r["makespan_s"],
                r["lower_bound_s"],
                r["bound_by"],
                r["efficiency"],
                r["per_resource"][r["bound_by"]]["slot_utilisation"],
            ]
            for r in results
        ],
    )


if __name__ == "__main__":
    main()
