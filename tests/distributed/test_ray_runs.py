"""Builds on a local Ray instance (one per module, 2 CPUs): the same dataset as a local run,
a worker killed mid-run, a processor failure that stops every worker, the shared caps, resume
across executors and the CLI."""

from __future__ import annotations

import json
import os
import signal
import threading
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import rowforge
from rowforge.api import load_config
from rowforge.cli import app
from rowforge.config.dataset import DatasetConfig
from rowforge.distributed.coordinator import ACTOR_PREFIX
from rowforge.errors import DatasetGenerationError, EarlyShutdownError
from rowforge.models.faults import FaultPlan
from rowforge.models.mock_server import MockSettings
from rowforge.progress import ProgressSnapshot
from rowforge.scheduler import RunConfig
from rowforge.storage.check import first_violation
from rowforge.storage.metadata import read_metadata
from tests.distributed.helpers import GO, CountingMockServer, writer_model
from tests.reliability.netguard import ServerThread
from tests.storage.test_progress_metadata import assert_snapshot_is_metadata

DEMO = Path(str(files("rowforge") / "demo_data" / "support_dialogues.yaml"))
#: What may differ between a local and a Ray build of one config: where and when it ran, and
#: the model figures that depend on timing (latency) or on which worker retried what.
VARYING = {"engine", "started_at", "finished_at", "models"}

pytestmark = pytest.mark.usefixtures("ray_instance")


def _ray(**options: Any) -> RunConfig:
    return RunConfig(buffer_size=10, executor="ray", workers=2, **options)


def _comparable(output: Path) -> dict[str, Any]:
    metadata = json.loads((output / "metadata.json").read_text())
    return {key: value for key, value in metadata.items() if key not in VARYING}


def _live_workers(ray: Any) -> list[str]:
    return [
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["name"].startswith(ACTOR_PREFIX)
    ]


def test_ray_build_equals_local_build(tmp_path: Path, ray_instance: Any) -> None:
    config = load_config(DEMO)
    local = rowforge.build(config, 60, tmp_path / "local", RunConfig(buffer_size=10))
    remote = rowforge.build(config, 60, tmp_path / "ray", _ray())

    assert remote.outcome == local.outcome == "completed"
    pd.testing.assert_frame_equal(remote.load_dataset(), local.load_dataset())
    assert (
        pd.read_parquet(tmp_path / "ray" / "parquet-files")
        .sort_index()
        .equals(pd.read_parquet(tmp_path / "local" / "parquet-files").sort_index())
    )
    assert _comparable(tmp_path / "ray") == _comparable(tmp_path / "local")
    assert remote.metadata["engine"] == "ray"
    writer = remote.metadata["models"]["writer"]
    assert writer["answered"] >= 120  # two writer columns, 60 rows: the workers' figures add up
    assert first_violation(tmp_path / "ray") is None
    assert _live_workers(ray_instance) == []


def test_a_ray_build_reports_progress_and_its_final_snapshot_is_metadata(tmp_path: Path) -> None:
    """The driver hands `on_progress` one snapshot of the whole run (both workers) as it goes,
    and a final one whose totals are metadata.json's, as a local build's final snapshot is."""
    snapshots: list[ProgressSnapshot] = []
    result = rowforge.build(
        load_config(DEMO),
        60,
        tmp_path / "out",
        _ray(progress_interval_s=0.05),
        on_progress=snapshots.append,
    )
    metadata = read_metadata(tmp_path / "out")
    assert [s.final for s in snapshots].count(True) == 1
    final = snapshots[-1]
    assert_snapshot_is_metadata(final, metadata)
    assert final.state == result.outcome == "completed"
    assert final.records_written == 60 == final.records_target
    assert {s.name: s.done for s in final.steps} == result.run.generated_cells  # both workers
    models = metadata["models"]
    assert {m.alias for m in final.models} == set(models) == {"writer", "judge"}
    for model in final.models:
        stored = models[model.alias]
        assert model.requests == stored["requests"] > 0
        assert model.prompt_tokens == stored["prompt_tokens"] > 0
        assert model.completion_tokens == stored["completion_tokens"] > 0
        assert dict(model.errors) == stored["errors"]
        assert dict(model.retries) == stored["retries"]
        assert model.in_flight == 0
    live = snapshots[:-1]
    assert live and all(s.state == "running" and not s.final for s in live)
    settled = [s.records_settled for s in live]
    assert settled == sorted(settled)  # the driver's view only grows
    assert any(0 < n < 60 for n in settled) or any(s.in_flight for s in live)


