"""The mock model as an OpenAI-compatible HTTP server on 127.0.0.1.

Theory of operation: `MockServer` wraps the same `MockModel` that `MockClient` uses in an
aiohttp.web application, so a pipeline tested against `rowforge mock-server` sees the replies,
latencies and faults it would see in-process (given the same `MockSettings`). Endpoints:

- `POST /v1/chat/completions`: validates the request like the OpenAI API does (bad input ->
  400 with an OpenAI-style `{"error": {...}}` body; `temperature`, `top_p`, `max_tokens`,
  `max_completion_tokens`, `stop` and `seed` are checked, null meaning absent, and the last
  four honoured as `MockModel.reply` does; other fields, such as a config's `extra_body`, are
  accepted and ignored, as vLLM does), draws a `MockTurn`, sleeps its latency,
  then answers: a chat completion (`choices[0].message.content`, and `usage` counted by
  `rowforge.models.mock.mock_usage`, as `MockClient` counts it), a 429 with a
  `Retry-After` header, a 500, a 400 refusal, or a hang.
- `GET /v1/models`: the model names the server claims to serve (it answers any name).
- `GET /v1/mock/stats`: what the server saw (`requests`, `connections`) and injected
  (`faults`, per kind), so a test can check a server running in another process.

`faults=FaultPlan(...)` (see `rowforge.models.faults`) puts a misbehaving provider in front of
the model: outages, 429s with or without Retry-After, 5xx shares, hangs, connections reset
mid-response and slowly trickling bodies. Those are decided before the model sees the request.

A hang waits until the client disconnects (the handler is cancelled), the server stops, or an
hour passes, whichever is first, so a hung request never holds up `stop()`. The server binds
loopback addresses only: it is a test double, not a service.

`run_server(port, settings, faults)` is the blocking entry point behind `rowforge mock-server`;
it prints the base URL once listening and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import signal
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from rowforge.errors import ConfigError
from rowforge.models.client import (
    JsonSchema,
    ModelRequestError,
    as_text_messages,
    message_problem,
)
from rowforge.models.config import DEFAULT_MOCK_SETTINGS, MAX_STOP_SEQUENCES, MockSettings
from rowforge.models.faults import NO_FAULTS, Fault, FaultInjector, FaultPlan, body_key
from rowforge.models.mock import MockModel, mock_usage, stop_sequences

#: How long a simulated hang lasts at most: far past any sensible client timeout.
HANG_S = 3600.0

_GENERIC_JSON: JsonSchema = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


class BadRequest(Exception):
    """A request the OpenAI API would answer with 400; the message says which field."""


def _error(status: int, message: str, kind: str, **headers: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers or None)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _schema_of(response_format: Any) -> JsonSchema | None:
    """The JSON schema a `response_format` asks for (None for plain text)."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return _GENERIC_JSON
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema must be an object")
        return schema
    raise BadRequest(
        f"response_format.type must be 'text', 'json_object' or 'json_schema', got {kind!r}"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")


def _top_p(body: dict[str, Any]) -> None:
    value = body.get("top_p")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise BadRequest(f"top_p must be a number in (0, 1], got {value!r}")


def _max_tokens(body: dict[str, Any]) -> int:
    """The reply's token cap: `max_completion_tokens` when sent, else `max_tokens`, else 512."""
    limit = 512
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not _is_int(value) or value < 1:
            raise BadRequest(f"{name} must be an integer >= 1, got {value!r}")
        limit = value
    return limit


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None or isinstance(value, str):
        return stop_sequences(value)
    if not (
        isinstance(value, list)
        and len(value) <= MAX_STOP_SEQUENCES
        and all(isinstance(text, str) for text in value)
    ):
        raise BadRequest(
            f"stop must be a string or a list of up to {MAX_STOP_SEQUENCES} strings, got {value!r}"
        )
    return stop_sequences(value)


def _seed(body: dict[str, Any]) -> int | None:
    value = body.get("seed")
    if value is not None and not _is_int(value):
        raise BadRequest(f"seed must be an integer, got {value!r}")
    return value


class MockServer:
    """`async with MockServer(settings) as server:` ... `server.url` is the base URL.

    `api_key`, when given, is required as `Authorization: Bearer <key>` (else 401).
    `request_count` and `connections` (distinct client address/port pairs seen) let tests check
    what a client did on the wire; `injector.counts` says which faults `faults` injected.
    """

    def __init__(
        self,
        settings: MockSettings = DEFAULT_MOCK_SETTINGS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        models: Sequence[str] = ("mock-1",),
        faults: FaultPlan = NO_FAULTS,
    ) -> None:
        if not _is_loopback(host):
            raise ConfigError(f"the mock server binds loopback addresses only, got host {host!r}")
        self.settings = settings
        self.host = host
        self.port = port
        self.api_key = api_key
        self.models = tuple(models)
        self.model = MockModel(settings)
        self.faults = faults
        #: Decides the injected faults; created by `start()`, which starts the outage clock.
        self.injector = FaultInjector(faults)
        self.request_count = 0
        self.connections: set[object] = set()
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """The base URL to give a client: `http://127.0.0.1:<port>/v1`."""
        return f"http://{self.host}:{self.port}/v1"

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/mock/stats", self._stats)
        return app

    async def start(self) -> int:
        """Listen; returns the actual port (useful with port=0)."""
        if self._runner is not None:
            raise RuntimeError("the mock server is already running")
        self._stopping = asyncio.Event()
        self.injector = FaultInjector(self.faults)
        # handler_cancellation: a client that gives up on a hang cancels the handler.
        runner = web.AppRunner(
            self.application(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise ConfigError(
                f"the mock server cannot listen on {self.host}:{self.port}: {error.strerror}"
            ) from error
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Release hung requests, close connections and stop listening. Idempotent."""
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _list_models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "rowforge"} for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.request_count,
                "connections": len(self.connections),
                "faults": dict(self.injector.counts),
            }
        )

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.request_count += 1
        if request.transport is not None:
            self.connections.add(request.transport.get_extra_info("peername"))
        if self.api_key is not None and request.headers.get("Authorization") != (
            f"Bearer {self.api_key}"
        ):
            return _error(401, "invalid or missing API key", "invalid_request_error")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            key = body_key(body)
            fault = self.injector.decide(key)
            if fault is not None and fault != "reset":
                return await self._fault(fault)
            response = await self._answer(body)
        except json.JSONDecodeError:
            return _error(400, "the request body is not valid JSON", "invalid_request_error")
        except (BadRequest, ModelRequestError) as error:
            return _error(400, str(error), "invalid_request_error")
        if response.status != 200:
            return response
        if fault == "reset" or self.faults.trickle_ms > 0:
            return await self._stream(request, response, key, reset=fault == "reset")
        self.injector.settle(key)
        return response

    async def _fault(self, fault: Fault) -> web.Response:
        """The answer to a request that drew a fault (a reset is decided after the reply)."""
        plan = self.faults
        if fault == "outage":
            return _error(503, "simulated outage", "server_error")
        if fault == "rate_limit":
            headers = (
                {} if plan.retry_after_s is None else {"Retry-After": f"{plan.retry_after_s:g}"}
            )
            return _error(429, "simulated rate limit", "rate_limit_error", **headers)
        if fault == "status":
            return _error(plan.status, f"simulated HTTP {plan.status}", "server_error")
        assert fault == "hang" and self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), HANG_S)
        return _error(503, "the mock server is stopping", "server_error")

    async def _stream(
        self, request: web.Request, reply: web.Response, key: bytes, *, reset: bool
    ) -> web.StreamResponse:
        """Send `reply` in chunks (`trickle_ms` apart), or half of it and then reset the
        connection; the declared Content-Length is always the whole body's."""
        payload = reply.body
        assert isinstance(payload, bytes)
        stream = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        stream.content_length = len(payload)
        await stream.prepare(request)
        if reset:
            await stream.write(payload[: len(payload) // 2])
            await asyncio.sleep(0)
            if request.transport is not None:
                request.transport.abort()
            return stream
        size, pause = self.faults.trickle_bytes, self.faults.trickle_ms / 1000
        for start in range(0, len(payload), size):
            if start:
                await asyncio.sleep(pause)
            await stream.write(payload[start : start + size])
        await stream.write_eof()
        self.injector.settle(key)
        return stream

    async def _answer(self, body: dict[str, Any]) -> web.Response:
        messages = body.get("messages")
        problem = message_problem(messages)
        if problem is not None:
            raise BadRequest(problem)
        assert isinstance(messages, list)
        messages = as_text_messages(messages)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model must be a non-empty string")
        _number(body, "temperature", 0, 2)
        _top_p(body)
        max_tokens = _max_tokens(body)
        stop = _stop(body)
        seed = _seed(body)
        schema = _schema_of(body.get("response_format"))

        turn = self.model.begin(messages, schema)
        if turn.latency_s > 0:
            await asyncio.sleep(turn.latency_s)
        if turn.outcome == "rate_limit":
            retry_after = f"{self.settings.retry_after_s:g}"
            return _error(
                429, "simulated rate limit", "rate_limit_error", **{"Retry-After": retry_after}
            )
        if turn.outcome == "error":
            return _error(500, "simulated server error", "server_error")
        if turn.outcome == "refusal":
            self.model.settle(turn)
            return _error(400, "simulated refusal", "invalid_request_error")
        if turn.outcome == "hang":
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HANG_S)
            return _error(503, "the mock server is stopping", "server_error")

        content = self.model.reply(messages, schema, max_tokens, stop=stop, seed=seed)
        self.model.settle(turn)
        prompt_tokens, completion_tokens = mock_usage(messages, content)
        return web.json_response(
            {
                "id": f"chatcmpl-mock-{turn.key.hex()[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    settings: MockSettings = DEFAULT_MOCK_SETTINGS,
    faults: FaultPlan = NO_FAULTS,
) -> tuple[MockServer, int]:
    """Start a `MockServer`; returns it (call `await server.stop()`) and its actual port."""
    server = MockServer(settings, host=host, port=port, faults=faults)
    return server, await server.start()


def run_server(
    port: int, settings: MockSettings = DEFAULT_MOCK_SETTINGS, faults: FaultPlan = NO_FAULTS
) -> None:
    """Serve on 127.0.0.1:`port` until SIGINT or SIGTERM (blocking; for `rowforge mock-server`).

    Prints one line with the base URL, e.g. `rowforge mock server listening on
    http://127.0.0.1:8000/v1`, once the port is open (port 0 picks a free port).
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(port, settings, faults))


async def _serve_until_signalled(port: int, settings: MockSettings, faults: FaultPlan) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    async with MockServer(settings, port=port, faults=faults) as server:
        print(f"rowforge mock server listening on {server.url}", flush=True)
        await stop.wait()
    print("rowforge mock server stopped", flush=True)
