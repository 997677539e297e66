"""The GC young threshold is raised while runs are active and restored after, without clobbering.

Why it matters: the threshold is process-wide and rowforge is embedded in other applications.
The library leaves it alone unless asked; rowforge's own programs (the CLI, the demo) ask. A run
must leave the interpreter as it found it, whether it completes, fails or is cancelled, and must
not override a value the application chose itself.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from rowforge.errors import ConfigError, DatasetGenerationError
from rowforge.scheduler import RunConfig, Step, run_steps, run_steps_async
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD, young_threshold_at_least


@pytest.fixture(autouse=True)
def known_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def threshold_seen_by_a_step(config: RunConfig) -> tuple[int, int, int]:
    seen: list[tuple[int, int, int]] = []

    def look(row: dict[str, object]) -> int:
        seen.append(gc.get_threshold())
        return 1

    run_steps([Step("look", look)], 3, config=config)
    return seen[0]


TUNED = RunConfig(gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD)


def test_a_run_raises_the_young_threshold_when_asked_and_restores_it() -> None:
    assert threshold_seen_by_a_step(TUNED) == (10_000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)
    assert threshold_seen_by_a_step(RunConfig(gc_young_threshold=2_500)) == (2_500, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_the_library_leaves_the_gc_alone_by_default_and_never_lowers_a_higher_setting() -> None:
    assert RunConfig().gc_young_threshold is None
    assert threshold_seen_by_a_step(RunConfig()) == (700, 10, 10)
    gc.set_threshold(50_000, 5, 5)
    assert threshold_seen_by_a_step(TUNED) == (50_000, 5, 5)
    gc.set_threshold(0, 10, 10)  # automatic collection switched off by the application
    assert threshold_seen_by_a_step(TUNED) == (0, 10, 10)
    assert gc.get_threshold() == (0, 10, 10)


def test_the_cli_raises_the_threshold_for_its_runs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rowforge.cli import app

    seen: list[int] = []
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "columns:\n  - {type: integer, name: size, low: 1, high: 9}\n", encoding="utf-8"
    )
    original = gc.get_threshold

    def record(*args: object) -> tuple[int, int, int]:
        value = original()
        seen.append(value[0])
        return value

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gc, "get_threshold", record)
        result = CliRunner().invoke(app, ["run", str(config), "-n", "3", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == (700, 10, 10)
    assert seen and seen[-1] == RECOMMENDED_YOUNG_THRESHOLD, "read while the run was active"


def test_the_threshold_is_restored_after_a_failed_and_after_a_cancelled_run() -> None:
    def explode(row: dict[str, object]) -> int:
        raise ValueError("fatal")

    with pytest.raises(DatasetGenerationError):
        run_steps(
            [Step("explode", explode)],
            5,
            config=attrs.evolve(TUNED, max_retries=0, early_shutdown_window=1),
        )
    assert gc.get_threshold() == (700, 10, 10)

    async def cancelled_run() -> None:
        started = asyncio.Event()

        async def hang(row: dict[str, object]) -> int:
            started.set()
            await asyncio.sleep(3600)
            return 1

        run = asyncio.create_task(run_steps_async([Step("hang", hang)], 2, config=TUNED))
        await started.wait()
        assert gc.get_threshold()[0] == 10_000
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(cancelled_run())
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_runs_share_the_largest_request_and_restore_once_all_end() -> None:
    with young_threshold_at_least(5_000):
        assert gc.get_threshold()[0] == 5_000
        with young_threshold_at_least(20_000):
            assert gc.get_threshold()[0] == 20_000
        assert gc.get_threshold()[0] == 5_000, "the remaining run keeps its own request"
    assert gc.get_threshold() == (700, 10, 10)


def test_a_change_made_by_the_application_during_a_run_is_kept() -> None:
    with young_threshold_at_least(5_000):
        gc.set_threshold(1_234, 7, 7)
    assert gc.get_threshold() == (1_234, 7, 7), "the application's own setting survives"

    gc.set_threshold(700, 10, 10)
    with young_threshold_at_least(5_000):
        gc.set_threshold(900, 10, 10)
        with young_threshold_at_least(6_000):
            assert gc.get_threshold() == (6_000, 10, 10)
    assert gc.get_threshold() == (900, 10, 10), "restored to the application's newer value"


def test_runs_in_threads_restore_the_original_threshold() -> None:
    barrier = threading.Barrier(4)

    def worker() -> None:
        def wait_for_all(row: dict[str, object]) -> int:
            barrier.wait(timeout=10)  # all four runs are active at once
            return 1

        run_steps([Step("wait", wait_for_all)], 1, config=TUNED)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("bad", [0, -5, True, 2.5, "10000"])
def test_a_bad_threshold_names_the_field(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"RunConfig\.gc_young_threshold must be a positive int"):
        RunConfig(gc_young_threshold=bad)  # type: ignore[arg-type]
