"""The `rowforge` command line.

Exit codes: 0 success; 1 a failed run, or a partial one with `--on-partial raise`; 2 bad input
(config, arguments, a directory that is not a rowforge output). Errors print one paragraph and
no traceback unless `--debug` is given.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core


def _flags_without_type(params: list[Any]) -> list[Any]:
    """Help shows a boolean flag as a flag: typer's rich help would print `<bool>` after it as if
    it took a value. An empty metavar leaves the type column empty."""
    for param in params:
        if isinstance(param, typer.core.TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class _Command(typer.core.TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


_Function = TypeVar("_Function", bound=Callable[..., Any])


class _Typer(typer.Typer):
    """Every command of this app shows its flags as flags (see `_flags_without_type`), and the
    usage lines and "Try '... --help'" hints name the program as it can be run again
    (`rowforge.hints.program`: `.venv/bin/rowforge` when that is not on PATH)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from rowforge.hints import program

        kwargs.setdefault("prog_name", program())
        kwargs.setdefault("complete_var", "_ROWFORGE_COMPLETE")
        return super().__call__(*args, **kwargs)

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[_Function], _Function]:
        kwargs.setdefault("cls", _Command)
        decorator: Callable[[_Function], _Function] = super().command(name, **kwargs)
        return decorator


app = _Typer(
    cls=_Group,
    help="rowforge: synthetic datasets on an explicit state-machine scheduler.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
Providers = Annotated[
    Path | None,
    typer.Option(
        "--providers",
        help="data-designer's providers file (model endpoints) for a data-designer config.",
    ),
]


class OnPartial(StrEnum):
    """`--on-partial`: what a run that ends with fewer records than asked exits with."""

    warn = "warn"
    raise_ = "raise"


class Executor(StrEnum):
    """`--executor`: where the row groups run (docs/scaling.md)."""

    local = "local"
    ray = "ray"


ExecutorOption = Annotated[
    Executor,
    typer.Option(help="Where row groups run: this process, or Ray workers (rowforge[ray])."),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join this Ray cluster ('auto', host:port, ray://host:port); default: start a "
        "local Ray instance for the run.",
    ),
]
Workers = Annotated[
    int | None, typer.Option("--workers", help="Ray workers (default 2); they share the caps.")
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"rowforge {version('rowforge')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", is_eager=True, callback=_version
        ),
    ] = False,
) -> None:
    _import_from_working_directory()


def _import_from_working_directory() -> None:
    """A config's `module:function` names (custom columns, validation functions, processors)
    import as `python -m` would: modules in the working directory first. An installed script
    starts with only its own directory on the path, so `checks:is_valid` next to the config
    would not be found."""
    import sys

    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))


@contextmanager
def _errors(command: str, debug: bool) -> Iterator[None]:
    """Turn rowforge's errors into a paragraph and an exit code."""
    from rowforge.errors import ConfigError, PartialDatasetError, RowforgeError

    try:
        yield
    except (ConfigError, FileNotFoundError) as error:
        if debug:
            raise
        typer.echo(f"rowforge {command}: invalid input: {error}", err=True)
        raise typer.Exit(2) from None
    except (RowforgeError, PartialDatasetError) as error:
        if debug:
            raise
        typer.echo(f"rowforge {command}: {error}", err=True)
        code = 2 if "not a rowforge output" in str(error) else 1
        raise typer.Exit(code) from None


def _load_valid(path: Path, *, then_compile: bool = True, providers: Path | None = None) -> Any:
    """The config at `path`, checked for everything a run would meet (`validate_config`), with
    errors naming the file, so `run` refuses bad input before it touches the output directory.

    `run` passes `then_compile=False`: the checks stop before compiling and planning
    (`check_config`), because `build` compiles the config and plans the run once itself.
    """
    from rowforge.config.dataset import load_config
    from rowforge.config.validate import check_config, validate_config
    from rowforge.errors import ConfigError

    dataset = load_config(path, providers=providers)
    try:
        (validate_config if then_compile else check_config)(dataset)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error
    return dataset


