"""`DatasetConfig`: what to generate (columns, processors, models, seed), validated as a whole.

A config is frozen and checked on construction: unique output names, every template and
dependency refers to a known column, every LLM column names a declared model, no cycles, every
processor names columns that exist when it runs, and no template is one the sandbox refuses
(each is rendered once on sample values, `rowforge.config.validate.check_templates`). Every
problem is a `ConfigError` whose message starts with the field path
(`columns[2] 'answer'.prompt: ...`, `models[0] 'writer'.mock: ...`,
`processors[1] 'drop_columns'.columns: ...`). What depends on the machine rather than the config
(API key variables, seed files, importable functions) is checked by `validate_config`.
`to_dict`/`from_dict` give the YAML/JSON form; `load_config`/`save_config` read and write files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml

from rowforge.config.columns import (
    Column,
    CustomColumn,
    ExpressionColumn,
    LLMTextColumn,
    column_from_dict,
)
from rowforge.config.data_designer import (
    from_data_designer,
    is_data_designer_config,
    load_providers,
)
from rowforge.config.processors import FIELDS as PROCESSOR_FIELDS
from rowforge.config.processors import (
    processor_from_dict,
    processor_kind,
    processor_to_dict,
    template_strings,
)
from rowforge.config.seed_files import is_hub_path
from rowforge.config.validate import check_templates
from rowforge.errors import ConfigError
from rowforge.models import MockSettings, ModelConfig
from rowforge.models.config import FieldError, describe
from rowforge.processors import DropColumns, Processor, RenameColumns, SchemaTransform
from rowforge.templates import referenced_columns

TOP_LEVEL = ("columns", "models", "processors", "seed")


def _sequence(value: Any) -> Any:
    """Lists become tuples; anything else is kept for the checks to refuse by name."""
    return tuple(value) if isinstance(value, list | tuple) else value


@attrs.frozen
class DatasetConfig:
    """The dataset to generate. `models` default to one mock model aliased `mock`."""

    columns: tuple[Column, ...] = attrs.field(converter=_sequence)
    processors: tuple[Processor, ...] = attrs.field(default=(), converter=_sequence)
    models: tuple[ModelConfig, ...] = attrs.field(
        factory=lambda: (ModelConfig(alias="mock"),), converter=_sequence
    )
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        for field, kind in (
            ("columns", Column),
            ("processors", Processor),
            ("models", ModelConfig),
        ):
            items = getattr(self, field)
            if not isinstance(items, tuple):
                raise ConfigError(f"{field}: must be a list, got {describe(items)}")
            for index, item in enumerate(items):
                if not isinstance(item, kind):
                    raise ConfigError(
                        f"{field}[{index}]: must be a {kind.__name__}, got {describe(item)}"
                    )
        if not self.columns:
            raise ConfigError("columns: a dataset needs at least one column")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed: must be an integer, got {describe(self.seed)}")
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
            for name in sorted(column.reads()):
                if name not in outputs:
                    raise ConfigError(
                        f"{where}: refers to unknown column {name!r}; known: {sorted(outputs)}"
                    )
            if isinstance(column, LLMTextColumn) and column.model not in aliases:
                raise ConfigError(
                    f"{where}.model: unknown model alias {column.model!r}; declared: {aliases}"
                )
        _check_acyclic(self.columns)
        _check_processors(self.columns, self.processors)
        check_templates(self)

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
        """Build from the dict form; relative seed-data paths resolve against `base_dir`.

        Any malformed input is a `ConfigError` naming the field path, never another exception.
        """
        if not isinstance(raw, Mapping):
            raise ConfigError(f"a dataset config must be a mapping, got {type(raw).__name__}")
        unknown = sorted((key for key in raw if key not in TOP_LEVEL), key=repr)
        if unknown:
            raise ConfigError(f"unknown top-level fields {unknown}; known: {', '.join(TOP_LEVEL)}")
        columns = [
            _at(_position("columns", i, c, "name"), column_from_dict, _rebase(c, base_dir))
            for i, c in enumerate(_list(raw, "columns"))
        ]
        processors = [
            _at(_position("processors", i, p, "type"), processor_from_dict, p)
            for i, p in enumerate(_list(raw, "processors"))
        ]
        models = [
            _at(_position("models", i, m, "alias"), _model_from_dict, m)
            for i, m in enumerate(_list(raw, "models"))
        ]
        return cls(columns, processors, models or (ModelConfig(alias="mock"),), raw.get("seed", 0))


def _rebase(raw: Any, base_dir: Path | None) -> Any:
    if base_dir is None or not isinstance(raw, Mapping) or raw.get("type") != "seed_dataset":
        return raw
    path = raw.get("path")
    if isinstance(path, str) and path and not is_hub_path(path) and not Path(path).is_absolute():
        return {**raw, "path": str(base_dir / path)}
    return raw


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if value is None:  # `models:` with nothing after it
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list, got {describe(value)}")
    return value


def _position(section: str, index: int, raw: Any, key: str) -> str:
    """`columns[2] 'answer'`: the entry's index and, when it has a usable one, its name."""
    name = raw.get(key) if isinstance(raw, Mapping) else None
    if not isinstance(name, str):
        return f"{section}[{index}]"
    if key == "type":  # a processor is named by its type, when that is one
        usable = name in PROCESSOR_FIELDS
    else:
        usable = name.isidentifier() if key == "name" else bool(name.strip())
    return f"{section}[{index}] {name!r}" if usable else f"{section}[{index}]"


