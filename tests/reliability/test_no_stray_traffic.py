"""Issue 9, no stray traffic and no leaked secrets.

1. A run whose models are all `provider: mock` attempts no connection, name lookup or datagram
   and creates no Internet socket (asyncio's self-pipe is an AF_UNIX socketpair).
2. A run whose `openai` model points at an in-process `MockServer` connects to that server's
   127.0.0.1 port and nowhere else.
3. A sentinel API key, given through `api_key_env`, never appears in logs (DEBUG, captured),
   warnings, printed output, anything in the output directory (metadata.json, events.jsonl,
   traces.jsonl, config.yaml, Parquet files), the stdout/stderr of `rowforge run` (with and
   without `--debug`), `validate` and `preview`, or an exception's text, repr, attributes and
   traceback: for a successful run, a server answering 401 (worded like the OpenAI API, and
   echoing the whole key back like a careless proxy) and a dead port. The servers record the
   Authorization header they got, which proves the key was actually sent. Against the dead port
   the CLI runs are interrupted with SIGINT once they have logged a failed connection, since
   retries there may last minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

import rowforge
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import RowforgeError
from rowforge.models import MockSettings
from rowforge.scheduler import RunConfig
from tests.reliability.crash_harness import ROOT, rowforge_command
from tests.reliability.netguard import (
    KeyRecordingMockServer,
    NetworkGuard,
    RejectingServer,
    ServerThread,
    dead_port,
)

SENTINEL = "sk-SENTINEL-4f9a6c2d8e0b1a3f5c7e9d2b4a6c8e0f"
KEY_ENV = "ROWFORGE_RELIABILITY_SENTINEL_KEY"
CLI_TIMEOUT_S = 120
CLI_WAIT_S = 60  # at most, for a CLI run against a dead port to log a failed connection

MOCK_JUDGE = {"alias": "judge", "provider": "mock", "mock": {"latency_ms": [0, 2], "seed": 4}}


def _mock_writer() -> dict[str, Any]:
    return {"alias": "writer", "provider": "mock", "mock": {"latency_ms": [0, 2], "seed": 2}}


def _openai_writer(base_url: str) -> dict[str, Any]:
    return {
        "alias": "writer",
        "provider": "openai",
        "model": "mock-1",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "max_parallel_requests": 8,
        "timeout_s": 20,
    }


def _config_dict(writer: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": 5,
        "models": [writer, MOCK_JUDGE],
        "columns": [
            {"type": "category", "name": "topic", "values": ["billing", "shipping", "returns"]},
            {
                "type": "llm_text",
                "name": "question",
                "model": "writer",
                "system_prompt": "You write short customer questions.",
                "prompt": "Ask about {{ topic }}.",
            },
            {
                "type": "llm_structured",
                "name": "verdict",
                "model": "judge",
                "prompt": "Rate 1-5: {{ question }}",
                "output_schema": {
                    "type": "object",
                    "properties": {"score": {"type": "integer"}},
                    "required": ["score"],
                },
            },
            {"type": "expression", "name": "line", "template": "{{ topic }}: {{ question }}"},
        ],
    }


def _dataset(writer: dict[str, Any]) -> DatasetConfig:
    return DatasetConfig.from_dict(_config_dict(writer))


def _config_file(directory: Path, writer: dict[str, Any]) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(_config_dict(writer), sort_keys=False), encoding="utf-8")
    return path


# --- finding the key ---------------------------------------------------------------------------


def _exception_texts(error: BaseException) -> list[str]:
    """The traceback of `error` and, for it and every chained or grouped exception, its
    str, repr, args and attributes."""
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        with contextlib.suppress(TypeError):  # no __dict__
            texts.append(repr(vars(current)))
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += list(getattr(current, "exceptions", ()) or ())
    return texts


def _leaks_in_directory(output: Path) -> list[str]:
    """Files under `output` holding the key: raw bytes, and Parquet contents decoded."""
    found = []
    for path in sorted(p for p in output.rglob("*") if p.is_file()):
        if SENTINEL.encode() in path.read_bytes():
            found.append(str(path.relative_to(output)))
        elif path.suffix == ".parquet":
            table = pq.read_table(path)
            if SENTINEL in f"{table.to_pylist()} {table.schema.metadata}":
                found.append(f"{path.relative_to(output)} (decoded)")
    return found


def _leaks(places: dict[str, str | Sequence[str]]) -> list[str]:
    """One line per place whose text holds the key: how often, and the first occurrence."""
    leaked = []
    for name, text in places.items():
        texts = [text] if isinstance(text, str) else list(text)
        holding = [piece for piece in texts if SENTINEL in piece]
        if holding:
            piece = holding[0]
            at = piece.index(SENTINEL)
            context = piece[max(0, at - 150) : at + len(SENTINEL) + 10].replace("\n", " | ")
            leaked.append(f"{name} ({len(holding)} of {len(texts)}): ...{context}...")
    return leaked


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
    return texts


class _Cli:
    """A `rowforge` command running in a subprocess with the key in its environment; its
    output is read as it comes, so a test can wait for a line before interrupting it."""

    def __init__(self, command: Sequence[str], *, asyncio_debug: bool = True) -> None:
        env = {**os.environ, KEY_ENV: SENTINEL}
        if asyncio_debug:
            env["PYTHONASYNCIODEBUG"] = "1"
        self.command = list(command)
        self.interrupted = False
        self.process = subprocess.Popen(
            [*rowforge_command(), *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._out: list[str] = []
        self._err: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(stream, sink), daemon=True)
            for stream, sink in ((self.process.stdout, self._out), (self.process.stderr, self._err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    def stderr(self) -> str:
        return "".join(self._err)

    def running(self) -> bool:
        return self.process.poll() is None

    def finish(self, *, interrupt: bool = False) -> subprocess.CompletedProcess[str]:
        """Wait for the command (after a SIGINT, like Ctrl-C, when `interrupt`)."""
        if interrupt and self.running():
            self.process.send_signal(signal.SIGINT)
            self.interrupted = True
        code = self.process.wait(timeout=CLI_TIMEOUT_S)
        for reader in self._readers:
            reader.join(timeout=CLI_TIMEOUT_S)
        return subprocess.CompletedProcess(self.command, code, "".join(self._out), self.stderr())


def _run_cli(*commands: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run rowforge commands at the same time (they wait on the network, not the CPU)."""
    running = [_Cli(command) for command in commands]
    return [cli.finish() for cli in running]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, SENTINEL)
    return SENTINEL


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG and above, from every logger."""
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        yield caplog


# --- the guard itself --------------------------------------------------------------------------


def test_the_guard_sees_blocking_and_asyncio_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, an empty attempt list below could mean a blind guard."""
    port = dead_port()
    guard = NetworkGuard(monkeypatch, forbid=True)
    with pytest.raises(OSError, match="forbidden by the test"):
        socket.create_connection(("127.0.0.1", port), timeout=1)

    async def connect() -> None:
        await asyncio.open_connection("127.0.0.1", port)

    with pytest.raises(OSError, match="forbidden by the test"):
        asyncio.run(connect())
    with pytest.raises(OSError, match="forbidden by the test"):
        socket.getaddrinfo("example.invalid", 80)
    vias = {via for via, _ in guard.addresses()}
    assert {"socket.create_connection", "loop.create_connection", "socket.getaddrinfo"} <= vias
    assert guard.inet_sockets == []


