"""`ModelConfig` and `MockSettings`: which model a column calls, and how the mock misbehaves.

Theory of operation: both classes are frozen attrs values, validated on construction, so a bad
value fails before any request is sent. Every message names the field the way a user wrote it,
`models['writer'].timeout_s`, so it can be found in a config file. `MockSettings` does not know
which model it belongs to, so its own messages say `MockSettings.<field>`.

The API key never lives in a config: `api_key_env` names the environment variable that holds
it, so configs can be committed, logged and written to `metadata.json` without leaking secrets.
Whether that variable is set is checked by `rowforge validate` (`validate_config`) and when a
client is created, not here: a config can be built where the key is not available.

Every error is a `FieldError`: a `ConfigError` that also carries the `field` and the `problem`,
so a loader that knows where the object sits in a file can say `models[0] 'writer'.timeout_s:
must be positive, got -1` (see `FieldError.at`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from rowforge.errors import ConfigError

Provider = Literal["mock", "openai"]
PROVIDERS: tuple[str, ...] = ("mock", "openai")

#: Used when an "openai" model has no `base_url`.
OPENAI_BASE_URL = "https://api.openai.com/v1"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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


def _temperature(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (_is_number(value) and 0 <= value <= 2):
        raise _model_error(instance, attribute, f"must be in [0, 2], got {value!r}")


def _positive_int(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise _model_error(instance, attribute, f"must be an int >= 1, got {value!r}")


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
    """

    alias: str = attrs.field(validator=_alias)
    provider: Provider = attrs.field(default="mock", validator=_provider)
    model: str = attrs.field(default="mock-1", validator=_non_empty)
    base_url: str | None = attrs.field(default=None, validator=_base_url)
    api_key_env: str | None = attrs.field(default=None, validator=_api_key_env)
    temperature: float = attrs.field(default=0.7, validator=_temperature)
    max_tokens: int = attrs.field(default=512, validator=_positive_int)
    timeout_s: float = attrs.field(default=60.0, validator=_positive_seconds)
    max_parallel_requests: int = attrs.field(default=32, validator=_positive_int)
    slow_request_warning_s: float = attrs.field(default=30.0, validator=_positive_seconds)
    mock: MockSettings = attrs.field(default=DEFAULT_MOCK_SETTINGS, validator=_mock)

    @property
    def endpoint(self) -> str:
        """The chat-completions URL an "openai" model posts to."""
        return f"{(self.base_url or OPENAI_BASE_URL).rstrip('/')}/chat/completions"
