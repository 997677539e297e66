"""Bad input, as a user meets it: every malformed config is a `ConfigError` naming the field.

Each case below is a YAML file with one mistake. It is checked three ways:

1. `load_config` (and, for what only a full check can see, `validate_config`) raises a
   `ConfigError` whose one-line message contains the field path, e.g.
   `models[0] 'w'.mock: must be a mapping, got str 'fast'`;
2. `rowforge validate bad.yaml` exits 2 with exactly one line on stderr and no traceback;
3. `rowforge run bad.yaml -o OUT` exits 2 and creates no OUT, and an OUT that already holds a
   file is left byte-identical.

A case's `stage` says which check finds it: "load" (the config itself is wrong), "compile" (the
config is well-formed but names something that is missing on this machine: a seed file, a
function) or "validate" (only `rowforge validate` looks: an unset API key variable, a template
that reads a field a sample value does not have). Malformed *calls* of the Python API are at the
end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest
from typer.testing import CliRunner, Result

import rowforge
from rowforge.config.dataset import DatasetConfig, load_config
from rowforge.config.validate import validate_config
from rowforge.errors import ConfigError
from rowforge.scheduler import RunConfig

ROOT = Path(__file__).resolve().parents[2]

#: An environment variable no test sets; the openai case names it as its API key variable.
UNSET_KEY = "ROWFORGE_TEST_SURELY_UNSET_KEY"

GOOD_COLUMNS = """\
  - {type: category, name: topic, values: [billing, shipping]}
  - {type: llm_text, name: reply, model: w, prompt: "Answer about {{ topic }}."}
