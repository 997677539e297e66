"""The interface every model client implements, and the one error it adds.

Theory of operation: a column never talks HTTP; it holds a `ModelClient` and awaits
`complete(messages)`. The client turns every failure into one of three classes, which is all the
scheduler (`rowforge.scheduler.retry.classify`) needs to decide what happens next:

- `RateLimitError` (HTTP 429): the provider is pacing us; retried without spending the budget,
  after `retry_after` seconds when the provider said so.
- `RetryableError` (408, 5xx, timeouts, connection failures): worth another attempt.
- `ModelRequestError` (other 4xx, malformed responses): the same request would fail again.

No transport exception (`TimeoutError`, `aiohttp.ClientError`, ...) escapes a client, so a
retry decision never depends on which HTTP library is underneath. Swapping the library means
writing another class with these two methods and a `usage` meter (`rowforge.models.usage`),
which the client updates around every request so a run can report requests, errors, tokens and
latency per model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rowforge.errors import RowforgeError
from rowforge.models.config import ModelConfig

if TYPE_CHECKING:  # usage.py imports this module (for ModelRequestError)
    from rowforge.models.usage import UsageMeter

Message = dict[str, str]
JsonSchema = dict[str, Any]

ROLES = ("system", "user", "assistant")


class ModelRequestError(RowforgeError):
    """A model request failed in a way a retry would not fix: a 4xx other than 408/429 (bad
    request, auth, refusal) or a response that is not a chat completion. `status` is the HTTP
    status when the provider answered with one, so warnings and errors can name it."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@runtime_checkable
class ModelClient(Protocol):
    """A chat model. One instance per model alias; safe for concurrent `complete` calls."""

    config: ModelConfig

    #: What this client's requests did: every `complete` call that reaches the provider is
    #: started on it and ends answered (with the tokens the reply's `usage` reported), failed
    #: (by label: HTTP status, "timeout", "connection", "invalid") or cancelled. The run reads
    #: it for progress and metadata.json; the client only writes it. It outlives `aclose()`.
    usage: UsageMeter

    async def complete(
        self, messages: list[Message], *, json_schema: JsonSchema | None = None
    ) -> str:
        """The assistant's reply to OpenAI-style `messages`.

        With `json_schema`, the reply is asked to be a JSON document valid for that schema (the
        text is returned unparsed). Raises `RateLimitError`, `RetryableError` or
        `ModelRequestError` as described in the module docstring, and nothing else except
        `CancelledError`.
        """
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent; the client cannot be used afterwards."""
        ...


def message_problem(messages: object) -> str | None:
    """Why `messages` is not a valid chat-completions message list, or None if it is.

    Shared by the mock client and the mock server so both reject exactly what the other does.
    """
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages[{index}] must be an object"
        role = message.get("role")
        if role not in ROLES:
            return f"messages[{index}].role must be one of {ROLES}, got {role!r}"
        if message_text(message.get("content")) is None:
            return (
                f"messages[{index}].content must be a string or a list of text parts "
                '({"type": "text", "text": ...})'
            )
    return None


def message_text(content: object) -> str | None:
    """A message's content as one string: a string as it is, a list of text parts (the
    OpenAI API's other form, which data-designer sends) joined by newlines; None for
    anything else (images and other parts included: the mock answers text only)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            return None
        text = part.get("text")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "\n".join(texts)


def as_text_messages(messages: list[Any]) -> list[Message]:
    """`messages` (valid by `message_problem`) with every content a plain string."""
    converted: list[Message] = []
    for message in messages:
        text = message_text(message["content"])
        assert text is not None, "validate with message_problem first"
        converted.append({**message, "content": text})
    return converted
