"""A run has one `Plan`: built once where the run starts (api or build), then passed down.

The engine, metadata.json and the result must describe the same plan. When a layer below
rebuilt it from the steps, two plans could disagree (another buffer size, another step order)
and nothing would notice; so these tests count `build_plan` calls and refuse a second one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rowforge.api import build, preview, resume
from rowforge.build import build_from_plan, build_steps, preview_steps
from rowforge.config.columns import ExpressionColumn, IntegerSampler, LLMTextColumn
from rowforge.config.dataset import DatasetConfig, save_config
from rowforge.errors import ConfigError
from rowforge.models import MockSettings, ModelConfig
from rowforge.scheduler import Plan, RunConfig, Step, build_plan, run_plan, run_steps
from rowforge.scheduler import plan as plan_module

CONFIG = DatasetConfig(
    [
        IntegerSampler(name="number", low=1, high=9),
        ExpressionColumn(name="line", template="n={{ number }}"),
        LLMTextColumn(name="answer", model="mock", prompt="Say {{ line }}"),
    ],
    models=[ModelConfig(alias="mock", mock=MockSettings(latency_ms=(0.0, 1.0)))],
)
RUN = RunConfig(buffer_size=4)


def double(row: dict[str, Any]) -> int:
    return int(row["x"]) * 2


STEPS = [Step("x", lambda frame: list(frame.index), kind="batch"), Step("y", double, "cell", "x")]


@pytest.fixture
def plans_built(monkeypatch: pytest.MonkeyPatch) -> list[Plan]:
    """Every plan `build_plan` returns, wherever in rowforge it is called from.

    Each rowforge module that imported `build_plan` by name gets the spy, so a new caller
    anywhere is counted without this test naming it.
    """
    built: list[Plan] = []
    original: Callable[..., Plan] = plan_module.build_plan

    def spy(*args: Any, **kwargs: Any) -> Plan:
        built.append(original(*args, **kwargs))
        return built[-1]

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "rowforge" and getattr(module, "build_plan", None) is original:
            monkeypatch.setattr(module, "build_plan", spy)
    return built


def test_build_plans_the_run_once(plans_built: list[Plan], tmp_path: Path) -> None:
    result = build(CONFIG, 10, tmp_path / "out", RUN)
    assert result.outcome == "completed"
    assert len(plans_built) == 1
    assert result.metadata["total_num_batches"] == plans_built[0].num_row_groups == 3


def test_rowforge_run_plans_the_run_once(plans_built: list[Plan], tmp_path: Path) -> None:
    """The CLI checks the config before it claims the output directory, but leaves compiling
    and planning to `build`: no validation-only plan beside the run's."""
    from typer.testing import CliRunner

    from rowforge.cli import app

    save_config(CONFIG, tmp_path / "config.yaml")
    output = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(tmp_path / "config.yaml"), "-n", "6", "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert len(plans_built) == 1


def test_preview_plans_the_run_once(plans_built: list[Plan]) -> None:
    result = preview(CONFIG, 6, RUN)
    assert len(result.dataset) == 6
    assert len(plans_built) == 1


def test_resume_plans_the_run_once(plans_built: list[Plan], tmp_path: Path) -> None:
    build(CONFIG, 8, tmp_path / "out", RUN)
    plans_built.clear()
    assert resume(tmp_path / "out").outcome == "completed"
    assert len(plans_built) == 1


def test_build_steps_and_preview_steps_plan_their_steps_once(
    plans_built: list[Plan], tmp_path: Path
) -> None:
    build_steps(STEPS, 10, tmp_path / "out", config=RUN)
    assert len(plans_built) == 1
    preview_steps(STEPS, 5, config=RUN)
    assert len(plans_built) == 2


def test_run_steps_plans_once_and_run_plan_never(plans_built: list[Plan]) -> None:
    run_steps(STEPS, 5, config=RUN)
    assert len(plans_built) == 1
    plan = build_plan(STEPS, 5, 4)  # this module's own name for it: not counted
    result = run_plan(plan, config=RUN)
    assert len(plans_built) == 1
    assert result.actual_records == 5


def test_a_config_that_disagrees_with_the_plan_on_buffer_size_is_refused(
    tmp_path: Path,
) -> None:
    plan = build_plan(STEPS, 5, 2)
    with pytest.raises(ConfigError, match="plan was built with buffer_size 2"):
        run_plan(plan, config=RunConfig(buffer_size=4))
    with pytest.raises(ConfigError, match="plan was built with buffer_size 2"):
        build_from_plan(plan, tmp_path / "out", config=RunConfig(buffer_size=4))
    assert not (tmp_path / "out").exists()
