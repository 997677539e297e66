"""An HTTP endpoint as validator (data-designer's `remote`).

Per batch: POST `{"data": [one record of the target columns per row]}` to `endpoint_url`; the
answer is `{"data": [one output per record]}`, checked like a function's
(`rowforge.validators.outputs`).

- Retries: a 429, a 5xx, a timeout or a failed connection is tried again, up to `max_retries`
  times, after `retry_backoff * 2**k` seconds (k = 0, 1, ...): data-designer's exponential
  backoff. Any other status, or an answer that is not JSON, fails the batch at once.
- `timeout` bounds each phase of a request: waiting for a pooled connection, connecting,
  sending, reading (httpx's `Timeout(timeout)`).
- Concurrency: at most `max_parallel_requests` batches of the column are in flight at once,
  across every row group of the run: one semaphore per event loop (a run is one loop; the
  semaphore is created in it). A batch holds its slot through its retries, so backing off
  really does slow the column down.
- The HTTP client: one `httpx.AsyncClient` per step call (`client()`), entered with
  `async with` around the batches of that call, so its connections are closed when the call
  ends however it ends, in the loop that opened them; nothing outlives the step.

httpx is in the `validation` extra (it is not one of rowforge's own dependencies).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rowforge.config.validator_params import setting
from rowforge.errors import describe_error
from rowforge.validators.outputs import checked_outputs

if TYPE_CHECKING:
    import httpx


def require_httpx() -> None:
    """Import httpx (ImportError when missing)."""
    import httpx  # noqa: F401


class RemoteValidator:
    """The remote validator of one column, for every step call of the run."""

    def __init__(self, validator: Mapping[str, Any]) -> None:
        self.url: str = validator["endpoint_url"]
        self.schema: Mapping[str, Any] | None = setting(validator, "output_schema")
        self.timeout = float(setting(validator, "timeout"))
        self.max_retries: int = setting(validator, "max_retries")
        self.retry_backoff = float(setting(validator, "retry_backoff"))
        self.max_parallel_requests: int = setting(validator, "max_parallel_requests")
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._gates = weakref.WeakKeyDictionary()

    def client(self) -> httpx.AsyncClient:
        """A client for one step call; enter it (`async with`) around the call's batches."""
        import httpx

        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=self.max_parallel_requests),
        )

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.max_parallel_requests)
        return gate

    async def validate(
        self, client: httpx.AsyncClient, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Each record's output, checked; a `ValueError` saying why when there is none."""
        async with self._gate():
            document = await self._post(client, {"data": records})
        if not isinstance(document, Mapping) or not isinstance(document.get("data"), list):
            raise ValueError("the response is not an object with a list 'data'")
        return checked_outputs(document["data"], len(records), self.schema)

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> Any:
        import httpx

        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                response = await client.post(self.url, json=body)
            except httpx.TransportError as error:  # connecting, timeouts, a broken answer
                problem = f"request failed: {describe_error(error) or 'no detail'}"
            else:
                status = response.status_code
                if status != 429 and status < 500:
                    return _answer(response)
                problem = f"HTTP {status}: {_snippet(response)}"
            if attempt + 1 == attempts:
                raise ValueError(f"{problem} (after {attempts} attempts)")
            await asyncio.sleep(self.retry_backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _answer(response: httpx.Response) -> Any:
    if not 200 <= response.status_code < 300:
        raise ValueError(f"HTTP {response.status_code}: {_snippet(response)}")
    try:
        return response.json()
    except ValueError:
        raise ValueError(f"the response is not JSON: {_snippet(response)}") from None


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip()
    return (text[:200] + "...") if len(text) > 200 else text or "(empty body)"