def _gated_config(gate: Path) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "seed": 3,
            "columns": [
                {"type": "category", "name": "gate", "values": [str(gate)]},
                {"type": "category", "name": "topic", "values": ["a", "b", "c"]},
                {
                    "type": "custom",
                    "name": "waited",
                    "kind": "batch",
                    "depends_on": ["gate"],
                    "function": "tests.distributed.helpers:wait_at_gate",
                },
            ],
        }
    )


def test_a_killed_worker_s_row_groups_run_again_once(tmp_path: Path, ray_instance: Any) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    outcome: list[Any] = []

    def build() -> None:
        try:
            outcome.append(rowforge.build(_gated_config(gate), 40, tmp_path / "out", _ray()))
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    runner = threading.Thread(target=build)
    runner.start()
    try:
        while not list(gate.glob("waiting-*")):  # row group 1 is mid-run in worker 1
            runner.join(0.05)
            assert runner.is_alive(), outcome
        [marker] = gate.glob("waiting-*")
        [name] = [n for n in _live_workers(ray_instance) if "-w1-" in n]
        pid = ray_instance.get(ray_instance.get_actor(name).pid.remote())
        assert marker.name == f"waiting-{pid}"  # the waiting row group runs in that process
        os.kill(pid, signal.SIGKILL)
    finally:
        (gate / GO).touch()
        runner.join()
    [result] = outcome
    assert not isinstance(result, BaseException), result
    dataset = result.load_dataset()
    assert len(dataset) == 40
    assert list(dataset.index) == list(range(40))  # each record index once
    assert result.outcome == "completed"
    assert first_violation(tmp_path / "out") is None


def _served_config(url: str, *, failing: bool = False) -> DatasetConfig:
    processors = (
        [{"type": "custom", "function": "tests.distributed.helpers:fail_in_row_group_2"}]
        if failing
        else []
    )
    return DatasetConfig.from_dict(
        {
            "seed": 5,
            "models": [writer_model(url)],
            "columns": [
                {"type": "category", "name": "topic", "values": ["billing", "shipping"]},
                {
                    "type": "llm_text",
                    "name": "question",
                    "model": "writer",
                    "prompt": "Ask about {{ topic }}.",
                },
            ],
            "processors": processors,
        }
    )


def test_a_processor_failure_stops_every_worker(tmp_path: Path, ray_instance: Any) -> None:
    server = CountingMockServer(MockSettings(latency_ms=(5, 20), seed=1))
    with ServerThread(server):
        config = _served_config(server.url, failing=True)
        with pytest.raises(DatasetGenerationError) as local:
            rowforge.build(config, 80, tmp_path / "local", RunConfig(buffer_size=10))
        with pytest.raises(DatasetGenerationError) as remote:
            rowforge.build(config, 80, tmp_path / "ray", _ray())
        requests_at_raise = server.request_count
        assert server.in_flight == 0
        assert _live_workers(ray_instance) == []  # no actor is left to call the model
        assert server.request_count == requests_at_raise
    assert type(remote.value) is type(local.value)
    assert str(remote.value) == str(local.value)
    metadata = json.loads((tmp_path / "ray" / "metadata.json").read_text())
    assert metadata["outcome"] == "failed"
    assert metadata["first_error"] == str(local.value)
    assert first_violation(tmp_path / "ray") is None


