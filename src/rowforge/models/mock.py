"""The built-in mock model: deterministic replies, simulated latency and injected faults.

Theory of operation: `MockModel` decides, `MockClient` (in-process) and `mock_server` (HTTP)
act. For each attempt `MockModel.begin` draws a `MockTurn` (latency, outcome) from a
`random.Random` seeded by (settings.seed, the request, the attempt number of that request), so a
run is reproducible however its requests interleave, and a retry of a request that drew a fault
draws again instead of failing forever. The reply text depends only on (seed, request): the
same messages always get the same answer. Attempt counters are dropped once a request's final
outcome (reply or refusal) is delivered (`MockModel.settle`), so memory follows the requests
in flight and in retry, not the size of the dataset.

Replies are a few plausible sentences about a word taken from the last user message, cut to
`max_tokens` words (`max_completion_tokens` when the config sets it). With a JSON schema the
reply is a JSON document built by `rowforge.models.schema.example_for`. Like a real model, the
mock honours the request's `stop` sequences (the reply ends just before the first one) and its
`seed` (a different seed, a different reply; no seed, the reply it always gave).

A mock token is a word (which is what `max_tokens` cuts by): `mock_usage` counts the prompt's
and the reply's words, and both the client and the server report those counts as the reply's
`usage`, so a demo shows tokens, deterministically.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

import attrs

from rowforge.errors import ProviderTimeoutError, RateLimitError, RetryableError
from rowforge.models.client import JsonSchema, Message, ModelRequestError, message_problem
from rowforge.models.config import MockSettings, ModelConfig
from rowforge.models.repair import requested_language
from rowforge.models.schema import example_for
from rowforge.models.slow import SlowRequestWarning
from rowforge.models.usage import UsageMeter

Outcome = Literal["reply", "rate_limit", "error", "refusal", "hang"]

_OPENERS = ("In short,", "Put simply,", "In practice,", "On balance,", "Broadly speaking,", "")
_SUBJECTS = (
    "the simplest approach", "a careful review", "the second option", "this method",
    "a clear checklist", "the usual fix", "a small change", "the team",
)  # fmt: skip
_VERBS = (
    "improves", "depends on", "clarifies", "reduces", "highlights", "protects", "simplifies",
    "shapes",
)  # fmt: skip
_OBJECTS = (
    "the overall quality", "the main risk", "long-term costs", "the user's experience",
    "the final result", "the next step", "most of the effort", "the open questions",
)  # fmt: skip
_CLOSERS = ("in most cases", "over time", "when applied consistently", "for now", "", "")
_STOPWORD_TEXT = (
    "about above after again also because before being below between could does doing during "
    "each from have having here into just more most other over please same should some such "
    "than that their them then there these they this those through under until very were what "
    "when where which while will with would your write give make describe explain summarise "
    "summarize tell list question answer"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@attrs.frozen
class MockTurn:
    """What the mock does with one attempt: wait `latency_s`, then `outcome`."""

    key: bytes
    attempt: int
    latency_s: float
    outcome: Outcome


def mock_usage(messages: list[Message], content: str) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) the mock reports for `content` answering `messages`:
    their words, the unit `max_tokens` cuts replies by, so completion_tokens <= max_tokens for
    prose as it is for a real model."""
    prompt_tokens = sum(len(message["content"].split()) for message in messages)
    return prompt_tokens, len(content.split())


