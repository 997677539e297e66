"""`ModelConfig` and `MockSettings`: which model a column calls, and how the mock misbehaves.

Theory of operation: both classes are frozen attrs values, validated on construction, so a bad
value fails before any request is sent. Every message names the field the way a user wrote it,
`models['writer'].timeout_s`, so it can be found in a config file. `MockSettings` does not know
which model it belongs to, so its own messages say `MockSettings.<field>`.

The API key never lives in a config: `api_key_env` names the environment variable that holds
it, so configs can be committed, logged and written to `metadata.json` without leaking secrets.
Whether that variable is set is checked by `rowforge validate` (`validate_config`) and when a
client is created, not here: a config can be built where the key is not available.

Inference parameters (`temperature`, `top_p`, `max_tokens` or `max_completion_tokens`, `stop`,
`seed`) are checked against the ranges the OpenAI API accepts, so a typo fails here rather than
as a 400 on every request. An optional one left at None is not sent at all, which is how a
reasoning model that rejects `temperature` is configured. `extra_body` and `extra_headers` pass
provider-specific options through (vLLM's `top_k`, a gateway's routing header); they may not
set what rowforge sets itself, so a config never says two different things about one field.

Every error is a `FieldError`: a `ConfigError` that also carries the `field` and the `problem`,
so a loader that knows where the object sits in a file can say `models[0] 'writer'.timeout_s:
must be positive, got -1` (see `FieldError.at`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from rowforge.errors import ConfigError

Provider = Literal["mock", "openai"]
PROVIDERS: tuple[str, ...] = ("mock", "openai")

#: Used when an "openai" model has no `base_url`.
OPENAI_BASE_URL = "https://api.openai.com/v1"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: The request-body fields the OpenAI client sets from a `ModelConfig`'s own fields, plus
#: `stream` (the client reads one JSON reply, not a stream): `extra_body` may not set them.
RESERVED_BODY_FIELDS = (
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "response_format",
    "stream",
)

#: Headers the HTTP layer writes, lower-cased: `extra_headers` may not set them (nor
#: Authorization, which carries the API key from `api_key_env`).
RESERVED_HEADERS = ("content-type", "content-length", "host", "transfer-encoding")

#: How many stop sequences the OpenAI API accepts.
MAX_STOP_SEQUENCES = 4

#: The range of `seed`: OpenAI-compatible servers read it as a signed 64-bit integer.
SEED_RANGE = (-(2**63), 2**63 - 1)

# An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


class FieldError(ConfigError):
    """A bad value in one `field` of one object (`field` is "" when the object as a whole is
    wrong). `str()` reads on its own (`models['w'].timeout_s must be positive, got -1`);
    `at(path)` rewords it for a position in a file (`models[0] 'w'.timeout_s: must be ...`)."""

    def __init__(self, message: str, field: str, problem: str) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem

    def at(self, path: str) -> ConfigError:
        """The same problem, named by its path in a file: `<path>.<field>: <problem>`."""
        where = f"{path}.{self.field}" if self.field else path
        return ConfigError(f"{where}: {self.problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigError, (str(self),))


def describe(value: object, limit: int = 60) -> str:
    """A value for an error message: its type and, when short, its repr (`str 'fast'`)."""
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= limit else type(value).__name__


def _is_number(value: object) -> bool:
    # bool is an int subclass; `temperature: true` in YAML is a typo, not 1.0.
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- MockSettings ---------------------------------------------------------------------------


def _mock_error(field: str, problem: str) -> FieldError:
    return FieldError(f"MockSettings.{field} {problem}", field, problem)


def _latency_pair(value: Sequence[float]) -> tuple[float, float]:
    """Accept any two-item sequence (YAML gives lists) and store a tuple."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise _mock_error("latency_ms", f"must be a pair [lo, hi], got {value!r}")
    lo, hi = value
    if not (_is_number(lo) and _is_number(hi) and 0 <= lo <= hi and math.isfinite(hi)):
        raise _mock_error("latency_ms", f"must be finite numbers with 0 <= lo <= hi, got {value!r}")
    return (float(lo), float(hi))


