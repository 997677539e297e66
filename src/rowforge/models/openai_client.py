"""`OpenAIClient`: OpenAI-compatible chat completions over aiohttp.

Theory of operation: one `aiohttp.ClientSession` per client (so per model alias), created on
first use inside the running loop, with a `TCPConnector(limit=max_parallel_requests)`: requests
reuse pooled keep-alive connections and never open more than the model's concurrency cap.
aiohttp was chosen by measurement (far less overhead per request than httpx here); nothing
outside this module knows it is used. Each request:

1. POSTs `{base_url}/chat/completions` with model, messages, the sampling fields the config
   sets (`temperature`, `top_p`, `stop`, `seed`; None ones are left out), `max_tokens` or,
   when set, `max_completion_tokens` instead, a `response_format` of type `json_schema` when a
   schema is given, and the config's `extra_body` merged in (it cannot collide: `ModelConfig`
   refuses those keys). The config's `extra_headers` go with every request, beside the
   Authorization header. All under a total timeout of `timeout_s` that covers waiting for a
   pooled connection, connecting, and reading the body;
2. is watched by `SlowRequestWarning` while pending;
3. maps the result onto the three error classes of `rowforge.models.client`: 429 ->
   `RateLimitError`; 408 and 5xx -> `RetryableError` (both with the HTTP `status` and the
   `Retry-After` / `retry-after-ms` the server sent); a timeout -> `ProviderTimeoutError`, a
   failed or broken connection (including a body cut off mid-response) ->
   `ProviderConnectionError` (both retryable); other non-2xx (with `status`) and anything that
   is not a chat completion -> `ModelRequestError`;
4. is counted on `usage` (a `UsageMeter`): started once the request is about to be sent, then
   answered with the reply's `usage.prompt_tokens` / `usage.completion_tokens` (0 when missing
   or malformed: accounting never fails a request), failed with its label, or cancelled.

The client does not retry: the scheduler owns retries, pacing and budgets. The session belongs
to the loop that created it; `aclose()` it before that loop ends.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import re
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp

from rowforge.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    RetryableError,
    describe_error,
)
from rowforge.models import fast
from rowforge.models.client import JsonSchema, Message, ModelRequestError
from rowforge.models.config import ModelConfig
from rowforge.models.slow import SlowRequestWarning
from rowforge.models.usage import UsageMeter


def api_key_from_env(config: ModelConfig) -> str | None:
    """The API key named by `config.api_key_env`; ConfigError when that variable is unset."""
    name = config.api_key_env
    if name is None:
        return None
    value = os.environ.get(name, "")
    if not value.strip():
        state = "empty" if name in os.environ else "not set"
        raise ConfigError(
            f"models[{config.alias!r}].api_key_env names environment variable {name!r}, "
            f"which is {state}"
        )
    return value.strip()


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an
    HTTP date); None when absent or unreadable, so the scheduler's backoff applies."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = _non_negative_float(millis)
        if seconds is not None:
            return seconds / 1000
    value = headers.get("Retry-After")
    if value is None:
        return None
    seconds = _non_negative_float(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _non_negative_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _schema_name(schema: JsonSchema) -> str:
    """OpenAI requires response_format.json_schema.name to match ^[a-zA-Z0-9_-]{1,64}$."""
    title = schema.get("title")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", title)[:64] if isinstance(title, str) else ""
    return name or "response"


def _detail(payload: bytes) -> str:
    """A short, readable reason from an error body: OpenAI's error.message when present."""
    try:
        document = json.loads(payload)
        message = document["error"]["message"]
        if isinstance(message, str):
            return message
    except (ValueError, KeyError, TypeError):
        pass
    text = payload.decode("utf-8", "replace").strip()
    return text[:200] + ("..." if len(text) > 200 else "")


def _serialize(body: Any) -> str:
    """A request body as JSON text: `json.dumps`, or orjson when the `fast` extra is installed
    (the same document; see `rowforge.models.fast`)."""
    return fast.dumps(body).decode("utf-8") if fast.ORJSON is not None else json.dumps(body)