# --- 1. mock models: no socket at all ----------------------------------------------------------


def test_a_run_on_mock_models_opens_no_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _dataset(_mock_writer())
    guard = NetworkGuard(monkeypatch, forbid=True)
    result = rowforge.build(config, 60, tmp_path / "out", RunConfig(buffer_size=20, trace=True))
    preview = rowforge.preview(config, 5)
    assert result.outcome == "completed" and result.num_records == 60
    assert len(preview.dataset) == 5
    assert guard.addresses() == [], "a mock-only run tried to reach the network"
    assert guard.inet_sockets == [], "a mock-only run created an Internet socket"


# --- 2. against the mock server: only to it ----------------------------------------------------


def _endpoint(via: str, address: Any) -> tuple[Any, Any]:
    """(host, port) of one recorded attempt, whatever way it was made."""
    if via == "loop.create_connection" and address[0] == "sock":
        address = address[1]
    host, port = address[0], address[1]
    return host, int(port) if isinstance(port, int | str) and str(port).isdigit() else port


def test_a_run_against_the_mock_server_connects_only_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    server = KeyRecordingMockServer(MockSettings(latency_ms=(0, 2), seed=1), api_key=key)
    with ServerThread(server):
        config = _dataset(_openai_writer(server.url))
        guard = NetworkGuard(monkeypatch, forbid=False)
        result = rowforge.build(config, 40, tmp_path / "out", RunConfig(buffer_size=20))
        attempts = guard.addresses()
    assert result.outcome == "completed" and result.num_records == 40
    assert server.request_count >= 40
    assert attempts, "the guard saw no connection at all"
    endpoints = {_endpoint(via, address) for via, address in attempts}
    assert endpoints == {("127.0.0.1", server.port)}, attempts
    assert not any(via == "socket.sendto" for via, _ in attempts)