def _at(where: str, build: Callable[[Any], Any], raw: Any) -> Any:
    try:
        return build(raw)
    except FieldError as error:
        raise error.at(where) from None
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _model_to_dict(model: ModelConfig) -> dict[str, Any]:
    """Every field, except the optional request fields while unset (None, or an empty mapping):
    a config that does not use them saves, and fingerprints, as it did before they existed."""
    data = attrs.asdict(model, recurse=True)
    mock = data.get("mock") or {}
    if "latency_ms" in mock:
        mock["latency_ms"] = list(mock["latency_ms"])
    for name in ("top_p", "max_completion_tokens", "stop", "seed", "extra_body", "extra_headers"):
        if data[name] is None or data[name] == {}:
            del data[name]
    return data


def _model_from_dict(raw: Mapping[str, Any]) -> ModelConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a model must be a mapping, got {describe(raw)}")
    allowed = [a.name for a in attrs.fields(ModelConfig)]
    unknown = sorted((key for key in raw if key not in allowed), key=repr)
    if unknown:
        problem = f"unknown fields {unknown} for a model; known: {sorted(allowed)}"
        raise FieldError(problem, "", problem)
    if "alias" not in raw:
        raise FieldError("a model needs an alias", "alias", "is required")
    fields = dict(raw)
    mock = fields.pop("mock", None)
    if mock is not None:
        fields["mock"] = _mock_from_dict(mock)
    return ModelConfig(**fields)


def _mock_from_dict(raw: Any) -> MockSettings:
    if not isinstance(raw, Mapping):
        problem = f"must be a mapping, got {describe(raw)}"
        raise FieldError(f"mock {problem}", "mock", problem)
    allowed = [a.name for a in attrs.fields(MockSettings)]
    unknown = sorted((key for key in raw if key not in allowed), key=repr)
    if unknown:
        problem = f"unknown fields {unknown}; known: {sorted(allowed)}"
        raise FieldError(f"mock {problem}", "mock", problem)
    try:
        return MockSettings(**raw)
    except FieldError as error:
        field = f"mock.{error.field}" if error.field else "mock"
        raise FieldError(str(error), field, error.problem) from None


def _check_acyclic(columns: Sequence[Column]) -> None:
    producer = {name: column.name for column in columns for name in column.outputs()}
    graph = {column.name: {producer[d] for d in column.reads()} for column in columns}
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


def _batch_columns(columns: Sequence[Column]) -> list[str]:
    """The columns a pre_batch processor sees: those of batch steps whose every upstream column
    is a batch step too (samplers, seed data, batch custom columns), in declaration order."""
    producer = {name: column.name for column in columns for name in column.outputs()}

    def batch(column: Column) -> bool:
        if isinstance(column, LLMTextColumn | ExpressionColumn):
            return False
        return not isinstance(column, CustomColumn) or column.kind == "batch"

    ready: set[str] = set()
    grew = True
    while grew:
        grew = False
        for column in columns:
            if column.name in ready or not batch(column):
                continue
            if all(producer[name] in ready for name in column.reads()):
                ready.add(column.name)
                grew = True
    return [name for column in columns if column.name in ready for name in column.outputs()]


