"""data-designer, embedded: one data-designer config through data-designer's own engine and
through data-designer with rowforge as its engine.

What is measured
----------------
`DataDesigner.create(config, num_records=N)` (default N = 5,000) of a data-designer config built
with data-designer's own builder: a category sampler `topic`, an LLM text column `question` on
it, an LLM text column `answer` on `question`, and an expression `pair` on both; one model alias,
`max_parallel_requests` 32 and then 128. The model is an OpenAI-compatible provider pointing at
the mock server with 50 ms latency, in its own process (its CPU is not the client's):
`DataDesignerMockServer` from tests/integrations/dd_support.py, which is rowforge's
`MockServer` plus the shim data-designer's requests need (text-block message content). Engines
(`--engines`, default both): `dd`, data-designer's own; `rowforge`, the same call after
`rowforge.integrations.data_designer.enable()` (undone by `disable()`). If that module cannot be
imported the engine is reported as "unavailable".

Each (engine, cap) runs in a fresh child process (this script with `--child`) against a fresh
server, so the child's peak RSS (`ru_maxrss` of RUSAGE_SELF at the end) is that run's alone.
The child sets data-designer's telemetry off (`NEMO_TELEMETRY_ENABLED=false`, through
dd_support), its metrics listener off (`RunConfig(otel_metrics_port=None)`) and counts profile
tokens offline (tiktoken would download cl100k_base); other `RunConfig` fields are defaults
(buffer_size 1000, 3 row groups at once).

Reported per run: wall time of `create()` and records/s, which include data-designer's dataset
profiling after the build (`profile_s`; `build_records_per_s` leaves it out); requests as the
server counted them (`/v1/mock/stats`: records x 2 LLM columns plus one health check per
create); requests/s; client CPU milliseconds per request (user+sys of the child during
`create()` / requests); the child's peak RSS and its RSS before `create()`; and efficiency =
requests/s / (cap / latency). Client and server share the machine's cores, so single runs vary.

Run: `.venv/bin/python benchmarks/data_designer_embedded.py [--records N] [--engines dd,rowforge]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from _common import current_rss_kib, emit_json, print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT))

# dd_support sets data-designer's environment (telemetry off) before data-designer loads.
from tests.integrations import dd_support as support  # noqa: E402

dd = support.dd

BENCHMARK = "data_designer_embedded"
ENGINES = ("dd", "rowforge")
CAPS = (32, 128)
LATENCY_MS = 50.0
LLM_COLUMNS = 2
CHILD_TIMEOUT_S = 3600
RESULT_PREFIX = "BENCHMARK-RESULT "


def benchmark_config(max_parallel_requests: int) -> Any:
    """category sampler -> LLM text -> LLM text on the first -> expression (one model alias)."""
    builder = dd.DataDesignerConfigBuilder(
        model_configs=support.model_configs(max_parallel_requests, aliases=(support.TEXT_ALIAS,))
    )
    builder.add_column(support.category_sampler("topic", support.TOPICS))
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="question", model_alias=support.TEXT_ALIAS, prompt="Ask about {{ topic }}."
        )
    )
    builder.add_column(
        dd.LLMTextColumnConfig(
            name="answer", model_alias=support.TEXT_ALIAS, prompt="Answer: {{ question }}"
        )
    )
    builder.add_column(
        dd.ExpressionColumnConfig(name="pair", expr="Q: {{ question }} A: {{ answer }}")
    )
    return builder


# --- the child: one create() ------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(engine: str, cap: int, records: int, url: str) -> dict[str, Any]:
    if engine == "rowforge":
        try:
            import rowforge.integrations.data_designer  # type: ignore[import-not-found]  # noqa: F401
        except ImportError as error:
            return {"status": "unavailable", "reason": f"{type(error).__name__}: {error}"}
    from data_designer.engine.analysis.dataset_profiler import DataDesignerDatasetProfiler

    profiling = {"seconds": 0.0}
    profile_dataset = DataDesignerDatasetProfiler.profile_dataset

    def timed_profile(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return profile_dataset(self, *args, **kwargs)
        finally:
            profiling["seconds"] += time.perf_counter() - started

    DataDesignerDatasetProfiler.profile_dataset = timed_profile  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="dd-embedded-") as output:
        designer = support.make_data_designer(url, output)
        builder = benchmark_config(cap)
        rss_before = current_rss_kib()
        with support.engine(engine):
            cpu_before, started = cpu_seconds(), time.perf_counter()
            results = designer.create(builder, num_records=records)
            wall = time.perf_counter() - started
            cpu = cpu_seconds() - cpu_before
        produced = len(results.load_dataset())
    return {
        "status": "ok" if produced == records else "incomplete",
        "records": produced,
        "wall_s": wall,
        "cpu_s": cpu,
        "profile_s": profiling["seconds"],
        "rss_before_create_kib": rss_before,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


# --- the parent: a fresh server and child per run -----------------------------------------------


def measure(engine: str, cap: int, records: int, latency_ms: float) -> dict[str, Any]:
    row: dict[str, Any] = {"engine": engine, "cap": cap, "latency_ms": latency_ms}
    with support.mock_server_process((latency_ms, latency_ms)) as server:
        command = [
            sys.executable, __file__, "--child", "--engines", engine, "--caps", str(cap),
            "--records", str(records), "--url", server.url,
        ]  # fmt: skip
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return {**row, "status": "failed", "error": f"timed out after {CHILD_TIMEOUT_S}s"}
        requests = int(server.stats()["requests"])
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        return {**row, "status": "failed", "returncode": completed.returncode, "error": tail}
    child = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    if child["status"] == "unavailable":
        return {**row, **child}
    wall = child["wall_s"]
    build_s = wall - child["profile_s"]
    return {
        **row,
        "status": child["status"],
        "records": child["records"],
        "wall_s": round(wall, 3),
        "records_per_s": round(child["records"] / wall, 1),
        "profile_s": round(child["profile_s"], 3),
        "build_records_per_s": round(child["records"] / build_s, 1),
        "requests": requests,
        "expected_llm_requests": child["records"] * LLM_COLUMNS,
        "requests_per_s": round(requests / wall, 1),
        "client_cpu_ms_per_request": round(1000 * child["cpu_s"] / requests, 3),
        "peak_rss_mib": round(child["peak_rss_kib"] / 1024, 1),
        "rss_before_create_mib": round((child["rss_before_create_kib"] or 0) / 1024, 1),
        "efficiency": round((requests / wall) / (cap / (latency_ms / 1000)), 3),
    }


def _names(text: str, known: tuple[str, ...]) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(known)}, got {text!r}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=5000, help="records per run (5,000)")
    parser.add_argument(
        "--engines",
        type=lambda text: _names(text, ENGINES),
        default=list(ENGINES),
        help="comma-separated: dd (data-designer's engine), rowforge (default: both)",
    )
    parser.add_argument(
        "--caps",
        type=lambda text: [int(cap) for cap in text.split(",")],
        default=list(CAPS),
        help="comma-separated max_parallel_requests values (32,128)",
    )
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS, help="mock latency (50)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = run_child(args.engines[0], args.caps[0], args.records, args.url)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return

    rows = []
    for engine in args.engines:
        for cap in args.caps:
            row = measure(engine, cap, args.records, args.latency_ms)
            rows.append(row)
            if row["status"] == "unavailable":
                rows += [{**row, "cap": other} for other in args.caps if other != cap]
                break
    emit_json(
        BENCHMARK,
        {
            "data_designer": metadata.version("data-designer"),
            "records": args.records,
            "llm_columns": LLM_COLUMNS,
            "latency_ms": args.latency_ms,
            "results": rows,
        },
    )
    print_table(
        [
            "engine", "cap", "status", "records", "wall s", "records/s", "build rec/s",
            "requests", "CPU ms/req", "peak RSS MiB", "efficiency",
        ],
        [
            [
                r["engine"], r["cap"], r["status"], r.get("records", "-"), r.get("wall_s", "-"),
                r.get("records_per_s", "-"), r.get("build_records_per_s", "-"),
                r.get("requests", "-"), r.get("client_cpu_ms_per_request", "-"),
                r.get("peak_rss_mib", "-"), r.get("efficiency", "-"),
            ]
            for r in rows
        ],
    )  # fmt: skip
    for r in rows:
        if r["status"] in ("unavailable", "failed"):
            print(
                f"{r['engine']} cap {r['cap']}: {r['status']}: {r.get('reason') or r.get('error')}"
            )


if __name__ == "__main__":
    main()