def _gc_tuned() -> contextlib.AbstractContextManager[None]:
    """The CLI owns its process, so it raises the GC's young threshold for its runs (the library
    leaves it alone by default; see `rowforge.scheduler.gc_tuning`)."""
    from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD, young_threshold_at_least

    return young_threshold_at_least(RECOMMENDED_YOUNG_THRESHOLD)


def _logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _run_config(**options: Any) -> Any:
    from rowforge.scheduler import RunConfig

    return RunConfig(**{key: value for key, value in options.items() if value is not None})


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Dataset config (YAML or JSON).")],
    num_records: Annotated[int, typer.Option("--num-records", "-n", help="Records.")] = 100,
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Output directory, or a URI such as s3://bucket/prefix."
        ),
    ] = "output",
    buffer_size: Annotated[int | None, typer.Option(help="Records per row group.")] = None,
    max_in_flight: Annotated[int | None, typer.Option(help="Global concurrent tasks.")] = None,
    on_partial: Annotated[
        OnPartial,
        typer.Option(help="A run that ends with fewer records than asked: exit 0 or exit 1."),
    ] = OnPartial.warn,
    trace: Annotated[bool, typer.Option("--trace", help="Write traces.jsonl.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an earlier rowforge output in OUTPUT."),
    ] = False,
    retry_budget_s: Annotated[
        float | None,
        typer.Option(help="Seconds a task keeps retrying transient errors (default 120)."),
    ] = None,
    no_success_budget_s: Annotated[
        float | None,
        typer.Option(help="End the run when a model has no success for this long (default 300)."),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Write OUTPUT/report.html when the run ends.")
    ] = False,
    providers: Providers = None,
    executor: ExecutorOption = Executor.local,
    ray_address: RayAddress = None,
    workers: Workers = None,
    debug: Debug = False,
) -> None:
    """Generate a dataset: Parquet files, metadata.json and events.jsonl in OUTPUT.

    OUTPUT must be new or empty; an earlier output there is refused unless --overwrite is
    given (use `rowforge resume OUTPUT` to finish an interrupted build instead).
    """
    from rowforge.api import build
    from rowforge.display.running import run_with_display

    _logging(debug)
    with _errors("run", debug), _gc_tuned():
        dataset = _load_valid(config, then_compile=False, providers=providers)
        settings = _run_config(
            buffer_size=buffer_size,
            max_in_flight=max_in_flight,
            on_partial=on_partial.value,
            trace=trace,
            retry_budget_s=retry_budget_s,
            no_success_budget_s=no_success_budget_s,
            executor=executor.value,
            ray_address=ray_address,
            workers=workers,
        )
        _interruptible(
            lambda: run_with_display(
                "rowforge run",
                lambda on_progress: build(
                    dataset,
                    num_records,
                    output,
                    settings,
                    on_progress=on_progress,
                    overwrite=overwrite,
                ),
                _built,
                target=num_records,
                output=output,
            )
        )
    if report:
        _write_report(output, debug)


def _built(result: Any) -> tuple[str, int]:
    return result.outcome, result.num_records


def _interruptible(work: Callable[[], Any]) -> Any:
    """Ctrl-C ends the command with exit code 130 (128 + SIGINT) after the display's summary,
    which names the command that resumes the build; no traceback."""
    try:
        return work()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _write_report(output: str, debug: bool) -> None:
    from rowforge.report import write_report

    with _errors("report", debug):
        typer.echo(f"report: {write_report(output)}", err=True)


