"""Watch (or forbid) every way this process could reach the network, and servers in a thread.

`NetworkGuard` patches, for the duration of a test (through pytest's monkeypatch):

- `socket.socket.connect`, `connect_ex`, `sendto` and `socket.create_connection` (what blocking
  code and, underneath, asyncio use);
- the event loop's `create_connection`, `sock_connect`, `create_datagram_endpoint`,
  `create_unix_connection` and `getaddrinfo`, on the classes that define them for the loop type
  `asyncio.run` creates;
- `socket.getaddrinfo` (a name lookup is traffic too);
- `socket.socket.__init__`, only to record Internet-family sockets being created (asyncio's
  self-pipe is an AF_UNIX socketpair, so it does not count).

Every attempt is recorded as `(via, address)`. With `forbid=True` each attempt also raises
`OSError`; otherwise it goes through. Sockets are not forbidden at creation, only at connect.

`ServerThread` runs an object with `async start()` / `async stop()` (a `MockServer`, or
`RecordingServer` below) on its own event loop in a daemon thread, so that code under test may
call `asyncio.run` (as `rowforge.build` does) or run in a subprocess while the server answers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

from rowforge.models.mock_server import MockServer

INET = (socket.AF_INET, socket.AF_INET6)


class NetworkGuard:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, forbid: bool) -> None:
        self.forbid = forbid
        self.attempts: list[tuple[str, Any]] = []
        self.inet_sockets: list[str] = []
        self._lock = threading.Lock()
        self._install(monkeypatch)

    def _record(self, via: str, address: Any) -> None:
        with self._lock:
            self.attempts.append((via, address))
        if self.forbid:
            raise OSError(f"network access forbidden by the test: {via} {address!r}")

    def _wrap(self, via: str, original: Callable[..., Any], address: Callable[..., Any]) -> Any:
        if asyncio.iscoroutinefunction(original):

            @functools.wraps(original)
            async def watched_async(*args: Any, **kwargs: Any) -> Any:
                self._record(via, address(*args, **kwargs))
                return await original(*args, **kwargs)

            return watched_async

        @functools.wraps(original)
        def watched(*args: Any, **kwargs: Any) -> Any:
            self._record(via, address(*args, **kwargs))
            return original(*args, **kwargs)

        return watched

    def _install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def second(*args: Any, **kwargs: Any) -> Any:  # method(self, address, ...)
            return args[1] if len(args) > 1 else kwargs.get("address")

        def first(*args: Any, **kwargs: Any) -> Any:  # function(address, ...)
            return args[0] if args else kwargs.get("address")

        def sendto(*args: Any, **kwargs: Any) -> Any:  # sendto(data[, flags], address)
            return args[-1]

        def loop_connection(*args: Any, **kwargs: Any) -> Any:
            # create_connection(protocol_factory, host=None, port=None, *, sock=None, ...)
            host = args[2] if len(args) > 2 else kwargs.get("host")
            port = args[3] if len(args) > 3 else kwargs.get("port")
            sock = kwargs.get("sock")
            if host is None and sock is not None:
                try:
                    return ("sock", sock.getpeername())
                except OSError:
                    return ("sock", None)
            return (host, port)

        def loop_datagram(*args: Any, **kwargs: Any) -> Any:
            return (kwargs.get("local_addr"), kwargs.get("remote_addr"))

        def loop_unix(*args: Any, **kwargs: Any) -> Any:
            return args[2] if len(args) > 2 else kwargs.get("path")

        def lookup(*args: Any, **kwargs: Any) -> Any:  # getaddrinfo(host, port, ...)
            return (args[0] if args else kwargs.get("host"), args[1] if len(args) > 1 else None)

        def loop_lookup(*args: Any, **kwargs: Any) -> Any:  # loop.getaddrinfo(self, host, port)
            return lookup(*args[1:], **kwargs)

        for name, address in (("connect", second), ("connect_ex", second), ("sendto", sendto)):
            original = getattr(socket.socket, name)
            monkeypatch.setattr(
                socket.socket, name, self._wrap(f"socket.{name}", original, address)
            )
        monkeypatch.setattr(
            socket,
            "create_connection",
            self._wrap("socket.create_connection", socket.create_connection, first),
        )
        monkeypatch.setattr(
            socket, "getaddrinfo", self._wrap("socket.getaddrinfo", socket.getaddrinfo, lookup)
        )
        loop = asyncio.new_event_loop()
        try:
            mro = type(loop).__mro__
        finally:
            loop.close()
        for name, address in (
            ("create_connection", loop_connection),
            ("sock_connect", lambda *a, **k: a[2] if len(a) > 2 else k.get("address")),
            ("create_datagram_endpoint", loop_datagram),
            ("create_unix_connection", loop_unix),
            ("getaddrinfo", loop_lookup),
        ):
            owner = next((cls for cls in mro if name in vars(cls)), None)
            if owner is not None:
                original = vars(owner)[name]
                monkeypatch.setattr(owner, name, self._wrap(f"loop.{name}", original, address))

        original_init = socket.socket.__init__
        inet_sockets = self.inet_sockets

        @functools.wraps(original_init)
        def init(sock: socket.socket, family: Any = -1, *args: Any, **kwargs: Any) -> None:
            original_init(sock, family, *args, **kwargs)
            if sock.family in INET:
                inet_sockets.append(f"{sock.family.name}/{sock.type.name}")

        monkeypatch.setattr(socket.socket, "__init__", init)

    def addresses(self) -> list[tuple[str, Any]]:
        with self._lock:
            return list(self.attempts)


class ServerThread:
    """`with ServerThread(server) as server:` runs `server` on a loop in a daemon thread."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=30)
        return self.server

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()


class KeyRecordingMockServer(MockServer):
    """A `MockServer` that also records the Authorization header of every request it gets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.authorizations: list[str | None] = []

    def application(self) -> web.Application:
        app = super().application()

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.authorizations.append(request.headers.get("Authorization"))
            response: web.StreamResponse = await handler(request)
            return response

        app.middlewares.append(record)
        return app


class RejectingServer:
    """Answers every chat completion with 401, recording the Authorization headers it saw.

    `echo="masked"` words the error like the OpenAI API does (the key's first 8 and last 4
    characters, the rest starred); `echo="full"` repeats the whole header back, as a careless
    proxy might.
    """

    def __init__(self, echo: str = "masked") -> None:
        self.echo = echo
        self.authorizations: list[str | None] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _reject(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        self.authorizations.append(authorization)
        key = (authorization or "").removeprefix("Bearer ")
        shown = key if self.echo == "full" else key[:8] + "*" * (len(key) - 12) + key[-4:]
        error = {
            "message": f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
        return web.Response(
            status=401, text=json.dumps({"error": error}), content_type="application/json"
        )

    async def start(self) -> int:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._reject)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def dead_port() -> int:
    """A loopback port nothing listens on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
