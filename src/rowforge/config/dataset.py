"""`DatasetConfig`: what to generate (columns, processors, models, seed), validated as a whole.

A config is frozen and checked on construction: unique output names, every template and
dependency refers to a known column, every LLM column names a declared model, no cycles. Every
problem is a `ConfigError` whose message starts with the field path
(`columns[2]: column 'answer'.prompt: ...`).
`to_dict`/`from_dict` give the YAML/JSON form; `load_config`/`save_config` read and write files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml

from rowforge.config.columns import Column, LLMTextColumn, column_from_dict
from rowforge.config.processors import processor_from_dict, processor_to_dict
from rowforge.errors import ConfigError
from rowforge.models import MockSettings, ModelConfig
from rowforge.processors import Processor


def _columns(value: Sequence[Column]) -> tuple[Column, ...]:
    return tuple(value)


def _processors(value: Sequence[Processor]) -> tuple[Processor, ...]:
    return tuple(value)


def _models(value: Sequence[ModelConfig]) -> tuple[ModelConfig, ...]:
    return tuple(value)


@attrs.frozen
class DatasetConfig:
    """The dataset to generate. `models` default to one mock model aliased `mock`."""

    columns: tuple[Column, ...] = attrs.field(converter=_columns)
    processors: tuple[Processor, ...] = attrs.field(default=(), converter=_processors)
    models: tuple[ModelConfig, ...] = attrs.field(
        factory=lambda: (ModelConfig(alias="mock"),), converter=_models
    )
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.columns:
            raise ConfigError("columns: a dataset needs at least one column")
        if not isinstance(self.seed, int):
            raise ConfigError(f"seed: must be an integer, got {self.seed!r}")
        aliases = [model.alias for model in self.models]
        for index, alias in enumerate(aliases):
            if alias in aliases[:index]:
                raise ConfigError(f"models[{index}].alias: duplicate model alias {alias!r}")
        outputs: dict[str, str] = {}
        for index, column in enumerate(self.columns):
            where = f"columns[{index}] {column.name!r}"
            for name in column.outputs():
                if name in outputs:
                    raise ConfigError(
                        f"{where}: column {name!r} is already defined by {outputs[name]}"
                    )
                outputs[name] = where
        for index, column in enumerate(self.columns):
            where = f"columns[{index}] {column.name!r}"
            for name in sorted(column.dependencies()):
                if name not in outputs:
                    raise ConfigError(
                        f"{where}: refers to unknown column {name!r}; known: {sorted(outputs)}"
                    )
            if isinstance(column, LLMTextColumn) and column.model not in aliases:
                raise ConfigError(
                    f"{where}.model: unknown model alias {column.model!r}; declared: {aliases}"
                )
        _check_acyclic(self.columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for column in self.columns for name in column.outputs())

    def model(self, alias: str) -> ModelConfig:
        for model in self.models:
            if model.alias == alias:
                return model
        raise KeyError(alias)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "models": [_model_to_dict(model) for model in self.models],
            "columns": [column.to_dict() for column in self.columns],
            "processors": [processor_to_dict(p) for p in self.processors],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base_dir: Path | None = None) -> DatasetConfig:
        """Build from the dict form; relative seed-data paths resolve against `base_dir`."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"a dataset config must be a mapping, got {type(raw).__name__}")
        unknown = sorted(set(raw) - {"seed", "models", "columns", "processors"})
        if unknown:
            raise ConfigError(
                f"unknown top-level fields {unknown}; known: columns, models, processors, seed"
            )
        columns = [
            _at(f"columns[{i}]", column_from_dict, _rebase(c, base_dir))
            for i, c in enumerate(_list(raw, "columns"))
        ]
        processors = [
            _at(f"processors[{i}]", processor_from_dict, p)
            for i, p in enumerate(_list(raw, "processors"))
        ]
        models = [
            _at(f"models[{i}]", _model_from_dict, m) for i, m in enumerate(_list(raw, "models"))
        ]
        return cls(columns, processors, models or (ModelConfig(alias="mock"),), raw.get("seed", 0))


def _rebase(raw: Any, base_dir: Path | None) -> Any:
    if base_dir is None or not isinstance(raw, Mapping) or raw.get("type") != "seed_dataset":
        return raw
    path = raw.get("path")
    if isinstance(path, str) and not Path(path).is_absolute():
        return {**raw, "path": str(base_dir / path)}
    return raw


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list, got {type(value).__name__}")
    return value


def _at(where: str, build: Any, raw: Any) -> Any:
    try:
        return build(raw)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def _model_to_dict(model: ModelConfig) -> dict[str, Any]:
    data = attrs.asdict(model, recurse=True)
    mock = data.get("mock") or {}
    if "latency_ms" in mock:
        mock["latency_ms"] = list(mock["latency_ms"])
    return data


def _model_from_dict(raw: Mapping[str, Any]) -> ModelConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a model must be a mapping, got {type(raw).__name__}")
    fields = dict(raw)
    mock = fields.pop("mock", None)
    if mock is not None:
        mock = dict(mock)
        if "latency_ms" in mock:
            mock["latency_ms"] = tuple(mock["latency_ms"])
        fields["mock"] = MockSettings(**mock)
    allowed = {a.name for a in attrs.fields(ModelConfig)}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ConfigError(f"unknown fields {unknown} for a model; known: {sorted(allowed)}")
    return ModelConfig(**fields)


def _check_acyclic(columns: Sequence[Column]) -> None:
    producer = {name: column.name for column in columns for name in column.outputs()}
    graph = {column.name: {producer[d] for d in column.dependencies()} for column in columns}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise ConfigError(f"columns: dependency cycle {' -> '.join(cycle)}")
        visiting.append(name)
        for dependency in sorted(graph[name]):
            visit(dependency)
        visiting.pop()
        done.add(name)

    for column in columns:
        visit(column.name)


def _one_line(error: Exception) -> str:
    """A parser error as one line: position and problem, without the source snippet."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(error).split())


def load_config(path: Path | str) -> DatasetConfig:
    """Read a YAML or JSON config file; errors name the file and the field path."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
        raw = json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as error:
        raise ConfigError(f"{source}: cannot read config: {_one_line(error)}") from error
    try:
        return DatasetConfig.from_dict(raw, base_dir=source.parent)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def save_config(config: DatasetConfig, path: Path | str) -> None:
    """Write YAML (or JSON for a .json path) that `load_config` reads back to an equal config."""
    target = Path(path)
    data = config.to_dict()
    if target.suffix == ".json":
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
