"""One `ProgressSnapshot` for a Ray run, combined from its workers' snapshots on the driver.

Each worker's engine takes its own snapshots (of its own row groups and model clients) and the
worker hands the latest one to the driver with every `finished()` reply. The driver combines,
for the whole run:

- what it has *accepted* (the row groups that reached metadata.json, whichever worker ran them,
  recovered ones included): the closed row groups by state, their records written and
  dropped, their skipped cells;
- the latest snapshot of every *live* worker (its run has not ended): its open row groups,
  tasks in flight and deferred, the records it settled or wrote that the driver has not
  accepted yet, its cells, its models' requests, errors, retries, tokens and requests in
  flight;
- for a worker whose run *ended* (normally, stopped, or its process died): its cells (done,
  failed, retries, rate-limited: the work happened) from its last snapshot, its skipped cells
  from the row groups the driver accepted from it, and its models' figures from the models
  section it last reported, the one metadata.json adds up.

So once every worker has ended (the final snapshot), records, row groups, skipped cells and
model figures are metadata.json's by construction. Elapsed time, rates and the ETA come from
the driver's clock. A worker's snapshot is cumulative over its run, so the driver keeps only
the latest one per worker: memory is O(workers + row groups), a snapshot O(workers x steps).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from statistics import fmean
from typing import Any

from rowforge.progress.counters import RateWindow, eta_seconds
from rowforge.progress.snapshot import ModelProgress, ProgressSnapshot, StepProgress
from rowforge.scheduler.outcome import RowGroupSummary
from rowforge.statemachine import SPECS

#: A worker's models section (metadata.json's "models" shape).
ModelsSection = Mapping[str, Mapping[str, Any]]

#: Row-group states a row group never leaves (the driver accepts it in one of them).
CLOSED = SPECS["row_group"].terminal


class RunProgress:
    """The driver's view of a Ray run; `take` combines it into one snapshot.

    `target` records in `row_groups` row groups, `steps` and `models` (aliases) in the order a
    local snapshot lists them. `sections` is the driver's models section per worker (the
    mapping metadata.json's "models" adds up; read here, written by the driver). Workers are
    keyed by any hashable (the driver uses the incarnation number); a row group recovered
    from its file has no worker (None)."""

    def __init__(
        self,
        *,
        target: int,
        row_groups: int,
        steps: Sequence[str],
        models: Sequence[str],
        sections: Mapping[int, ModelsSection],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.row_groups = row_groups
        self.steps = tuple(steps)
        self.models = tuple(models)
        self.sections = sections
        self._clock = clock
        self.started = clock()
        self._rates = RateWindow(self.started)
        self._latest: dict[int, ProgressSnapshot] = {}
        self._ended: set[int] = set()
        self._accepted: dict[int, tuple[int | None, RowGroupSummary]] = {}

    def reported(self, worker: int, snapshot: ProgressSnapshot | None) -> None:
        """The worker's latest snapshot (None: it has not taken one yet)."""
        if snapshot is not None:
            self._latest[worker] = snapshot

    def accepted(self, summary: RowGroupSummary, worker: int | None) -> None:
        """A row group the driver accepted (metadata.json lists it), from `worker`."""
        self._accepted[summary.index] = (worker, summary)

    def ended(self, worker: int) -> None:
        """The worker's run is over (ended, stopped or died): nothing more comes from it."""
        self._ended.add(worker)

    def take(self, state: str, *, final: bool = False) -> ProgressSnapshot:
        """The run now, in the run machine's `state`."""
        now = self._clock()
        closed: Counter[str] = Counter()
        settled = written = 0
        mine: dict[int | None, list[int]] = {}  # per worker: settled, written
        skipped_by: dict[int | None, Counter[str]] = {}
        for worker, summary in self._accepted.values():
            closed[summary.state] += 1
            settled += summary.records_written + summary.records_dropped
            written += summary.records_written
            counts = mine.setdefault(worker, [0, 0])
            counts[0] += summary.records_written + summary.records_dropped
            counts[1] += summary.records_written
            skipped_by.setdefault(worker, Counter()).update(summary.skipped_cells)

        open_states: Counter[str] = Counter()
        in_flight = deferred = 0
        done: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        retries: Counter[str] = Counter()
        limited: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        for worker, cells in skipped_by.items():
            if worker is None or worker not in self._latest or worker in self._ended:
                skipped.update(cells)
        for worker, snapshot in self._latest.items():
            for step in snapshot.steps:
                done[step.name] += step.done
                failed[step.name] += step.failed
                retries[step.name] += step.retries
                limited[step.name] += step.rate_limited
            if worker in self._ended:
                continue
            for step in snapshot.steps:
                skipped[step.name] += step.skipped
            open_states.update(
                {k: n for k, n in snapshot.row_groups.items() if k not in CLOSED and k != "pending"}
            )
            in_flight += snapshot.in_flight
            deferred += snapshot.deferred
            accepted_settled, accepted_written = mine.get(worker, (0, 0))
            settled += max(0, snapshot.records_settled - accepted_settled)
            written += max(0, snapshot.records_written - accepted_written)

        groups = dict(closed + open_states)
        pending = self.row_groups - sum(groups.values())
        if pending > 0:
            groups["pending"] = pending
        average, recent = self._rates.observe(now, settled)
        return ProgressSnapshot(
            state=state,
            row_groups=groups,
            records_target=self.target,
            records_settled=settled,
            records_written=written,
            in_flight=in_flight,
            deferred=deferred,
            elapsed_s=now - self.started,
            records_per_s=average,
            recent_records_per_s=recent,
            eta_s=None if final else eta_seconds(self.target - settled, recent or average),
            steps=tuple(
                StepProgress(
                    name=name,
                    done=done[name],
                    failed=failed[name],
                    skipped=skipped[name],
                    total=self.target,
                    retries=retries[name],
                    rate_limited=limited[name],
                )
                for name in self.steps
            ),
            models=tuple(self._model(alias) for alias in self.models),
            final=final,
        )

    def _model(self, alias: str) -> ModelProgress:
        """One model over every worker: a live worker's snapshot, else its models section."""
        in_flight = requests = prompt = completion = 0
        errors: Counter[str] = Counter()
        retries: Counter[str] = Counter()
        latencies: list[float] = []
        workers = set(self._latest) | set(self.sections)
        for worker in workers:
            snapshot = self._latest.get(worker)
            seen = None if snapshot is None else _find(snapshot.models, alias)
            if seen is not None and seen.recent_latency_s is not None:
                latencies.append(seen.recent_latency_s)
            if worker not in self._ended and seen is not None:
                in_flight += seen.in_flight
                requests += seen.requests
                prompt += seen.prompt_tokens
                completion += seen.completion_tokens
                errors.update(seen.errors)
                retries.update(seen.retries)
                continue
            figures = self.sections.get(worker, {}).get(alias)
            if figures is not None:
                requests += int(figures.get("requests", 0))
                prompt += int(figures.get("prompt_tokens", 0))
                completion += int(figures.get("completion_tokens", 0))
                errors.update(figures.get("errors") or {})
                retries.update(figures.get("retries") or {})
        return ModelProgress(
            alias=alias,
            in_flight=in_flight,
            requests=requests,
            errors=dict(sorted(errors.items())),
            retries=dict(sorted(retries.items())),
            prompt_tokens=prompt,
            completion_tokens=completion,
            recent_latency_s=fmean(latencies) if latencies else None,
        )


def _find(models: Sequence[ModelProgress], alias: str) -> ModelProgress | None:
    for model in models:
        if model.alias == alias:
            return model
    return None
