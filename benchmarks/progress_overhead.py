"""Progress overhead: what snapshots and the terminal display cost a zero-latency run.

What is measured
----------------
The workload of `scheduler_overhead.py` (a chain of three trivial cell steps over 100,000 rows,
`buffer_size=1000`, async engine): the case where the engine's own cost per task is everything,
so any cost of progress reporting shows most. Three variants, run interleaved (one of each per
round, so drift of the machine affects all three alike):

- `none`: no `on_progress`;
- `snapshots`: `on_progress` collecting every snapshot, at `progress_interval_s=0.1` (ten times
  the default rate);
- `display`: snapshots at 0.1 s fed to a `ProgressDisplay` drawing a live view on a terminal
  console (rich, `force_terminal=True`) that writes to /dev/null, with its default redraw cap
  (4 a second);
- `display-1s`: the same at the default `progress_interval_s` of 1 s, what `rowforge run` does.

Each variant gets one untimed warm-up run; then `--repeats` rounds; the median wall time per
variant is the headline and the overhead is relative to `none`. The issue's bound is 2%; the
result says whether the medians met it, it does not assert.

Reproduce
---------
    .venv/bin/python benchmarks/progress_overhead.py            # 100k rows, 5 rounds
    .venv/bin/python benchmarks/progress_overhead.py --quick    # 10k rows, 1 round
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from _common import chain_steps, emit_json, print_table
from rowforge.display import ProgressDisplay
from rowforge.progress import ProgressSnapshot
from rowforge.scheduler import RunConfig, run_steps
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD

BOUND = 0.02
BUFFER_SIZE = 1000
STEPS_PER_ROW = 3
INTERVAL_S = 0.1


def run_once(variant: str, rows: int) -> tuple[float, int]:
    """One run; returns (wall seconds, snapshots delivered)."""
    config = RunConfig(
        buffer_size=BUFFER_SIZE,
        engine="async",
        gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD,
        progress_interval_s=1.0 if variant == "display-1s" else INTERVAL_S,
    )
    seen: list[ProgressSnapshot] = []
    display: ProgressDisplay | None = None
    on_progress: Callable[[ProgressSnapshot], None] | None = None
    if variant == "snapshots":
        on_progress = seen.append
    elif variant.startswith("display"):
        sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        console = Console(file=sink, force_terminal=True, width=120, height=40)
        display = ProgressDisplay(console, logger=None)

        def on_progress(snapshot: ProgressSnapshot) -> None:
            seen.append(snapshot)
            assert display is not None
            display.update(snapshot)

    gc.collect()
    started = time.perf_counter()
    if display is not None:
        with display:
            result = run_steps(chain_steps(), rows, config=config, on_progress=on_progress)
        display.console.file.close()
    else:
        result = run_steps(chain_steps(), rows, config=config, on_progress=on_progress)
    wall = time.perf_counter() - started
    if result.outcome != "completed" or result.actual_records != rows:
        raise SystemExit(f"run did not complete: {result.outcome}, {result.actual_records} rows")
    return wall, len(seen)


VARIANTS = ("none", "snapshots", "display", "display-1s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k rows, one round")
    parser.add_argument("--rows", type=int, help="rows per run (default 100000, quick 10000)")
    parser.add_argument("--repeats", type=int, help="rounds (default 5)")
    args = parser.parse_args()
    rows = args.rows or (10_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 5)

    for variant in VARIANTS:
        run_once(variant, min(2000, rows))
    walls: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    snapshots: dict[str, int] = {}
    for _ in range(repeats):
        for variant in VARIANTS:
            wall, seen = run_once(variant, rows)
            walls[variant].append(wall)
            snapshots[variant] = seen
    base = statistics.median(walls["none"])
    results: list[dict[str, Any]] = []
    for variant in VARIANTS:
        median = statistics.median(walls[variant])
        results.append(
            {
                "variant": variant,
                "wall_s_runs": [round(w, 4) for w in walls[variant]],
                "wall_s_median": round(median, 4),
                "tasks_per_s_median": round(rows * STEPS_PER_ROW / median, 1),
                "overhead_vs_none": round(median / base - 1, 4),
                "snapshots_last_run": snapshots[variant],
                "within_bound": median / base - 1 <= BOUND,
            }
        )
    emit_json(
        "progress_overhead",
        {
            "mode": "quick" if args.quick else "full",
            "rows": rows,
            "steps": STEPS_PER_ROW,
            "dag": "chain a -> b -> c, cell steps, zero latency",
            "engine": "async",
            "buffer_size": BUFFER_SIZE,
            "progress_interval_s": INTERVAL_S,
            "repeats": repeats,
            "bound": BOUND,
            "results": results,
        },
    )
    print()
    print(f"progress overhead: {rows:,} rows x {STEPS_PER_ROW} steps, median of {repeats} rounds")
    print_table(
        ["variant", "wall s", "tasks/s", "overhead", "snapshots", "within 2%"],
        [
            [
                r["variant"],
                r["wall_s_median"],
                r["tasks_per_s_median"],
                f"{100 * r['overhead_vs_none']:+.1f}%",
                r["snapshots_last_run"],
                r["within_bound"],
            ]
            for r in results
        ],
    )


if __name__ == "__main__":
    main()
