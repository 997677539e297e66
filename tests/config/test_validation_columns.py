"""validation columns: code (real ruff and sqlfluff), function and remote validators, their
config errors, their Arrow types, and whole runs on both engines written to Parquet.

Remote validators talk to `ValidatorServer`, an aiohttp app on 127.0.0.1 that each test starts
and stops itself (no other network)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from aiohttp import web

from rowforge.api import build, preview
from rowforge.config.columns import SeedDatasetColumns, ValidationColumn
from rowforge.config.compile import column_type, compile_config
from rowforge.config.dataset import DatasetConfig, load_config
from rowforge.errors import ConfigError, DatasetGenerationError
from rowforge.scheduler import RunConfig
from rowforge.validators.python import MESSAGE_TYPE
from tests.reliability.netguard import ServerThread, dead_port

HERE = __name__

VALID_CODE = "def add(a, b):\n    return a + b\n"
UNDEFINED_NAME = "def f():\n    return undefined_name\n"
SYNTAX_ERROR = "def broken(:\n    pass\n"
#: Only a refactor message (SIM108): still valid, with a score below 10.
REFACTOR_ONLY = "a = 1\nif a:\n    b = 1\nelse:\n    b = 2\n"


def seeded(frame: pd.DataFrame, *columns: ValidationColumn) -> DatasetConfig:
    """The rows of `frame` in order, then the validation columns."""
    seed = SeedDatasetColumns(name="rows", frame=frame, columns=list(frame.columns))
    return DatasetConfig([seed, *columns])


def run(config: DatasetConfig, n: int, **run_config: Any) -> Any:
    return preview(config, n, RunConfig(**run_config))


def rows_of(result: Any) -> pd.DataFrame:
    return result.dataset.sort_index()


def reasons_when_every_row_fails(config: DatasetConfig, n: int) -> dict[str, int]:
    """The drop reasons of a preview in which no row survives (which raises)."""
    with pytest.raises(DatasetGenerationError) as raised:
        preview(config, n)
    result = raised.value.result  # type: ignore[attr-defined]
    assert result.actual_records == 0
    reasons: dict[str, int] = result.drop_reasons()
    return reasons


def python_check(name: str = "check", targets: tuple[str, ...] = ("code",), **fields: Any) -> Any:
    validator = {"type": "code", "code_lang": "python"}
    return ValidationColumn(name=name, target_columns=targets, validator=validator, **fields)


# -- code: Python ------------------------------------------------------------------------------


def test_python_code_is_linted_by_ruff_row_by_row() -> None:
    codes = [VALID_CODE, UNDEFINED_NAME, SYNTAX_ERROR, REFACTOR_ONLY]
    result = run(seeded(pd.DataFrame({"code": codes}), python_check(batch_size=3)), 4)
    assert result.metadata["outcome"] == "completed"
    valid, undefined, syntax, refactor = rows_of(result)["check"]

    assert valid == {
        "is_valid": True,
        "python_linter_score": 10.0,
        "python_linter_severity": "none",
        "python_linter_messages": [],
    }
    assert undefined["is_valid"] is False
    assert undefined["python_linter_severity"] == "error"
    assert undefined["python_linter_messages"] == [
        {"type": "error", "symbol": "F821", "line": 2, "column": 12,
         "message": "Undefined name `undefined_name`"}
    ]
    assert undefined["python_linter_score"] == 0.0  # 10 - 5 * 1 error / 2 statements * 10 < 0
    assert syntax["is_valid"] is False
    assert syntax["python_linter_severity"] == "fatal"
    assert syntax["python_linter_score"] == 0.0
    assert {m["symbol"] for m in syntax["python_linter_messages"]} == {"invalid-syntax"}
    assert refactor["is_valid"] is True
    assert refactor["python_linter_severity"] == "refactor"
    assert [m["symbol"] for m in refactor["python_linter_messages"]] == ["SIM108"]
    assert refactor["python_linter_score"] == 7.5  # 10 - 1 refactor / 4 statements * 10


def test_python_outputs_equal_data_designers_python_validator() -> None:
    pytest.importorskip("data_designer.engine.validators.python")
    from data_designer.config.validator_params import CodeValidatorParams
    from data_designer.engine.validators.python import PythonValidator

    codes = [VALID_CODE, UNDEFINED_NAME, SYNTAX_ERROR, REFACTOR_ONLY, "x = 1\ny == 2\n", ""]
    ours = rows_of(run(seeded(pd.DataFrame({"code": codes}), python_check()), len(codes)))
    theirs = PythonValidator(CodeValidatorParams(code_lang="python")).run_validation(
        [{"code": code} for code in codes]
    )
    assert list(ours["check"]) == [output.model_dump(mode="json") for output in theirs]


def test_several_target_columns_are_validated_separately_each_row_its_own() -> None:
    """data-designer 0.9.7 stores the batch's first row's output of the second column on every
    row; each row here holds its own."""
    frame = pd.DataFrame(
        {"first": [VALID_CODE, SYNTAX_ERROR, VALID_CODE], "second": [SYNTAX_ERROR, VALID_CODE,
                                                                      UNDEFINED_NAME]}
    )
    result = run(seeded(frame, python_check(targets=("first", "second"), batch_size=3)), 3)
    verdicts = [
        (row["first"]["python_linter_severity"], row["second"]["python_linter_severity"])
        for row in rows_of(result)["check"]
    ]
    assert verdicts == [("none", "fatal"), ("fatal", "none"), ("none", "error")]


def test_a_row_whose_code_is_not_text_fails_alone_with_the_reason() -> None:
    frame = pd.DataFrame({"code": [VALID_CODE, 42, UNDEFINED_NAME]})
    result = run(seeded(frame, python_check()), 3)
    assert result.metadata["outcome"] == "partial"
    assert [value["is_valid"] for value in rows_of(result)["check"]] == [True, False]
    (reason,) = result.metadata["row_groups"][0]["drop_reasons"]
    assert reason == (
        "step 'check' failed: ValidatorError: column 'check': code validator (python) failed: "
        "ValueError: column 'code' holds int 42, not code text"
    )


# -- code: SQL ---------------------------------------------------------------------------------


def test_sql_is_parsed_by_sqlfluff_in_the_dialect() -> None:
    queries = [
        "SELECT name FROM users WHERE id = 1;",
        "SELEC name FRM users",
        "CREATE TABLE prices (amount DECIMAL(10));",
    ]
    column = ValidationColumn(
        name="check",
        target_columns=["query"],
        validator={"type": "code", "code_lang": "sql:sqlite"},
    )
    valid, broken, decimal = rows_of(run(seeded(pd.DataFrame({"query": queries}), column), 3))[
        "check"
    ]
    assert valid == {"is_valid": True, "error_messages": ""}
    assert broken["is_valid"] is False
    assert broken["error_messages"].startswith("PRS: Line 1, Position 1: Found unparsable section")
    assert decimal["is_valid"] is False
    assert decimal["error_messages"].endswith(
        "Custom Check: Found DECIMAL definitions without a scale, which may be incorrect."
    )


# -- function ----------------------------------------------------------------------------------

SEEN: list[list[str]] = []


def short_enough(frame: pd.DataFrame) -> pd.DataFrame:
    """Valid when the code is under 30 characters; records which columns it was given."""
    SEEN.append(list(frame.columns))
    lengths = frame["code"].str.len()
    return pd.DataFrame({"is_valid": lengths < 30, "length": lengths})


async def short_enough_later(frame: pd.DataFrame) -> pd.DataFrame:
    await asyncio.sleep(0)
    return short_enough(frame)


def one_row_short(frame: pd.DataFrame) -> pd.DataFrame:
    return short_enough(frame).iloc[1:]


def no_verdict(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"length": frame["code"].str.len()})


def raises(frame: pd.DataFrame) -> pd.DataFrame:
    raise RuntimeError("the checker is down")


CODES = pd.DataFrame({"code": ["x = 1", "y = 'a very long line of code here'", "z = 3"],
                      "other": [1, 2, 3]})
LENGTH_SCHEMA = {
    "type": "object",
    "properties": {"is_valid": {"type": "boolean"}, "length": {"type": "integer"}},
    "required": ["is_valid", "length"],
}


def function_check(function: Any, **validator: Any) -> ValidationColumn:
    return ValidationColumn(
        name="check",
        target_columns=["code"],
        validator={"type": "function", "function": function, **validator},
        batch_size=3,
    )


@pytest.mark.parametrize("function", [short_enough, short_enough_later, f"{HERE}:short_enough"])
def test_a_function_validator_gives_each_row_its_output(function: Any) -> None:
    SEEN.clear()
    result = run(seeded(CODES, function_check(function)), 3)
    assert list(rows_of(result)["check"]) == [
        {"is_valid": True, "length": 5},
        {"is_valid": False, "length": 35},
        {"is_valid": True, "length": 5},
    ]
    assert SEEN == [["code"]]  # one batch of three, the target columns only


def test_an_output_schema_types_the_column_and_outputs_are_conformed() -> None:
    config = seeded(CODES, function_check(short_enough, output_schema=LENGTH_SCHEMA))
    assert compile_config(config).column_types["check"] == pa.struct(
        [pa.field("is_valid", pa.bool_(), nullable=False),
         pa.field("length", pa.int64(), nullable=False)]
    )
    assert [row["length"] for row in rows_of(run(config, 3))["check"]] == [5, 35, 5]


@pytest.mark.parametrize(
    ("function", "schema", "cause"),
    [
        (one_row_short, None, "ValueError: returned 2 rows for 3 records"),
        (no_verdict, None, "ValueError: returned a DataFrame without an 'is_valid' column"),
        (raises, None, "RuntimeError: the checker is down"),
        (
            short_enough,
            {**LENGTH_SCHEMA, "properties": {**LENGTH_SCHEMA["properties"],
                                             "length": {"type": "integer", "maximum": 10}}},
            "ValueError: output 1 does not match output_schema: 35 is greater than the maximum "
            "of 10",
        ),
    ],
)
def test_a_batch_the_function_fails_fails_its_rows_with_the_reason(
    function: Any, schema: Any, cause: str
) -> None:
    reasons = reasons_when_every_row_fails(
        seeded(CODES, function_check(function, output_schema=schema)), 6
    )
    ((reason, count),) = reasons.items()
    assert count == 6
    assert reason.startswith(
        f"step 'check' failed: ValidatorError: column 'check': function validator "
        f"({HERE}:{function.__name__}) failed: {cause}"
    ), reason


# -- remote ------------------------------------------------------------------------------------


class ValidatorServer:
    """A remote validator on 127.0.0.1: answers `{"data": [records]}` with the verdict of
    `code` being short; the first `failures` requests get that status instead. It counts the
    requests and the most it held at once: each request waits until `hold_until` requests are
    in flight (or a short while), so requests that may overlap do."""

    def __init__(self, failures: tuple[int, ...] = (), hold_until: int = 0) -> None:
        self.failures = list(failures)
        self.hold_until = hold_until
        self.requests = 0
        self.records = 0
        self.in_flight = 0
        self.peak = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._crowd: asyncio.Condition | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/validate"

    async def _validate(self, request: web.Request) -> web.Response:
        assert self._crowd is not None
        self.requests += 1
        if self.failures:
            return web.Response(status=self.failures.pop(0), text="try later")
        body = await request.json()
        async with self._crowd:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._crowd.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._crowd.wait_for(lambda: self.in_flight >= self.hold_until), 0.1
                )
            self.in_flight -= 1
        self.records += len(body["data"])
        outputs = [{"is_valid": len(r["code"]) < 30, "length": len(r["code"])}
                   for r in body["data"]]
        return web.json_response({"data": outputs})

    async def start(self) -> None:
        self._crowd = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/validate", self._validate)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def remote_check(url: str, batch_size: int = 2, **validator: Any) -> ValidationColumn:
    fields = {"retry_backoff": 0.01, **validator}
    return ValidationColumn(
        name="check",
        target_columns=["code"],
        validator={"type": "remote", "endpoint_url": url, **fields},
        batch_size=batch_size,
    )


def test_a_remote_validator_gives_each_row_its_output() -> None:
    with ServerThread(ValidatorServer()) as server:
        result = run(seeded(CODES, remote_check(server.url)), 3)
        assert (server.requests, server.records) == (2, 3)  # batches of 2 and 1
    assert [row["is_valid"] for row in rows_of(result)["check"]] == [True, False, True]


def test_a_remote_validator_retries_a_503_then_succeeds() -> None:
    with ServerThread(ValidatorServer(failures=(503, 429))) as server:
        result = run(seeded(CODES, remote_check(server.url, max_retries=2)), 2)
        assert server.requests == 3
    assert result.metadata["outcome"] == "completed"
    assert [row["length"] for row in rows_of(result)["check"]] == [5, 35]


def test_a_remote_batch_that_keeps_failing_fails_its_rows_with_the_reason() -> None:
    with ServerThread(ValidatorServer(failures=(500,) * 3 + (400,))) as server:
        column = remote_check(server.url, max_retries=2, max_parallel_requests=1)
        reasons = reasons_when_every_row_fails(seeded(CODES, column), 4)
        assert server.requests == 4  # one batch: 3 attempts; the other: no retry on 400
    where = f"step 'check' failed: ValidatorError: column 'check': remote validator ({server.url})"
    assert reasons == {
        f"{where} failed: ValueError: HTTP 500: try later (after 3 attempts)": 2,
        f"{where} failed: ValueError: HTTP 400: try later": 2,
    }


def test_a_remote_validator_that_cannot_connect_fails_its_rows_after_retrying() -> None:
    url = f"http://127.0.0.1:{dead_port()}/validate"
    (reason,) = reasons_when_every_row_fails(seeded(CODES, remote_check(url, max_retries=1)), 2)
    assert reason.startswith(
        f"step 'check' failed: ValidatorError: column 'check': remote validator ({url}) failed: "
        "ValueError: request failed: ConnectError"
    )
    assert reason.endswith("(after 2 attempts)")


def test_max_parallel_requests_caps_the_batches_in_flight_across_row_groups() -> None:
    """Four row groups of four one-row batches are ready at once; the server holds each request
    until a third is in flight (or 0.1 s passes), so a cap that leaked would show as a peak of
    3 or more."""
    frame = pd.DataFrame({"code": [f"x = {i}" for i in range(16)]})
    with ServerThread(ValidatorServer(hold_until=3)) as server:
        column = remote_check(server.url, batch_size=1, max_parallel_requests=2)
        result = run(
            seeded(frame, column), 16, engine="async", buffer_size=4, max_concurrent_row_groups=4
        )
        assert server.requests == 16
        assert server.peak <= 2
    assert result.metadata["outcome"] == "completed"


# -- config ------------------------------------------------------------------------------------


def config_with(validation: dict[str, Any]) -> dict[str, Any]:
    return {
        "columns": [
            {"type": "category", "name": "code", "values": ["x = 1"]},
            {"type": "validation", "name": "check", "target_columns": ["code"], **validation},
        ]
    }


CODE = {"type": "code", "code_lang": "python"}
REMOTE = {"type": "remote", "endpoint_url": "http://127.0.0.1:9/validate"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"validator": {**CODE, "code_lang": "rust"}},
         r"columns\[1\] 'check'\.validator\.code_lang: must be one of \['python', 'sql:sqlite'"),
        ({"validator": {"type": "code"}},
         r"columns\[1\] 'check'\.validator\.code_lang: is required for a 'code' validator"),
        ({"validator": {"type": "local"}},
         r"'check'\.validator\.type: must be one of \['code', 'function', 'remote'\], got str"),
        ({"validator": {"code_lang": "python"}}, r"'check'\.validator\.type: is required"),
        ({"validator": {**CODE, "timeout": 3}},
         r"'check'\.validator: unknown fields \['timeout'\] for a 'code' validator; known: "
         r"\['code_lang'\]"),
        ({"validator": "python"}, r"'check'\.validator: must be a mapping with a type"),
        ({"validator": {**REMOTE, "endpoint_url": "ftp://host/x"}},
         r"'check'\.validator\.endpoint_url: must be an http:// or https:// URL with a host"),
        ({"validator": {**REMOTE, "endpoint_url": "http:///path"}},
         r"'check'\.validator\.endpoint_url: must be an http:// or https:// URL with a host"),
        ({"validator": {**REMOTE, "timeout": 0}},
         r"'check'\.validator\.timeout: must be a number > 0 \(seconds\), got int 0"),
        ({"validator": {**REMOTE, "retry_backoff": "2"}},
         r"'check'\.validator\.retry_backoff: must be a number > 0"),
        ({"validator": {**REMOTE, "max_retries": -1}},
         r"'check'\.validator\.max_retries: must be an integer >= 0, got int -1"),
        ({"validator": {**REMOTE, "max_parallel_requests": 0}},
         r"'check'\.validator\.max_parallel_requests: must be an integer >= 1"),
        ({"validator": {**REMOTE, "output_schema": {"type": "string"}}},
         r"'check'\.validator\.output_schema: must describe an object"),
        ({"validator": {**REMOTE, "output_schema": {"properties": {"ok": {}}}}},
         r"'check'\.validator\.output_schema: must declare the property 'is_valid'"),
        ({"validator": {**REMOTE, "output_schema": {"type": 3}}},
         r"'check'\.validator\.output_schema: invalid JSON Schema"),
        ({"validator": {"type": "function", "function": "not a reference"}},
         r"'check'\.validator\.function: must be 'module:function', got 'not a reference'"),
        ({"validator": CODE, "batch_size": 0},
         r"'check'\.batch_size: must be an integer >= 1, got int 0"),
        ({"validator": CODE, "batch_size": True}, r"'check'\.batch_size: must be an integer"),
        ({"validator": CODE, "target_columns": []},
         r"'check'\.target_columns: needs at least one column"),
        ({"validator": CODE, "target_columns": ["code", "code"]},
         r"'check'\.target_columns: names a column twice"),
        ({"validator": CODE, "target_columns": "code"},
         r"'check'\.target_columns: must be a list of column names"),
        ({"validator": CODE, "target_columns": ["nope"]},
         r"columns\[1\] 'check': refers to unknown column 'nope'"),
    ],
)
def test_bad_validation_fields_are_named_by_their_path(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        DatasetConfig.from_dict(config_with(fields))


def test_a_missing_function_is_found_when_the_column_is_compiled() -> None:
    config = DatasetConfig.from_dict(
        config_with({"validator": {"type": "function", "function": f"{HERE}:no_such_function"}})
    )
    with pytest.raises(ConfigError, match=r"column 'check'\.validator\.function: cannot import"):
        compile_config(config)


@pytest.mark.parametrize(
    ("module", "validator", "package"),
    [
        ("ruff.__main__", CODE, "ruff"),
        ("sqlfluff", {"type": "code", "code_lang": "sql:postgres"}, "sqlfluff"),
        ("httpx", REMOTE, "httpx"),
    ],
)
def test_a_missing_extra_is_a_config_error_naming_the_column(
    monkeypatch: pytest.MonkeyPatch, module: str, validator: dict[str, Any], package: str
) -> None:
    config = DatasetConfig.from_dict(config_with({"validator": validator}))
    monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    with pytest.raises(ConfigError) as raised:
        compile_config(config)
    assert str(raised.value).startswith("column 'check': the ")
    assert str(raised.value).endswith(
        f"validator needs {package}, which is not installed: pip install 'rowforge[validation]'"
    )


def test_a_pydantic_model_as_output_schema_is_its_json_schema() -> None:
    from pydantic import BaseModel

    class Verdict(BaseModel):
        is_valid: bool
        length: int

    column = function_check(short_enough, output_schema=Verdict)
    assert column.validator["output_schema"] == Verdict.model_json_schema()
    assert column_type(column) == pa.struct(
        [pa.field("is_valid", pa.bool_(), nullable=False),
         pa.field("length", pa.int64(), nullable=False)]
    )


def test_a_callable_function_is_saved_as_its_import_path() -> None:
    column = function_check(short_enough)
    assert column.to_dict()["validator"]["function"] == f"{HERE}:short_enough"
    assert ValidationColumn(**{k: v for k, v in column.to_dict().items() if k != "type"}) == (
        function_check(f"{HERE}:short_enough")
    )
    with pytest.raises(ConfigError, match=r"'check'\.validator\.function: has no importable"):
        function_check(lambda frame: frame).to_dict()


@pytest.mark.parametrize(
    ("validator", "targets", "expected"),
    [
        (CODE, ["code"], "python"),
        ({"type": "code", "code_lang": "sql:ansi"}, ["code"], "sql"),
        (CODE, ["code", "other"], "both"),
        (REMOTE, ["code"], None),
        ({**REMOTE, "output_schema": {"type": "object"}}, ["code"], pa.string()),
    ],
)
def test_the_arrow_type_is_fixed_for_code_and_from_the_schema_otherwise(
    validator: dict[str, Any], targets: list[str], expected: Any
) -> None:
    from rowforge.validators.python import PYTHON_OUTPUT_TYPE
    from rowforge.validators.sql import SQL_OUTPUT_TYPE

    config = DatasetConfig.from_dict({
        "columns": [
            {"type": "category", "name": "code", "values": ["x"]},
            {"type": "category", "name": "other", "values": ["y"]},
            {"type": "validation", "name": "check", "target_columns": targets,
             "validator": validator},
        ]
    })
    kinds = {
        "python": PYTHON_OUTPUT_TYPE,
        "sql": SQL_OUTPUT_TYPE,
        "both": pa.struct([pa.field("code", PYTHON_OUTPUT_TYPE),
                           pa.field("other", PYTHON_OUTPUT_TYPE)]),
    }
    assert compile_config(config).column_types.get("check") == kinds.get(expected, expected)
    if expected == "python":
        assert PYTHON_OUTPUT_TYPE.field("python_linter_messages").type == pa.list_(MESSAGE_TYPE)


def test_one_batch_step_named_after_the_column_reads_the_targets() -> None:
    config = DatasetConfig.from_dict(
        {
            "columns": [
                {"type": "category", "name": "b", "values": ["x"]},
                {"type": "category", "name": "a", "values": ["x"]},
                {"type": "validation", "name": "check", "target_columns": ["b", "a"],
                 "validator": CODE},
            ]
        }
    )
    step = compile_config(config).steps[-1]
    assert (step.name, step.kind, step.depends_on) == ("check", "batch", ("a", "b"))


def test_a_skipped_row_keeps_the_skip_value_and_is_not_validated() -> None:
    frame = pd.DataFrame({"code": [VALID_CODE, SYNTAX_ERROR], "ignore": [False, True]})
    column = python_check(skip={"when": "{{ ignore }}", "value": None})
    (first, second) = rows_of(run(seeded(frame, column), 2))["check"]
    assert first["is_valid"] is True and second is None


# -- the YAML form and whole runs --------------------------------------------------------------

YAML = """
columns:
  - {type: seed_dataset, name: rows, path: rows.csv, columns: [code, query]}
  - name: code_check
    type: validation
    target_columns: [code]
    batch_size: 2
    validator: {type: code, code_lang: python}
  - name: query_check
    type: validation
    target_columns: [query]
    validator: {type: code, code_lang: "sql:postgres"}
  - name: short
    type: validation
    target_columns: [code]
    validator:
      type: function
      function: "tests.config.test_validation_columns:short_enough"
      output_schema:
        type: object
        properties:
          is_valid: {type: boolean}
          length: {type: integer}
        required: [is_valid, length]
  - name: remote_check
    type: validation
    target_columns: [code]
    batch_size: 3
    validator:
      type: remote
      endpoint_url: "{url}"
      timeout: 10.0
      max_retries: 1
      retry_backoff: 0.01
      max_parallel_requests: 2
