"""`ModelRegistry`: the model clients of one run, opened and closed in the run's event loop.

A run enters the registry (an async context manager) around its engine, so HTTP sessions are
created inside the loop that uses them and always closed when the run ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rowforge.models import ModelClient, ModelConfig, create_client


class ModelRegistry:
    """One client per model alias, created on first use inside the run's loop, closed at exit."""

    def __init__(self, models: Sequence[ModelConfig]) -> None:
        self._configs = {model.alias: model for model in models}
        self._clients: dict[str, ModelClient] = {}

    def client(self, alias: str) -> ModelClient:
        client = self._clients.get(alias)
        if client is None:
            client = self._clients[alias] = create_client(self._configs[alias])
        return client

    async def __aenter__(self) -> ModelRegistry:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
