"""The `rowforge` command line. Commands arrive with the parts they drive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="rowforge: synthetic datasets on an explicit state-machine scheduler.")


@app.command()
def diagrams(
    output: Annotated[
        Path | None, typer.Argument(help="Where to write; default docs/state-machines.md.")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the file differs from specs/.")
    ] = False,
) -> None:
    """Generate the state-machine diagrams and tables from specs/."""
    from rowforge.statemachine import diagrams as generator

    args = (["--check"] if check else []) + ([str(output)] if output else [])
    raise typer.Exit(generator.main(args))


@app.command()
def check(
    output_dir: Annotated[Path, typer.Argument(help="A build's output directory.")],
) -> None:
    """Verify an output directory: event replay, no live workers at the end, metadata vs files."""
    from rowforge.storage.check import first_violation

    problem = first_violation(output_dir)
    if problem is not None:
        typer.echo(f"VIOLATION: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {output_dir}")


@app.command(name="resume")
def resume_command(
    output_dir: Annotated[Path, typer.Argument(help="The interrupted build's output directory.")],
    allow_config_change: Annotated[
        bool, typer.Option("--allow-config-change", help="Resume even if the config changed.")
    ] = False,
) -> None:
    """Finish an interrupted build: generate only the row groups that have no file yet."""
    from rowforge.build import resume
    from rowforge.errors import ConfigError, RowforgeError

    try:
        result = resume(output_dir, allow_config_change=allow_config_change)
    except RowforgeError as error:
        typer.echo(f"rowforge resume: {error}", err=True)
        raise typer.Exit(2 if isinstance(error, ConfigError) else 1) from None
    typer.echo(
        f"{result.outcome}: generated {result.actual_records} more records "
        f"({len(result.row_groups)} row groups) into {output_dir}"
    )


@app.command()
def demo(
    records: Annotated[int, typer.Option("--records", "-n", help="How many records.")] = 1000,
    output: Annotated[str, typer.Option("--output", "-o", help="Output directory.")] = (
        "demo-output"
    ),
) -> None:
    """Run the demo pipeline on simulated model calls and write Parquet."""
    from rowforge.demo import main

    raise typer.Exit(main(records, output))


if __name__ == "__main__":
    app()
