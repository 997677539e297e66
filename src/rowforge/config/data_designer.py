"""data-designer configs as rowforge configs.

data-designer's config builder writes its config as YAML or JSON (`builder.write_config(path)`):
`{"data_designer": {"columns": [...], "model_configs": [...], "processors": [...],
"seed_config": ..., "constraints": ...}}`, or the same mapping without the `data_designer`
wrapper. `from_data_designer` maps that onto rowforge's own dict form, which `DatasetConfig`
then validates as usual, so a converted config is an ordinary rowforge config
(`rowforge convert` writes it out). Reading the serialized form needs no data-designer install.

The mapping is a table per column type (and per sampler type). Each entry takes the fields it
maps; every other field must hold data-designer's default (`drop: false`, `skip: null`,
`with_trace: none`, ...). A field that holds anything else is a feature rowforge does not have
(yet): the conversion fails with a `ConfigError` naming the column and the field, so nothing is
silently dropped.

A column's `drop: true` stays `drop: true` (generated, usable by other columns, not written);
data-designer also keeps dropped columns in separate files, rowforge does not. A seed
dataset's relative path is resolved from the working directory, as data-designer does, and
written out absolute; its columns are read from the file when the config does not list them
(data-designer's builder never does: its engine takes every column of the file). A validation
column's local function converts only once the config names it as `module:function`:
data-designer writes just the function's name, which nothing can import.

Model endpoints: data-designer keeps them out of the config, in its providers
(`DataDesigner(model_providers=[...])` or `~/.data-designer/model_providers.yaml`). They come
from `providers` (a `--providers` file in that format: `{"providers": [{"name", "endpoint",
"provider_type", "api_key", ...}]}`), or from a `model_providers` list in the config itself. A
provider's `api_key` must name an environment variable (rowforge never writes a key into a
config); a literal key is refused, naming the provider.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from rowforge.config.columns import is_reference
from rowforge.config.seed_files import seed_files
from rowforge.errors import ConfigError

#: data-designer's defaults for fields every column has; a column at these values loses nothing.
_COMMON_DEFAULTS: dict[str, Any] = {
    "drop": False,
    "skip": None,
    "propagate_skip": True,
    "allow_resize": False,
}
_LLM_DEFAULTS: dict[str, Any] = {
    "system_prompt": None,
    "with_trace": "none",
    "extract_reasoning_content": False,
    "multi_modal_context": None,
    "tool_alias": None,
}
_SAMPLER_DEFAULTS: dict[str, Any] = {"conditional_params": {}, "convert_to": None}
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


def is_data_designer_config(raw: object) -> bool:
    """Whether `raw` (a loaded YAML/JSON document) is a data-designer config: the
    `data_designer` wrapper, or columns that carry data-designer's `column_type`."""
    if not isinstance(raw, Mapping):
        return False
    if isinstance(raw.get("data_designer"), Mapping):
        return True
    columns = raw.get("columns")
    return (
        isinstance(columns, list)
        and bool(columns)
        and all(isinstance(c, Mapping) and "column_type" in c for c in columns)
    )


