"""`rowforge run --executor ray` as a user runs it: a subprocess that starts its own local Ray
instance (no address). It prints what a local run prints, nothing of Ray's; Ctrl-C stops every
worker and leaves an output that `resume` finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

import rowforge
from rowforge.models.mock_server import MockSettings
from rowforge.scheduler import RunConfig
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata
from tests.distributed.helpers import GO, CountingMockServer, writer_model
from tests.reliability.netguard import ServerThread

ROOT = Path(__file__).resolve().parents[2]
DEMO = Path(str(files("rowforge") / "demo_data" / "support_dialogues.yaml"))
#: Waiting for a subprocess to reach a point or for a process to go; never an assertion on time.
PATIENCE_S = 120


def _rowforge(*args: str, **options: Any) -> subprocess.Popen[str]:
    """`python -m rowforge.cli ARGS`; the workers import the tests' helpers via PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "rowforge.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def _own_lines(text: str) -> list[str]:
    """The lines that are not rowforge's: a rowforge line is a progress line, the summary or
    one of its indented detail lines."""
    return [
        line
        for line in text.splitlines()
        if line.strip()
        and not line.startswith(
            ("rowforge run", "  step ", "  model ", "  parquet:", "  metadata:")
        )
        and not line.startswith("Interrupted.")
        and not (line.startswith("  ") and "rowforge resume " in line)
    ]


def test_a_ray_run_prints_what_a_local_run_prints(tmp_path: Path) -> None:
    process = _rowforge(
        "run", str(DEMO), "-n", "40", "-o", str(tmp_path / "out"),
        "--executor", "ray", "--workers", "2", "--buffer-size", "10",
    )  # fmt: skip
    stdout, stderr = process.communicate(timeout=PATIENCE_S)
    assert process.returncode == 0, stderr
    for stream in (stdout, stderr):
        assert "WARNING" not in stream and "(raylet)" not in stream
        assert _own_lines(stream) == []
    assert "rowforge run: completed: 40 of 40 records written" in stderr
    assert "  step  reply     done 40" in stderr  # the per-step summary, both workers' cells
    assert "  model writer  requests " in stderr
    assert read_metadata(tmp_path / "out")["engine"] == "ray"


def _gated_served_config(gate: Path, url: str) -> dict[str, Any]:
    """Row group 1 waits at the gate before its LLM column: a worker left alive after Ctrl-C
    would call the model for records 10..19 once the gate opens."""
    return {
        "seed": 7,
        "models": [writer_model(url)],
        "columns": [
            {"type": "category", "name": "gate", "values": [str(gate)]},
            {"type": "category", "name": "topic", "values": ["billing", "shipping"]},
            {
                "type": "custom",
                "name": "waited",
                "kind": "batch",
                "depends_on": ["gate"],
                "function": "tests.distributed.helpers:wait_at_gate",
            },
            {
                "type": "llm_text",
                "name": "question",
                "model": "writer",
                "prompt": "Ask about {{ topic }} ({{ waited }}).",
            },
        ],
    }


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaps has ended too)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def test_ctrl_c_on_the_driver_stops_every_worker_and_resume_finishes(tmp_path: Path) -> None:
    gate, output = tmp_path / "gate", tmp_path / "out"
    gate.mkdir()
    config = tmp_path / "config.json"
    server = CountingMockServer(MockSettings(latency_ms=(5, 20), seed=3))
    with ServerThread(server):
        config.write_text(json.dumps(_gated_served_config(gate, server.url)))
        process = _rowforge(
            "run", str(config), "-n", "40", "-o", str(output),
            "--executor", "ray", "--workers", "2", "--buffer-size", "10",
        )  # fmt: skip
        deadline = time.monotonic() + PATIENCE_S
        while not list(gate.glob("waiting-*")):  # row group 1 is mid-run in a worker
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "row group 1 never reached the gate"
            time.sleep(0.05)
        [marker] = gate.glob("waiting-*")
        worker = int(marker.name.removeprefix("waiting-"))
        process.send_signal(signal.SIGINT)  # Ctrl-C
        stdout, stderr = process.communicate(timeout=PATIENCE_S)
        assert process.returncode == 130, stderr
        assert _own_lines(stdout) == _own_lines(stderr) == []  # no traceback, nothing of Ray's
        assert "Interrupted. To finish the run:" in stderr
        assert server.in_flight == 0
        requests = server.request_count
        (gate / GO).touch()  # a worker still alive would now call the model
        while not _gone(worker):
            assert time.monotonic() < deadline, f"worker process {worker} outlived the run"
            time.sleep(0.05)
        assert server.request_count == requests

        metadata = read_metadata(output)
        assert metadata["outcome"] == "cancelled"
        assert metadata["finished_at"] is not None
        assert metadata["actual_num_records"] < 40
        assert first_violation(output) is None
        result = rowforge.resume(output, run_config=RunConfig(buffer_size=10))
    assert result.outcome == "completed"
    dataset = pd.read_parquet(output / "parquet-files")
    assert sorted(dataset.index) == list(range(40))  # each record once: exactly the target
    assert read_metadata(output)["actual_num_records"] == 40
    assert first_violation(output) is None