def stop_sequences(stop: str | Sequence[str] | None) -> tuple[str, ...]:
    """A request's `stop` (one string, a list of them, or None) as a tuple of strings."""
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any (non-empty) stop sequence, as a model stops
    generating there; the stop sequence itself is not part of the reply."""
    found = [index for index in (text.find(s) for s in stop if s) if index >= 0]
    return text[: min(found)] if found else text


def request_key(messages: list[Message], json_schema: JsonSchema | None) -> bytes:
    """A stable digest of a request: equal requests get equal keys in every process."""
    text = json.dumps([messages, json_schema], sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class MockModel:
    """The deterministic model behind `MockClient` and the mock HTTP server."""

    def __init__(self, settings: MockSettings) -> None:
        self.settings = settings
        self._attempts: dict[bytes, int] = {}

    def _rng(self, *parts: bytes | int | str) -> random.Random:
        digest = hashlib.blake2b(repr((self.settings.seed, *parts)).encode(), digest_size=16)
        return random.Random(int.from_bytes(digest.digest(), "big"))

    def begin(self, messages: list[Message], json_schema: JsonSchema | None) -> MockTurn:
        """Draw this attempt's latency and outcome, and count the attempt."""
        key = request_key(messages, json_schema)
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        rng = self._rng("turn", key, attempt)
        s = self.settings
        latency_s = rng.uniform(*s.latency_ms) / 1000
        slices: tuple[tuple[float, Outcome], ...] = (
            (s.rate_limit_rate, "rate_limit"),
            (s.error_rate, "error"),
            (s.refusal_rate, "refusal"),
            (s.hang_rate, "hang"),
        )
        draw = rng.random()
        outcome: Outcome = "reply"
        edge = 0.0
        for rate, kind in slices:
            edge += rate
            if draw < edge:
                outcome = kind
                break
        return MockTurn(key, attempt, latency_s, outcome)

    def settle(self, turn: MockTurn) -> None:
        """`turn` reached its final outcome (reply or refusal) and was delivered: forget the
        request's attempts, so a repeat of it later starts again from attempt 0.

        Not called for a turn whose caller gave up (timeout, cancellation) or that drew a
        retryable fault, so the next attempt of that request draws afresh; otherwise a request
        whose latency exceeds the timeout would time out on every retry.
        """
        self._attempts.pop(turn.key, None)

    @property
    def pending_requests(self) -> int:
        """Requests whose attempts are still counted (drew a retryable fault last time)."""
        return len(self._attempts)

    def reply(
        self,
        messages: list[Message],
        json_schema: JsonSchema | None,
        max_tokens: int,
        *,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> str:
        """The answer to a request: same (settings seed, messages, schema, request `seed`) ->
        same text, cut to `max_tokens` words and then before the first of `stop`.

        Without a request `seed` the reply is the one the mock gave before requests could carry
        one, so recorded expectations stay valid. Raises `ModelRequestError` when `json_schema`
        is not a schema it can follow.
        """
        key = request_key(messages, json_schema)
        rng = self._rng("reply", key) if seed is None else self._rng("reply", key, seed)
        if json_schema is None:
            words = _prose(messages, rng).split()
            text = " ".join(words[:max_tokens])
            language = _code_requested(messages)
            if language is not None:  # asked for a code block: prose inside one
                text = f"Here is the code:\n```{language}\n{text}\n```"
            return cut_at_stop(text, stop)
        if not isinstance(json_schema, dict):
            raise ModelRequestError(f"json_schema must be an object, got {json_schema!r}")
        try:
            text = json.dumps(example_for(json_schema, rng), ensure_ascii=False)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise ModelRequestError(f"the mock cannot follow this json_schema: {error}") from None
        return cut_at_stop(text, stop)


def _code_requested(messages: list[Message]) -> str | None:
    """The language the last user message asks a code block in, if it asks for one."""
    user = [m["content"] for m in messages if m["role"] == "user"]
    return requested_language(user[-1]) if user else None


def _prose(messages: list[Message], rng: random.Random) -> str:
    user = [m["content"] for m in messages if m["role"] == "user"] or [messages[-1]["content"]]
    words = re.findall(r"[A-Za-z][A-Za-z'-]{3,}", user[-1])
    candidates = [word.lower() for word in words if word.lower() not in _STOPWORDS]
    topic = rng.choice(candidates) if candidates else "this"
    sentences = [_sentence(rng, f"Regarding {topic},")]
    sentences += [_sentence(rng, rng.choice(_OPENERS)) for _ in range(rng.randrange(3))]
    return " ".join(sentences)


def _sentence(rng: random.Random, opener: str) -> str:
    parts = (opener, *(rng.choice(choices) for choices in (_SUBJECTS, _VERBS, _OBJECTS, _CLOSERS)))
    text = " ".join(part for part in parts if part)
    return text[0].upper() + text[1:] + "."


class MockClient:
    """In-process `ModelClient` for `provider="mock"`: the embedded default.

    Behaves like a remote model without a network: at most `max_parallel_requests` requests of
    this client are in progress at once (the rest wait their turn), each waits its simulated
    latency, a hang or a latency past `timeout_s` fails as `RetryableError` after `timeout_s`,
    and faults raise the same error classes `OpenAIClient` raises for the real thing.
    """

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.model = MockModel(config.mock)
        self.usage = UsageMeter(config.alias)
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    def _slots_for_this_loop(self) -> asyncio.Semaphore:
        # A semaphore binds to the loop that first waits on it; one per loop lets a client
        # serve consecutive `asyncio.run` calls (e.g. preview, then build).
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.config.max_parallel_requests)
        return self._slots

    async def complete(
        self, messages: list[Message], *, json_schema: JsonSchema | None = None
    ) -> str:
        alias = self.config.alias
        if self._closed:
            raise ModelRequestError(f"model {alias!r}: the client is closed")
        problem = message_problem(messages)
        if problem is not None:
            raise ModelRequestError(f"model {alias!r} (mock): {problem}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.usage.started()
        try:
            with SlowRequestWarning(alias, self.config.slow_request_warning_s):
                try:
                    async with asyncio.timeout(self.config.timeout_s):
                        async with self._slots_for_this_loop():
                            content = await self._attempt(messages, json_schema)
                except TimeoutError:
                    raise ProviderTimeoutError(
                        f"model {alias!r} (mock): no reply within {self.config.timeout_s:g}s"
                    ) from None
        except BaseException as error:  # failed (by label) or cancelled: in_flight stays right
            self.usage.ended_by(loop.time() - started, error)
            raise
        self.usage.answered(loop.time() - started, *mock_usage(messages, content))
        return content

    async def _attempt(self, messages: list[Message], json_schema: JsonSchema | None) -> str:
        alias = self.config.alias
        turn = self.model.begin(messages, json_schema)
        if turn.latency_s > 0:
            await asyncio.sleep(turn.latency_s)
        if turn.outcome == "rate_limit":
            retry_after = self.config.mock.retry_after_s
            raise RateLimitError(
                f"model {alias!r} (mock): HTTP 429 rate limited, retry after {retry_after:g}s",
                retry_after=retry_after,
            )
        if turn.outcome == "error":
            raise RetryableError(
                f"model {alias!r} (mock): HTTP 500 simulated server error", status=500
            )
        if turn.outcome == "hang":
            await asyncio.get_running_loop().create_future()  # until the timeout cancels us
        self.model.settle(turn)
        if turn.outcome == "refusal":
            raise ModelRequestError(
                f"model {alias!r} (mock): HTTP 400 simulated refusal", status=400
            )
        config = self.config
        return self.model.reply(
            messages,
            json_schema,
            config.completion_token_limit,
            stop=stop_sequences(config.stop),
            seed=config.seed,
        )

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> MockClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def mock_reply(settings: MockSettings, messages: list[Message], **options: Any) -> str:
    """The text the mock model answers to `messages` (no latency, no faults): for tests and docs.

    `options`: `json_schema`, `max_tokens` (default 512), `stop` (a string or a list) and
    `seed`, as for a request.
    """
    return MockModel(settings).reply(
        messages,
        options.get("json_schema"),
        options.get("max_tokens", 512),
        stop=stop_sequences(options.get("stop")),
        seed=options.get("seed"),
    )