# --- 3. the key never leaks --------------------------------------------------------------------


def test_the_key_never_leaks_from_a_successful_run(
    tmp_path: Path,
    key: str,
    all_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = KeyRecordingMockServer(MockSettings(latency_ms=(0, 2), seed=1), api_key=key)
    with ServerThread(server), warnings.catch_warnings(record=True) as caught:
        writer = _openai_writer(server.url)
        result = rowforge.build(
            _dataset(writer), 30, tmp_path / "api", RunConfig(buffer_size=10, trace=True)
        )
        config_file = _config_file(tmp_path, writer)
        output = str(tmp_path / "cli")
        cli, validated, previewed = _run_cli(
            ["run", str(config_file), "-n", "30", "-o", output, "--trace", "--debug"],
            ["validate", str(config_file), "--debug"],
            ["preview", str(config_file), "-n", "3", "--debug"],
        )
    printed = capfd.readouterr()
    assert result.outcome == "completed"
    assert cli.returncode == 0, cli.stderr
    assert "DEBUG" in cli.stderr, "--debug logs went to stderr"
    assert validated.returncode == 0 and validated.stdout.startswith("OK"), validated.stderr
    assert previewed.returncode == 0 and "3 records" in previewed.stdout, previewed.stderr
    assert server.authorizations and set(server.authorizations) == {f"Bearer {key}"}
    for output in (tmp_path / "api", tmp_path / "cli"):
        assert KEY_ENV in (output / "config.yaml").read_text(encoding="utf-8")
        assert (output / "traces.jsonl").stat().st_size > 0
        assert (output / "events.jsonl").stat().st_size > 0
    leaked = _leaks_in_directory(tmp_path / "api") + _leaks_in_directory(tmp_path / "cli")
    leaked += _leaks(
        {
            "logs": _log_texts(all_logs),
            "warnings": [str(w.message) for w in caught],
            "printed": [printed.out, printed.err],
            "cli stdout": cli.stdout,
            "cli stderr": cli.stderr,
            "validate output": [validated.stdout, validated.stderr],
            "preview output": [previewed.stdout, previewed.stderr],
            "result": [repr(result), repr(result.metadata)],
        }
    )
    assert leaked == [], "the API key leaked:\n" + "\n".join(leaked)


def _failing_run_leaks(
    tmp_path: Path,
    base_url: str,
    all_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    run_config: RunConfig,
    interrupt_after: str | None = None,
) -> tuple[list[str], BaseException, list[subprocess.CompletedProcess[str]], bool]:
    """Run in process (expecting an exception) and with the CLI, plain and with --debug; return
    where the key leaked, the exception, the CLI results and whether --debug was interrupted.

    With `interrupt_after`, the CLI runs are interrupted (SIGINT, like Ctrl-C) once the --debug
    one printed that text, or after `CLI_WAIT_S`: the CLI cannot shorten the retry budgets.
    """
    writer = _openai_writer(base_url)
    with warnings.catch_warnings(record=True) as caught:
        with pytest.raises(RowforgeError) as raised:
            rowforge.build(_dataset(writer), 10, tmp_path / "api", run_config)
        config_file = _config_file(tmp_path, writer)
        base = ["run", str(config_file), "-n", "10", "--buffer-size", "10", "--trace"]
        plain = _Cli([*base, "-o", str(tmp_path / "cli")])
        debug = _Cli([*base, "-o", str(tmp_path / "cli-debug"), "--debug"])
        if interrupt_after is not None:
            deadline = time.monotonic() + CLI_WAIT_S
            while debug.running() and time.monotonic() < deadline:
                if (
                    interrupt_after in debug.stderr()
                    and (tmp_path / "cli" / "events.jsonl").exists()
                ):
                    break
                time.sleep(0.05)
        done = [plain.finish(interrupt=interrupt_after is not None), debug.finish(interrupt=True)]
    printed = capfd.readouterr()
    leaked = []
    for output in ("api", "cli", "cli-debug"):
        leaked += [f"{output}/{name}" for name in _leaks_in_directory(tmp_path / output)]
    leaked += _leaks(
        {
            "exception": _exception_texts(raised.value),
            "logs": _log_texts(all_logs),
            "warnings": [str(w.message) for w in caught],
            "printed": [printed.out, printed.err],
            "cli stdout": done[0].stdout,
            "cli stderr": done[0].stderr,
            "cli --debug stdout": done[1].stdout,
            "cli --debug stderr": done[1].stderr,
        }
    )
    return leaked, raised.value, done, debug.interrupted


@pytest.mark.parametrize("echo", ["masked", "full"])
def test_the_key_never_leaks_from_a_run_the_server_rejects_with_401(
    tmp_path: Path,
    key: str,
    all_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    echo: str,
) -> None:
    server = RejectingServer(echo)
    with ServerThread(server):
        leaked, error, (plain, debug), _ = _failing_run_leaks(
            tmp_path, server.url, all_logs, capfd, RunConfig(trace=True, on_partial="raise")
        )
    # The failure was real and visible, and the key was sent: the checks above looked at it.
    assert server.authorizations and set(server.authorizations) == {f"Bearer {key}"}
    assert "401" in str(error)
    assert plain.returncode == 1 and "401" in plain.stderr, plain.stderr
    assert debug.returncode != 0 and "Traceback" in debug.stderr, debug.stderr
    assert leaked == [], "the API key leaked:\n" + "\n".join(leaked)


def test_the_key_never_leaks_when_the_server_is_unreachable(
    tmp_path: Path,
    key: str,
    all_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = dead_port()
    guard = NetworkGuard(monkeypatch, forbid=False)
    leaked, error, (plain, debug), interrupted = _failing_run_leaks(
        tmp_path,
        f"http://127.0.0.1:{port}/v1",
        all_logs,
        capfd,
        RunConfig(trace=True, on_partial="raise", max_retries=1, retry_backoff_s=0.01),
        interrupt_after="connection failed",
    )
    # The in-process run did try that port, and only it, and said so; the CLI runs logged the
    # failed connections (with --debug) and ended with an error or on the interrupt.
    endpoints = {_endpoint(via, address) for via, address in guard.addresses()}
    assert endpoints == {("127.0.0.1", port)}
    assert "connection failed" in str(error), str(error)
    assert plain.returncode != 0 and debug.returncode != 0, (plain.stderr, debug.stderr)
    assert "connection failed" in debug.stderr, debug.stderr
    if not interrupted:  # it gave up by itself: --debug shows the traceback
        assert "Traceback" in debug.stderr, debug.stderr
    assert leaked == [], "the API key leaked:\n" + "\n".join(leaked)
