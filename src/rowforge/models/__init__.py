"""rowforge.models: the chat models columns call, behind one small interface.

A column holds a `ModelClient` made by `create_client(ModelConfig(...))` and awaits
`complete(messages, json_schema=...)`. Two providers exist: `"mock"` (the embedded default,
`MockClient`: in-process, deterministic, with simulated latency and faults) and `"openai"`
(`OpenAIClient`: any OpenAI-compatible chat-completions server over aiohttp, including
`rowforge mock-server`, see `rowforge.models.mock_server`). Every failure surfaces as
`RateLimitError`, `RetryableError` or `ModelRequestError`, which is what the scheduler's retry
policy classifies.

Providers are a table: `CLIENT_TYPES` maps each name of `config.PROVIDERS` (the names a
`ModelConfig` accepts) to the client that speaks it. Adding a provider is a name there and an
entry here; a test fails while the two disagree.

Every client counts its requests on a `UsageMeter` (`client.usage`; see `rowforge.models.usage`):
requests, errors by label, the tokens the replies' `usage` reported, and latency percentiles.
`ModelRegistry.usage()` collects them per alias and `models_metadata` turns them into
metadata.json's "models" section.
"""

from collections.abc import Callable

from rowforge.errors import ConfigError
from rowforge.models.client import ModelClient, ModelRequestError
from rowforge.models.config import DEFAULT_MOCK_SETTINGS, MockSettings, ModelConfig
from rowforge.models.mock import MockClient, mock_reply
from rowforge.models.openai_client import OpenAIClient
from rowforge.models.usage import ModelUsage, UsageMeter, models_metadata

#: The client class of every provider; each is built from its `ModelConfig` and does no I/O.
CLIENT_TYPES: dict[str, Callable[[ModelConfig], ModelClient]] = {
    "mock": MockClient,
    "openai": OpenAIClient,
}


def create_client(config: ModelConfig) -> ModelClient:
    """The client for `config.provider`, from `CLIENT_TYPES`.

    Does no I/O. Raises `ConfigError` when an "openai" model's `api_key_env` is not set.
    """
    client_type = CLIENT_TYPES.get(config.provider)
    if client_type is None:
        raise ConfigError(f"models[{config.alias!r}].provider {config.provider!r} is not supported")
    return client_type(config)


__all__ = [
    "CLIENT_TYPES",
    "DEFAULT_MOCK_SETTINGS",
    "MockClient",
    "MockSettings",
    "ModelClient",
    "ModelConfig",
    "ModelRequestError",
    "ModelUsage",
    "OpenAIClient",
    "UsageMeter",
    "create_client",
    "mock_reply",
    "models_metadata",
]
