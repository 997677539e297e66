"""`make demo`: support dialogues with a judge, 1,000 records, on the built-in mock models.

Runs `rowforge/demo_data/support_dialogues.yaml`, shipped in the package (a copy of
`examples/support_dialogues.yaml` that a test keeps identical): samplers, two LLM columns on model
`writer` (20-100 ms simulated latency, occasional rate limits), an expression, a structured judge
column on model `judge`, and two processors. Prints progress and where the Parquet files and
metadata went.
"""

from __future__ import annotations

import logging
import sys
from importlib.resources import files
from pathlib import Path

from rowforge.api import build
from rowforge.config.dataset import load_config
from rowforge.display.running import run_with_display
from rowforge.hints import runnable_command
from rowforge.scheduler import RunConfig
from rowforge.scheduler.gc_tuning import RECOMMENDED_YOUNG_THRESHOLD

# A file on disk both in a source checkout and in an installed wheel.
EXAMPLE = Path(str(files("rowforge") / "demo_data" / "support_dialogues.yaml"))


def main(num_records: int = 1000, output_dir: Path | str = "demo-output") -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not EXAMPLE.exists():
        print(f"rowforge demo: {EXAMPLE} not found; the rowforge installation is incomplete")
        return 2
    output = Path(output_dir)
    config = load_config(EXAMPLE)
    print(
        f"rowforge demo: {num_records} records from {EXAMPLE.name} on mock models "
        f"{', '.join(m.alias for m in config.models)}"
    )
    settings = RunConfig(
        buffer_size=100,
        max_concurrent_row_groups=4,
        gc_young_threshold=RECOMMENDED_YOUNG_THRESHOLD,  # a program owns its process
    )
    result = run_with_display(
        "rowforge demo",
        lambda on_progress: build(
            config,
            num_records,
            output,
            settings,
            on_progress=on_progress,
            overwrite=True,  # the demo's own directory: a second `make demo` replaces the first
        ),
        lambda built: (built.outcome, built.num_records),
        target=num_records,
        output=output,
    )
    metadata = result.metadata
    if metadata["dropped_records"]:
        reasons: dict[str, int] = {}
        for group in metadata["row_groups"]:
            for reason, count in group["drop_reasons"].items():
                reasons[reason] = reasons.get(reason, 0) + count
        print(f"dropped {metadata['dropped_records']}: {reasons}")
    config_path = _shown(EXAMPLE)
    print(f"config:   {config_path} (try: {runnable_command('preview', config_path, '-n', '3')})")
    return 0


def _shown(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it, else as it is."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


if __name__ == "__main__":
    sys.exit(main())
