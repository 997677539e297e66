"""Helpers shared by the scheduler benchmarks: machine description, output, RSS.

Every benchmark prints exactly one JSON line first (machine-readable; `benchmark` and `machine`
keys plus the measured numbers), then a short human-readable table.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import rowforge


def cpu_model() -> str:
    """The first `model name` of /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int | None:
    """CPUs this process may run on (affinity), where the platform reports it."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "arch": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "cpu_model": cpu_model(),
        "rowforge": _package_version("rowforge"),
        "transitions": _package_version("transitions"),
        "rowforge_source": source_description(),
    }


def source_description() -> dict[str, Any]:
    """Which rowforge was measured: its directory, and the git commit and whether the package
    differs from it, when it lives in a git checkout (None otherwise)."""
    package = Path(rowforge.__file__).resolve().parent
    return {
        "path": str(package),
        "git_commit": _git(package, "rev-parse", "--short", "HEAD"),
        "git_dirty": None
        if (status := _git(package, "status", "--porcelain", "--", ".")) is None
        else bool(status),
    }


def _git(directory: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def emit_json(benchmark: str, results: Mapping[str, Any]) -> None:
    """Print the single JSON line: benchmark name, machine, then the results."""
    record = {"benchmark": benchmark, "machine": machine_description(), **results}
    print(json.dumps(record, sort_keys=False), flush=True)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print `rows` as an aligned plain-text table (numbers right-aligned)."""
    cells = [[_format(value) for value in row] for row in rows]
    widths = [
        max(len(header), *(len(row[i]) for row in cells)) if cells else len(header)
        for i, header in enumerate(headers)
    ]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    print(line(list(headers)))
    print(line(["-" * width for width in widths]))
    for row in cells:
        print(line(row))


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def peak_rss_kib() -> int:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kib() -> int | None:
    """Current resident set size (VmRSS from /proc/self/status), where available."""
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def chain_steps() -> list[Any]:
    """The zero-latency chain a -> b -> c of sync cell steps the overhead benchmark measures."""
    from rowforge.scheduler import Step

    return [
        Step("a", lambda row: 1),
        Step("b", lambda row: row["a"] + 1, depends_on=("a",)),
        Step("c", lambda row: row["b"] + 1, depends_on=("b",)),
    ]


def mock_model(port: int, cap: int, alias: str = "llm") -> Any:
    """The model entry the HTTP benchmarks point at `rowforge mock-server` on 127.0.0.1:`port`
    (provider openai, `cap` requests at once). Imported lazily: a bare-client child of
    request_cpu.py measures its CPU without rowforge's model layer loaded."""
    from rowforge.models import ModelConfig

    return ModelConfig(
        alias=alias,
        provider="openai",
        model="mock-1",
        base_url=f"http://127.0.0.1:{port}/v1",
        max_parallel_requests=cap,
        timeout_s=30,
    )
