"""The command line under provider faults: `rowforge mock-server` with fault options as a
separate process, and `rowforge run` reporting an early shutdown exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import rowforge
from rowforge.models import MockSettings, mock_reply
from rowforge.scheduler import RunConfig
from rowforge.storage.metadata import read_metadata
from tests.faults.test_http_faults import FAST, PROMPT, SEED, dataset

CLI = [sys.executable, "-m", "rowforge.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


@pytest.fixture
def faulty_server() -> Iterator[str]:
    """`rowforge mock-server` on a free port: a 1 s outage, then 30% 503. Yields its URL."""
    options = ["--port", "0", "--seed", str(SEED), "--outage-s", "1", "--status-rate", "0.3"]
    process = subprocess.Popen(
        [*CLI, "mock-server", *options, "--status", "503"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("rowforge mock server listening on http://127.0.0.1:"), line + (
            process.stderr.read() if process.stderr else ""
        )
        yield line.split()[-1]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "rowforge mock server stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/mock/stats", timeout=5) as response:
        document: dict[str, Any] = json.load(response)
    return document


def test_a_run_rides_out_the_faults_of_a_mock_server_process(
    faulty_server: str, tmp_path: Path
) -> None:
    config = dataset(faulty_server)
    run = RunConfig(
        **{**FAST, "retry_budget_s": 10.0, "retry_backoff_max_s": 0.3, "no_success_budget_s": 30}
    )
    result = rowforge.build(config, 40, tmp_path, run)
    seen = stats(faulty_server)
    time.sleep(2.0)  # nothing reaches the server after build() returned
    assert stats(faulty_server)["requests"] == seen["requests"]

    assert result.outcome == "completed"
    frame = pd.read_parquet(tmp_path / "parquet-files").sort_index()
    assert list(frame.index) == list(range(40))
    for topic, answer in zip(frame["topic"], frame["answer"], strict=True):
        content = PROMPT.replace("{{ topic }}", str(topic))
        assert answer == mock_reply(MockSettings(seed=SEED), [{"role": "user", "content": content}])
    assert seen["faults"]["outage"] > 0 and seen["faults"]["status"] > 0
    assert seen["requests"] == 40 + seen["faults"]["outage"] + seen["faults"]["status"]


def test_mock_server_refuses_a_bad_fault_option_in_one_line() -> None:
    done = subprocess.run(
        [*CLI, "mock-server", "--port", "0", "--status", "404"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "rowforge mock-server: invalid input: FaultPlan.status must be 408 or a 5xx status, got 404"
    )


REFUSING = """\
models:
  - alias: writer
    mock: {refusal_rate: 1.0}
columns:
  - {type: integer, name: topic, low: 0, high: 1000000}
  - {type: llm_text, name: blurb, model: writer, prompt: "Describe topic {{ topic }}."}
"""


def test_run_prints_an_early_shutdown_once_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "refusing.yaml"
    config.write_text(REFUSING, encoding="utf-8")
    output = tmp_path / "out"
    done = subprocess.run(
        [*CLI, "run", str(config), "-n", "200", "-o", str(output)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("early shutdown") == 1, done.stderr
    # the display's summary first, then the error, once
    summary = done.stderr.index("rowforge run: failed: 0 of 200 records written")
    error = done.stderr.index("rowforge run: early shutdown: 50 of the last 50 model tasks")
    assert summary < error
    assert "step 'blurb' (model 'writer')" in done.stderr
    assert "HTTP 400 simulated refusal" in done.stderr
    metadata = read_metadata(output)
    assert metadata["early_shutdown"] is True and metadata["outcome"] == "failed"