"""


@attrs.frozen
class Case:
    id: str
    text: str
    expected: str
    stage: str = "load"  # "load", "compile" or "validate"


def yaml_case(id: str, body: str, expected: str, stage: str = "load") -> Case:
    return Case(id, textwrap.dedent(body), expected, stage)


def with_models(models: str, columns: str = GOOD_COLUMNS) -> str:
    return f"models:\n{textwrap.dedent(models)}columns:\n{columns}"


def column_case(id: str, column: str, expected: str, stage: str = "load") -> Case:
    """One bad column after a good one (`a`, an integer), on the default mock model."""
    text = f"columns:\n  - {{type: integer, name: a, low: 1, high: 5}}\n  - {column}\n"
    return Case(id, text, expected, stage)


def processor_case(id: str, processor: str, expected: str, stage: str = "load") -> Case:
    text = (
        "models:\n  - {alias: w, provider: mock}\n"
        f"columns:\n{GOOD_COLUMNS}processors:\n  - {processor}\n"
    )
    return Case(id, text, expected, stage)


CASES: list[Case] = [
    # -- the four mistakes of issue 9, item 10 ----------------------------------------------
    Case(
        "model mock is a string",
        with_models("  - {alias: w, provider: mock, mock: fast}\n"),
        "models[0] 'w'.mock: must be a mapping, got str 'fast'",
    ),
    column_case(
        "output_schema is a string",
        "{type: llm_structured, name: verdict, model: mock, prompt: 'Rate {{ a }}',"
        " output_schema: an object with a score}",
        "columns[1] 'verdict'.output_schema: must be a JSON-schema object (a mapping), got str",
    ),
    processor_case(
        "drop_columns names a missing column",
        "{type: drop_columns, columns: [ghost]}",
        "processors[0] 'drop_columns'.columns: unknown column 'ghost'; known: ['reply', 'topic']",
    ),
    Case(
        "openai api_key_env unset",
        with_models(
            f"  - {{alias: w, provider: openai, api_key_env: {UNSET_KEY},"
            " base_url: 'http://127.0.0.1:9/v1'}\n"
        ),
        f"models[0] 'w'.api_key_env: names environment variable {UNSET_KEY!r}, which is not set",
        stage="validate",
    ),
    column_case(
        "template refused by the sandbox",
        """{type: expression, name: t, template: "{{ ''.__class__ }}"}""",
        "columns[1] 't'.template: the template sandbox refuses it: access to attribute "
        "'__class__' of 'str' object is unsafe",
    ),
    # -- document shape ---------------------------------------------------------------------
    Case("empty file", "", "a dataset config must be a mapping, got NoneType"),
    Case("a list, not a mapping", "- {type: uuid, name: u}\n", "must be a mapping, got list"),
    Case(
        "unknown top-level field",
        "colums: []\ncolumns:\n  - {type: uuid, name: u}\n",
        "unknown top-level fields ['colums']",
    ),
    Case("columns is a string", "columns: topic\n", "columns: must be a list, got str 'topic'"),
    Case(
        "models is a mapping",
        "models: {alias: w}\ncolumns:\n  - {type: uuid, name: u}\n",
        "models: must be a list, got dict",
    ),
    Case(
        "processors is a string",
        "processors: drop\ncolumns:\n  - {type: uuid, name: u}\n",
        "processors: must be a list, got str 'drop'",
    ),
    Case("seed is a string", "seed: '7'\ncolumns:\n  - {type: uuid, name: u}\n", "seed: must be"),
    Case("seed is a bool", "seed: true\ncolumns:\n  - {type: uuid, name: u}\n", "seed: must be"),
    Case(
        "a self-referencing YAML anchor",
        "columns:\n  - &c {type: llm_structured, name: v, model: mock, prompt: p,"
        " output_schema: {type: object, properties: {x: *c}}}\n",
        "columns[0] 'v'.output_schema: ",
    ),
    # -- columns ----------------------------------------------------------------------------
    column_case("column is a list", "[uuid, u]", "columns[1]: a column must be a mapping"),
    column_case("column type unknown", "{type: nope, name: x}", "columns[1] 'x'.type: unknown"),
    column_case("column name empty", "{type: uuid, name: ''}", "columns[1].name: must be an"),
    column_case("column name a bool", "{type: uuid, name: true}", "columns[1].name: must be an"),
    column_case(
        "duplicate column name",
        "{type: uuid, name: a}",
        "columns[1] 'a': column 'a' is already defined by columns[0] 'a'",
    ),
    column_case(
        "unknown column field",
        "{type: uniform, name: x, lo: 1}",
        "columns[1] 'x': unknown fields ['lo'] for a 'uniform' column",
    ),
    column_case(
        "category values a string",
        "{type: category, name: x, values: abc}",
        "columns[1] 'x'.values: must be a list, got str 'abc'",
    ),
    column_case(
        "category values of mixed kinds",
        "{type: category, name: x, values: [1, two]}",
        "columns[1] 'x'.values: must all be of one kind",
    ),
    column_case(
        "weights a string",
        "{type: category, name: x, values: [p, q], weights: '12'}",
        "columns[1] 'x'.weights: must be a list of numbers, got str '12'",
    ),
    column_case(
        "weights of bools",
        "{type: category, name: x, values: [p, q], weights: [true, false]}",
        "columns[1] 'x'.weights: must be non-negative finite numbers",
    ),
    column_case(
        "a negative weight",
        "{type: category, name: x, values: [p, q], weights: [1, -1]}",
        "columns[1] 'x'.weights: must be non-negative finite numbers",
    ),
    column_case(
        "integer bound a string",
        "{type: integer, name: x, low: '1', high: 5}",
        "columns[1] 'x'.low: must be an integer, got str '1'",
    ),
    column_case(
        "integer bound a bool",
        "{type: integer, name: x, low: 0, high: true}",
        "columns[1] 'x'.high: must be an integer, got bool True",
    ),
    column_case(
        "integer bound beyond 64 bits",
        "{type: integer, name: x, low: 0, high: 100000000000000000000}",
        "columns[1] 'x'.high: must fit in a 64-bit integer",
    ),
    column_case(
        "uniform bound null",
        "{type: uniform, name: x, low: null}",
        "columns[1] 'x'.low: must be a finite number, got None",
    ),
    column_case(
        "bernoulli p a string",
        "{type: bernoulli, name: x, p: '0.5'}",
        "columns[1] 'x'.p: must be a number",
    ),
    column_case(
        "datetime start a number",
        "{type: datetime, name: x, start: 5, end: '2024-01-01'}",
        "columns[1] 'x'.start: must be an ISO-8601 date string, got int 5",
    ),
    column_case(
        "person locale unknown",
        "{type: person, name: x, locale: xx_XX}",
        "columns[1] 'x'.locale: unknown locale 'xx_XX'",
    ),
    column_case(
        "expression template a number",
        "{type: expression, name: x, template: 5}",
        "columns[1] 'x'.template: must be a string (a Jinja2 template), got int 5",
    ),
    column_case(
        "expression refers to an unknown column",
        "{type: expression, name: x, template: '{{ zz }}'}",
        "columns[1] 'x': refers to unknown column 'zz'",
    ),
    column_case(
        "bad jinja syntax",
        "{type: expression, name: x, template: '{{ a '}",
        "columns[1] 'x'.template: bad template at line 1",
    ),
    column_case(
        "prompt a mapping",
        "{type: llm_text, name: x, model: mock, prompt: {text: hi}}",
        "columns[1] 'x'.prompt: must be a string (a Jinja2 template), got dict",
    ),
    column_case(
        "column model a list",
        "{type: llm_text, name: x, model: [mock], prompt: hi}",
        "columns[1] 'x'.model: must be a model alias (a string), got list",
    ),
    column_case(
        "unknown model alias",
        "{type: llm_text, name: x, model: gpt, prompt: hi}",
        "columns[1] 'x'.model: unknown model alias 'gpt'",
    ),
    column_case(
        "system prompt refused by the sandbox",
        "{type: llm_text, name: x, model: mock, prompt: hi,"
        " system_prompt: '{{ a.__class__.__mro__ }}'}",
        "columns[1] 'x'.system_prompt: the template sandbox refuses it",
    ),
    column_case(
        "output_schema not a valid JSON Schema",
        "{type: llm_structured, name: x, model: mock, prompt: hi, output_schema: {type: objectx}}",
        "columns[1] 'x'.output_schema: invalid JSON Schema: ",
    ),
    column_case(
        "output_schema a list",
        "{type: llm_structured, name: x, model: mock, prompt: hi, output_schema: [score]}",
        "columns[1] 'x'.output_schema: must be a JSON-schema object (a mapping), got list",
    ),
    column_case(
        "max_parse_retries a string",
        "{type: llm_structured, name: x, model: mock, prompt: hi,"
        " output_schema: {type: object}, max_parse_retries: '2'}",
        "columns[1] 'x'.max_parse_retries: must be an integer >= 0, got str '2'",
    ),
    column_case(
        "custom depends_on a mapping",
        "{type: custom, name: x, function: 'os:getcwd', depends_on: {a: 1}}",
        "columns[1] 'x'.depends_on: must be a list of column names, got dict",
    ),
    column_case(
        "custom allow_resize a string",
        "{type: custom, name: x, function: 'os:getcwd', kind: batch, allow_resize: 'yes'}",
        "columns[1] 'x'.allow_resize: must be a boolean, got str 'yes'",
    ),
    column_case(
        "dependency cycle",
        "{type: expression, name: x, template: '{{ y }}'}\n"
        "  - {type: expression, name: y, template: '{{ x }}'}",
        "columns: dependency cycle x -> y -> x",
    ),
    column_case(
        "seed columns a number",
        "{type: seed_dataset, name: s, path: seed.csv, columns: 5}",
        "columns[1] 's'.columns: must be a list of column names, got int 5",
    ),
    column_case(
        "seed with_replacement a string",
        "{type: seed_dataset, name: s, path: seed.csv, columns: [city], with_replacement: 'no'}",
        "columns[1] 's'.with_replacement: must be a boolean, got str 'no'",
    ),
    column_case(
        "seed frame in a file",
        "{type: seed_dataset, name: s, frame: x, columns: [city]}",
        "columns[1] 's'.frame: only a Python config can hold a DataFrame",
    ),
    column_case(
        "seed file missing",
        "{type: seed_dataset, name: s, path: missing.csv, columns: [city]}",
        "'s'.path: no such file",
        stage="compile",
    ),
    column_case(
        "seed file lacks a column",
        "{type: seed_dataset, name: s, path: seed.csv, columns: [city, zip]}",
        "columns[1] 's'.columns: seed.csv has no column 'zip'; it has ['city', 'code']",
        stage="validate",
    ),
    column_case(
        "custom function cannot be imported",
        "{type: custom, name: x, function: 'rowforge_nope:fn'}",
        "cannot import 'rowforge_nope:fn'",
        stage="compile",
    ),
    column_case(
        "template reads a field the schema does not declare",
        "{type: llm_structured, name: v, model: mock, prompt: 'Rate {{ a }}',"
        " output_schema: {type: object, properties: {score: {type: integer}}}}\n"
        "  - {type: expression, name: x, template: '{{ v.scor }}'}",
        "columns[2] 'x'.template: fails on sample values: 'dict object' has no attribute 'scor'",
        stage="validate",
    ),
    # -- models -----------------------------------------------------------------------------
    Case("model a list", with_models("  - [w, mock]\n"), "models[0]: a model must be a mapping"),
    Case("model alias missing", with_models("  - {provider: mock}\n"), "models[0].alias: is"),
    Case(
        "model alias a number",
        with_models("  - {alias: 5}\n"),
        "models[0].alias: must be a non-empty string, got int 5",
    ),
    Case(
        "unknown model field",
        with_models("  - {alias: w, temp: 1}\n"),
        "models[0] 'w': unknown fields ['temp'] for a model",
    ),
    Case(
        "max_parallel_requests a string",
        with_models("  - {alias: w, max_parallel_requests: '4'}\n"),
        "models[0] 'w'.max_parallel_requests: must be an int >= 1, got '4'",
    ),
    Case(
        "temperature a bool",
        with_models("  - {alias: w, temperature: true}\n"),
        "models[0] 'w'.temperature: must be in [0, 2], got True",
    ),
    Case(
        "negative timeout",
        with_models("  - {alias: w, timeout_s: -1}\n"),
        "models[0] 'w'.timeout_s: must be positive, got -1",
    ),
    Case(
        "negative latency",
        with_models("  - {alias: w, mock: {latency_ms: [-5, 10]}}\n"),
        "models[0] 'w'.mock.latency_ms: must be finite numbers with 0 <= lo <= hi",
    ),
    Case(
        "latency a string",
        with_models("  - {alias: w, mock: {latency_ms: fast}}\n"),
        "models[0] 'w'.mock.latency_ms: must be a pair [lo, hi], got 'fast'",
    ),
    Case(
        "unknown mock field",
        with_models("  - {alias: w, mock: {bogus: 1}}\n"),
        "models[0] 'w'.mock: unknown fields ['bogus']",
    ),
    Case(
        "mock fault rates above one",
        with_models("  - {alias: w, mock: {error_rate: 0.6, refusal_rate: 0.6}}\n"),
        "models[0] 'w'.mock: rate_limit_rate + error_rate + refusal_rate + hang_rate must be",
    ),
    Case(
        "duplicate model alias",
        with_models("  - {alias: w}\n  - {alias: w}\n"),
        "models[1].alias: duplicate model alias 'w'",
    ),
    # -- processors -------------------------------------------------------------------------
    processor_case("processor a list", "[drop_columns]", "processors[0]: a processor must be"),
    processor_case(
        "processor type unknown", "{type: sort}", "processors[0].type: unknown processor type"
    ),
    processor_case(
        "drop_columns columns a number",
        "{type: drop_columns, columns: 5}",
        "processors[0] 'drop_columns'.columns: must be a list of column names, got int 5",
    ),
    processor_case(
        "drop_columns without columns",
        "{type: drop_columns}",
        "processors[0] 'drop_columns'.columns: is required",
    ),
    processor_case(
        "processor stage unknown",
        "{type: drop_columns, columns: [topic], stage: later}",
        "processors[0] 'drop_columns'.stage: must be one of ('pre_batch', 'post_batch')",
    ),
    processor_case(
        "pre_batch processor reads an LLM column",
        "{type: drop_columns, columns: [reply], stage: pre_batch}",
        "processors[0] 'drop_columns'.columns: unknown column 'reply' at stage pre_batch",
    ),
    processor_case(
        "rename mapping a list",
        "{type: rename_columns, mapping: [topic]}",
        "processors[0] 'rename_columns'.mapping: must be a mapping of old to new names, got list",
    ),
    processor_case(
        "rename of a missing column",
        "{type: rename_columns, mapping: {ghost: spirit}}",
        "processors[0] 'rename_columns'.mapping: unknown column 'ghost'",
    ),
    processor_case(
        "schema_transform reads a missing column",
        "{type: schema_transform, column: doc, template: {q: '{{ ghost }}'}}",
        "processors[0] 'schema_transform'.template.q: refers to unknown column 'ghost'",
    ),
    processor_case(
        "schema_transform refused by the sandbox",
        "{type: schema_transform, column: doc, template: {q: '{{ topic.__class__ }}'}}",
        "processors[0] 'schema_transform'.template.q: the template sandbox refuses it",
    ),
    processor_case(
        "custom processor cannot be imported",
        "{type: custom, function: 'rowforge_nope:fn'}",
        "processors[0] 'custom'.function: cannot import 'rowforge_nope:fn'",
    ),
]

IDS = [case.id for case in CASES]


def test_the_suite_tries_at_least_thirty_distinct_bad_inputs() -> None:
    assert len(set(IDS)) == len(IDS) >= 30


@pytest.fixture
def bad_file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Case, Path]:
    case: Case = request.param
    (tmp_path / "seed.csv").write_text("city,code\nOslo,1\nLima,2\n", encoding="utf-8")
    path = tmp_path / "bad.yaml"
    path.write_text(case.text, encoding="utf-8")
    return case, path


@pytest.fixture(autouse=True)
def _no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET_KEY, raising=False)


def _check(path: Path) -> None:
    validate_config(load_config(path))


def _one_line(error: ConfigError) -> str:
    message = str(error)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("bad_file", CASES, ids=IDS, indirect=True)
def test_a_bad_config_is_a_config_error_naming_the_field(bad_file: tuple[Case, Path]) -> None:
    case, path = bad_file
    if case.stage == "load":
        with pytest.raises(ConfigError) as raised:
            load_config(path)
    else:
        config = load_config(path)  # well-formed: a Python user can still build it
        assert isinstance(config, DatasetConfig)
        with pytest.raises(ConfigError) as raised:
            validate_config(config)
    assert case.expected in _one_line(raised.value)


def invoke(*args: str | Path) -> Result:
    from rowforge.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args], env={"COLUMNS": "200"})


@pytest.mark.parametrize("bad_file", CASES, ids=IDS, indirect=True)
def test_rowforge_validate_exits_2_with_one_line_naming_the_field(
    bad_file: tuple[Case, Path],
) -> None:
    case, path = bad_file
    result = invoke("validate", path)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"rowforge validate: invalid input: {path}: "), lines[0]
    if case.stage != "compile":  # compile's own messages do not carry the file position
        assert case.expected in lines[0]


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes() if path.is_file() else b"<dir>"
        for path in sorted(directory.rglob("*"))
    }


RUN_CASES = [pytest.param(case, id=case.id) for case in CASES]


@pytest.fixture(scope="module")
def earlier_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished rowforge output: what `--overwrite` would replace."""
    directory = tmp_path_factory.mktemp("earlier")
    good = directory / "good.yaml"
    good.write_text(f"models:\n  - {{alias: w, provider: mock}}\ncolumns:\n{GOOD_COLUMNS}")
    output = directory / "out"
    rowforge.build(load_config(good), 3, output)
    assert (output / "metadata.json").is_file()
    return output


