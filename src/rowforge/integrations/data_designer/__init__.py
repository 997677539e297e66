"""rowforge as data-designer's execution engine (`pip install 'rowforge[data-designer]'`).

Switch it on with one line, before `DataDesigner.create()` or `preview()`::

    import rowforge.integrations.data_designer as rowforge_dd
    rowforge_dd.enable()

and off again with `rowforge_dd.disable()` (or use `with rowforge_dd.enabled(): ...`). While it
is on, data-designer's builder gets a `RowforgeScheduler` where it would build its own
`AsyncTaskScheduler`; everything around the run (config validation, model registry, artifact
storage, metadata, profiling, the loaders) stays data-designer's. docs/embedding.md explains the
mapping; in short:

- generators become steps (cell-by-cell generators cell steps capped per model alias by its
  `max_parallel_requests`; from-scratch and full-column generators batch steps; multi-column
  configs and side-effect columns `extra_columns`; `skip` / `propagate_skip` the steps' skip
  conditions);
- data-designer's processors run at rowforge's pre-batch and post-batch stages;
- finished row groups go through data-designer's buffer manager and finalize callback;
- **rowforge alone admits and retries model requests**: while a rowforge run is active,
  data-designer's per-request executor passes each request straight to its HTTP client (no
  request-admission lease, no retry loop), and its model errors are mapped onto rowforge's
  retryable errors. Two controllers in series would multiply retries (each rowforge retry
  would hide up to three of data-designer's) and fight over concurrency (two backoff loops
  reacting to the same 429s); one keeps the caps exact and the retry budget honest.

While it is on, one more thing changes in data-designer, for speed and without changing a
result: its prompt-template environments compile each template once instead of on every render
(data-designer 0.9.7 calls Jinja's `from_string`, a full compile, for every prompt of every
row: about a tenth of its CPU per request, measured by benchmarks/data_designer_embedded.py).

What rowforge does not run is handed back to data-designer's own engine with a WARNING that
says why: a resume whose remaining row groups do not follow the plain layout of `buffer_size`
rows (data-designer's resume after the target grew).

Tested with data-designer 0.9.7 (`>=0.9.7,<0.10`): the builder methods it replaces are internal
to data-designer, so a new minor version is checked before the range grows.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from typing import Any

from rowforge.errors import ConfigError
from rowforge.integrations.data_designer.scheduler import (
    BufferManagerSink,
    ProcessorStage,
    ProgressCallback,
    RowforgeScheduler,
)
from rowforge.integrations.data_designer.steps import GeneratorSteps
from rowforge.scheduler import RunConfig, build_plan

__all__ = ["RowforgeScheduler", "disable", "enable", "enabled", "is_enabled"]

log = logging.getLogger("rowforge")

#: True inside a rowforge-driven build: data-designer's request executor then passes requests
#: straight through (rowforge admits and retries them).
_RUNNING: contextvars.ContextVar[bool] = contextvars.ContextVar("rowforge_dd_run", default=False)


class _Switch:
    """What `enable` replaced, so that `disable` can put it back."""

    def __init__(self) -> None:
        self.prepare: Callable[..., Any] | None = None
        self.execute_async: Callable[..., Any] | None = None
        self.from_string: Callable[..., Any] | None = None
        self.on_progress: ProgressCallback | None = None


_switch = _Switch()


def _host() -> Any:
    try:
        from data_designer.engine.dataset_builders import dataset_builder
        from data_designer.engine.models.clients import model_request_executor
        from data_designer.engine.processing.ginja import environment
    except ImportError as error:
        raise ConfigError(
            "rowforge.integrations.data_designer needs data-designer: "
            "pip install 'rowforge[data-designer]'"
        ) from error
    return dataset_builder, model_request_executor, environment.UserTemplateSandboxEnvironment


def enable(on_progress: ProgressCallback | None = None) -> None:
    """Make data-designer run its builds and previews on rowforge's engine (idempotent).

    `on_progress`, when given, receives every `rowforge.progress.ProgressSnapshot` of a run
    (in the engine's event loop thread; keep it quick), for a host that draws its own display.
    Whatever it is, a progress line is logged to the `data_designer.rowforge` logger every
    `progress_interval` seconds of data-designer's `RunConfig`.
    """
    dataset_builder, executor_module, template_environment = _host()
    _switch.on_progress = on_progress
    if _switch.prepare is not None:
        return
    builder_class = dataset_builder.DatasetBuilder
    executor_class = executor_module.ModelRequestExecutor
    _switch.prepare = builder_class._prepare_async_run
    _switch.execute_async = executor_class._execute_async
    _switch.from_string = template_environment.from_string
    builder_class._prepare_async_run = _prepare_on_rowforge
    executor_class._execute_async = _execute_async
    template_environment.from_string = _compiled_once
    log.info("data-designer builds now run on rowforge's engine")


def disable() -> None:
    """Give data-designer its own engine back (idempotent)."""
    if _switch.prepare is None:
        return
    dataset_builder, executor_module, template_environment = _host()
    dataset_builder.DatasetBuilder._prepare_async_run = _switch.prepare
    executor_module.ModelRequestExecutor._execute_async = _switch.execute_async
    template_environment.from_string = _switch.from_string
    _switch.prepare = _switch.execute_async = _switch.from_string = None
    _switch.on_progress = None


def is_enabled() -> bool:
    return _switch.prepare is not None


@contextlib.contextmanager
def enabled(on_progress: ProgressCallback | None = None) -> Iterator[None]:
    """`enable()` for the duration of a `with` block, then back to how it was."""
    was_enabled = is_enabled()
    previous = _switch.on_progress
    enable(on_progress)
    try:
        yield
    finally:
        if was_enabled:
            _switch.on_progress = previous
        else:
            disable()


#: How many compiled templates one environment keeps (data-designer's environments each render
#: one prompt template, so a handful; the bound keeps an unusual caller from growing it forever).
_TEMPLATES_PER_ENVIRONMENT = 64


def _compiled_once(
    self: Any, source: Any, globals: Any = None, template_class: Any = None
) -> Any:
    """data-designer's `UserTemplateSandboxEnvironment.from_string`, compiling each template
    source once per environment (a Jinja template renders any number of times, from any
    thread)."""
    assert _switch.from_string is not None
    if globals is not None or template_class is not None or not isinstance(source, str):
        return _switch.from_string(self, source, globals, template_class)
    compiled: dict[str, Any] = self.__dict__.setdefault("_rowforge_compiled", {})
    template = compiled.get(source)
    if template is None:
        template = _switch.from_string(self, source)
        if len(compiled) < _TEMPLATES_PER_ENVIRONMENT:
            compiled[source] = template
    return template


async def _execute_async(self: Any, domain: Any, call: Callable[[], Any]) -> Any:
    """data-designer's `ModelRequestExecutor._execute_async`, passing requests straight through
    while rowforge drives the build (rowforge admits and retries them)."""
    if _RUNNING.get():
        return await call()
    assert _switch.execute_async is not None
    return await _switch.execute_async(self, domain, call)


def _prepare_on_rowforge(
    builder: Any,
    generators: list[Any],
    num_records: int,
    buffer_size: int,
    **options: Any,
) -> tuple[Any, Any]:
    """The replacement of `DatasetBuilder._prepare_async_run`: the same arguments, the same
    `(scheduler, buffer_manager)` pair, with the scheduler backed by rowforge."""
    from data_designer.engine.dataset_builders.multi_column_configs import MultiColumnConfig
    from data_designer.engine.dataset_builders.row_group_plan import normalize_row_group_plan
    from data_designer.engine.dataset_builders.utils.execution_graph import ExecutionGraph
    from data_designer.engine.dataset_builders.utils.processor_runner import (
        ProcessorStage as HostStage,
    )
    from data_designer.engine.dataset_builders.utils.row_group_buffer import (
        RowGroupBufferManager,
    )

    precomputed = options.get("precomputed_row_groups")
    row_groups: list[int] | None = None
    if precomputed is not None:
        layout = list(normalize_row_group_plan(precomputed))
        row_groups = [index for index, _ in layout]
        plain = build_plan_layout(num_records, buffer_size)
        if any(plain.get(index) != size for index, size in layout):
            log.warning(
                "rowforge: this resume's row groups %s do not follow the layout of %d records "
                "in row groups of %d (the target changed), which rowforge does not run; "
                "data-designer's own engine runs it",
                layout,
                num_records,
                buffer_size,
            )
            assert _switch.prepare is not None
            return _switch.prepare(builder, generators, num_records, buffer_size, **options)  # type: ignore[no-any-return]

    strategies: dict[str, Any] = {}
    by_column: dict[str, Any] = {}
    for generator in generators:
        config = generator.config
        names = (
            [sub.name for sub in config.columns]
            if isinstance(config, MultiColumnConfig)
            else [config.name]
        )
        for name in names:
            strategies[name] = generator.get_generation_strategy()
            by_column[name] = generator
    graph = ExecutionGraph.create(builder._column_configs, strategies)
    for generator in generators:
        generator.log_pre_generation()

    steps = GeneratorSteps(by_column, graph)
    plan = build_plan(steps.steps, num_records, buffer_size)
    settings = builder._resource_provider.run_config
    config = RunConfig(
        engine="async",
        buffer_size=buffer_size,
        max_in_flight=settings.max_in_flight_tasks,
        max_parallel_requests=steps.caps,
        max_concurrent_row_groups=settings.max_concurrent_row_groups,
        early_shutdown_window=options.get("shutdown_error_window", 10),
        early_shutdown_error_rate=options.get("shutdown_error_rate", 0.5),
        disable_early_shutdown=options.get("disable_early_shutdown", False),
        adaptive_concurrency=True,
        trace=bool(options.get("trace", False)),
    )
    buffer_manager = RowGroupBufferManager(
        builder.artifact_storage,
        initial_actual_num_records=options.get("initial_actual_num_records", 0),
        initial_total_num_batches=options.get("initial_total_num_batches", 0),
    )
    runner = builder._processor_runner
    processors = []
    if runner.has_processors_for(HostStage.PRE_BATCH):
        processors.append(ProcessorStage(runner, "pre_batch", buffer_size))
    post_batch_here = options.get("run_post_batch_in_scheduler", True)
    if post_batch_here and runner.has_processors_for(HostStage.POST_BATCH):
        processors.append(ProcessorStage(runner, "post_batch", buffer_size))
    scheduler = _RowforgeRun(
        plan,
        config,
        sink=BufferManagerSink(buffer_manager, options.get("on_finalize_row_group")),
        processors=processors,
        row_groups=row_groups,
        on_progress=_switch.on_progress,
        progress_interval_s=settings.progress_interval,
    )
    return scheduler, buffer_manager


def build_plan_layout(num_records: int, buffer_size: int) -> dict[int, int]:
    """Row-group sizes of the plain layout: `buffer_size` rows each, the last one shorter."""
    count = -(-num_records // buffer_size)
    return {
        index: min(buffer_size, num_records - index * buffer_size) for index in range(count)
    }


class _RowforgeRun(RowforgeScheduler):
    """A `RowforgeScheduler` that marks its run so data-designer's request executor passes
    requests straight through (see `_execute_async`)."""

    async def run(self) -> None:
        token = _RUNNING.set(True)
        try:
            await super().run()
        finally:
            _RUNNING.reset(token)
