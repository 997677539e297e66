"""Build, preview and resume: one run path, different storage.

Theory of operation
-------------------
`build_steps` runs a plan into an output directory that follows the output contract:
`parquet-files/` (one atomic file per written row group), `metadata.json` (rewritten atomically
at the start, after every checkpoint and at the end), `events.jsonl` (run and row-group
transitions as they happen; worker and cell transitions too when tracing) and `traces.jsonl`
(when tracing). `preview_steps` runs the same path into memory and writes nothing to disk.

`resume` continues a build that was interrupted (crash, SIGKILL, Ctrl-C): the files on disk
are the truth (each one is complete, INV-7); metadata tells which row groups ended how. Row
groups without a file are generated again; nothing already written is generated twice. A
different configuration (its hash) is refused unless the caller overrides it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pyarrow as pa

from rowforge.errors import ConfigError, RowforgeError, describe_error
from rowforge.models.usage import UsageMeterLike, models_metadata
from rowforge.processors import Processor
from rowforge.progress import ProgressSnapshot
from rowforge.recipe import load_recipe, save_recipe
from rowforge.scheduler import RunConfig, RunResult, Step, build_plan, run_plan
from rowforge.scheduler.outcome import RowGroupSummary
from rowforge.scheduler.plan import Plan
from rowforge.scheduler.runner import CheckpointHook, ProgressHook, config_for
from rowforge.scheduler.snapshots import ModelUsageSource
from rowforge.statemachine import EventFile
from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.location import OutputFiles
from rowforge.storage.metadata import (
    RowGroupRecord,
    RunIdentity,
)
from rowforge.storage.output_dir import claim_output
from rowforge.storage.recorder import MetadataRecorder, now
from rowforge.storage.resume_state import EVENTS_FILE, archive_events, written_row_groups
from rowforge.storage.sinks import MemorySink, ParquetSink, relative_path
from rowforge.storage.workspace import Workspace, workspace

if TYPE_CHECKING:
    from rowforge.distributed.worker import PartsSource

TRACES_FILE = "traces.jsonl"


def config_hash(plan: Plan, processors: Sequence[Processor], config: RunConfig) -> str:
    """A fingerprint of what determines the dataset: steps, processors, sizes and seed."""
    identity = {
        "steps": [
            {
                "name": step.name,
                "kind": step.kind,
                "depends_on": list(step.depends_on),
                "resource": step.resource,
                "allow_resize": step.allow_resize,
                "fn": _qualified_name(step.fn),
            }
            for step in plan.steps
        ],
        "processors": [
            {"name": p.name, "stage": p.stage, "type": type(p).__qualname__} for p in processors
        ],
        "num_records": plan.num_records,
        "buffer_size": plan.buffer_size,
        "seed": config.seed,
    }
    canonical = json.dumps(identity, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def _qualified_name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def row_group_record(summary: RowGroupSummary) -> RowGroupRecord:
    return RowGroupRecord(
        index=summary.index,
        state=summary.state,
        records_written=summary.records_written,
        records_dropped=summary.records_dropped,
        drop_reasons=summary.drop_reasons,
        skipped_cells=summary.skipped_cells,
        file=relative_path(summary.index) if summary.state == "drained" else None,
        first_record=summary.first_record,
        records_resized=summary.records_resized,
    )


def build_steps(
    steps: Sequence[Step],
    num_records: int,
    output_dir: Path | str | OutputFiles,
    *,
    config: RunConfig | None = None,
    processors: Sequence[Processor] = (),
    dataset_name: str = "dataset",
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
    recipe: bool = True,
    fingerprint: str | None = None,
    on_progress: ProgressHook | None = None,
    overwrite: bool = False,
    on_claimed: Callable[[Path], None] | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
    model_meters: ModelMeters | None = None,
) -> RunResult:
    """Generate `num_records` records of `steps` into `output_dir`: plans the steps once, then
    runs `build_from_plan` (whose docstring says what the options do). With `recipe`,
    recipe.json keeps the steps as declared so `resume` can rebuild them without the caller's
    code."""
    config = config or RunConfig()
    return build_from_plan(
        build_plan(steps, num_records, config.buffer_size),
        output_dir,
        config=config,
        processors=processors,
        dataset_name=dataset_name,
        lifespan=lifespan,
        recipe_steps=steps if recipe else None,
        fingerprint=fingerprint,
        on_progress=on_progress,
        overwrite=overwrite,
        on_claimed=on_claimed,
        column_types=column_types,
        model_meters=model_meters,
    )


def build_from_plan(
    plan: Plan,
    output_dir: Path | str | OutputFiles,
    *,
    config: RunConfig | None = None,
    processors: Sequence[Processor] = (),
    dataset_name: str = "dataset",
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
    recipe_steps: Sequence[Step] | None = None,
    fingerprint: str | None = None,
    on_progress: ProgressHook | None = None,
    overwrite: bool = False,
    on_claimed: Callable[[Path], None] | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
    model_meters: ModelMeters | None = None,
    worker_parts: PartsSource | None = None,
) -> RunResult:
    """Generate the records of `plan` into `output_dir` (see the module docstring for layout).

    `plan` is the run's one plan: metadata.json, the engine and the result all read it.
    `output_dir` must be new or empty; with `overwrite`, an earlier rowforge output there is
    removed first (see `storage.output_dir`). `recipe_steps` (the steps as declared) are saved
    to recipe.json; None saves no recipe. `on_claimed` writes the caller's own inputs into the
    new directory before it appears under its name. `column_types` fixes columns' Arrow types
    for every file (other columns keep the first type written, see `storage.arrow_types`).
    `on_progress` receives a `ProgressSnapshot` every `config.progress_interval_s` and a final
    one whose totals match metadata.json; `model_meters` gives the model clients' usage meters
    (`ModelRegistry.usage`), for the snapshots and metadata.json's "models" section.
    Raises like `run_plan`; metadata.json is complete (with `outcome` and `first_error`) before
    anything is raised. With `config.executor == "ray"` the row groups run on Ray workers
    (`rowforge.distributed`); `worker_parts` then says how a worker gets the plan's steps,
    processors and lifespan when they cannot be pickled as they are.
    """
    config = config_for(plan, config)  # before the directory is claimed: nothing to clean up
    _check_executor(plan, config)
    files = OutputFiles.at(output_dir)
    identity = run_identity(plan, processors, config, dataset_name, fingerprint)
    schema = RunSchema(column_types)

    def prepare(directory: Path) -> None:
        if recipe_steps is not None:
            save_recipe(directory, recipe_steps, processors, config)
        if on_claimed is not None:
            on_claimed(directory)
        MetadataRecorder(directory, identity, _engine_name(plan, config), (), schema).write(
            "running"
        )

    with workspace(files, existing=False) as space:
        claim_output(space, overwrite=overwrite, prepare=prepare)
        return _run_into(
            space,
            plan,
            identity,
            config,
            processors,
            None,
            (),
            column_types,
            None,
            lifespan=lifespan,
            on_progress=on_progress,
            model_meters=model_meters,
            worker_parts=worker_parts,
        )


def preview_steps(
    steps: Sequence[Step],
    num_records: int = 10,
    *,
    config: RunConfig | None = None,
    processors: Sequence[Processor] = (),
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
) -> RunResult:
    """Generate a few records in memory: nothing touches the disk. `result.dataset` holds them."""
    config = config or RunConfig()
    plan = build_plan(steps, num_records, config.buffer_size)
    return preview_plan(plan, config=config, processors=processors, lifespan=lifespan)


def preview_plan(
    plan: Plan,
    *,
    config: RunConfig | None = None,
    processors: Sequence[Processor] = (),
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
    on_progress: ProgressHook | None = None,
    model_meters: ModelMeters | None = None,
) -> RunResult:
    """`preview_steps` for a caller that already planned the run (and reads the same plan to
    describe it)."""
    return run_plan(
        plan,
        config=config,
        sink=MemorySink(),
        processors=processors,
        lifespan=lifespan,
        on_progress=on_progress,
        model_usage=_usage_of(model_meters),
    )


def resume(
    output_dir: Path | str | OutputFiles | Workspace,
    *,
    steps: Sequence[Step] | None = None,
    config: RunConfig | None = None,
    processors: Sequence[Processor] | None = None,
    allow_config_change: bool = False,
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
    fingerprint: str | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
    on_progress: ProgressHook | None = None,
    model_meters: ModelMeters | None = None,
    worker_parts: PartsSource | None = None,
) -> RunResult:
    """Finish an interrupted build: generate only the row groups that have no file yet.

    Steps, processors and RunConfig come from the build's recipe.json unless given. A
    configuration whose hash differs from the build's is refused unless `allow_config_change`.
    New files get the schema of the files already written. `output_dir` is a local directory,
    a URI (`s3://...`), `OutputFiles`, or the workspace of one that a caller already opened.
    """
    if not isinstance(output_dir, Workspace):
        with workspace(output_dir, existing=True) as space:
            return resume(
                space,
                steps=steps,
                config=config,
                processors=processors,
                allow_config_change=allow_config_change,
                lifespan=lifespan,
                fingerprint=fingerprint,
                column_types=column_types,
                on_progress=on_progress,
                model_meters=model_meters,
                worker_parts=worker_parts,
            )
    space = output_dir
    output = space.directory
    metadata = space.metadata()
    if steps is None:
        steps, stored_processors, stored_config = load_recipe(output)
        processors = stored_processors if processors is None else processors
        config = config or stored_config
    processors = processors or ()
    config = config or RunConfig(buffer_size=int(metadata["buffer_size"]))
    plan = build_plan(steps, int(metadata["target_num_records"]), config.buffer_size)
    identity = run_identity(plan, processors, config, str(metadata["dataset_name"]), fingerprint)
    if identity.config_hash != metadata["config_hash"] and not allow_config_change:
        raise ConfigError(
            f"{space.files.uri}: the configuration changed since this build started (config_hash "
            f"{metadata['config_hash']} on disk, {identity.config_hash} now); resuming would mix "
            "two datasets. Pass allow_config_change=True to resume anyway."
        )
    identity = attrs.evolve(identity, started_at=str(metadata["started_at"]))
    _check_executor(plan, config)
    layouts = [plan.row_group(index) for index in range(plan.num_row_groups)]
    planned = [(g.start, g.size) for g in layouts]
    kept = written_row_groups(output, space.files, metadata, planned)
    written = {record.index for record in kept}
    missing = [i for i in range(plan.num_row_groups) if i not in written]
    _refuse_resized_resume(space.files.uri, kept, missing)
    archive_events(output)
    existing = space.files.read_schema(kept[0].file) if kept and kept[0].file else None
    return _run_into(
        space,
        plan,
        identity,
        config,
        processors,
        missing,
        kept,
        column_types,
        existing,
        lifespan=lifespan,
        on_progress=on_progress,
        model_meters=model_meters,
        worker_parts=worker_parts,
    )


def _refuse_resized_resume(
    output: str, kept: Sequence[RowGroupRecord], missing: Sequence[int]
) -> None:
    """A row group's record indexes start where the earlier row groups ended, so after an
    `allow_resize` step changed a written row group's size, a regenerated row group does not
    know its start: it would repeat another row group's record indexes. Refuse, before any
    file is touched."""
    grown = [(r.index, r.records_resized) for r in kept if r.records_resized]
    if grown and missing:
        index, rows = grown[0]
        raise ConfigError(
            f"{output}: cannot resume a build whose allow_resize steps changed row counts "
            f"(row group {index} changed by {rows:+d} rows): the {len(missing)} row groups "
            "left would not know where their record indexes start. Build it again with "
            "--overwrite (overwrite=True)."
        )


def run_identity(
    plan: Plan,
    processors: Sequence[Processor],
    config: RunConfig,
    dataset_name: str,
    fingerprint: str | None = None,
) -> RunIdentity:
    return RunIdentity(
        dataset_name=dataset_name,
        config_hash=fingerprint or config_hash(plan, processors, config),
        target_num_records=plan.num_records,
        buffer_size=plan.buffer_size,
        total_num_batches=plan.num_row_groups,
        columns=plan.step_names,
        started_at=now(),
    )


def _run_into(
    space: Workspace,
    plan: Plan,
    identity: RunIdentity,
    config: RunConfig,
    processors: Sequence[Processor],
    row_groups: Sequence[int] | None,
    kept: Sequence[RowGroupRecord],
    column_types: Mapping[str, pa.DataType] | None,
    existing: pa.Schema | None,
    lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None,
    on_progress: ProgressHook | None = None,
    model_meters: ModelMeters | None = None,
    worker_parts: PartsSource | None = None,
) -> RunResult:
    """Run the plan's `row_groups` (all: None) into the workspace's output, keeping
    metadata.json and events.jsonl current, on this process's engine or on Ray's workers
    (`config.executor`): both report each row group here as it ends, and end the same way."""
    if config.executor == "ray":
        from rowforge.distributed.coordinator import RayExecutor

        executor = RayExecutor(space.files, column_types, existing)
        return _record_run(
            space,
            identity,
            config,
            kept,
            executor.schema,
            _engine_name(plan, config),
            lambda events, checkpointed: executor.run_plan(
                plan,
                config=config,
                processors=processors,
                row_groups=row_groups,
                events=events,
                on_checkpoint=checkpointed,
                lifespan=lifespan,
                model_meters=model_meters,
                parts=worker_parts,
                on_progress=on_progress,
            ),
            executor.models_metadata,
        )
    schema = RunSchema(column_types, existing)
    latest: list[ProgressSnapshot] = []  # the newest snapshot: the models' retries

    def progressed(snapshot: ProgressSnapshot) -> None:
        latest[:] = [snapshot]
        if on_progress is not None:
            on_progress(snapshot)

    return _record_run(
        space,
        identity,
        config,
        kept,
        schema,
        _engine_name(plan, config),
        lambda events, checkpointed: run_plan(
            plan,
            config=config,
            sink=ParquetSink(space.files, schema),
            processors=processors,
            row_groups=row_groups,
            events=events,
            on_checkpoint=checkpointed,
            lifespan=lifespan,
            on_progress=progressed,  # always: metadata's "models" reads the retries
            model_usage=_usage_of(model_meters),
        ),
        lambda: _models_metadata(model_meters, latest),
    )


#: Runs the plan: (event log, checkpoint hook) -> result; raises as `run_plan` does.
Execute = Callable[[EventFile, CheckpointHook], RunResult]


def _record_run(
    space: Workspace,
    identity: RunIdentity,
    config: RunConfig,
    kept: Sequence[RowGroupRecord],
    schema: RunSchema,
    engine: str,
    execute: Execute,
    models: Callable[[], Mapping[str, Mapping[str, Any]]],
) -> RunResult:
    """`execute` the run with metadata.json and events.jsonl following it: every row group in
    the log before metadata lists it, the outcome (or failure, or cancellation) written
    before anything is raised. Each metadata.json write is published (a remote output's
    workspace uploads the event log, then metadata.json), the traces after the last one."""
    output = space.directory
    recorder = MetadataRecorder(output, identity, engine, kept, schema, written=space.publish)
    recorder.models_source = models
    recorder.write("running")

    def checkpointed(summary: RowGroupSummary, _: dict[str, str]) -> None:
        recorder.add(row_group_record(summary))  # first: the final write lists it, come what may
        events.flush()  # the log covers every row group before metadata.json lists it
        recorder.write("running")

    try:
        with EventFile(output / EVENTS_FILE) as events:  # closed (flushed) before metadata ends
            result = execute(events, checkpointed)
    except RowforgeError as error:
        failed: RunResult | None = getattr(error, "result", None)
        if failed is not None:
            _finish(output, recorder, failed, bool(kept))
            space.publish()
        else:  # refused before the engine ran (a Ray job that cannot travel): not "running"
            recorder.write("failed", first_error=describe_error(error), finished=True)
        raise
    except BaseException as error:  # keep what was written; say how the run ended
        interrupted = isinstance(error, asyncio.CancelledError | KeyboardInterrupt)
        recorder.write(
            "cancelled" if interrupted else "failed",
            first_error=None if interrupted else describe_error(error),
            finished=True,
        )
        raise
    outcome = _finish(output, recorder, result, bool(kept))
    space.publish()
    return attrs.evolve(result, outcome=outcome)  # a resume's outcome counts the kept rows too


#: The model clients' usage meters by alias, as `ModelRegistry.usage` returns them.
ModelMeters = Callable[[], Mapping[str, UsageMeterLike]]


def _usage_of(meters: ModelMeters | None) -> ModelUsageSource | None:
    """The meters as the snapshots read them (frozen values)."""
    if meters is None:
        return None
    return lambda: {alias: meter.snapshot() for alias, meter in meters().items()}


def _models_metadata(
    meters: ModelMeters | None, latest: Sequence[ProgressSnapshot]
) -> dict[str, Any]:
    """metadata.json's "models": each meter's figures and the retries the scheduler granted to
    that model by cause (from the newest snapshot; the final write follows the final one)."""
    retries = {model.alias: model.retries for model in latest[0].models} if latest else {}
    return models_metadata(meters() if meters is not None else {}, retries)


def _check_executor(plan: Plan, config: RunConfig) -> None:
    """A Ray run needs Ray, a cluster that answers at its address (when one is given), and row
    groups whose record indexes do not depend on each other: say so before anything is
    written."""
    if config.executor != "ray":
        return
    from rowforge.distributed.cluster import check_reachable, require_ray

    require_ray()
    if config.ray_address is not None:
        check_reachable(config.ray_address)
    if plan.needs_resize or config.engine == "sync":
        raise ConfigError(
            "RunConfig.executor 'ray' runs the async engine only: allow_resize steps and "
            "engine='sync' need executor='local'"
        )


def _engine_name(plan: Plan, config: RunConfig) -> str:
    if config.executor == "ray":
        return "ray"
    return "sync" if config.engine == "sync" or plan.needs_resize else "async"


def _finish(output: Path, recorder: MetadataRecorder, result: RunResult, resumed: bool) -> str:
    """The last metadata.json write; every row group already reached the recorder when it
    ended. A resumed run's outcome counts the row groups kept from before; it is returned."""
    outcome = result.outcome
    if resumed and outcome in ("completed", "partial"):
        document = recorder.document
        expected = recorder.identity.target_num_records + document.resized_records
        outcome = "completed" if document.actual_records == expected else "partial"
    recorder.write(
        outcome,
        early_shutdown=result.early_shutdown,
        first_error=result.first_error,
        finished=True,
    )
    if result.task_traces:
        with (output / TRACES_FILE).open("w", encoding="utf-8") as traces:
            for trace in result.task_traces:
                traces.write(trace.to_json() + "\n")
    return outcome