class _Fields:
    """One mapping of the data-designer config being read: `take` what is mapped; `finish`
    refuses whatever else is not at data-designer's default."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: must be a mapping, got {type(raw).__name__}")
        self.raw = dict(raw)
        self.where = where
        self._taken: set[str] = set()

    def take(self, key: str, default: Any = None) -> Any:
        self._taken.add(key)
        return self.raw.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.raw:
            raise ConfigError(f"{self.where}.{key}: is required")
        return self.take(key)

    def text(self, key: str) -> str:
        """A required, non-empty string field."""
        value = self.require(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.where}.{key}: must be a non-empty string, got {value!r}")
        return value

    def finish(self, *defaults: Mapping[str, Any]) -> None:
        known: dict[str, Any] = {}
        for table in defaults:
            known.update(table)
        for key, value in self.raw.items():
            if key in self._taken:
                continue
            if key in known and value == known[key]:
                continue
            raise ConfigError(
                f"{self.where}.{key}: data-designer's {key!r} ({_short(value)}) has no rowforge "
                "equivalent yet; remove it or set it to its default to convert this config"
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- columns -----------------------------------------------------------------------------------


def _sampler(fields: _Fields, name: str) -> dict[str, Any]:
    kind = fields.require("sampler_type")
    mapper = _SAMPLERS.get(kind)
    if mapper is None:
        raise ConfigError(
            f"{fields.where}.sampler_type: data-designer's {kind!r} sampler has no rowforge "
            f"equivalent yet; rowforge converts {sorted(_SAMPLERS)}"
        )
    params = _Fields(fields.take("params", {}), f"{fields.where}.params")
    params.take("sampler_type")
    column = {"name": name, **mapper(params)}
    params.finish()
    convert_to = fields.take("convert_to")
    if kind == "bernoulli" and convert_to is None:
        convert_to = "int"  # data-designer's bernoulli values are 0 and 1, not booleans
    if convert_to is not None:
        column["convert_to"] = convert_to
    conditional = fields.take("conditional_params") or {}
    if not isinstance(conditional, Mapping):
        raise ConfigError(f"{fields.where}.conditional_params: must be a mapping")
    if conditional:
        where = f"{fields.where}.conditional_params"
        column["conditional_params"] = {
            condition: _conditional(mapper, raw, f"{where}[{condition!r}]")
            for condition, raw in conditional.items()
        }
    fields.finish(_COMMON_DEFAULTS, _SAMPLER_DEFAULTS)
    return column


def _conditional(
    mapper: Callable[[_Fields], dict[str, Any]], raw: object, where: str
) -> dict[str, Any]:
    """One condition's parameters, mapped like the column's own (without the type tag)."""
    params = _Fields(raw, where)
    params.take("sampler_type")
    mapped = mapper(params)
    params.finish()
    mapped.pop("type")
    return mapped


def _same_fields(kind: str, *names: str) -> Callable[[_Fields], dict[str, Any]]:
    """A sampler whose rowforge fields are data-designer's own (data-designer's names were
    kept), with its `decimal_places` when it has one."""

    def mapper(params: _Fields) -> dict[str, Any]:
        column: dict[str, Any] = {"type": kind}
        for name in names:
            if name in params.raw:
                column[name] = params.take(name)
        return _rounding(params, column) if "decimal_places" in params.raw else column

    return mapper


def _category(params: _Fields) -> dict[str, Any]:
    column = {"type": "category", "values": params.require("values")}
    weights = params.take("weights")
    if weights is not None:
        column["weights"] = weights
    return column


def _uniform(params: _Fields) -> dict[str, Any]:
    low, high = params.require("low"), params.require("high")
    return _rounding(params, {"type": "uniform", "low": low, "high": high})


def _gaussian(params: _Fields) -> dict[str, Any]:
    mean, stddev = params.require("mean"), params.require("stddev")
    return _rounding(params, {"type": "gaussian", "mean": mean, "stddev": stddev})


def _rounding(params: _Fields, column: dict[str, Any]) -> dict[str, Any]:
    places = params.take("decimal_places")
    if places is not None:
        column["decimal_places"] = places
    return column


def _bernoulli(params: _Fields) -> dict[str, Any]:
    return {"type": "bernoulli", "p": params.require("p")}


def _uuid(params: _Fields) -> dict[str, Any]:
    """data-designer writes UUIDs as hex digits without dashes (rowforge's `hex`)."""
    column: dict[str, Any] = {"type": "uuid", "hex": True}
    prefix = params.take("prefix")
    if prefix:
        column["prefix"] = prefix
    for flag in ("short_form", "uppercase"):
        if params.take(flag, False):
            column[flag] = True
    return column


def _datetime(params: _Fields) -> dict[str, Any]:
    """data-designer's unit defaults to days; rowforge's to seconds, so it is always written."""
    return {
        "type": "datetime",
        "start": params.require("start"),
        "end": params.require("end"),
        "unit": params.take("unit", "D"),
    }


def _faker_person(params: _Fields) -> dict[str, Any]:
    column: dict[str, Any] = {"type": "faker_person"}
    for key in ("locale", "sex", "city", "age_range"):
        value = params.take(key)
        if value is not None:
            column[key] = value
    return column


def _managed_person(params: _Fields) -> dict[str, Any]:
    raise ConfigError(
        f"{params.where}: data-designer's 'person' sampler draws from its managed person "
        "datasets (downloaded to ~/.data-designer), which rowforge does not read; use the "
        "'person_from_faker' sampler (rowforge's faker_person) or give the people as a seed "
        "dataset"
    )


_SAMPLERS: dict[str, Callable[[_Fields], dict[str, Any]]] = {
    "category": _category,
    "subcategory": _same_fields("subcategory", "category", "values"),
    "uniform": _uniform,
    "gaussian": _gaussian,
    "bernoulli": _bernoulli,
    "binomial": _same_fields("binomial", "n", "p"),
    "poisson": _same_fields("poisson", "mean"),
    "bernoulli_mixture": _same_fields("bernoulli_mixture", "p", "dist_name", "dist_params"),
    "scipy": _same_fields("scipy", "dist_name", "dist_params"),
    "timedelta": _same_fields("timedelta", "dt_min", "dt_max", "reference_column_name", "unit"),
    "uuid": _uuid,
    "datetime": _datetime,
    "person_from_faker": _faker_person,
    "person": _managed_person,
}


def _llm_text(fields: _Fields, name: str) -> dict[str, Any]:
    column = {
        "type": "llm_text",
        "name": name,
        "model": fields.require("model_alias"),
        "prompt": fields.require("prompt"),
    }
    system = fields.take("system_prompt")
    if system is not None:
        column["system_prompt"] = system
    fields.finish(_COMMON_DEFAULTS, _LLM_DEFAULTS)
    return column


def _llm_structured(fields: _Fields, name: str) -> dict[str, Any]:
    schema = fields.require("output_format")
    if not isinstance(schema, Mapping):
        raise ConfigError(
            f"{fields.where}.output_format: must be a JSON schema (a mapping), got "
            f"{type(schema).__name__}"
        )
    column = _llm_text(fields, name)
    return {**column, "type": "llm_structured", "output_schema": dict(schema)}


def _llm_judge(fields: _Fields, name: str) -> dict[str, Any]:
    scores = fields.require("scores")
    if not isinstance(scores, list):
        raise ConfigError(f"{fields.where}.scores: must be a list, got {type(scores).__name__}")
    column = _llm_text(fields, name)
    return {**column, "type": "llm_judge", "scores": scores}


def _llm_code(fields: _Fields, name: str) -> dict[str, Any]:
    """data-designer's SQL dialects (`sql:postgres`, ...) are fenced as plain `sql`."""
    language = str(fields.require("code_lang")).split(":")[0].lower()
    column = _llm_text(fields, name)
    return {**column, "type": "llm_code", "code_lang": language}


def _expression(fields: _Fields, name: str) -> dict[str, Any]:
    column = {"type": "expression", "name": name, "template": fields.require("expr")}
    dtype = fields.take("dtype", "str")
    if dtype != "str":
        column["dtype"] = dtype
    fields.finish(_COMMON_DEFAULTS)
    return column


def _validation(fields: _Fields, name: str) -> dict[str, Any]:
    kind = fields.require("validator_type")
    params = _Fields(fields.require("validator_params"), f"{fields.where}.validator_params")
    params.take("validator_type")
    validator: dict[str, Any]
    if kind == "code":
        validator = {"type": "code", "code_lang": params.require("code_lang")}
    elif kind == "local_callable":
        validator = {"type": "function", "function": _function_reference(params)}
    elif kind == "remote":
        validator = {"type": "remote", "endpoint_url": params.require("endpoint_url")}
        for key in ("timeout", "max_retries", "retry_backoff", "max_parallel_requests"):
            if key in params.raw:
                validator[key] = params.take(key)
    else:
        raise ConfigError(
            f"{fields.where}.validator_type: data-designer's {kind!r} validator has no rowforge "
            "equivalent; rowforge converts 'code', 'local_callable' and 'remote'"
        )
    schema = params.take("output_schema")
    if schema is not None:
        validator["output_schema"] = _row_schema(schema, f"{params.where}.output_schema")
    params.finish()
    column = {
        "type": "validation",
        "name": name,
        "target_columns": fields.require("target_columns"),
        "validator": validator,
    }
    if "batch_size" in fields.raw:
        column["batch_size"] = fields.take("batch_size")
    fields.finish(_COMMON_DEFAULTS)
    return column


def _row_schema(schema: object, where: str) -> Any:
    """data-designer's `output_schema` describes a validator's whole answer, `{"data": [row,
    ...]}`; rowforge's describes one row: the schema of `data`'s items."""
    data = schema.get("properties", {}).get("data") if isinstance(schema, Mapping) else None
    items = data.get("items") if isinstance(data, Mapping) else None
    if not isinstance(items, Mapping):
        raise ConfigError(
            f"{where}: expected data-designer's schema of the whole answer, an object whose "
            "'data' property is an array with 'items' (the schema of one row)"
        )
    return dict(items)


def _function_reference(params: _Fields) -> str:
    """data-designer writes only a validation function's name (`is_valid`), which nothing can
    import; a config edited to rowforge's `module:function` form converts."""
    value = params.require("validation_function")
    if isinstance(value, str) and is_reference(value) and ":" in value:
        return value
    raise ConfigError(
        f"{params.where}.validation_function: data-designer's config keeps only the function's "
        f"name ({value!r}), which cannot be imported; write it as 'package.module:{value}' "
        "(rowforge imports that form) and convert again"
    )


_COLUMNS: dict[str, Callable[[_Fields, str], dict[str, Any]]] = {
    "sampler": _sampler,
    "llm-text": _llm_text,
    "llm-structured": _llm_structured,
    "llm-judge": _llm_judge,
    "llm-code": _llm_code,
    "expression": _expression,
    "validation": _validation,
}


def _column(raw: object, index: int) -> dict[str, Any] | None:
    """A rowforge column dict, or None for a seed-dataset column (gathered separately)."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    fields = _Fields(raw, f"columns[{index}] {name!r}")
    name = fields.text("name")
    drop = fields.take("drop", False)
    kind = fields.require("column_type")
    if kind == "seed-dataset":
        if drop:
            raise ConfigError(
                f"{fields.where}.drop: a dropped seed-dataset column has no rowforge "
                "equivalent yet; leave it out of the seed columns instead"
            )
        fields.finish(_COMMON_DEFAULTS)
        return None
    mapper = _COLUMNS.get(kind)
    if mapper is None:
        raise ConfigError(
            f"{fields.where}.column_type: data-designer's {kind!r} columns have no rowforge "
            f"equivalent yet; rowforge converts {sorted(_COLUMNS)}"
        )
    skip, propagate = fields.take("skip"), fields.take("propagate_skip", True)
    column = mapper(fields, name)
    if drop:
        column["drop"] = drop
    if skip is not None:
        skipping = _Fields(skip, f"{fields.where}.skip")
        column["skip"] = {"when": skipping.require("when")}
        value = skipping.take("value")
        if value is not None:
            column["skip"]["value"] = value
        skipping.finish()
    if propagate is not True:
        column["propagate_skip"] = propagate
    return column


def _seed_columns(raw: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """The seed dataset column. data-designer's builder lists no seed columns in the config it
    writes (its engine takes every column of the seed file), so without `names` the columns
    are read from the file's header: a Hub dataset is fetched into the Hugging Face cache."""
    seed = _Fields(raw.get("seed_config"), "seed_config")
    source = _Fields(seed.require("source"), "seed_config.source")
    kind = source.require("seed_type")
    if kind == "local":
        # data-designer resolves a relative path from the working directory, not from the
        # config file: so does the conversion, writing it out absolute.
        path = str(Path(str(source.require("path"))).resolve())
        source.finish()
    elif kind == "hf":
        # data-designer's Hub paths read `datasets/<owner>/<name>/<files>`; the key comes from
        # HF_TOKEN, never from the config
        path = "hf://" + str(source.require("path")).lstrip("/")
        source.finish({"token": None, "endpoint": "https://huggingface.co"})
    else:
        raise ConfigError(
            f"seed_config.source.seed_type: data-designer's {kind!r} seed source has no rowforge "
            "equivalent yet; rowforge converts 'local' files and 'hf' datasets"
        )
    strategy = seed.take("sampling_strategy", "ordered")
    if strategy not in ("ordered", "shuffle"):
        raise ConfigError(
            f"seed_config.sampling_strategy: must be 'ordered' or 'shuffle', got {strategy!r}"
        )
    seed.finish({"selection_strategy": None})
    if not names:
        names = _seed_file_columns(path)
    return {
        "type": "seed_dataset",
        "name": "seed_dataset",
        "columns": names,
        "path": path,
        "order": "ordered" if strategy == "ordered" else "shuffled",
        "with_replacement": False,
    }


def _seed_file_columns(path: str) -> list[str]:
    where = "seed_config.source.path"
    names: list[str] = []
    for file in seed_files(path, where):
        try:
            if file.suffix.lower() == ".parquet":
                header = list(pq.read_schema(file).names)
            else:
                header = [str(name) for name in pd.read_csv(file, nrows=0).columns]
        except (OSError, ValueError, pa.ArrowException) as error:
            raise ConfigError(f"{where}: cannot read the columns of {file}: {error}") from None
        names += [name for name in header if name not in names and not name.startswith("__")]
    return names


# -- processors and models ----------------------------------------------------------------------


def _processor(raw: object, index: int) -> dict[str, Any]:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    fields = _Fields(raw, f"processors[{index}] {name!r}")
    fields.take("name")
    kind = fields.require("processor_type")
    if kind != "drop_columns":
        raise ConfigError(
            f"{fields.where}.processor_type: data-designer's {kind!r} processor has no rowforge "
            "equivalent yet; rowforge converts 'drop_columns'"
        )
    processor = {"type": "drop_columns", "columns": fields.require("column_names")}
    fields.finish({"build_stage": "post_batch"})
    return processor


def _model(raw: object, index: int, providers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    alias = raw.get("alias") if isinstance(raw, Mapping) else None
    fields = _Fields(raw, f"model_configs[{index}] {alias!r}")
    model: dict[str, Any] = {"alias": fields.require("alias"), "model": fields.require("model")}
    provider_name = fields.require("provider")
    provider = providers.get(provider_name)
    if provider is None:
        raise ConfigError(
            f"{fields.where}.provider: unknown provider {provider_name!r}; give data-designer's "
            f"providers file with --providers (known: {sorted(providers) or 'none'})"
        )
    model.update(provider)
    where = f"{fields.where}.inference_parameters"
    params = _Fields(fields.take("inference_parameters", {}), where)
    if params.take("generation_type", "chat-completion") != "chat-completion":
        raise ConfigError(f"{params.where}.generation_type: only chat-completion models convert")
    # data-designer sends no temperature unless one is set (the provider's default applies),
    # so an unset one stays unset here; a sampled temperature (a distribution) has no equivalent.
    for key in ("temperature", "top_p"):
        value = params.take(key)
        if isinstance(value, Mapping):
            raise ConfigError(
                f"{where}.{key}: data-designer's sampled {key} (a distribution) has no rowforge "
                "equivalent yet; give a number"
            )
        model[key] = value
    for source, target in (
        ("max_tokens", "max_tokens"),
        ("max_parallel_requests", "max_parallel_requests"),
        ("timeout", "timeout_s"),
    ):
        value = params.take(source)
        if value is not None:
            model[target] = value
    extra_body = {**model.pop("extra_body", {}), **(params.take("extra_body") or {})}
    if extra_body:
        model["extra_body"] = extra_body
    params.finish()
    fields.finish({"skip_health_check": False})
    return model


def load_providers(path: Path | str) -> dict[str, dict[str, Any]]:
    """data-designer's providers file (`{"providers": [...]}`, YAML or JSON) as rowforge model
    fields per provider name."""
    source = Path(path)
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"{source}: cannot read the providers file: {error}") from None
    entries = raw.get("providers") if isinstance(raw, Mapping) else raw
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: a providers file holds a 'providers' list")
    try:
        return providers_from(entries)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def providers_from(entries: Sequence[object]) -> dict[str, dict[str, Any]]:
    """data-designer `ModelProvider` mappings as rowforge model fields, by provider name."""
    providers: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        fields = _Fields(entry, f"providers[{index}] {name!r}")
        name = fields.text("name")
        kind = fields.take("provider_type", "openai")
        if str(kind).lower() != "openai":
            raise ConfigError(
                f"{fields.where}.provider_type: only OpenAI-compatible providers convert, "
                f"got {kind!r}"
            )
        model: dict[str, Any] = {"provider": "openai", "base_url": fields.require("endpoint")}
        key = fields.take("api_key")
        if key is not None:
            if not isinstance(key, str) or not _ENV_NAME.match(key):
                raise ConfigError(
                    f"{fields.where}.api_key: rowforge reads keys from the environment; put the "
                    "key in an environment variable and give its name here"
                )
            model["api_key_env"] = key
        for extra in ("extra_body", "extra_headers"):
            value = fields.take(extra)
            if value:
                model[extra] = dict(value)
        fields.finish()
        providers[name] = model
    return providers


# -- the whole config ---------------------------------------------------------------------------


def from_data_designer(
    raw: Mapping[str, Any],
    *,
    providers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """rowforge's dict form of a data-designer config (see the module docstring); give it to
    `DatasetConfig.from_dict`."""
    body = raw.get("data_designer", raw)
    top = _Fields(body, "data_designer")
    known = dict(providers or {})
    inline = top.take("model_providers")
    if inline:
        known = {**providers_from(inline), **known}
    columns: list[dict[str, Any]] = []
    seeded: list[str] = []
    for index, column in enumerate(top.require("columns") or []):
        mapped = _column(column, index)
        if mapped is None:
            seeded.append(column["name"])
        else:
            columns.append(mapped)
    if seeded or body.get("seed_config") is not None:
        columns.insert(0, _seed_columns(body, seeded))
    top.take("seed_config")
    models = [_model(m, i, known) for i, m in enumerate(top.take("model_configs") or [])]
    processors = [_processor(p, i) for i, p in enumerate(top.take("processors") or [])]
    top.finish({"constraints": None, "tool_configs": [], "profilers": None, "seed_config": None})
    if body is not raw:  # the wrapper holds data-designer's version next to the config
        outer = _Fields(raw, "the config")
        outer.take("data_designer")
        outer.take("library_version")
        outer.finish()
    converted: dict[str, Any] = {"columns": columns, "processors": processors}
    if models:
        converted["models"] = models
    return converted
