"""ModelConfig and MockSettings reject bad values with a message naming the field."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest

from rowforge.errors import ConfigError
from rowforge.models import CLIENT_TYPES, MockSettings, ModelClient, ModelConfig, create_client
from rowforge.models.config import PROVIDERS, FieldError, describe
from rowforge.models.mock import MockClient
from rowforge.models.openai_client import OpenAIClient


def test_defaults_are_a_fast_faultless_mock() -> None:
    config = ModelConfig("writer")
    assert config.provider == "mock"
    assert config.model == "mock-1"
    assert config.mock == MockSettings()
    assert (config.timeout_s, config.slow_request_warning_s) == (60.0, 30.0)
    assert config.max_parallel_requests == 32


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_s", -1, "models['writer'].timeout_s must be positive, got -1"),
        ("timeout_s", 0, "models['writer'].timeout_s must be positive, got 0"),
        ("timeout_s", math.nan, "models['writer'].timeout_s must be positive, got nan"),
        ("timeout_s", math.inf, "models['writer'].timeout_s must be finite, got inf"),
        ("timeout_s", "60", "models['writer'].timeout_s must be a number, got '60'"),
        ("slow_request_warning_s", 0, "models['writer'].slow_request_warning_s must be positive"),
        ("temperature", 2.5, "models['writer'].temperature must be in [0, 2], got 2.5"),
        ("temperature", True, "models['writer'].temperature must be in [0, 2], got True"),
        ("max_tokens", 0, "models['writer'].max_tokens must be an int >= 1, got 0"),
        ("max_tokens", 1.5, "models['writer'].max_tokens must be an int >= 1, got 1.5"),
        ("max_parallel_requests", 0, "models['writer'].max_parallel_requests must be an int >= 1"),
        ("provider", "anthropic", "models['writer'].provider must be one of ('mock', 'openai')"),
        ("model", "", "models['writer'].model must be a non-empty string"),
        ("base_url", "127.0.0.1:8000/v1", "models['writer'].base_url must be an http(s) URL"),
        ("api_key_env", "MY KEY", "models['writer'].api_key_env must be the name of an env"),
        ("mock", {"seed": 1}, "models['writer'].mock must be a MockSettings, got dict"),
    ],
)
def test_bad_model_config_names_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ModelConfig("writer", **{field: value})
    assert str(caught.value).startswith(message)


def test_api_key_env_holding_a_key_is_rejected_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        ModelConfig("writer", provider="openai", api_key_env="sk-proj-abc123")
    assert "sk-proj" not in str(caught.value)
    assert "not the key itself" in str(caught.value)


def test_empty_alias_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"ModelConfig.alias must be a non-empty string"):
        ModelConfig(" ")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"error_rate": 1.5}, "MockSettings.error_rate must be in [0, 1], got 1.5"),
        ({"hang_rate": -0.1}, "MockSettings.hang_rate must be in [0, 1], got -0.1"),
        ({"latency_ms": (5, 1)}, "MockSettings.latency_ms must be finite numbers with 0 <= lo"),
        ({"latency_ms": (1, 2, 3)}, "MockSettings.latency_ms must be a pair [lo, hi]"),
        ({"seed": 1.5}, "MockSettings.seed must be an int, got 1.5"),
        ({"retry_after_s": -1}, "MockSettings.retry_after_s must be a finite number >= 0"),
        (
            {"rate_limit_rate": 0.6, "error_rate": 0.6},
            "MockSettings rate_limit_rate + error_rate + refusal_rate + hang_rate must be at "
            "most 1, got 1.2",
        ),
    ],
)
def test_bad_mock_settings_name_the_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MockSettings(**options)
    assert str(caught.value).startswith(message)


def test_latency_accepts_a_yaml_list_and_stores_a_tuple() -> None:
    assert MockSettings(latency_ms=[10, 20]).latency_ms == (10.0, 20.0)  # type: ignore[arg-type]


def test_configs_are_frozen_values() -> None:
    config = ModelConfig("writer", mock=MockSettings(seed=3))
    assert config == ModelConfig("writer", mock=MockSettings(seed=3))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.timeout_s = 1.0  # type: ignore[misc]


def test_endpoint_defaults_to_the_openai_api_and_tolerates_a_trailing_slash() -> None:
    assert ModelConfig("w", provider="openai").endpoint == (
        "https://api.openai.com/v1/chat/completions"
    )
    local = ModelConfig("w", provider="openai", base_url="http://127.0.0.1:9/v1/")
    assert local.endpoint == "http://127.0.0.1:9/v1/chat/completions"


def test_create_client_picks_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    mock = create_client(ModelConfig("w"))
    assert isinstance(mock, MockClient) and isinstance(mock, ModelClient)
    monkeypatch.setenv("ROWFORGE_TEST_KEY", "secret")
    config = ModelConfig("w", provider="openai", api_key_env="ROWFORGE_TEST_KEY")
    remote = create_client(config)
    assert isinstance(remote, OpenAIClient) and isinstance(remote, ModelClient)
    assert remote.config is config


def test_missing_api_key_variable_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROWFORGE_MISSING_KEY", raising=False)
    config = ModelConfig("judge", provider="openai", api_key_env="ROWFORGE_MISSING_KEY")
    with pytest.raises(ConfigError) as caught:
        create_client(config)
    assert str(caught.value) == (
        "models['judge'].api_key_env names environment variable 'ROWFORGE_MISSING_KEY', "
        "which is not set"
    )
    monkeypatch.setenv("ROWFORGE_MISSING_KEY", "")
    with pytest.raises(ConfigError, match="which is empty"):
        create_client(config)


def test_a_field_error_carries_the_field_so_a_loader_can_name_its_position() -> None:
    with pytest.raises(FieldError) as model_error:
        ModelConfig("writer", timeout_s=-1)
    assert str(model_error.value) == "models['writer'].timeout_s must be positive, got -1"
    assert str(model_error.value.at("models[0] 'writer'")) == (
        "models[0] 'writer'.timeout_s: must be positive, got -1"
    )
    with pytest.raises(FieldError) as mock_error:
        MockSettings(error_rate=0.7, hang_rate=0.7)
    assert mock_error.value.field == ""
    assert str(mock_error.value.at("models[0] 'w'.mock")).startswith(
        "models[0] 'w'.mock: rate_limit_rate + error_rate + refusal_rate + hang_rate must be"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alias", None),
        ("alias", ["w"]),
        ("provider", ["mock"]),
        ("provider", {"name": "mock"}),
        ("model", 5),
        ("base_url", 8000),
        ("api_key_env", ["KEY"]),
        ("temperature", "0.5"),
        ("max_tokens", "64"),
        ("timeout_s", None),
        ("max_parallel_requests", 4.0),
        ("slow_request_warning_s", "30"),
        ("mock", "fast"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_field_error_naming_the_field(
    field: str, value: Any
) -> None:
    fields = {"alias": "writer", field: value}
    with pytest.raises(FieldError) as caught:
        ModelConfig(**fields)
    assert caught.value.field == field


def test_describe_names_the_type_and_a_short_value() -> None:
    assert describe("fast") == "str 'fast'"
    assert describe(5) == "int 5"
    assert describe(None) == "None"
    assert describe(list(range(100))) == "list"


def test_every_provider_a_model_config_accepts_has_a_client_and_no_other() -> None:
    """`CLIENT_TYPES` is the providers' table: a name `ModelConfig` accepts without a client
    would only fail when the run first calls the model."""
    assert sorted(CLIENT_TYPES) == sorted(PROVIDERS)