"""


@pytest.fixture
def remote_server() -> Iterator[ValidatorServer]:
    with ServerThread(ValidatorServer()) as server:
        yield server


def test_the_yaml_form_round_trips(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("code,query\nx = 1,SELECT 1;\n", encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(YAML.replace("{url}", "http://127.0.0.1:9/v"), encoding="utf-8")
    config = load_config(path)
    assert DatasetConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_a_config_of_every_validator_builds_parquet_on_both_engines(
    tmp_path: Path, remote_server: ValidatorServer, engine: str
) -> None:
    rows = pd.DataFrame(
        {
            "code": [VALID_CODE, SYNTAX_ERROR, "x = 1\n", UNDEFINED_NAME],
            "query": ["SELECT 1;", "SELEC 1", "SELECT a FROM t;", "DELETE FROM t;"],
        }
    )
    rows.to_csv(tmp_path / "rows.csv", index=False)
    path = tmp_path / "config.yaml"
    path.write_text(YAML.replace("{url}", remote_server.url), encoding="utf-8")
    result = build(
        load_config(path), 10, tmp_path / "out", RunConfig(engine=engine, buffer_size=3)
    )
    assert result.num_records == 10
    data = pd.read_parquet(tmp_path / "out" / "parquet-files").sort_index()
    assert len(data) == 10
    expected_python = [True, False, True, False]
    assert [v["is_valid"] for v in data["code_check"]] == [
        expected_python[i % 4] for i in range(10)
    ]
    assert [v["is_valid"] for v in data["query_check"]] == [
        [True, False, True, True][i % 4] for i in range(10)
    ]
    lengths = [len(rows["code"][i % 4]) for i in range(10)]
    assert [v["length"] for v in data["short"]] == lengths
    assert [v["is_valid"] for v in data["remote_check"]] == [n < 30 for n in lengths]
    assert remote_server.records == 10


def test_the_references_validation_example_is_a_valid_config() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text()
    section = reference.split("## Validation columns (`type: validation`)")[1].split("\n## ")[0]
    (example,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    config = DatasetConfig.from_dict(yaml.safe_load(example))
    validators = [c.validator for c in config.columns if isinstance(c, ValidationColumn)]
    assert [(v["type"], v.get("code_lang")) for v in validators] == [
        ("code", "python"), ("code", "sql:postgres"), ("function", None), ("remote", None)
    ]
    assert column_type(config.columns[3]) == pa.struct(
        [pa.field("is_valid", pa.bool_(), nullable=False),
         pa.field("length", pa.int64(), nullable=False)]
    )
