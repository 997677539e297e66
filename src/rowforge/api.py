"""The public API: `build`, `preview`, `resume`, `load_config` over a `DatasetConfig`.

`build` and `preview` share one run path (`rowforge.build`): build writes the output contract
(Parquet, metadata.json, events.jsonl, traces.jsonl, plus `config.yaml` so that
`resume(output_dir)` can continue without the caller's code), preview keeps everything in memory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from rowforge.build import (
    build_from_plan,
    preview_plan,
    row_group_record,
    run_identity,
)
from rowforge.build import (
    resume as resume_steps,
)
from rowforge.config.columns import SeedDatasetColumns
from rowforge.config.compile import CompiledConfig, compile_config
from rowforge.config.dataset import DatasetConfig, load_config, save_config
from rowforge.config.seed_files import is_hub_path
from rowforge.config.validate import check_config, validate_config
from rowforge.errors import ConfigError
from rowforge.scheduler import Plan, RunConfig, RunResult, TaskTrace, build_plan
from rowforge.scheduler.runner import ProgressHook
from rowforge.storage.location import PARQUET_DIR, OutputFiles, is_uri
from rowforge.storage.metadata import read_metadata, render_metadata
from rowforge.storage.workspace import Workspace, workspace

CONFIG_FILE = "config.yaml"

__all__ = [
    "BuildResult",
    "PreviewResults",
    "build",
    "load_config",
    "preview",
    "resume",
    "validate_config",
]


@attrs.frozen
class BuildResult:
    """What `build` produced: where, how it ended, and the metadata.json it wrote.

    `metadata` (and `outcome` and `num_records`, which read it) is loaded from metadata.json on
    first use, not when the build returns: it lists every row group and file, so at 10^7
    records it is 2.6 MB of JSON that parses to about 7 MB of objects, a cost for the callers who
    look at it only.
    """

    output_dir: Path | str | OutputFiles  # a local directory or a URI (`s3://...`), as given
    run: RunResult = attrs.field(repr=False)

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        return read_metadata(self.output_dir)

    @property
    def outcome(self) -> str:
        return str(self.metadata["outcome"])

    @property
    def num_records(self) -> int:
        return int(self.metadata["actual_num_records"])

    @property
    def task_traces(self) -> tuple[TaskTrace, ...]:
        return self.run.task_traces

    def load_dataset(self) -> pd.DataFrame:
        """Every written record, ordered by record index."""
        files = OutputFiles.at(self.output_dir)
        return pd.read_parquet(files.path(PARQUET_DIR), filesystem=files.filesystem).sort_index()


@attrs.frozen
class PreviewResults:
    """A preview: the records, the metadata a build would have written, and the task traces."""

    dataset: pd.DataFrame = attrs.field(eq=False)
    metadata: dict[str, Any]
    task_traces: tuple[TaskTrace, ...]


def build(
    config: DatasetConfig,
    num_records: int,
    output_dir: Path | str | OutputFiles,
    run_config: RunConfig | None = None,
    *,
    dataset_name: str = "dataset",
    on_progress: ProgressHook | None = None,
    overwrite: bool = False,
) -> BuildResult:
    """Generate `num_records` records into `output_dir`.

    `output_dir` must be new or empty: a directory holding an earlier output is refused with a
    `ConfigError` (rows of two runs would be read back together) unless `overwrite=True`, which
    removes the earlier rowforge output before anything new is written; `resume` finishes an
    earlier build instead.

    Returns when every record was written (`outcome == "completed"`) or, with the default
    `on_partial="warn"`, after a WARNING when rows were dropped (`"partial"`). Raises
    `EarlyShutdownError` when the engine decided a model provider is broken (the complete rows
    stay on disk, metadata.json says `early_shutdown: true`), `DatasetGenerationError` when the
    run failed (metadata.json says why first), `PartialDatasetError` with
    `on_partial="raise"`, `ConfigError` for bad input (before anything is written).

    `on_progress` receives a `rowforge.progress.ProgressSnapshot` every
    `run_config.progress_interval_s` seconds (from the run's event loop) and a final one when
    the run ends, however it ends; the final one's totals equal metadata.json's.
    """
    output = _as_given(output_dir)
    _check_arguments(config, run_config)
    config = anchored_paths(config)
    compiled, plan = _compile_and_plan(config, run_config, num_records)
    result = build_from_plan(
        plan,
        output,
        config=compiled.run_config,
        processors=compiled.processors,
        dataset_name=dataset_name,
        lifespan=compiled.registry,
        column_types=compiled.column_types,
        fingerprint=_fingerprint(config),
        on_progress=on_progress,
        model_meters=compiled.registry.usage,
        overwrite=overwrite,
        on_claimed=lambda claimed: _save_config_if_possible(config, claimed),
        worker_parts=_worker_parts(config, compiled.run_config, num_records),
    )
    return BuildResult(output, result)


def preview(
    config: DatasetConfig,
    num_records: int = 10,
    run_config: RunConfig | None = None,
    *,
    on_progress: ProgressHook | None = None,
) -> PreviewResults:
    """Generate a few records in memory (nothing is written to disk); `on_progress` as in
    `build`."""
    _check_arguments(config, run_config)
    compiled, plan = _compile_and_plan(config, run_config, num_records)
    result = preview_plan(
        plan,
        config=compiled.run_config,
        processors=compiled.processors,
        lifespan=compiled.registry,
        on_progress=on_progress,
        model_meters=compiled.registry.usage,
    )
    identity = run_identity(
        plan, compiled.processors, compiled.run_config, "preview", _fingerprint(config)
    )
    metadata = render_metadata(
        identity,
        engine=result.engine,
        outcome=result.outcome,
        row_groups=[attrs.evolve(row_group_record(s), file=None) for s in result.row_groups],
        schema=result.schema,
        early_shutdown=result.early_shutdown,
        first_error=result.first_error,
        finished_at=None,
    )
    dataset = result.dataset if result.dataset is not None else pd.DataFrame()
    return PreviewResults(dataset, metadata, result.task_traces)


def resume(
    output_dir: Path | str | OutputFiles,
    config: DatasetConfig | None = None,
    run_config: RunConfig | None = None,
    *,
    allow_config_change: bool = False,
    on_progress: ProgressHook | None = None,
) -> BuildResult:
    """Continue an interrupted build; only row groups without a file are generated.

    The config comes from the build's config.yaml unless given; a config different from the
    one the build started with is refused unless `allow_config_change`. `on_progress` as in
    `build` (the snapshots count the row groups this resume generates).
    """
    with workspace(output_dir, existing=True) as space:
        result = _resume_in(
            space,
            config,
            run_config,
            allow_config_change=allow_config_change,
            on_progress=on_progress,
        )
    return BuildResult(_as_given(output_dir), result)


def _resume_in(
    space: Workspace,
    config: DatasetConfig | None,
    run_config: RunConfig | None,
    *,
    allow_config_change: bool,
    on_progress: ProgressHook | None,
) -> RunResult:
    """`resume` in the output's workspace (its control files are local there)."""
    output = space.directory
    if config is None and not (output / CONFIG_FILE).exists():
        return resume_steps(
            space,
            config=_recipe_config(output, run_config),
            allow_config_change=allow_config_change,
            on_progress=on_progress,
        )
    config = anchored_paths(config) if config is not None else load_config(output / CONFIG_FILE)
    metadata = space.metadata()
    base = run_config or RunConfig(buffer_size=int(metadata["buffer_size"]))
    compiled = compile_config(config, base, int(metadata["target_num_records"]))
    return resume_steps(
        space,
        steps=compiled.steps,
        config=compiled.run_config,
        processors=compiled.processors,
        allow_config_change=allow_config_change,
        lifespan=compiled.registry,
        fingerprint=_fingerprint(config),
        column_types=compiled.column_types,
        on_progress=on_progress,
        model_meters=compiled.registry.usage,
        worker_parts=_worker_parts(
            config, compiled.run_config, int(metadata["target_num_records"])
        ),
    )


def _as_given(output_dir: Path | str | OutputFiles) -> Path | str | OutputFiles:
    """The output as a `BuildResult` names it: a URI or `OutputFiles` as given, a local
    directory as a Path."""
    return (
        output_dir
        if isinstance(output_dir, OutputFiles) or is_uri(output_dir)
        else Path(output_dir)
    )


def _worker_parts(
    config: DatasetConfig, run_config: RunConfig, num_records: int
) -> functools.partial[Any] | None:
    """For a Ray run: how each worker compiles the config again. Compiled steps and processors
    hold Jinja templates, which do not pickle; the config's dict form (the config.yaml a build
    saves) does, and compiles to the same steps. A config that has no dict form (a callable
    without an importable name) travels as it is, pickled by value."""
    if run_config.executor != "ray":
        return None
    try:
        portable: DatasetConfig | dict[str, Any] = config.to_dict()
    except ConfigError:
        portable = config
    return functools.partial(_compiled_parts, portable, run_config, num_records)


def _compiled_parts(
    config: DatasetConfig | dict[str, Any], run_config: RunConfig, num_records: int
) -> Any:
    """A Ray worker's plan, processors and model registry (runs in the worker)."""
    from rowforge.distributed.worker import WorkerParts

    if not isinstance(config, DatasetConfig):
        config = DatasetConfig.from_dict(config)
    compiled = compile_config(config, run_config, num_records)
    plan = build_plan(compiled.steps, num_records, compiled.run_config.buffer_size)
    return WorkerParts(plan, compiled.processors, compiled.registry, compiled.registry.usage)


def _recipe_config(output: Path, run_config: RunConfig | None) -> RunConfig | None:
    """The RunConfig a recipe resume runs with: the build's own (recipe.json), with where it
    executes (executor, Ray address, workers) taken from `run_config` when one is given, so
    either executor finishes the other's output."""
    if run_config is None:
        return None
    from rowforge.recipe import load_recipe

    _, _, stored = load_recipe(output)
    return attrs.evolve(
        stored,
        executor=run_config.executor,
        ray_address=run_config.ray_address,
        workers=run_config.workers,
    )


def _compile_and_plan(
    config: DatasetConfig, run_config: RunConfig | None, num_records: int
) -> tuple[CompiledConfig, Plan]:
    """Check what a run would find out later (before anything touches the disk), compile, and
    build the run's one plan: everything downstream reads this plan, none builds its own."""
    check_config(config)
    compiled = compile_config(config, run_config, num_records)
    return compiled, build_plan(compiled.steps, num_records, compiled.run_config.buffer_size)


def _check_arguments(config: object, run_config: object) -> None:
    """A wrong type for `config` or `run_config` is bad input, named, like a bad field."""
    if not isinstance(config, DatasetConfig):
        raise ConfigError(
            f"config: must be a DatasetConfig (see rowforge.load_config), got "
            f"{type(config).__name__}"
        )
    if run_config is not None and not isinstance(run_config, RunConfig):
        raise ConfigError(
            f"run_config: must be a RunConfig or None, got {type(run_config).__name__}"
        )


def anchored_paths(config: DatasetConfig) -> DatasetConfig:
    """`config` with every relative seed-data path made absolute (against the current directory,
    where the run reads it), so the config.yaml saved with an output names the same file when
    `resume` reads it from the output directory, and the config's fingerprint does not depend
    on where it is read from."""
    columns = [
        attrs.evolve(column, path=str(Path(column.path).resolve()))
        if isinstance(column, SeedDatasetColumns) and column.path and not is_hub_path(column.path)
        else column
        for column in config.columns
    ]
    return attrs.evolve(config, columns=columns)


def _fingerprint(config: DatasetConfig) -> str:
    import hashlib
    import json

    try:
        data = config.to_dict()
    except ConfigError:  # a callable without an importable name: hash what can be named
        data = {"columns": [repr(c) for c in config.columns], "seed": config.seed}
    canonical = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def _save_config_if_possible(config: DatasetConfig, output: Path) -> None:
    try:
        save_config(config, output / CONFIG_FILE)
    except ConfigError:
        (output / CONFIG_FILE).unlink(missing_ok=True)  # resume then needs the config passed
