"""Scheduler memory and throughput of a real build at 10^5, 10^6 and 10^7 rows.

What is measured
----------------
`rowforge.build` (the path `rowforge run` takes) of a two-column dataset: an `integer` sampler
`n` and an `expression` column `label = "#{{ n }}"` (a Jinja template, one cell task per row
through the async scheduler). `buffer_size=1000`, `engine="async"`, the garbage collector's young
threshold as the CLI sets it, other `RunConfig` defaults (at most 2 open row groups). The output
is a real directory, as a user gets it: one Parquet file per row group, metadata.json rewritten
atomically after every row group, events.jsonl, config.yaml. So the numbers include recording:
if metadata.json or the event log cost more per row group as the run grows, or are kept in
memory, rows/s falls and peak RSS rises with the row count.

Each size runs in a fresh child process (this script with `--child N`), so one size's peak
cannot hide another's. The child records its RSS (VmRSS) after imports and a `gc.collect()`,
builds into a new directory under `--dir` (default: the system's temporary directory), reads
`resource.getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux) and its CPU time, then reads
`built.metadata` (metadata.json, parsed on first use; at 10^7 rows it lists 10,000 row groups)
and the peak again (`peak_with_metadata_kib`), checks the run completed, notes the sizes of what
it wrote, and deletes the directory (10^7 rows take about 155 MB of Parquet, 7 MB of events.jsonl
and 2.6 MB of metadata.json). Reported per size: wall time, rows/s (wall) and rows per CPU second
(less sensitive to other load on a shared machine), peak RSS and what the run added to it; and
the ratios of the largest size to the median of three 10^5 runs, one before, one between and
one after the large sizes (`ratio_vs_1e5`). The target is that peak RSS (at the
build's return) and rows/s at 10^7 stay within 10% of 10^5; the result states whether they do,
it does not assert.

Reproduce
---------
    .venv/bin/python benchmarks/scheduler_memory.py            # 10^5 x3, 10^6, 10^7 (~8 min)
    .venv/bin/python benchmarks/scheduler_memory.py --quick    # 10^4, 10^5 rows
    .venv/bin/python benchmarks/scheduler_memory.py --rows 100000 10000000
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rowforge
from _common import current_rss_kib, emit_json, peak_rss_kib, print_table
from rowforge.config.dataset import DatasetConfig
from rowforge.scheduler import RunConfig
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD

BUFFER_SIZE = 1000
TOLERANCE = 0.10
BASELINE_ROWS = 10**5
CHILD_TIMEOUT_S = 3600
COLUMNS = [
    {"type": "integer", "name": "n", "low": 1, "high": 1000},
    {"type": "expression", "name": "label", "template": "#{{ n }}"},
]


def child(rows: int, base: Path) -> None:
    """Build `rows` rows once in this process and print one JSON line of measurements."""
    config = DatasetConfig.from_dict({"seed": 7, "columns": COLUMNS})
    run_config = RunConfig(
        buffer_size=BUFFER_SIZE,
        engine="async",
        gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD,
    )
    workdir = Path(tempfile.mkdtemp(prefix="rowforge-memory-", dir=base))
    output = workdir / "out"
    try:
        gc.collect()
        rss_before, peak_before = current_rss_kib(), peak_rss_kib()
        usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        built = rowforge.build(config, rows, output, run_config)
        wall = time.perf_counter() - start
        used = resource.getrusage(resource.RUSAGE_SELF)
        user, system = used.ru_utime - usage.ru_utime, used.ru_stime - usage.ru_stime
        cpu = user + system
        peak_after, rss_after = peak_rss_kib(), current_rss_kib()
        metadata = built.metadata  # parsed on first use: measured apart, after the build's peak
        peak_with_metadata = peak_rss_kib()
        if metadata["outcome"] != "completed" or metadata["actual_num_records"] != rows:
            raise SystemExit(f"run did not complete: {metadata['outcome']}")
        parquet = sum(p.stat().st_size for p in (output / "parquet-files").iterdir())
        measured = {
            "rows": rows,
            "row_groups": metadata["num_completed_batches"],
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "user_s": round(user, 3),
            "sys_s": round(system, 3),
            "rows_per_s": round(rows / wall, 1),
            "rows_per_cpu_s": round(rows / cpu, 1),
            "rss_before_kib": rss_before,
            "peak_before_kib": peak_before,
            "peak_kib": peak_after,
            "rss_after_kib": rss_after,
            "peak_delta_kib": peak_after - rss_before if rss_before is not None else None,
            "peak_with_metadata_kib": peak_with_metadata,
            "metadata_json_bytes": (output / "metadata.json").stat().st_size,
            "events_jsonl_bytes": (output / "events.jsonl").stat().st_size,
            "parquet_bytes": parquet,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(measured))


def measure_in_child(rows: int, base: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", str(rows), "--dir", str(base)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"child for {rows} rows failed:\n{completed.stderr}")
    measured: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return measured


def ratios(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The largest size against 10^5 rows (None when 10^5 was not measured): each metric of
    the largest size over its median across the 10^5 runs."""
    baseline = [r for r in results if r["rows"] == BASELINE_ROWS]
    largest = max(results, key=lambda r: r["rows"])
    if not baseline or largest["rows"] == BASELINE_ROWS:
        return None
    compared = {
        key: round(largest[key] / statistics.median(r[key] for r in baseline), 4)
        for key in ("peak_kib", "rows_per_s", "rows_per_cpu_s", "peak_with_metadata_kib")
    }
    return {
        "rows": largest["rows"],
        "baseline_rows": BASELINE_ROWS,
        "baseline_runs": len(baseline),
        **compared,
        "within_10pct": all(
            abs(compared[key] - 1) <= TOLERANCE for key in ("peak_kib", "rows_per_s")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 rows only")
    parser.add_argument("--rows", type=int, nargs="+", help="row counts to measure")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.dir)
        return
    # 10^5 before, between and after the large sizes: on a shared machine the load changes
    # while 10^7 runs (minutes), and the median of three baselines is less at its mercy.
    full = [BASELINE_ROWS, 10**6, BASELINE_ROWS, 10**7, BASELINE_ROWS]
    sizes = args.rows or ([10**4, 10**5] if args.quick else full)

    results = [measure_in_child(rows, args.dir) for rows in sizes]
    compared = ratios(results)
    emit_json(
        "scheduler_memory",
        {
            "mode": "quick" if args.quick else "full",
            "workload": "rowforge.build: integer sampler n, expression label = '#{{ n }}'",
            "engine": "async",
            "buffer_size": BUFFER_SIZE,
            "max_concurrent_row_groups": RunConfig().max_concurrent_row_groups,
            "sink": "parquet (a real output directory)",
            "rss_unit": "KiB",
            "results": results,
            "ratio_vs_1e5": compared,
        },
    )
    print()
    print("scheduler memory: rowforge.build into a real directory, one fresh process per size")
    print_table(
        [
            "rows",
            "wall s",
            "rows/s",
            "rows/cpu-s",
            "RSS before",
            "peak RSS",
            "peak - before",
            "peak + metadata",
        ],
        [
            [
                r["rows"],
                r["wall_s"],
                r["rows_per_s"],
                r["rows_per_cpu_s"],
                r["rss_before_kib"],
                r["peak_kib"],
                r["peak_delta_kib"],
                r["peak_with_metadata_kib"],
            ]
            for r in results
        ],
    )
    if compared is not None:
        verdict = "within" if compared["within_10pct"] else "NOT within"
        print(
            f"{compared['rows']:,} vs {BASELINE_ROWS:,} rows: peak RSS x{compared['peak_kib']}, "
            f"rows/s x{compared['rows_per_s']} ({verdict} 10%); rows/cpu-s "
            f"x{compared['rows_per_cpu_s']}, peak RSS after reading metadata "
            f"x{compared['peak_with_metadata_kib']}"
        )


if __name__ == "__main__":
    main()
