"""Scheduler overhead: how many zero-latency tasks per second the async engine sustains.

What is measured
----------------
A chain of three cell steps (a -> b -> c) over 100,000 rows (300,000 tasks) with
`buffer_size=1000` and `engine="async"`, everything else at the `RunConfig` defaults. The steps
are trivial in-process functions, so the time is the engine's own cost per task: admission,
worker and cell state machines, row-group bookkeeping, asyncio task creation, and the default
in-memory sink. Two variants: plain `def` steps (called on the loop) and `async def` steps that
never await (each still becomes an awaited coroutine inside an asyncio task).

Each variant gets one small untimed warm-up run, then `--repeats` timed runs of `run_steps`
(wall clock with `time.perf_counter`, including plan building and `asyncio.run`); the median
is the headline. The issue's goal is >= 30,000 tasks/s; the result says whether the median met
it, it does not assert.

Reproduce
---------
    .venv/bin/python benchmarks/scheduler_overhead.py            # 100k rows, 3 repeats
    .venv/bin/python benchmarks/scheduler_overhead.py --quick    # 10k rows, 1 repeat
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import chain_steps, emit_json, print_table
from rowforge.scheduler import RunConfig, Step, run_steps
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD

GOAL_TASKS_PER_S = 30_000
BUFFER_SIZE = 1000
STEPS_PER_ROW = 3
WARMUP_ROWS = 2000


async def _a(row: dict[str, Any]) -> int:
    return 1


async def _b(row: dict[str, Any]) -> int:
    return int(row["a"]) + 1


async def _c(row: dict[str, Any]) -> int:
    return int(row["b"]) + 1


def async_steps() -> list[Step]:
    return [
        Step("a", _a),
        Step("b", _b, depends_on=("a",)),
        Step("c", _c, depends_on=("b",)),
    ]


VARIANTS: dict[str, Callable[[], list[Step]]] = {"sync-def": chain_steps, "async-def": async_steps}


def run_once(make_steps: Callable[[], list[Step]], rows: int) -> tuple[float, float, int]:
    """One run; returns (wall seconds, process CPU seconds, peak in flight). Checks the result."""
    config = RunConfig(
        buffer_size=BUFFER_SIZE,
        engine="async",
        gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD,
    )
    steps = make_steps()
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = run_steps(steps, rows, config=config)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if result.outcome != "completed" or result.actual_records != rows:
        raise SystemExit(f"run did not complete: {result.outcome}, {result.actual_records} rows")
    assert result.dataset is not None
    if not (result.dataset["c"] == 3).all():
        raise SystemExit("wrong values in column c")
    return wall, cpu, int(result.stats["peak_in_flight"])


def measure(name: str, rows: int, repeats: int) -> dict[str, Any]:
    make_steps = VARIANTS[name]
    run_once(make_steps, min(WARMUP_ROWS, rows))
    runs = [run_once(make_steps, rows) for _ in range(repeats)]
    walls = [wall for wall, _, _ in runs]
    tasks = rows * STEPS_PER_ROW
    median = statistics.median(walls)
    return {
        "variant": name,
        "tasks": tasks,
        "wall_s_runs": [round(wall, 4) for wall in walls],
        "cpu_s_runs": [round(cpu, 4) for _, cpu, _ in runs],
        "wall_s_median": round(median, 4),
        "wall_s_best": round(min(walls), 4),
        "us_per_task_median": round(median / tasks * 1e6, 3),
        "tasks_per_s_median": round(tasks / median, 1),
        "tasks_per_s_best": round(tasks / min(walls), 1),
        "peak_in_flight": runs[-1][2],
        "goal_met": tasks / median >= GOAL_TASKS_PER_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k rows, one repeat")
    parser.add_argument("--rows", type=int, help="rows per run (default 100000, quick 10000)")
    parser.add_argument("--repeats", type=int, help="timed runs per variant (default 3)")
    args = parser.parse_args()
    rows = args.rows or (10_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 3)

    results = [measure(name, rows, repeats) for name in VARIANTS]
    emit_json(
        "scheduler_overhead",
        {
            "mode": "quick" if args.quick else "full",
            "rows": rows,
            "steps": STEPS_PER_ROW,
            "dag": "chain a -> b -> c, cell steps, zero latency",
            "engine": "async",
            "buffer_size": BUFFER_SIZE,
            "max_in_flight": RunConfig().max_in_flight,
            "sink": "memory (default)",
            "repeats": repeats,
            "warmup_rows": min(WARMUP_ROWS, rows),
            "goal_tasks_per_s": GOAL_TASKS_PER_S,
            "results": results,
        },
    )
    print()
    print(f"scheduler overhead: {rows:,} rows x {STEPS_PER_ROW} steps, median of {repeats}")
    print_table(
        ["variant", "tasks", "wall s", "us/task", "tasks/s", "best tasks/s", "goal >= 30k/s"],
        [
            [
                r["variant"],
                r["tasks"],
                r["wall_s_median"],
                r["us_per_task_median"],
                r["tasks_per_s_median"],
                r["tasks_per_s_best"],
                r["goal_met"],
            ]
            for r in results
        ],
    )


if __name__ == "__main__":
    main()