def test_a_broken_provider_ends_a_ray_build_with_early_shutdown_as_locally(
    tmp_path: Path, ray_instance: Any
) -> None:
    """Every request gets HTTP 500: each worker's engine trips its breaker; the driver raises
    `EarlyShutdownError` naming the step, model and status as a local build does, and no
    worker calls the model afterwards."""
    server = CountingMockServer(
        MockSettings(seed=3), faults=FaultPlan(status_rate=1.0, status=500)
    )
    with ServerThread(server):
        config = _served_config(server.url)
        with pytest.raises(EarlyShutdownError) as local:
            rowforge.build(config, 80, tmp_path / "local", RunConfig(buffer_size=10,
                                                                     retry_budget_s=0.5))
        with pytest.raises(EarlyShutdownError) as remote:
            rowforge.build(config, 80, tmp_path / "ray", _ray(retry_budget_s=0.5))
        requests_at_raise = server.request_count
        assert server.in_flight == 0
        assert _live_workers(ray_instance) == []
        assert server.request_count == requests_at_raise
    for caught in (local, remote):
        message = str(caught.value)
        assert message.startswith("early shutdown: "), message
        assert "step 'question'" in message and "model 'writer'" in message, message
        assert "HTTP 500" in message, message
    metadata = json.loads((tmp_path / "ray" / "metadata.json").read_text())
    assert metadata["early_shutdown"] is True and metadata["outcome"] == "failed"
    assert metadata["actual_num_records"] == 0
    assert first_violation(tmp_path / "ray") is None


def test_workers_share_a_model_s_cap(tmp_path: Path, ray_instance: Any) -> None:
    server = CountingMockServer(MockSettings(latency_ms=(20, 40), seed=2))
    with ServerThread(server):
        result = rowforge.build(_served_config(server.url), 80, tmp_path / "out", _ray())
    assert result.outcome == "completed"
    assert 0 < server.peak_in_flight <= 4  # the model's max_parallel_requests, over both workers
    assert result.metadata["models"]["writer"]["answered"] == 80


@pytest.mark.parametrize(("first", "then"), [("local", "ray"), ("ray", "local")])
def test_resume_finishes_the_other_executor_s_output(tmp_path: Path, first: str, then: str) -> None:
    config = load_config(DEMO)
    output = tmp_path / "out"
    rowforge.build(config, 40, output, RunConfig(buffer_size=10, executor=first))
    expected = pd.read_parquet(output / "parquet-files").sort_index()
    for index in (1, 3):  # as if the build had been killed before these row groups ended
        (output / "parquet-files" / f"batch_{index:05d}.parquet").unlink()
    if then == "ray":  # through the CLI, whose flags reach the resume
        result = CliRunner().invoke(app, ["resume", str(output), "--executor", "ray"])
        assert result.exit_code == 0, result.output
    else:
        rowforge.resume(output, run_config=RunConfig(buffer_size=10))
    resumed = pd.read_parquet(output / "parquet-files").sort_index()
    pd.testing.assert_frame_equal(resumed, expected)
    metadata = json.loads((output / "metadata.json").read_text())
    assert (metadata["outcome"], metadata["engine"]) == (
        "completed",
        then.replace("local", "async"),
    )
    assert first_violation(output) is None


def test_a_traced_ray_build_writes_every_worker_s_attempts_to_traces_jsonl(
    tmp_path: Path,
) -> None:
    """`trace=True` on Ray: traces.jsonl holds the attempts of both workers, each task ending
    once with the outcome a local build's trace gives it."""
    config = load_config(DEMO)
    rowforge.build(config, 40, tmp_path / "local", RunConfig(buffer_size=10, trace=True))
    rowforge.build(config, 40, tmp_path / "ray", _ray(trace=True))

    def final_attempts(output: Path) -> dict[str, str]:
        lines = (output / "traces.jsonl").read_text().splitlines()
        attempts = [json.loads(line) for line in lines]
        return {a["task"]: a["outcome"] for a in sorted(attempts, key=lambda a: a["attempt"])}

    local, ray = final_attempts(tmp_path / "local"), final_attempts(tmp_path / "ray")
    assert len(local) == 3 * 4 + 4 * 40  # three samplers per row group, four model columns per row
    assert ray == local
    row_groups = {
        json.loads(line)["row_group"]
        for line in (tmp_path / "ray" / "traces.jsonl").read_text().splitlines()
    }
    assert row_groups == {0, 1, 2, 3}  # both workers' row groups
    assert first_violation(tmp_path / "ray") is None
