"""RunConfig's executor fields, the ConfigError without Ray, the CLI flags, and the driver's
pieces that need no Ray (models figures added up, row-group events kept until a row group
ends, the reported schema)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import rowforge.api
from rowforge.build import build_steps
from rowforge.cli import app
from rowforge.distributed.coordinator import ReportedSchema
from rowforge.distributed.usage import merge_models
from rowforge.distributed.worker import RowGroupEvents
from rowforge.errors import ConfigError
from rowforge.scheduler import RunConfig, Step

DEMO = "src/rowforge/demo_data/support_dialogues.yaml"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("executor", "spark"),
        ("workers", 0),
        ("workers", True),
        ("ray_address", ""),
        ("ray_address", 3),
    ],
)
def test_bad_executor_fields_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"RunConfig.{field}"):
        RunConfig(**{field: value})


def test_executor_fields_default_to_a_local_run() -> None:
    config = RunConfig()
    assert (config.executor, config.ray_address, config.workers) == ("local", None, 2)
    assert RunConfig(executor="ray", ray_address="auto", workers=3).ray_address == "auto"


def _value(row: dict[str, Any]) -> int:
    return 1


def test_ray_without_ray_installed_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'rowforge\[ray\]'"):
        build_steps(
            [Step("x", _value)],
            4,
            tmp_path / "out",
            config=RunConfig(buffer_size=2, executor="ray"),
        )
    assert not (tmp_path / "out").exists()  # refused before the directory was claimed


def test_ray_refuses_resizing_steps_before_claiming(tmp_path: Path) -> None:
    step = Step("x", lambda frame: frame, kind="batch", allow_resize=True)
    with pytest.raises(ConfigError, match="executor='local'"):
        build_steps([step], 4, tmp_path / "out", config=RunConfig(buffer_size=2, executor="ray"))
    assert not (tmp_path / "out").exists()


def test_cli_run_and_resume_pass_the_executor_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[RunConfig | None] = []

    def fake_build(config: Any, num: int, output: Path, run_config: RunConfig, **_: Any) -> Any:
        seen.append(run_config)
        raise ConfigError("stop here")

    def fake_resume(output: Path, run_config: RunConfig | None = None, **_: Any) -> Any:
        seen.append(run_config)
        raise ConfigError("stop here")

    monkeypatch.setattr(rowforge.api, "build", fake_build)
    monkeypatch.setattr(rowforge.api, "resume", fake_resume)
    runner = CliRunner()
    flags = ["--executor", "ray", "--ray-address", "10.0.0.1:6379", "--workers", "3"]
    result = runner.invoke(app, ["run", DEMO, "-o", str(tmp_path / "o"), *flags])
    assert "stop here" in result.output
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "metadata.json").write_text(
        '{"schema_version": 1, "target_num_records": 10, "buffer_size": 5}', encoding="utf-8"
    )
    result = runner.invoke(app, ["resume", str(tmp_path / "o"), *flags])
    assert "stop here" in result.output
    result = runner.invoke(app, ["resume", str(tmp_path / "o")])
    assert [(c.executor, c.ray_address, c.workers) for c in seen[:2] if c] == [
        ("ray", "10.0.0.1:6379", 3)
    ] * 2
    assert seen[1] is not None and seen[1].buffer_size == 5
    assert seen[2] is None  # no flag: the build's own settings
    bad = runner.invoke(app, ["run", DEMO, "--executor", "spark"])
    assert bad.exit_code != 0


def test_models_figures_add_up_over_workers() -> None:
    one = {
        "writer": {
            "requests": 3,
            "failed_s": 0.5,
            "errors": {"429": 1},
            "retries": {},
            "latency_ms": {"p50": 1.0, "max": 9.0},
            "latency_histogram_ms": [[5, 2], [10, 1]],
            "note": "x",
        }
    }
    two = {
        "writer": {
            "requests": 2,
            "failed_s": 0.25,
            "errors": {"429": 2, "500": 1},
            "retries": {"rate_limit": 1},
            "latency_ms": {"max": 12.0},
            "latency_histogram_ms": [[10, 1], [20, 1]],
            "note": "y",
        },
        "judge": {"requests": 1},
    }
    merged = merge_models([one, two])
    writer = merged["writer"]
    assert writer["requests"] == 5 and writer["failed_s"] == 0.75
    assert writer["errors"] == {"429": 3, "500": 1}
    assert writer["retries"] == {"rate_limit": 1}
    assert writer["latency_histogram_ms"] == [[5, 2], [10, 2], [20, 1]]
    assert writer["latency_ms"] == {"p50": 10, "p90": 20, "p99": 20, "max": 12.0}
    assert writer["note"] == "x"
    assert list(merged) == ["judge", "writer"]
    assert merge_models([{"w": {"latency_histogram_ms": []}}])["w"]["latency_ms"] == {}


def test_row_group_events_travel_whole_and_alone() -> None:
    log = RowGroupEvents()
    log.record("run", "run", "start", "pending", "running")
    log.record("row_group", 1, "admit", "pending", "seeding")
    log.record("worker", 7, "start", "idle", "running")
    log.record("row_group", 2, "admit", "pending", "seeding")
    log.record("row_group", 1, "seeded", "seeding", "running")
    assert [e.trigger for e in log.take(1)] == ["admit", "seeded"]
    assert log.take(1) == ()
    assert [e.ident for e in log.take(2)] == [2]


def test_reported_schema_keeps_the_first_type_and_the_existing_files() -> None:
    import pyarrow as pa

    schema = ReportedSchema(pa.schema([pa.field("a", pa.int64())]))
    schema.learn({"b": "string", "a": "double"})
    schema.learn({"b": "int64"})
    assert schema.describe() == {"a": "int64", "b": "string"}
