"""Scheduler memory: peak RSS of the async engine at 10^4, 10^5 and 10^6 rows.

What is measured
----------------
A chain of three zero-latency cell steps (a -> b -> c, plain `def`), `buffer_size=1000`,
`engine="async"`, other `RunConfig` defaults (so at most 2 open row groups). The rows go to a
sink that discards them (`_common.DiscardSink`): the default in-memory sink keeps every row and
would grow with N by design, which is not what this measures.

Each size runs in a fresh child process (this script with `--child N`), so one size's peak
cannot hide another's. The child records its current RSS (VmRSS) and ru_maxrss after imports
and a `gc.collect()`, runs the workload, then reads `resource.getrusage(RUSAGE_SELF).ru_maxrss`
(KiB on Linux) again. `peak_delta_kib = peak_kib - rss_before_kib` is what the run itself added.
The engine is "flat" when max(peak) / min(peak) - 1 <= 20% across sizes; the result reports it
and the growth of the delta, it does not assert.

Reproduce
---------
    .venv/bin/python benchmarks/scheduler_memory.py            # 10^4, 10^5, 10^6 rows
    .venv/bin/python benchmarks/scheduler_memory.py --quick    # 10^4, 10^5 rows
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from typing import Any

from _common import DiscardSink, chain_steps, current_rss_kib, emit_json, peak_rss_kib, print_table
from rowforge.scheduler import RunConfig, run_steps
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD

BUFFER_SIZE = 1000
FLAT_TOLERANCE = 0.20
CHILD_TIMEOUT_S = 600


def child(rows: int) -> None:
    """Run the workload once in this process and print one JSON line of measurements."""
    config = RunConfig(
        buffer_size=BUFFER_SIZE,
        engine="async",
        gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD,
    )
    steps = chain_steps()
    sink = DiscardSink()
    gc.collect()
    rss_before, peak_before = current_rss_kib(), peak_rss_kib()
    start = time.perf_counter()
    result = run_steps(steps, rows, config=config, sink=sink)
    wall = time.perf_counter() - start
    peak_after, rss_after = peak_rss_kib(), current_rss_kib()
    if result.outcome != "completed" or sink.rows != rows:
        raise SystemExit(f"run did not complete: {result.outcome}, {sink.rows} rows written")
    print(
        json.dumps(
            {
                "rows": rows,
                "tasks": rows * len(steps),
                "wall_s": round(wall, 3),
                "rss_before_kib": rss_before,
                "peak_before_kib": peak_before,
                "peak_kib": peak_after,
                "rss_after_kib": rss_after,
                "peak_delta_kib": peak_after - rss_before if rss_before is not None else None,
                "row_groups_written": sink.row_groups,
                "peak_open_row_groups": result.stats["peak_open_row_groups"],
            }
        )
    )


def measure_in_child(rows: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", str(rows)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"child for {rows} rows failed:\n{completed.stderr}")
    measured: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return measured


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    peaks = [r["peak_kib"] for r in results]
    deltas = [r["peak_delta_kib"] for r in results if r["peak_delta_kib"] is not None]
    spread = max(peaks) / min(peaks) - 1
    return {
        "peak_spread": round(spread, 4),
        "flat_within_20pct": spread <= FLAT_TOLERANCE,
        "delta_min_kib": min(deltas) if deltas else None,
        "delta_max_kib": max(deltas) if deltas else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 rows only")
    parser.add_argument("--rows", type=int, nargs="+", help="row counts to measure")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    sizes = args.rows or ([10**4, 10**5] if args.quick else [10**4, 10**5, 10**6])

    results = [measure_in_child(rows) for rows in sizes]
    summary = summarise(results)
    emit_json(
        "scheduler_memory",
        {
            "mode": "quick" if args.quick else "full",
            "dag": "chain a -> b -> c, cell steps, zero latency",
            "engine": "async",
            "buffer_size": BUFFER_SIZE,
            "max_concurrent_row_groups": RunConfig().max_concurrent_row_groups,
            "sink": "discard",
            "rss_unit": "KiB",
            "flat_tolerance": FLAT_TOLERANCE,
            "results": results,
            **summary,
        },
    )
    print()
    print("scheduler memory: one fresh process per size, discard sink (KiB)")
    print_table(
        ["rows", "wall s", "RSS before", "peak RSS", "peak - before", "RSS after"],
        [
            [
                r["rows"],
                r["wall_s"],
                r["rss_before_kib"],
                r["peak_kib"],
                r["peak_delta_kib"],
                r["rss_after_kib"],
            ]
            for r in results
        ],
    )
    verdict = "flat" if summary["flat_within_20pct"] else "NOT flat"
    print(f"peak spread across sizes: {summary['peak_spread']:.1%} ({verdict} within 20%)")


if __name__ == "__main__":
    main()