def _check_processors(columns: Sequence[Column], processors: Sequence[Processor]) -> None:
    """Every column a processor names exists when it runs.

    pre_batch processors run first, in order, on the batch columns (`_batch_columns`); what
    they add (a renamed copy, a JSON column) joins every column for the post_batch processors,
    which then run in order. After a custom processor nothing is known about the columns, so
    the rest of its stage is not checked.
    """
    outputs = [name for column in columns for name in column.outputs()]
    start: dict[str, list[str] | None] = {"pre_batch": _batch_columns(columns)}
    added: list[str] | None = []
    for stage in ("pre_batch", "post_batch"):
        if stage == "post_batch":
            start[stage] = None if added is None else [*outputs, *added]
        known = start[stage]
        for index, processor in enumerate(processors):
            if processor.stage != stage or known is None:
                continue
            before = known
            known = _columns_after(index, processor, known, stage)
            if stage == "pre_batch" and added is not None:
                added = None if known is None else [*added, *(c for c in known if c not in before)]


def _columns_after(
    index: int, processor: Processor, known: list[str], stage: str
) -> list[str] | None:
    """The columns after `processor` runs on `known`, or None when that cannot be told."""
    where = f"processors[{index}] {processor_kind(processor)!r}"
    note = " at stage pre_batch (it sees only sampler, seed-data and batch columns)"
    hint = f"{note if stage == 'pre_batch' else ''}; known: {sorted(known)}"
    if isinstance(processor, DropColumns):
        for name in processor.columns:
            if name not in known:
                raise ConfigError(f"{where}.columns: unknown column {name!r}{hint}")
        return [name for name in known if name not in processor.columns]
    if isinstance(processor, RenameColumns):
        for old, new in processor.mapping.items():
            if old not in known:
                raise ConfigError(f"{where}.mapping: unknown column {old!r}{hint}")
            if new in known and new not in processor.mapping:
                raise ConfigError(
                    f"{where}.mapping: renames {old!r} to {new!r}, which is already a column"
                )
        return [processor.mapping.get(name, name) for name in known]
    if isinstance(processor, SchemaTransform):
        for path, source in template_strings(processor.template):
            for name in sorted(referenced_columns(source, f"{where}.template{path}")):
                if name not in known:
                    raise ConfigError(
                        f"{where}.template{path}: refers to unknown column {name!r}{hint}"
                    )
        return known if processor.column in known else [*known, processor.column]
    return None


def _one_line(error: Exception) -> str:
    """A parser error as one line: position and problem, without the source snippet."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(error).split())


def load_config(path: Path | str, *, providers: Path | str | None = None) -> DatasetConfig:
    """Read a YAML or JSON config file; errors name the file and the field path.

    A data-designer config (what its config builder writes) is read too, through
    `rowforge.config.data_designer`; `providers` is then data-designer's providers file, where
    its model endpoints are (see that module).
    """
    source = Path(path)
    raw = read_document(source)
    try:
        if is_data_designer_config(raw):
            known = load_providers(providers) if providers is not None else None
            raw = from_data_designer(raw, providers=known)
        elif providers is not None:
            raise ConfigError(
                "--providers applies to data-designer configs; a rowforge config names its "
                "endpoints in models[].base_url"
            )
        return DatasetConfig.from_dict(raw, base_dir=source.parent)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def read_document(source: Path) -> Any:
    """The YAML or JSON document in `source`; a `ConfigError` naming the file otherwise."""
    try:
        text = source.read_text(encoding="utf-8")
        return json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as error:
        # ValueError: not UTF-8, bad JSON, or a YAML date that does not exist (2024-13-45).
        raise ConfigError(f"{source}: cannot read config: {_one_line(error)}") from error


def save_config(config: DatasetConfig, path: Path | str) -> None:
    """Write YAML (or JSON for a .json path) that `load_config` reads back to an equal config."""
    target = Path(path)
    data = config.to_dict()
    if target.suffix == ".json":
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
