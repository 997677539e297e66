"""Client CPU per request: the bare aiohttp client against rowforge end to end, at 0 ms latency.

Scale up before scaling out (issue 14): one process should sit close to the HTTP client's own
ceiling before work is spread over many. This benchmark starts `rowforge mock-server
--latency-ms 0 0` as a separate process and measures, each in a fresh child process so that no
run inherits another's heap, caches or warmed-up connections:

- `bare`: aiohttp alone, at every cap, `cap` workers sharing one
  `ClientSession(TCPConnector(limit=cap))`, POSTing the chat-completions body rowforge sends for
  the column below and reading the reply's `choices[0].message.content` (`response.json()`),
  `--requests` times in all;
- `rowforge`: `rowforge.api.build` of a config with one `llm_text` column on a model of
  `provider: openai` pointing at the server, `max_parallel_requests=cap`, into a temporary
  directory (`RunConfig(max_in_flight=max(256, 2 * cap), gc_young_threshold=10_000)`, as the
  CLI and `http_e2e.py` run it); one request per record.

Each child first warms up (200 requests / records, not counted), then reports the CPU seconds of
its own process (`resource.getrusage(RUSAGE_SELF)`: user + system) and the wall time of the
measured part: `cpu_ms_per_request` and records/s (= requests/s). Next to its own CPU it reads
the mock server's (`psutil.Process(server_pid).cpu_times()`: user + system) right before and
after the same measured part: `server_cpu_ms_per_request`, and `server_busy`, the server's CPU
seconds per wall second (near 1.0: the single-threaded server is saturated and sets the pace;
`client_busy` is the same for the measuring child, whose event loop is single-threaded too).
The server serves nothing but the measuring child, so its CPU over that span is the cost of
those requests on the server side; together the two show which side grows when the cap rises.
The variants run interleaved (every repeat measures every variant in turn, so drift on the
shared machine hits all alike) and the median of the repeats is reported per variant, with the
minimum (the run least disturbed by other work on the machine: contention only adds CPU time)
and every run's value beside it.

`--fast` chooses the optional speedups (the `fast` extra: orjson, see `rowforge.models.fast`)
for the rowforge runs: `auto` measures whatever rowforge picks by itself, `compare` measures
each cap with the extra switched off (`ROWFORGE_FAST=0`) and on (when it is installed).

Run: `.venv/bin/python benchmarks/request_cpu.py [--quick]` (`make bench` runs it too).
Prints one JSON line, then a table; writes benchmarks/results/request_cpu-<date>.json (the same
JSON) unless `--no-save`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit_json, machine_description, mock_model, print_table
from http_e2e import start_server

RESULTS = Path(__file__).resolve().parent / "results"
PROMPT = "Write one sentence about synthetic data."
WARMUP = 200


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(process: Any) -> float:
    """User + system CPU of another process (a `psutil.Process`): the mock server, whose cost per
    request tells whether it, rather than the client, is what slows down at a higher cap."""
    times = process.cpu_times()
    return float(times.user + times.system)


class Measurement:
    """CPU of this process and of the server, and wall time, over one measured part.

    Both CPU clocks are read at the same two moments, so the client's and the server's CPU per
    request cover the very same requests. Used as `with Measurement(pid) as measured: ...`, then
    `measured.row()`.
    """

    def __init__(self, server_pid: int) -> None:
        import psutil  # type: ignore[import-untyped]  # no stubs installed

        self.server = psutil.Process(server_pid)

    def __enter__(self) -> Measurement:
        self.server_cpu = process_cpu_seconds(self.server)
        self.cpu = cpu_seconds()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.perf_counter() - self.started
        self.cpu = cpu_seconds() - self.cpu
        self.server_cpu = process_cpu_seconds(self.server) - self.server_cpu

    def row(self) -> dict[str, Any]:
        return {"cpu_s": self.cpu, "server_cpu_s": self.server_cpu, "wall_s": self.wall}


# --- the child: one measurement in a fresh process ------------------------------------------


async def bare_run(port: int, cap: int, requests: int) -> None:
    """`requests` POSTs of the chat-completions body by `cap` workers over one session."""
    import aiohttp

    from rowforge.models.openai_client import OpenAIClient

    client = OpenAIClient(mock_model(port, cap))
    body = client._body([{"role": "user", "content": PROMPT}], None)
    remaining = [requests]
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=cap),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                async with session.post(client.url, json=body) as response:
                    document = await response.json()
                    if response.status != 200 or not document["choices"][0]["message"]["content"]:
                        raise RuntimeError(f"unexpected reply: {response.status} {document}")

        await asyncio.gather(*(worker() for _ in range(cap)))


def bare(port: int, cap: int, requests: int, server_pid: int) -> dict[str, Any]:
    asyncio.run(bare_run(port, cap, WARMUP))
    with Measurement(server_pid) as measured:
        asyncio.run(bare_run(port, cap, requests))
    return measured.row()


def rowforge_build(port: int, cap: int, records: int, server_pid: int) -> dict[str, Any]:
    from rowforge.api import build
    from rowforge.config.columns import LLMTextColumn
    from rowforge.config.dataset import DatasetConfig
    from rowforge.scheduler import RunConfig
    from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD

    config = DatasetConfig(
        columns=[LLMTextColumn(name="text", model="llm", prompt=PROMPT)],
        models=[mock_model(port, cap)],
    )
    run_config = RunConfig(
        max_in_flight=max(256, 2 * cap), gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD
    )
    with tempfile.TemporaryDirectory() as warmup:
        build(config, WARMUP, Path(warmup), run_config)
    with tempfile.TemporaryDirectory() as output:
        with Measurement(server_pid) as measured:
            result = build(config, records, Path(output), run_config)
        if result.num_records != records or result.outcome != "completed":
            raise RuntimeError(f"the build ended {result.outcome}: {result.num_records} records")
    return measured.row()


def fast_in_use() -> dict[str, bool]:
    """Which optional speedups rowforge uses in this process."""
    from rowforge.models import fast

    return fast.in_use()


def child(args: argparse.Namespace) -> None:
    if args.child == "bare":
        row = bare(args.port, args.cap, args.requests, args.server_pid)
    else:
        row = rowforge_build(args.port, args.cap, args.requests, args.server_pid)
        row["fast"] = fast_in_use()
    print(json.dumps(row), flush=True)


# --- the parent: variants, repeats, medians -------------------------------------------------


def run_child(
    kind: str, server: subprocess.Popen[str], port: int, cap: int, requests: int, fast: str | None
) -> dict[str, Any]:
    env = dict(os.environ)
    if fast is not None:
        env["ROWFORGE_FAST"] = fast
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--port",
        str(port),
        "--server-pid",
        str(server.pid),
        "--cap",
        str(cap),
        "--requests",
        str(requests),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{kind} cap {cap} failed:\n{completed.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return row


def variants(caps: list[int], fast: str) -> list[dict[str, Any]]:
    """The bare client and rowforge at every cap: whether a dip across caps is rowforge's own
    shows only against the bare client at the same caps."""
    chosen: list[dict[str, Any]] = [{"kind": "bare", "cap": cap, "fast": None} for cap in caps]
    settings: list[str | None] = [None] if fast == "auto" else ["0", "1"]
    for setting in settings:
        chosen += [{"kind": "rowforge", "cap": cap, "fast": setting} for cap in caps]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 requests, one run each")
    parser.add_argument("--requests", type=int, help="requests (= records) per run")
    parser.add_argument("--repeats", type=int, help="runs per variant (median reported)")
    parser.add_argument("--caps", default="32,128,256", help="caps, comma-separated")
    parser.add_argument("--fast", choices=("auto", "compare"), default="auto")
    parser.add_argument("--label", default="", help="a suffix for the results file name")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--child", choices=("bare", "rowforge"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    requests = args.requests or (3000 if args.quick else 10_000)
    repeats = args.repeats or (1 if args.quick else 3)
    caps = [int(cap) for cap in args.caps.split(",")]
    chosen = variants(caps, args.fast)
    runs: list[list[dict[str, Any]]] = [[] for _ in chosen]
    server, port = start_server(0.0)
    try:
        for _ in range(repeats):
            for index, variant in enumerate(chosen):
                runs[index].append(
                    run_child(
                        variant["kind"], server, port, variant["cap"], requests, variant["fast"]
                    )
                )
    finally:
        server.terminate()
        server.wait(timeout=10)

    rows = [
        summary(variant, measured, requests) for variant, measured in zip(chosen, runs, strict=True)
    ]
    results = {"latency_ms": 0.0, "requests": requests, "repeats": repeats, "results": rows}
    emit_json("request_cpu", results)
    print_table(
        [
            "client",
            "cap",
            "fast",
            "CPU ms/req median",
            "min",
            "server CPU ms/req median",
            "min",
            "client busy",
            "server busy",
            "records/s median",
            "ms/req runs",
            "server ms/req runs",
        ],
        [
            [
                r["client"],
                r["cap"],
                _fast_label(r),
                r["cpu_ms_per_request"],
                r["cpu_ms_per_request_min"],
                r["server_cpu_ms_per_request"],
                r["server_cpu_ms_per_request_min"],
                r["client_busy"],
                r["server_busy"],
                r["records_per_s"],
                " ".join(f"{value:.3f}" for value in r["cpu_ms_per_request_runs"]),
                " ".join(f"{value:.3f}" for value in r["server_cpu_ms_per_request_runs"]),
            ]
            for r in rows
        ],
    )
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        suffix = f"-{args.label}" if args.label else ""
        path = RESULTS / f"request_cpu-{datetime.date.today().isoformat()}{suffix}.json"
        record = {"benchmark": "request_cpu", "machine": machine_description(), **results}
        path.write_text(json.dumps(record) + "\n", encoding="utf-8")
        print(f"wrote {path}")


def summary(
    variant: dict[str, Any], measured: list[dict[str, Any]], requests: int
) -> dict[str, Any]:
    """One variant's runs as medians, minima and every run's value; the server's CPU beside the
    client's, so that a change across caps can be put on the side where it happens."""
    cpu_ms = [round(1000 * run["cpu_s"] / requests, 4) for run in measured]
    server_ms = [round(1000 * run["server_cpu_s"] / requests, 4) for run in measured]
    busy = [round(run["server_cpu_s"] / run["wall_s"], 3) for run in measured]
    client_busy = [round(run["cpu_s"] / run["wall_s"], 3) for run in measured]
    rates = [round(requests / run["wall_s"], 1) for run in measured]
    return {
        "client": variant["kind"],
        "cap": variant["cap"],
        "fast_setting": variant["fast"],
        "fast_in_use": measured[0].get("fast"),
        "requests": requests,
        "cpu_ms_per_request": statistics.median(cpu_ms),
        "cpu_ms_per_request_min": min(cpu_ms),
        "server_cpu_ms_per_request": statistics.median(server_ms),
        "server_cpu_ms_per_request_min": min(server_ms),
        "server_busy": statistics.median(busy),
        "client_busy": statistics.median(client_busy),
        "records_per_s": statistics.median(rates),
        "cpu_ms_per_request_runs": cpu_ms,
        "server_cpu_ms_per_request_runs": server_ms,
        "server_busy_runs": busy,
        "client_busy_runs": client_busy,
        "records_per_s_runs": rates,
    }


def _fast_label(row: dict[str, Any]) -> str:
    used = row["fast_in_use"]
    if used is None:
        return "-"
    names = [name for name, on in used.items() if on]
    return "+".join(names) if names else "off"


if __name__ == "__main__":
    main()
