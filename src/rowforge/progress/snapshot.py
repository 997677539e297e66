"""`ProgressSnapshot`: what a running (or finished) run looks like at one moment.

Frozen value classes, so a snapshot handed to a callback, a display or another thread can never
change under the reader, and fields are named, not positions in a tuple. The engine builds one
in O(1) from counters it keeps as transitions happen (it never scans rows); see
`rowforge.progress.counters`.

Counts are cells (one step's value for one record) for steps, requests for models and records
for the run. The final snapshot of a run (`final=True`) agrees with metadata.json: per step
`done`, `skipped`, `failed` are the column's generated, skipped and failed cells, and
`records_written` is `actual_num_records` (INV-4).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class StepProgress:
    """One step (column): its cells so far, and the retries its tasks took."""

    name: str
    done: int
    failed: int
    skipped: int
    total: int
    retries: int
    rate_limited: int

    @property
    def settled(self) -> int:
        """Cells that reached an end (generated, skipped or failed)."""
        return self.done + self.failed + self.skipped


@attrs.frozen
class ModelProgress:
    """One model (the resource a step calls): requests, errors, tokens, latency.

    `errors` counts failed requests by label: an HTTP status ("429", "503") or "timeout",
    "connection". `retries` counts the retries the scheduler granted by cause ("rate_limit",
    "transient"). `recent_latency_s` is the median of the latest requests, None before the
    first answer.
    """

    alias: str
    in_flight: int
    requests: int
    errors: Mapping[str, int]
    retries: Mapping[str, int]
    prompt_tokens: int
    completion_tokens: int
    recent_latency_s: float | None


@attrs.frozen
class ProgressSnapshot:
    """The run at one moment.

    `records_settled` counts records that reached an end in the engine (complete, or dropped);
    `records_written` the ones the sink stored. Rates are records settled per second: `average`
    since the start, `recent` over the last few seconds. `eta_s` is None until a rate is known.
    """

    state: str
    row_groups: Mapping[str, int]
    records_target: int
    records_settled: int
    records_written: int
    in_flight: int
    deferred: int
    elapsed_s: float
    records_per_s: float
    recent_records_per_s: float
    eta_s: float | None
    steps: tuple[StepProgress, ...]
    models: tuple[ModelProgress, ...]
    final: bool = False

    @property
    def has_cell_work(self) -> bool:
        """Whether the run has anything worth a live view: a model or a step with cells."""
        return any(step.total for step in self.steps)
