"""recipe.json: how to rebuild a run's steps, processors and RunConfig from its output directory.

`rowforge.resume(output_dir)` needs the callables that produced the dataset. A build stores them
by reference (`module:qualified.name`); resuming imports them again. A lambda, a closure or a
function defined in `__main__` has no importable name: the recipe records why, and resuming
without passing `steps=` explicitly raises a `ConfigError` naming the step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from rowforge.errors import ConfigError
from rowforge.importing import reference, resolve
from rowforge.processors import FunctionProcessor, Processor
from rowforge.scheduler import RunConfig, Step
from rowforge.storage.metadata import write_json_atomic

RECIPE_FILE = "recipe.json"


def save_recipe(
    output: Path, steps: Sequence[Step], processors: Sequence[Processor], config: RunConfig
) -> None:
    document = {
        "steps": [
            {
                "name": step.name,
                "fn": reference(step.fn),
                "kind": step.kind,
                "depends_on": list(step.depends_on),
                "resource": step.resource,
                "allow_resize": step.allow_resize,
            }
            for step in steps
        ],
        "processors": [_processor_entry(p) for p in processors],
        "run_config": {
            **attrs.asdict(config),
            "max_parallel_requests": dict(config.max_parallel_requests),
        },
    }
    write_json_atomic(output / RECIPE_FILE, document)


def _processor_entry(processor: Processor) -> dict[str, Any]:
    if isinstance(processor, FunctionProcessor):
        return {
            "function": reference(processor.fn),
            "stage": processor.stage,
            "name": processor.label,
        }
    fields = {}
    kind: Any = type(processor)
    if attrs.has(kind):
        fields = {f.name: getattr(processor, f.name) for f in attrs.fields(kind) if f.init}
    return {"class": reference(type(processor)), "fields": fields, "name": processor.name}


def load_recipe(output: Path) -> tuple[list[Step], list[Processor], RunConfig]:
    path = output / RECIPE_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{output}: no {RECIPE_FILE}; pass steps= to resume") from None
    steps = []
    for entry in document["steps"]:
        if entry["fn"] is None:
            raise ConfigError(
                f"{path}: step {entry['name']!r} uses a function without an importable name "
                "(a lambda, a closure or __main__); pass steps= to resume"
            )
        steps.append(
            Step(
                entry["name"],
                resolve(entry["fn"]),
                kind=entry["kind"],
                depends_on=entry["depends_on"],
                resource=entry["resource"],
                allow_resize=entry["allow_resize"],
            )
        )
    processors: list[Processor] = []
    for entry in document["processors"]:
        if "function" in entry:
            if entry["function"] is None:
                raise ConfigError(f"{path}: processor {entry['name']!r} cannot be imported")
            processors.append(
                FunctionProcessor(resolve(entry["function"]), entry["stage"], entry["name"])
            )
        else:
            if entry["class"] is None:
                raise ConfigError(f"{path}: processor {entry['name']!r} cannot be imported")
            processors.append(resolve(entry["class"])(**entry["fields"]))
    config = RunConfig(**document["run_config"])
    return steps, processors, config