def _tokens(usage: object, name: str) -> int:
    """`usage[name]` of a chat completion; 0 when absent or not a count. Token accounting is
    for reporting: a server that reports no usage, or nonsense, must not fail the request."""
    value = usage.get(name) if isinstance(usage, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


class OpenAIClient:
    """`ModelClient` for `provider="openai"`: any OpenAI-compatible chat-completions server.

    Construction reads the API key (so a missing variable fails before the run starts) and does
    no I/O; the HTTP session is created by the first `complete` call.
    """

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.url = config.endpoint
        key = api_key_from_env(config)
        self._key = key
        self._headers = dict(config.extra_headers)
        if key is not None:
            self._headers["Authorization"] = f"Bearer {key}"
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.usage = UsageMeter(config.alias)

    def _where(self) -> str:
        return f"model {self.config.alias!r} ({self.url})"

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None:
            self._loop = loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_parallel_requests),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                headers=self._headers,
                json_serialize=_serialize,
            )
        elif self._loop is not loop:
            raise ModelRequestError(
                f"{self._where()}: this client's connections belong to another event loop; "
                "aclose() it in that loop and create a client per loop"
            )
        return self._session

    def _body(self, messages: list[Message], json_schema: JsonSchema | None) -> dict[str, Any]:
        config = self.config
        body: dict[str, Any] = {"model": config.model, "messages": messages}
        optional: dict[str, Any] = {
            "temperature": config.temperature,
            "top_p": config.top_p,
            "stop": list(config.stop) if isinstance(config.stop, tuple) else config.stop,
            "seed": config.seed,
        }
        body.update((name, value) for name, value in optional.items() if value is not None)
        # Reasoning models refuse max_tokens; others may not know max_completion_tokens.
        if config.max_completion_tokens is not None:
            body["max_completion_tokens"] = config.max_completion_tokens
        else:
            body["max_tokens"] = config.max_tokens
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(json_schema), "schema": json_schema},
            }
        body.update(config.extra_body)
        return body

    async def complete(
        self, messages: list[Message], *, json_schema: JsonSchema | None = None
    ) -> str:
        if self._closed:
            raise ModelRequestError(f"{self._where()}: the client is closed")
        body = self._body(messages, json_schema)
        session = self._session_for_this_loop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.usage.started()
        try:
            with SlowRequestWarning(self.config.alias, self.config.slow_request_warning_s):
                status, headers, payload = await self._exchange(session, body)
            latency_s = loop.time() - started
            content, prompt_tokens, completion_tokens = self._content(status, headers, payload)
        except BaseException as error:  # failed (by label) or cancelled: in_flight stays right
            self.usage.ended_by(loop.time() - started, error)
            raise
        self.usage.answered(latency_s, prompt_tokens, completion_tokens)
        return content

    async def _exchange(
        self, session: aiohttp.ClientSession, body: dict[str, Any]
    ) -> tuple[int, Mapping[str, str], bytes]:
        """POST `body`; (status, headers, payload), or the error a transport failure maps to."""
        try:
            async with session.post(self.url, json=body) as response:
                return response.status, response.headers, await response.read()
        except TimeoutError as error:
            raise ProviderTimeoutError(
                f"{self._where()}: no response within {self.config.timeout_s:g}s"
            ) from error
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            raise ProviderConnectionError(
                f"{self._where()}: connection failed: {describe_error(error)}"
            ) from error
        except aiohttp.ClientError as error:
            raise ModelRequestError(
                f"{self._where()}: request failed: {describe_error(error)}"
            ) from error

    def _redact(self, text: str) -> str:
        """`text` from the server with this client's API key blanked out: a server that echoes
        the key back (some do, in a 401) must not put it into errors, logs and metadata."""
        if self._key and self._key in text:
            return text.replace(self._key, "<API key redacted>")
        return text

    def _detail(self, payload: bytes) -> str:
        return self._redact(_detail(payload))

    def _content(
        self, status: int, headers: Mapping[str, str], payload: bytes
    ) -> tuple[str, int, int]:
        """The reply text of a finished exchange and its (prompt, completion) token counts, or
        the error it maps to."""
        where = self._where()
        if status == 429:
            retry_after = parse_retry_after(headers)
            raise RateLimitError(
                f"{where}: HTTP 429 rate limited: {self._detail(payload)}",
                retry_after=retry_after,
                status=429,
            )
        if status == 408 or status >= 500:
            raise RetryableError(
                f"{where}: HTTP {status}: {self._detail(payload)}",
                retry_after=parse_retry_after(headers),
                status=status,
            )
        if not 200 <= status < 300:
            raise ModelRequestError(
                f"{where}: HTTP {status}: {self._detail(payload)}", status=status
            )
        try:
            document = fast.loads(payload)
        except ValueError:
            raise ModelRequestError(
                f"{where}: response is not JSON: {self._detail(payload)}"
            ) from None
        try:
            message = document["choices"][0]["message"]
            content = message["content"]
        except (KeyError, IndexError, TypeError):
            raise ModelRequestError(
                f"{where}: response has no choices[0].message.content: {self._detail(payload)}"
            ) from None
        if not isinstance(content, str):
            refusal = message.get("refusal") if isinstance(message, dict) else None
            if isinstance(refusal, str) and refusal:
                raise ModelRequestError(f"{where}: the model refused: {self._redact(refusal)}")
            raise ModelRequestError(
                f"{where}: choices[0].message.content is {type(content).__name__}, not a string"
            )
        usage = document.get("usage")
        return content, _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")

    async def aclose(self) -> None:
        """Close the session and its pooled connections. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
