"""`ModelRegistry`: the model clients of one run, opened and closed in the run's event loop.

A run enters the registry (an async context manager) around its engine, so HTTP sessions are
created inside the loop that uses them and always closed when the run ends, however it ends.

`usage()` gives the run each model's `UsageMeter` (requests, errors, tokens, latency). The
meters outlive the clients: metadata.json's last write comes after the engine (and so the
registry) has ended, and must still see every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rowforge.models import ModelClient, ModelConfig, create_client
from rowforge.models.usage import UsageMeter


class ModelRegistry:
    """One client per model alias, created on first use inside the run's loop, closed at exit."""

    def __init__(self, models: Sequence[ModelConfig]) -> None:
        self._configs = {model.alias: model for model in models}
        self._clients: dict[str, ModelClient] = {}
        self._meters: dict[str, UsageMeter] = {}

    def client(self, alias: str) -> ModelClient:
        client = self._clients.get(alias)
        if client is None:
            client = self._clients[alias] = create_client(self._configs[alias])
            meter = getattr(client, "usage", None)
            # A client without a meter (a test double written before `usage` existed) is
            # reported as a model that was called, with nothing counted.
            self._meters[alias] = meter if isinstance(meter, UsageMeter) else UsageMeter(alias)
        return client

    def usage(self) -> dict[str, UsageMeter]:
        """`{alias: meter}` of every model whose client was created (on its first call), in the
        order they were; a model never called has no entry. The meters are live (read them
        with `snapshot()` / `as_metadata()`) and stay readable after the registry has closed;
        a client created again after the exit starts a new meter."""
        return dict(self._meters)

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