@pytest.mark.parametrize("bad_file", RUN_CASES, indirect=True)
def test_rowforge_run_exits_2_and_creates_or_changes_no_output_directory(
    bad_file: tuple[Case, Path], earlier_output: Path
) -> None:
    _, path = bad_file
    fresh = path.parent / "fresh-out"
    result = invoke("run", path, "-n", "3", "-o", fresh)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not fresh.exists()

    # Even told to replace an earlier output, a bad config must leave it as it was.
    existing = path.parent / "existing-out"
    shutil.copytree(earlier_output, existing)
    before = _tree(existing)
    result = invoke("run", path, "-n", "3", "-o", existing, "--overwrite")
    assert result.exit_code == 2, result.output
    assert _tree(existing) == before


#: Cases run in a real process: the message a user sees, with no traceback in real output.
SUBPROCESS_CASES = [
    case
    for case in CASES
    if case.id
    in {
        "model mock is a string",
        "output_schema is a string",
        "drop_columns names a missing column",
        "openai api_key_env unset",
        "template refused by the sandbox",
    }
]


@pytest.mark.parametrize(
    "bad_file", SUBPROCESS_CASES, ids=[c.id for c in SUBPROCESS_CASES], indirect=True
)
def test_a_real_rowforge_validate_process_prints_one_line_and_no_traceback(
    bad_file: tuple[Case, Path],
) -> None:
    case, path = bad_file
    env = {key: value for key, value in os.environ.items() if key != UNSET_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "rowforge.cli", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"rowforge validate: invalid input: {path}: " + done.stderr.split(f"{path}: ", 1)[1].strip()
    ]
    assert case.expected in done.stderr


