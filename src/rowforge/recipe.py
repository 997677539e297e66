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
                "extra_columns": list(step.extra_columns),
                **_skip_entry(step),
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


def _skip_entry(step: Step) -> dict[str, Any]:
    """A step's skip settings; a `skip_value` JSON cannot hold is recorded as unsaved."""
    if step.skip_when is None:
        return {"propagate_skip": step.propagate_skip}
    try:
        json.dumps(step.skip_value)
    except (TypeError, ValueError):
        saved = {"skip_value_unsaved": repr(step.skip_value)}
    else:
        saved = {"skip_value": step.skip_value}
    return {"skip_when": reference(step.skip_when), "propagate_skip": step.propagate_skip, **saved}


def _skip_fields(path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """The Step arguments of a recipe entry's skip settings (none for older recipes)."""
    fields: dict[str, Any] = {"propagate_skip": entry.get("propagate_skip", True)}
    if "skip_when" not in entry:
        return fields
    if entry["skip_when"] is None or "skip_value_unsaved" in entry:
        raise ConfigError(
            f"{path}: step {entry['name']!r} has a skip condition or skip value that cannot be "
            "saved (a lambda, a closure, __main__, or a value JSON cannot hold); pass steps= "
            "to resume"
        )
    return {**fields, "skip_when": resolve(entry["skip_when"]), "skip_value": entry["skip_value"]}


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
                extra_columns=entry.get("extra_columns", ()),
                **_skip_fields(path, entry),
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
