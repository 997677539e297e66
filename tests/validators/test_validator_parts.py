"""The parts of `rowforge.validators` on their own: output checks, the score, a remote answer
that is not one, and a ruff process that goes with a cancelled step."""

from __future__ import annotations

import asyncio
import math
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rowforge.validators.outputs import checked_outputs
from rowforge.validators.python import lint_python, score
from rowforge.validators.remote import RemoteValidator
from tests.reliability.netguard import ServerThread

SCHEMA = {"type": "object", "properties": {"is_valid": {"type": "boolean"},
                                           "n": {"type": "integer"}}}


@pytest.mark.parametrize(
    ("outputs", "count", "schema", "problem"),
    [
        ({"is_valid": True}, 1, None, "returned dict {'is_valid': True}, not a list of outputs"),
        ([{"is_valid": True}], 2, None, "returned 1 outputs for 2 records"),
        (["yes"], 1, None, "output 0 is str 'yes', not a mapping"),
        ([{"ok": True}], 1, None, "output 0 has no 'is_valid' (it has ['ok'])"),
        ([{"is_valid": "true"}], 1, None, "output 0's is_valid is str 'true', not a boolean"),
        ([{"is_valid": 1}], 1, None, "output 0's is_valid is int 1, not a boolean or null"),
        ([{"is_valid": True, "n": "2"}], 1, SCHEMA,
         "output 0 does not match output_schema: '2' is not of type 'integer'"),
    ],
)
def test_outputs_that_cannot_be_trusted_are_refused_naming_why(
    outputs: Any, count: int, schema: Any, problem: str
) -> None:
    with pytest.raises(ValueError) as raised:
        checked_outputs(outputs, count, schema)
    assert str(raised.value).startswith(problem)


def test_outputs_are_conformed_to_the_schema_and_nan_is_no_verdict() -> None:
    outputs = [{"is_valid": True, "n": 2.0, "extra": 1}, {"is_valid": math.nan, "n": 3}]
    nullable = {**SCHEMA, "properties": {**SCHEMA["properties"],
                                         "is_valid": {"type": ["boolean", "null"]}}}
    assert checked_outputs(outputs, 2, nullable) == [
        {"is_valid": True, "n": 2},
        {"is_valid": None, "n": 3},
    ]
    assert checked_outputs(outputs, 2, None)[0] == {"is_valid": True, "n": 2.0, "extra": 1}


@pytest.mark.parametrize(
    ("counts", "statements", "expected"),
    [
        ({}, 0, 10.0),
        ({"error": 1}, 10, 5.0),
        ({"warning": 1, "convention": 1, "refactor": 2}, 8, 5.0),
        ({"error": 3}, 2, 0.0),  # never below 0
        ({"fatal": 1}, 100, 0.0),
    ],
)
def test_the_score_is_pylints_evaluation(
    counts: dict[str, int], statements: int, expected: float
) -> None:
    assert score(Counter(counts), statements) == expected


class OddServer:
    """Answers every POST with `body` (status 200)."""

    def __init__(self, body: str) -> None:
        self.body = body
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        return web.Response(text=self.body, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html>oops</html>", "the response is not JSON: <html>oops</html>"),
        ('{"results": []}', "the response is not an object with a list 'data'"),
        ('{"data": [{"is_valid": true}]}', "returned 1 outputs for 2 records"),
    ],
)
def test_a_remote_answer_that_is_not_one_output_per_record_is_refused(
    body: str, problem: str
) -> None:
    async def ask(url: str) -> None:
        remote = RemoteValidator({"type": "remote", "endpoint_url": url, "max_retries": 0})
        async with remote.client() as client:
            await remote.validate(client, [{"code": "a"}, {"code": "b"}])

    with ServerThread(OddServer(body)) as server, pytest.raises(ValueError) as raised:
        asyncio.run(ask(f"http://127.0.0.1:{server.port}/v"))
    assert str(raised.value) == problem


def test_a_cancelled_lint_kills_its_ruff_process_and_removes_its_files(tmp_path: Path) -> None:
    """A stand-in for ruff that records its pid and the directory it was given, then hangs."""
    fake = tmp_path / "ruff"
    fake.write_text(
        f'#!/bin/sh\nfor last; do :; done\necho "$$ $last" > {tmp_path}/started.tmp\n'
        f"mv {tmp_path}/started.tmp {tmp_path}/started\nexec sleep 600\n",
        encoding="utf-8",
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    started = tmp_path / "started"

    async def cancel_while_linting() -> None:
        task = asyncio.create_task(lint_python(str(fake), ["x = 1\n"]))
        while not started.exists():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_while_linting())
    pid, directory = started.read_text(encoding="utf-8").split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)  # killed and reaped, not left running
    assert not Path(directory).exists()