@app.command()
def preview(
    config: Annotated[Path, typer.Argument(help="Dataset config (YAML or JSON).")],
    num_records: Annotated[int, typer.Option("--num-records", "-n", help="Records.")] = 10,
    providers: Providers = None,
    debug: Debug = False,
) -> None:
    """Generate a few records in memory and print them as a table (writes nothing)."""
    from rich.console import Console
    from rich.table import Table

    from rowforge.api import preview as run_preview
    from rowforge.config.dataset import load_config
    from rowforge.display.running import run_with_display

    _logging(debug)
    with _errors("preview", debug), _gc_tuned():
        dataset = load_config(config, providers=providers)
        result = _interruptible(
            lambda: run_with_display(
                "rowforge preview",
                lambda on_progress: run_preview(dataset, num_records, on_progress=on_progress),
                lambda done: (done.metadata["outcome"], len(done.dataset)),
                target=num_records,
            )
        )
    table = Table(show_lines=True)
    table.add_column("#")
    for column in result.dataset.columns:
        table.add_column(str(column), overflow="fold")
    for index, row in result.dataset.iterrows():
        table.add_row(str(index), *(_short(value) for value in row))
    Console().print(table)
    typer.echo(f"{result.metadata['outcome']}: {len(result.dataset)} records (nothing written)")


def _short(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Dataset config (YAML or JSON).")],
    providers: Providers = None,
    debug: Debug = False,
) -> None:
    """Check a config without generating anything: the config itself, then what a run would
    meet (templates rendered on sample values, API key variables, functions, seed files)."""
    with _errors("validate", debug):
        dataset = _load_valid(config, providers=providers)
    typer.echo(f"OK: {config}: {len(dataset.columns)} columns, {len(dataset.models)} models")


@app.command()
def convert(
    config: Annotated[Path, typer.Argument(help="data-designer config (YAML or JSON).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the rowforge config.")
    ],
    providers: Providers = None,
    debug: Debug = False,
) -> None:
    """Write a data-designer config as a rowforge config (YAML, or JSON for a .json OUTPUT).

    What has no rowforge equivalent is refused, naming the column and the field; nothing is
    dropped silently. Model endpoints come from --providers (data-designer's providers file)."""
    from rowforge.config.data_designer import is_data_designer_config
    from rowforge.config.dataset import load_config, read_document, save_config
    from rowforge.errors import ConfigError

    with _errors("convert", debug):
        if not is_data_designer_config(read_document(config)):
            raise ConfigError(f"{config}: not a data-designer config (no data_designer columns)")
        dataset = load_config(config, providers=providers)
        save_config(dataset, output)
    typer.echo(
        f"OK: {output}: {len(dataset.columns)} columns, {len(dataset.models)} models "
        f"(from {config})"
    )


@app.command(name="resume")
def resume_command(
    output_dir: Annotated[
        str, typer.Argument(help="The interrupted build's output directory (or URI).")
    ],
    allow_config_change: Annotated[
        bool, typer.Option("--allow-config-change", help="Resume even if the config changed.")
    ] = False,
    executor: ExecutorOption = Executor.local,
    ray_address: RayAddress = None,
    workers: Workers = None,
    debug: Debug = False,
) -> None:
    """Finish an interrupted build: generate only the row groups that have no file yet.

    Either executor finishes either's output (--executor ray runs the rest on Ray)."""
    from rowforge.api import resume
    from rowforge.display.running import run_with_display
    from rowforge.storage.metadata import read_metadata

    _logging(debug)
    with _errors("resume", debug), _gc_tuned():
        metadata = read_metadata(output_dir)
        target = int(metadata["target_num_records"])
        settings = None
        if executor is not Executor.local or ray_address is not None or workers is not None:
            settings = _run_config(
                buffer_size=int(metadata["buffer_size"]),
                executor=executor.value,
                ray_address=ray_address,
                workers=workers,
            )
        _interruptible(
            lambda: run_with_display(
                "rowforge resume",
                lambda on_progress: resume(
                    output_dir,
                    run_config=settings,
                    allow_config_change=allow_config_change,
                    on_progress=on_progress,
                ),
                _built,
                target=target,
                output=output_dir,
            )
        )