def _probability(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (_is_number(value) and 0 <= value <= 1):
        raise _mock_error(attribute.name, f"must be in [0, 1], got {value!r}")


def _mock_seconds(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (_is_number(value) and 0 <= value < math.inf):
        raise _mock_error(attribute.name, f"must be a finite number >= 0, got {value!r}")


def _int(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _mock_error(attribute.name, f"must be an int, got {value!r}")


@attrs.frozen
class MockSettings:
    """How the mock model behaves: latency and injected faults, all reproducible from `seed`.

    Each request draws one outcome: a 429 (`rate_limit_rate`, answered with `retry_after_s`), a
    500 (`error_rate`), a refusal (`refusal_rate`, a non-retryable 400), a hang (`hang_rate`, no
    answer until the caller's timeout) or a reply. The rates are disjoint slices of one draw, so
    they must sum to at most 1. Latency is uniform in `latency_ms` = [lo, hi] milliseconds.
    """

    latency_ms: tuple[float, float] = attrs.field(default=(0.0, 0.0), converter=_latency_pair)
    rate_limit_rate: float = attrs.field(default=0.0, validator=_probability)
    error_rate: float = attrs.field(default=0.0, validator=_probability)
    refusal_rate: float = attrs.field(default=0.0, validator=_probability)
    hang_rate: float = attrs.field(default=0.0, validator=_probability)
    seed: int = attrs.field(default=0, validator=_int)
    #: The Retry-After (seconds) a simulated 429 carries.
    retry_after_s: float = attrs.field(default=1.0, validator=_mock_seconds)

    def __attrs_post_init__(self) -> None:
        total = self.fault_rate
        if total > 1 + 1e-9:
            problem = (
                "rate_limit_rate + error_rate + refusal_rate + hang_rate must be at most 1, "
                f"got {total!r}"
            )
            raise FieldError(f"MockSettings {problem}", "", problem)

    @property
    def fault_rate(self) -> float:
        """The probability that a request does not simply succeed."""
        return self.rate_limit_rate + self.error_rate + self.refusal_rate + self.hang_rate


#: The settings a mock model gets when none are given: instant, faultless, seed 0.
DEFAULT_MOCK_SETTINGS = MockSettings()


# --- ModelConfig ----------------------------------------------------------------------------


def _where(instance: Any, attribute: attrs.Attribute[Any]) -> str:
    """`models['writer'].field`: the path a user would look for in a config file."""
    alias = getattr(instance, "alias", None)
    prefix = f"models[{alias!r}]" if isinstance(alias, str) and alias else "ModelConfig"
    return f"{prefix}.{attribute.name}"


def _model_error(instance: Any, attribute: attrs.Attribute[Any], problem: str) -> FieldError:
    return FieldError(f"{_where(instance, attribute)} {problem}", attribute.name, problem)


def _alias(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        problem = f"must be a non-empty string, got {describe(value)}"
        raise FieldError(f"ModelConfig.alias {problem}", "alias", problem)


def _provider(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or value not in PROVIDERS:
        raise _model_error(instance, attribute, f"must be one of {PROVIDERS}, got {value!r}")


def _non_empty(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _model_error(instance, attribute, f"must be a non-empty string, got {value!r}")


def _base_url(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not re.match(r"https?://[^/\s]+", value):
        raise _model_error(
            instance,
            attribute,
            f"must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got {value!r}",
        )


def _api_key_env(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        # Deliberately does not echo the value: it may be the key itself, pasted by mistake.
        raise _model_error(
            instance,
            attribute,
            "must be the name of an environment variable (e.g. 'OPENAI_API_KEY'), "
            "not the key itself",
        )


def _temperature(instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (_is_number(value) and 0 <= value <= 2):
        raise _model_error(instance, attribute, f"must be in [0, 2], got {value!r}")


def _top_p(instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (_is_number(value) and 0 < value <= 1):
        raise _model_error(instance, attribute, f"must be in (0, 1], got {value!r}")


def _positive_int(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise _model_error(instance, attribute, f"must be an int >= 1, got {value!r}")


def _optional_positive_int(
    instance: Any, attribute: attrs.Attribute[Any], value: int | None
) -> None:
    if value is not None:
        _positive_int(instance, attribute, value)


def _stop_sequences(value: Any) -> Any:
    """A YAML list of stop strings is stored as a tuple; a single string stays a string (it is
    sent as one, as the user wrote it)."""
    return tuple(value) if isinstance(value, list) else value


def _stop(
    instance: Any, attribute: attrs.Attribute[Any], value: str | tuple[str, ...] | None
) -> None:
    if value is None or (isinstance(value, str) and value):
        return
    sequences = value if isinstance(value, tuple) else ()
    if not (
        1 <= len(sequences) <= MAX_STOP_SEQUENCES
        and all(isinstance(text, str) and text for text in sequences)
    ):
        raise _model_error(
            instance,
            attribute,
            f"must be a non-empty string or a list of 1 to {MAX_STOP_SEQUENCES} non-empty "
            f"strings, got {value!r}",
        )


def _seed(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is None:
        return
    low, high = SEED_RANGE
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise _model_error(
            instance, attribute, f"must be an integer in [-2**63, 2**63 - 1], got {value!r}"
        )


def _copied(value: Any) -> Any:
    """A mapping is stored as a copy, so a key added to the caller's dict later cannot slip
    past validation; anything else is kept for the validator to refuse by name."""
    return dict(value) if isinstance(value, Mapping) else value


def _extra_body(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _model_error(
            instance, attribute, f"must be a mapping with string keys, got {describe(value)}"
        )
    reserved = sorted(key for key in value if key in RESERVED_BODY_FIELDS)
    if reserved:
        raise _model_error(
            instance,
            attribute,
            f"must not set {reserved}: rowforge sets them (from the model's own fields "
            "temperature, top_p, max_tokens, max_completion_tokens, stop, seed, or itself)",
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:  # a set, an object, NaN, a cycle
        raise _model_error(instance, attribute, f"must be a JSON object: {error}") from None


def _extra_headers(
    instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    if not isinstance(value, Mapping):
        raise _model_error(
            instance, attribute, f"must be a mapping of header name to value, got {describe(value)}"
        )
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise _model_error(
                instance, attribute, f"has {describe(name)}, which is not an HTTP header name"
            )
        if name.lower() == "authorization":
            raise _model_error(
                instance,
                attribute,
                "must not set Authorization: the API key is sent from the environment variable "
                "named by api_key_env, so it never sits in a config file",
            )
        if name.lower() in RESERVED_HEADERS:
            raise _model_error(
                instance, attribute, f"must not set {name!r}: the HTTP client sets it"
            )
        if not isinstance(text, str) or "\r" in text or "\n" in text:
            problem = (
                "must be a string without line breaks (quote numbers in YAML), "
                f"got {describe(text)}"
            )
            field = f"{attribute.name}[{name!r}]"
            raise FieldError(f"{_where(instance, attribute)}[{name!r}] {problem}", field, problem)


def _positive_seconds(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not _is_number(value):
        raise _model_error(instance, attribute, f"must be a number, got {value!r}")
    if not value > 0:
        raise _model_error(instance, attribute, f"must be positive, got {value!r}")
    if not math.isfinite(value):
        raise _model_error(instance, attribute, f"must be finite, got {value!r}")


def _mock(instance: Any, attribute: attrs.Attribute[Any], value: MockSettings) -> None:
    if not isinstance(value, MockSettings):
        raise _model_error(
            instance, attribute, f"must be a MockSettings, got {type(value).__name__}"
        )


@attrs.frozen
class ModelConfig:
    """One model a column can call, by `alias`.

    `provider="mock"` (the default) answers in-process from `mock`; `"openai"` speaks the
    OpenAI chat-completions protocol to `base_url` (default the OpenAI API), e.g. a local vLLM
    or `rowforge mock-server`. `max_parallel_requests` caps this model's concurrent requests
    (the HTTP connection pool is that size). A request pending longer than
    `slow_request_warning_s` logs a warning, repeated at that interval until it ends; one
    pending longer than `timeout_s` fails as retryable.

    Sampling: `temperature` (None: not sent, for reasoning models that reject it), `top_p`,
    `stop` (a string or up to 4), `seed`, all sent as the OpenAI API names them when not None.
    The reply's length is capped by `max_tokens`, or by `max_completion_tokens` when that is set
    (reasoning models require it, and count their hidden reasoning in it): then
    `max_completion_tokens` is sent instead of `max_tokens`, never both. `extra_body` is merged
    into every request body and `extra_headers` sent with every request, for options rowforge
    has no field for; the mock accepts and ignores both.
    """

    alias: str = attrs.field(validator=_alias)
    provider: Provider = attrs.field(default="mock", validator=_provider)
    model: str = attrs.field(default="mock-1", validator=_non_empty)
    base_url: str | None = attrs.field(default=None, validator=_base_url)
    api_key_env: str | None = attrs.field(default=None, validator=_api_key_env)
    temperature: float | None = attrs.field(default=0.7, validator=_temperature)
    top_p: float | None = attrs.field(default=None, validator=_top_p)
    max_tokens: int = attrs.field(default=512, validator=_positive_int)
    max_completion_tokens: int | None = attrs.field(default=None, validator=_optional_positive_int)
    stop: str | tuple[str, ...] | None = attrs.field(
        default=None, converter=_stop_sequences, validator=_stop
    )
    seed: int | None = attrs.field(default=None, validator=_seed)
    timeout_s: float = attrs.field(default=60.0, validator=_positive_seconds)
    max_parallel_requests: int = attrs.field(default=32, validator=_positive_int)
    slow_request_warning_s: float = attrs.field(default=30.0, validator=_positive_seconds)
    mock: MockSettings = attrs.field(default=DEFAULT_MOCK_SETTINGS, validator=_mock)
    # Mappings are left out of the hash (a dict has none), so a config stays hashable.
    extra_body: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_copied, validator=_extra_body, hash=False
    )
    extra_headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=_copied, validator=_extra_headers, hash=False
    )

    @property
    def completion_token_limit(self) -> int:
        """The cap on a reply's tokens: `max_completion_tokens` when set, else `max_tokens`."""
        return self.max_tokens if self.max_completion_tokens is None else self.max_completion_tokens

    @property
    def endpoint(self) -> str:
        """The chat-completions URL an "openai" model posts to."""
        return f"{(self.base_url or OPENAI_BASE_URL).rstrip('/')}/chat/completions"