def test_an_unreadable_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"columns:\n  - {type: category, name: c, values: [caf\xe9]}\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml: cannot read config: "):
        load_config(path)


def test_a_config_with_an_unset_key_variable_can_still_be_built_in_python() -> None:
    config = DatasetConfig.from_dict(
        {
            "models": [{"alias": "w", "provider": "openai", "api_key_env": UNSET_KEY}],
            "columns": [{"type": "llm_text", "name": "t", "model": "w", "prompt": "hi"}],
        }
    )
    assert config.model("w").api_key_env == UNSET_KEY
    with pytest.raises(ConfigError, match=r"models\[0\] 'w'\.api_key_env: "):
        validate_config(config)


def test_validate_config_accepts_every_example(monkeypatch: pytest.MonkeyPatch) -> None:
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        validate_config(load_config(example))


# -- malformed calls ---------------------------------------------------------------------------

CONFIG = DatasetConfig.from_dict({"columns": [{"type": "uuid", "name": "u"}]})


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(lambda out: rowforge.build(CONFIG, 0, out), "num_records", id="build 0"),
        pytest.param(lambda out: rowforge.build(CONFIG, -3, out), "num_records", id="build -3"),
        pytest.param(lambda out: rowforge.build(CONFIG, "10", out), "num_records", id="build '10'"),
        pytest.param(lambda out: rowforge.build(CONFIG, 2.5, out), "num_records", id="build 2.5"),
        pytest.param(lambda out: rowforge.preview(CONFIG, -1), "num_records", id="preview -1"),
        pytest.param(lambda out: rowforge.preview(CONFIG, 0), "num_records", id="preview 0"),
    ],
)
def test_a_bad_number_of_records_is_a_config_error_naming_it(
    tmp_path: Path, call: Any, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        call(tmp_path / "out")


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(
            lambda out: RunConfig(buffer_size="x"),
            "RunConfig.buffer_size",
            id="RunConfig buffer_size 'x'",
        ),
        pytest.param(
            lambda out: RunConfig(buffer_size=2.5),
            "RunConfig.buffer_size",
            id="RunConfig buffer_size 2.5",
        ),
        pytest.param(
            lambda out: rowforge.build(CONFIG, True, out),
            "num_records",
            id="build True",
        ),
        pytest.param(
            lambda out: rowforge.build({"columns": []}, 5, out),  # type: ignore[arg-type]
            "config",
            id="build of a dict",
        ),
        pytest.param(
            lambda out: rowforge.build(CONFIG, 5, out, {"buffer_size": 1}),  # type: ignore[arg-type]
            "run_config",
            id="build with a dict run_config",
        ),
    ],
)
def test_a_malformed_call_is_a_config_error_naming_the_argument(
    tmp_path: Path, call: Any, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        call(tmp_path / "out")


@pytest.mark.parametrize("records", [0, -3, "10"])
def test_build_with_a_bad_number_of_records_creates_no_output_directory(
    tmp_path: Path, records: Any
) -> None:
    with pytest.raises(ConfigError):
        rowforge.build(CONFIG, records, tmp_path / "out")
    assert not (tmp_path / "out").exists()