@app.command()
def check(
    output_dir: Annotated[str, typer.Argument(help="A build's output directory (or URI).")],
) -> None:
    """Verify an output directory: event replay, no live workers at the end, metadata vs files."""
    from rowforge.storage.check import first_violation

    problem = first_violation(output_dir)
    if problem is not None:
        typer.echo(f"VIOLATION: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {output_dir}")


@app.command()
def report(
    output_dir: Annotated[str, typer.Argument(help="A build's output directory (or URI).")],
    destination: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write (default: OUTPUT_DIR/report.html)."),
    ] = None,
    debug: Debug = False,
) -> None:
    """Write one self-contained HTML report of a build: throughput, row-group states, the task
    timeline (with --trace), model latency and tokens, retries and failures."""
    from rowforge.report import write_report

    with _errors("report", debug):
        written = write_report(output_dir, destination)
    typer.echo(f"report: {written}")


@app.command()
def diagrams(
    output: Annotated[
        Path | None,
        typer.Argument(help="Where to write; default state-machines.md in the working directory."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the file differs from specs/.")
    ] = False,
) -> None:
    """Generate the state-machine diagrams and tables from specs/."""
    from rowforge.statemachine import diagrams as generator

    args = (["--check"] if check else []) + ([str(output)] if output else [])
    raise typer.Exit(generator.main(args))


@app.command(name="mock-server")
def mock_server(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8000,
    latency_ms: Annotated[
        tuple[float, float], typer.Option(help="Uniform latency range in ms.")
    ] = (0.0, 0.0),
    rate_limit_rate: Annotated[
        float, typer.Option(help="Share of 429 answers (Retry-After only with --retry-after-s).")
    ] = 0.0,
    retry_after_s: Annotated[
        float | None, typer.Option(help="Retry-After seconds on 429 answers (default: none).")
    ] = None,
    error_rate: Annotated[float, typer.Option(help="Share of 500 answers (mock model).")] = 0.0,
    status_rate: Annotated[float, typer.Option(help="Share of --status answers.")] = 0.0,
    status: Annotated[int, typer.Option(help="Status for --status-rate: 408 or 5xx.")] = 503,
    outage_s: Annotated[float, typer.Option(help="Answer 503 to everything for this long.")] = 0.0,
    outage_start_s: Annotated[
        float, typer.Option(help="When the outage starts, seconds after listening.")
    ] = 0.0,
    hang_rate: Annotated[float, typer.Option(help="Share of requests never answered.")] = 0.0,
    reset_rate: Annotated[
        float, typer.Option(help="Share of replies cut off mid-body (connection reset).")
    ] = 0.0,
    trickle_ms: Annotated[
        float, typer.Option(help="Send reply bodies in 16-byte chunks this many ms apart.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the replies and the fault draws.")] = 0,
) -> None:
    """Serve the mock model as an OpenAI-compatible server on 127.0.0.1, optionally behind a
    misbehaving provider (see rowforge.models.faults)."""
    from rowforge.models import MockSettings
    from rowforge.models.faults import FaultPlan
    from rowforge.models.mock_server import run_server

    with _errors("mock-server", False):
        settings = MockSettings(latency_ms=latency_ms, error_rate=error_rate, seed=seed)
        faults = FaultPlan(
            rate_limit_rate=rate_limit_rate,
            retry_after_s=retry_after_s,
            status_rate=status_rate,
            status=status,
            outage_s=outage_s,
            outage_start_s=outage_start_s,
            hang_rate=hang_rate,
            reset_rate=reset_rate,
            trickle_ms=trickle_ms,
            seed=seed,
        )
    run_server(port, settings, faults)


@app.command()
def demo(
    records: Annotated[int, typer.Option("--records", "-n", help="How many records.")] = 1000,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")] = Path(
        "demo-output"
    ),
) -> None:
    """Run the demo: support dialogues with a judge, on the built-in mock models."""
    from rowforge.demo import main

    raise typer.Exit(main(records, output))


if __name__ == "__main__":
    app()
