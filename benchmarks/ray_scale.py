"""Records/s on one process against Ray with 1 and 2 workers, and what the Ray path costs.

Workload: a category sampler, an LLM text column `question` on model `a`, an LLM text column
`answer` on it on model `b`, and an expression. Each model is a `rowforge mock-server` process of
its own (one per core of this 2-core machine), so the servers are not one process's ceiling.
Each model's cap is 64; with Ray the workers share it (`rowforge.distributed.caps`), so every
executor runs under the same global caps. Measured at 50 ms and 0 ms server latency.

Ray is started once, before the measured builds (the build then uses that connection, as a Ray
Job's entrypoint would), and its start-up time is reported on its own line: a `rowforge run
--executor ray` without an address pays it once per run.

The Ray path's overhead: a samplers-only config (no model calls) of small row groups, built
locally and on Ray with one worker at two sizes; the extra slope of Ray's wall time is the cost
per row group (shipping it, reporting it back, recording it on the driver), the rest at the
small size the cost per run (the worker actors starting). And the driver's own limit: the row
groups per second it can record (each one added to metadata.json, which is rewritten) with 0,
10^3, 10^4 and 10^5 row groups already recorded.

Client, workers and servers share 2 cores, so Ray with 2 workers here measures the overhead of
spreading more than any gain from it: the gain needs cores (or machines) the local run does not
have. Each setting runs `--repeats` times (default 3) and the median wall time is kept.
Run: `make bench` or `.venv/bin/python benchmarks/ray_scale.py [--quick]`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit_json, machine_description, mock_model, print_table
from http_e2e import start_server
from rowforge.api import build
from rowforge.config.columns import (
    CategorySampler,
    ExpressionColumn,
    IntegerSampler,
    LLMTextColumn,
    UUIDSampler,
)
from rowforge.config.dataset import DatasetConfig
from rowforge.distributed.cluster import ray_session
from rowforge.scheduler import RunConfig
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD
from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.metadata import RowGroupRecord, RunIdentity
from rowforge.storage.recorder import MetadataRecorder, now
from rowforge.storage.sinks import relative_path

CAP = 64
LLM_COLUMNS = 2
RESULTS = Path(__file__).resolve().parent / "results"


def llm_config(ports: tuple[int, int]) -> DatasetConfig:
    return DatasetConfig(
        columns=[
            CategorySampler(name="topic", values=["billing", "shipping", "returns", "accounts"]),
            LLMTextColumn(name="question", model="a", prompt="Ask about {{ topic }}."),
            LLMTextColumn(name="answer", model="b", prompt="Answer: {{ question }}"),
            ExpressionColumn(name="pair", template="Q: {{ question }} A: {{ answer }}"),
        ],
        models=[mock_model(ports[0], CAP, "a"), mock_model(ports[1], CAP, "b")],
    )


def samplers_config() -> DatasetConfig:
    return DatasetConfig(
        columns=[IntegerSampler(name="n", low=0, high=9), UUIDSampler(name="id")]
    )


def run_config(executor: str, workers: int, buffer_size: int) -> RunConfig:
    return RunConfig(
        buffer_size=buffer_size,
        max_in_flight=4 * CAP,
        max_concurrent_row_groups=3,
        gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD,
        executor=executor,  # type: ignore[arg-type]
        workers=workers,
    )


def timed_build(config: DatasetConfig, records: int, settings: RunConfig) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        result = build(config, records, Path(output) / "out", settings)
        wall = time.perf_counter() - started
        if result.outcome != "completed":  # BuildResult reads metadata.json: in the block
            raise RuntimeError(f"a benchmark build ended {result.outcome}")
        return wall, result.num_records


EXECUTORS = (("local", 1), ("ray", 1), ("ray", 2))


def measure_llm(records: int, latency_ms: float, repeats: int) -> list[dict[str, Any]]:
    """Every executor `repeats` times, interleaved, against two fresh servers per round."""
    walls: dict[tuple[str, int], list[float]] = {setting: [] for setting in EXECUTORS}
    for _ in range(repeats):
        servers = [start_server(latency_ms) for _ in range(2)]
        try:
            config = llm_config((servers[0][1], servers[1][1]))
            for executor, workers in EXECUTORS:
                wall, written = timed_build(
                    config, records, run_config(executor, workers, buffer_size=500)
                )
                assert written == records
                walls[(executor, workers)].append(wall)
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait(timeout=10)
    rows = []
    for (executor, workers), runs in walls.items():
        wall = statistics.median(runs)
        rows.append(
            {
                "latency_ms": latency_ms,
                "executor": executor,
                "workers": workers,
                "records": records,
                "wall_s": round(wall, 3),
                "records_per_s": round(records / wall, 1),
                "requests_per_s": round(records * LLM_COLUMNS / wall, 1),
                "records_per_s_runs": [round(records / w, 1) for w in runs],
            }
        )
    return rows


def measure_overhead(row_groups: int, repeats: int) -> dict[str, Any]:
    """The Ray path's cost on a config without model calls, split in two by building `small`
    and `row_groups` row groups (10 records each) both ways: the per-row-group cost is the
    extra slope of Ray's wall time over the local one, the per-run cost (actors starting, the
    work shipped) what is left at the small size."""
    small, config = max(row_groups // 4, 1), samplers_config()

    def wall(executor: str, groups: int) -> float:
        settings = run_config(executor, 1, buffer_size=10)
        return statistics.median(
            timed_build(config, groups * 10, settings)[0] for _ in range(repeats)
        )

    local = {groups: wall("local", groups) for groups in (small, row_groups)}
    ray = {groups: wall("ray", groups) for groups in (small, row_groups)}
    per_group = ((ray[row_groups] - ray[small]) - (local[row_groups] - local[small])) / (
        row_groups - small
    )
    per_run = ray[small] - local[small] - small * per_group
    return {
        "row_groups": [small, row_groups],
        "local_wall_s": [round(local[small], 3), round(local[row_groups], 3)],
        "ray_wall_s": [round(ray[small], 3), round(ray[row_groups], 3)],
        "ray_overhead_ms_per_row_group": round(1000 * per_group, 2),
        "ray_overhead_s_per_run": round(per_run, 2),
    }


def commit_rate(recorded: int, measured: int) -> float:
    """Row groups per second the driver can record when `recorded` row groups are already in
    metadata.json: what it does for each row group a worker reports (add the record, rewrite
    metadata.json atomically), without generating anything."""
    identity_size = recorded + measured

    def record(index: int) -> RowGroupRecord:
        return RowGroupRecord(
            index=index, state="drained", records_written=1000, records_dropped=0,
            drop_reasons={}, skipped_cells={}, file=relative_path(index),
            first_record=index * 1000,
        )

    with tempfile.TemporaryDirectory() as output:
        identity = RunIdentity(
            "bench", "0" * 16, identity_size * 1000, 1000, identity_size,
            ("question", "answer", "pair"), now(),
        )
        kept = [record(index) for index in range(recorded)]
        recorder = MetadataRecorder(Path(output), identity, "ray", kept, RunSchema())
        recorder.write("running")
        started = time.perf_counter()
        for index in range(recorded, identity_size):
            recorder.add(record(index))
            recorder.write("running")
        return measured / (time.perf_counter() - started)


COMMIT_SIZES = ((0, 400), (1_000, 400), (10_000, 200), (100_000, 40))


def start_ray(stack: contextlib.ExitStack) -> float:
    """Start the local Ray instance the measured builds use (as a build without an address
    starts one: `distributed.cluster.ray_session`), stopped when `stack` closes; returns its
    start-up seconds."""
    started = time.perf_counter()
    stack.enter_context(ray_session(None, num_cpus=2))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer records, one run each")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    records = 1000 if args.quick else 4000
    with contextlib.ExitStack() as stack:
        startup = start_ray(stack)
        rows = measure_llm(records, 50.0, repeats) + measure_llm(records, 0.0, repeats)
        overhead = measure_overhead(50 if args.quick else 400, repeats)
    commits = [
        {"recorded": recorded, "row_groups_per_s": round(commit_rate(recorded, measured), 1)}
        for recorded, measured in (COMMIT_SIZES[:2] if args.quick else COMMIT_SIZES)
    ]
    results = {
        "records": records,
        "cap_per_model": CAP,
        "ray_startup_s": round(startup, 2),
        "results": rows,
        "overhead": overhead,
        "driver_commits": commits,
    }
    emit_json("ray_scale", results)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"ray_scale-{dt.date.today().isoformat()}.json"
        document = {"benchmark": "ray_scale", "machine": machine_description(), **results}
        path.write_text(json.dumps(document, indent=2) + "\n")
    print_table(
        ["latency ms", "executor", "workers", "records/s", "requests/s", "wall s"],
        [
            [r["latency_ms"], r["executor"], r["workers"], r["records_per_s"],
             r["requests_per_s"], r["wall_s"]]
            for r in rows
        ],
    )
    print(
        f"Ray start-up {startup:.2f}s (once per run without --ray-address); the Ray path costs "
        f"{overhead['ray_overhead_s_per_run']} s per run (workers starting) and "
        f"{overhead['ray_overhead_ms_per_row_group']} ms per row group (samplers only, "
        f"{overhead['row_groups']} row groups of 10 records)"
    )
    print("driver commits (add + metadata.json rewrite) per second, by row groups recorded: "
          + ", ".join(f"{c['recorded']:,}: {c['row_groups_per_s']}" for c in commits))


if __name__ == "__main__":
    main()
