"""Taking a `ProgressSnapshot` from a running engine, in O(1).

Everything read here is a running total the engine keeps as transitions happen: the ledger's
cells per column, admission's tasks in flight, the retries granted (`RetryCounts`), the row
groups that ended and the records they settled. The open row groups are read one by one, and
there are at most `max_concurrent_row_groups` of them. Nothing scans rows.

Model figures that only the model clients know (requests, errors, tokens, latency) come from
`model_usage`, a callable returning each model's usage (duck-typed, see `ModelUsageLike`);
the scheduler itself knows nothing of HTTP.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from rowforge.progress.counters import RateWindow, eta_seconds
from rowforge.progress.snapshot import ModelProgress, ProgressSnapshot, StepProgress

if TYPE_CHECKING:
    from rowforge.scheduler.core import EngineCore


class ModelUsageLike(Protocol):
    """What a snapshot reads of one model's usage (`rowforge.models.usage.ModelUsage`)."""

    @property
    def requests(self) -> int: ...
    @property
    def errors(self) -> Mapping[str, int]: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def recent_latency_s(self) -> float | None: ...


ModelUsageSource = Callable[[], Mapping[str, ModelUsageLike]]


class SnapshotTaker:
    """Takes snapshots of one engine; keeps the window of recent rates between them."""

    def __init__(self, engine: EngineCore, model_usage: ModelUsageSource | None = None) -> None:
        self._engine = engine
        self._model_usage = model_usage
        self._rates = RateWindow(engine.started)
        self._resources = tuple(
            dict.fromkeys(s.resource for s in engine.plan.steps if s.resource is not None)
        )

    def take(self, final: bool = False) -> ProgressSnapshot:
        engine = self._engine
        now = time.monotonic()
        open_states: Counter[str] = Counter()
        settled = engine.closed_records
        for group in engine.groups.values():
            open_states[group.state] += 1
            settled += group.expected_rows - group.incomplete_rows
        row_groups = dict(engine.closed_states + open_states)
        if engine.todo:
            row_groups["pending"] = len(engine.todo)
        average, recent = self._rates.observe(now, settled)
        total = engine.planned_records + engine.cell_delta // max(len(engine.plan.columns), 1)
        return ProgressSnapshot(
            state=engine.run.state,
            row_groups=row_groups,
            records_target=engine.planned_records,
            records_settled=settled,
            records_written=engine.run.records_written,
            in_flight=engine.admission.in_flight,
            deferred=engine.deferred,
            elapsed_s=now - engine.started,
            records_per_s=average,
            recent_records_per_s=recent,
            eta_s=None if final else eta_seconds(total - settled, recent or average),
            steps=self._steps(total),
            models=self._models(),
            final=final,
        )

    def _steps(self, total: int) -> tuple[StepProgress, ...]:
        ledger, retries = self._engine.ledger, self._engine.retry_counts
        return tuple(
            StepProgress(
                name=name,
                done=ledger.generated[name],
                failed=ledger.failed[name],
                skipped=ledger.skipped[name],
                total=total,
                retries=retries.retries[name],
                rate_limited=retries.rate_limited[name],
            )
            for name in self._engine.plan.step_names
        )

    def _models(self) -> tuple[ModelProgress, ...]:
        usage = self._model_usage() if self._model_usage is not None else {}
        in_flight = self._engine.admission.per_resource
        by_model = self._engine.retry_counts.by_model
        models = []
        for alias in self._resources:
            used = usage.get(alias)
            models.append(
                ModelProgress(
                    alias=alias,
                    in_flight=in_flight.get(alias, 0),
                    requests=used.requests if used is not None else 0,
                    errors=dict(used.errors) if used is not None else {},
                    retries=dict(by_model.get(alias, {})),
                    prompt_tokens=used.prompt_tokens if used is not None else 0,
                    completion_tokens=used.completion_tokens if used is not None else 0,
                    recent_latency_s=used.recent_latency_s if used is not None else None,
                )
            )
        return tuple(models)
