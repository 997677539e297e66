"""The config loader never fails with anything but a `ConfigError`.

Whatever document it is given (arbitrary nestings of mappings, lists and the scalars YAML can
produce, or a valid config with a few mutations: a key dropped, a value replaced by one of
another type, an unknown key added, a value wrapped in a list), `DatasetConfig.from_dict` and
`load_config` (on the document written as YAML, as JSON, or on arbitrary text) give a config or
raise `ConfigError`; and `validate_config` on any config they give does the same. Any other
exception is a bug: the user would see a traceback instead of the field to fix. A fourth
fuzzer puts arbitrary values in the known fields of a known column, model or processor type.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rowforge.config.columns import COLUMN_TYPES
from rowforge.config.dataset import DatasetConfig, load_config
from rowforge.config.processors import FIELDS as PROCESSOR_FIELDS
from rowforge.config.validate import validate_config
from rowforge.errors import ConfigError
from rowforge.models import MockSettings, ModelConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Valid documents covering every column type, processor type and model field.
BASES: list[dict[str, Any]] = [
    {
        "seed": 7,
        "models": [
            {
                "alias": "writer",
                "provider": "mock",
                "temperature": 0.5,
                "max_tokens": 64,
                "timeout_s": 5,
                "max_parallel_requests": 4,
                "mock": {"latency_ms": [0, 1], "error_rate": 0.1, "seed": 3},
            },
            {"alias": "remote", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"},
        ],
        "columns": [
            {"type": "category", "name": "topic", "values": ["a", "b"], "weights": [1, 2]},
            {"type": "uniform", "name": "u", "low": 0, "high": 1},
            {"type": "gaussian", "name": "g", "mean": 0, "stddev": 1},
            {"type": "integer", "name": "k", "low": 1, "high": 9},
            {"type": "bernoulli", "name": "flag", "p": 0.5},
            {"type": "uuid", "name": "id"},
            {"type": "datetime", "name": "when", "start": "2024-01-01", "end": "2024-02-01"},
            {"type": "person", "name": "who", "field": "first_name", "locale": "en_US"},
            {"type": "expression", "name": "label", "template": "{{ topic }}-{{ k }}"},
            {
                "type": "llm_text",
                "name": "reply",
                "model": "writer",
                "prompt": "About {{ label }}",
                "system_prompt": "Be brief.",
            },
            {
                "type": "llm_structured",
                "name": "verdict",
                "model": "writer",
                "prompt": "Rate {{ reply }}",
                "output_schema": {
                    "type": "object",
                    "properties": {"score": {"type": "integer"}},
                    "required": ["score"],
                },
                "max_parse_retries": 1,
            },
            {
                "type": "custom",
                "name": "twice",
                "function": "tests.config.test_columns:double_the_integer",
                "depends_on": ["k"],
                "kind": "cell",
            },
            {
                "type": "seed_dataset",
                "name": "tables",
                "path": str(EXAMPLES / "data" / "tables.csv"),
                "columns": ["table_name", "ddl"],
                "order": "shuffled",
                "with_replacement": True,
            },
        ],
        "processors": [
            {"type": "rename_columns", "mapping": {"who": "person"}, "stage": "pre_batch"},
            {"type": "schema_transform", "column": "doc", "template": {"q": "{{ reply }}"}},
            {"type": "drop_columns", "columns": ["u"]},
        ],
    },
    *(yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(EXAMPLES.glob("*.yaml"))),
]

KEYS = st.one_of(
    st.sampled_from(
        ["type", "name", "columns", "models", "processors", "seed", "alias", "mock", "values"]
    ),
    st.text(max_size=8),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", " ", "{{", "{{ x }}", "{{ ''.__class__ }}", "a:b", "..:x", "mock", "-1"]),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
)
#: Anything YAML's safe loader can produce (and a little more: tuples, sets of scalars).
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(KEYS, inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=20,
)


def _slots(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) pair in a document: where a value can be changed."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _slots(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _slots(value)


def _retyped(value: Any) -> list[Any]:
    """Values of another type a YAML typo could give in place of `value`."""
    options: list[Any] = [None, str(value), [value], {"value": value}, True, 0, -1, 1.5, ""]
    if isinstance(value, str):
        options += [value.split(), {value: value}, float("nan"), value + "}}"]
    if isinstance(value, int | float) and not isinstance(value, bool):
        options += [-value, value * 10**20, math.inf, str(value), bool(value)]
    if isinstance(value, list):
        options += [value[0] if value else None, {str(i): v for i, v in enumerate(value)}, []]
    if isinstance(value, dict):
        options += [list(value), list(value.values()), {}]
    return options


@st.composite
def mutated_configs(draw: st.DrawFn) -> Any:
    holder = {"root": copy.deepcopy(draw(st.sampled_from(BASES)))}
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(list(_slots(holder))))
        action = draw(st.sampled_from(["drop", "replace", "retype", "add", "wrap"]))
        if action == "drop" and container is not holder:
            del container[key]
        elif action == "replace":
            container[key] = draw(DOCUMENTS)
        elif action == "retype":
            container[key] = draw(st.sampled_from(_retyped(container[key])))
        elif action == "add" and isinstance(container[key], dict):
            container[key][draw(KEYS)] = draw(DOCUMENTS)
        elif action == "wrap":
            container[key] = [container[key]]
    return holder["root"]


def config_or_config_error(load: Any) -> DatasetConfig | None:
    """Run `load`; a config or a ConfigError are the only acceptable outcomes."""
    try:
        config = load()
    except ConfigError as error:
        assert str(error), "a ConfigError must say what is wrong"
        return None
    assert isinstance(config, DatasetConfig)
    return config


def check_document(document: Any) -> None:
    config = config_or_config_error(lambda: DatasetConfig.from_dict(document, base_dir=EXAMPLES))
    if config is not None:
        config_or_config_error(lambda: validate_config(config) or config)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(DOCUMENTS)
def test_any_document_gives_a_config_or_a_config_error(document: Any) -> None:
    check_document(document)
    check_document({"columns": document})
    check_document({"columns": [document]})
    check_document({"columns": [{"type": "uuid", "name": "u"}], "models": [document]})
    check_document({"columns": [{"type": "uuid", "name": "u"}], "processors": [document]})


@FUZZ
@given(mutated_configs())
def test_a_mutated_config_gives_a_config_or_a_config_error(document: Any) -> None:
    check_document(document)


@st.composite
def entries_with_arbitrary_fields(draw: st.DrawFn) -> Any:
    """A column, model or processor of a known type whose known fields hold arbitrary values:
    every field's own checks get exercised, not only the first one a random document hits."""
    section = draw(st.sampled_from(["columns", "models", "processors"]))
    if section == "columns":
        kind = draw(st.sampled_from(sorted(COLUMN_TYPES)))
        names = [a.name for a in attrs.fields(COLUMN_TYPES[kind]) if a.init]
        entry = {"type": kind, "name": "c"}
    elif section == "models":
        names = [a.name for a in attrs.fields(ModelConfig)]
        entry = {"alias": "m"}
    else:
        kind = draw(st.sampled_from(sorted(PROCESSOR_FIELDS)))
        required, optional = PROCESSOR_FIELDS[kind]
        names = [*required, *optional]
        entry = {"type": kind}
    values = st.one_of(DOCUMENTS, st.sampled_from(["c", "u", "m", "pre_batch", "object"]))
    entry.update(draw(st.dictionaries(st.sampled_from(names), values, max_size=len(names))))
    if section == "models" and draw(st.booleans()):
        fields = [a.name for a in attrs.fields(MockSettings)]
        entry["mock"] = draw(st.dictionaries(st.sampled_from(fields), values, max_size=4))
    base: dict[str, Any] = {"columns": [{"type": "uuid", "name": "u"}]}
    if section == "columns":
        base["columns"].append(entry)
    else:
        base[section] = [entry]
    return base


