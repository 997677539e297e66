"""rowforge.models: the chat models columns call, behind one small interface.

A column holds a `ModelClient` made by `create_client(ModelConfig(...))` and awaits
`complete(messages, json_schema=...)`. Two providers exist: `"mock"` (the embedded default,
`MockClient`: in-process, deterministic, with simulated latency and faults) and `"openai"`
(`OpenAIClient`: any OpenAI-compatible chat-completions server over aiohttp, including
`rowforge mock-server`, see `rowforge.models.mock_server`). Every failure surfaces as
`RateLimitError`, `RetryableError` or `ModelRequestError`, which is what the scheduler's retry
policy classifies.
"""

from rowforge.errors import ConfigError
from rowforge.models.client import ModelClient, ModelRequestError
from rowforge.models.config import DEFAULT_MOCK_SETTINGS, MockSettings, ModelConfig
from rowforge.models.mock import MockClient, mock_reply
from rowforge.models.openai_client import OpenAIClient


def create_client(config: ModelConfig) -> ModelClient:
    """The client for `config.provider`: "mock" -> `MockClient`, "openai" -> `OpenAIClient`.

    Does no I/O. Raises `ConfigError` when an "openai" model's `api_key_env` is not set.
    """
    if config.provider == "mock":
        return MockClient(config)
    if config.provider == "openai":
        return OpenAIClient(config)
    raise ConfigError(f"models[{config.alias!r}].provider {config.provider!r} is not supported")


__all__ = [
    "DEFAULT_MOCK_SETTINGS",
    "MockClient",
    "MockSettings",
    "ModelClient",
    "ModelConfig",
    "ModelRequestError",
    "OpenAIClient",
    "create_client",
    "mock_reply",
]