@FUZZ
@given(entries_with_arbitrary_fields())
def test_known_fields_with_arbitrary_values_give_a_config_or_a_config_error(
    document: Any,
) -> None:
    check_document(document)


def _yaml_text(document: Any) -> str | None:
    try:
        return yaml.safe_dump(document)
    except yaml.YAMLError:  # tuples and frozensets have no safe YAML form
        return None


@FUZZ
@given(st.one_of(mutated_configs(), DOCUMENTS), st.text(max_size=200))
def test_load_config_on_any_file_gives_a_config_or_a_config_error(document: Any, text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        files: list[tuple[str, str | bytes]] = [("text.yaml", text), ("text.json", text)]
        dumped = _yaml_text(document)
        if dumped is not None:
            files.append(("config.yaml", dumped))
            files.append(("broken.yaml", dumped[: len(dumped) // 2]))
        files.append(("config.json", json.dumps(document, default=str)))
        files.append(("binary.yaml", text.encode("utf-16")))
        for name, content in files:
            path = Path(directory) / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
            config = config_or_config_error(lambda path=path: load_config(path))
            if config is not None:
                config_or_config_error(lambda config=config: validate_config(config) or config)


#: Inputs found by the fuzzers above (or by hand) that once escaped as another exception.
KNOWN: dict[str, Any] = {
    "a mock that is a string": {
        "models": [{"alias": "w", "provider": "mock", "mock": "fast"}],
        "columns": [{"type": "uuid", "name": "u"}],
    },
    "an output_schema that is a string": {
        "columns": [
            {
                "type": "llm_structured",
                "name": "v",
                "model": "mock",
                "prompt": "p",
                "output_schema": "an object with a score",
            }
        ]
    },
    "rename_columns mapping that is a string": {
        "columns": [{"type": "uuid", "name": "u"}],
        "processors": [{"type": "rename_columns", "mapping": "u"}],
    },
    "depends_on a list of lists": {
        "columns": [{"type": "custom", "name": "c", "function": "a:b", "depends_on": [[1]]}]
    },
    "top-level keys of mixed types": {1: 2, "x": 3, "columns": []},
    "a seed path that is a number": {
        "columns": [{"type": "seed_dataset", "name": "s", "path": 5, "columns": ["a"]}]
    },
    "a relative import as a custom function": {
        "columns": [{"type": "custom", "name": "c", "function": "..:x"}]
    },
    "a date where a datetime string belongs": {
        "columns": [{"type": "datetime", "name": "d", "start": dt.date(2024, 1, 1), "end": 5}]
    },
    "an output_schema with a non-string key": {
        "columns": [
            {
                "type": "llm_structured",
                "name": "v",
                "model": "mock",
                "prompt": "p",
                "output_schema": {"type": "object", 1: 2},
            }
        ]
    },
}


def test_known_escapes_are_config_errors() -> None:
    for name, document in KNOWN.items():
        try:
            DatasetConfig.from_dict(document)
        except ConfigError:
            continue
        raise AssertionError(f"{name}: accepted")


def test_a_self_referencing_yaml_anchor_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(
        "columns:\n"
        "  - {type: uuid, name: u}\n"
        "processors:\n"
        "  - &p {type: schema_transform, column: j, template: {a: *p}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "processors[0] 'schema_transform'.template: must be JSON-shaped: nested" in str(
        raised.value
    )
