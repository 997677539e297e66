"""The driver's combined snapshot of a Ray run (`distributed.progress`), without Ray: workers'
snapshots and accepted row groups are made up here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rowforge.distributed.progress import RunProgress
from rowforge.distributed.usage import merge_models
from rowforge.progress import ModelProgress, ProgressSnapshot, StepProgress
from rowforge.scheduler.outcome import RowGroupSummary

STEPS = ("a", "b")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def summary(
    index: int, state: str = "drained", written: int = 10, dropped: int = 0, **skipped: int
) -> RowGroupSummary:
    return RowGroupSummary(
        index=index,
        state=state,
        planned_records=written + dropped,
        records_written=written,
        records_dropped=dropped,
        drop_reasons={"x": dropped} if dropped else {},
        skipped_cells=dict(skipped),
        first_record=index * 10,
    )


def snap(
    *,
    settled: int = 0,
    written: int = 0,
    groups: Mapping[str, int] | None = None,
    in_flight: int = 0,
    done: Mapping[str, int] | None = None,
    skipped: Mapping[str, int] | None = None,
    retries: int = 0,
    models: tuple[ModelProgress, ...] = (),
) -> ProgressSnapshot:
    done, skipped = done or {}, skipped or {}
    return ProgressSnapshot(
        state="running",
        row_groups=dict(groups or {}),
        records_target=0,
        records_settled=settled,
        records_written=written,
        in_flight=in_flight,
        deferred=0,
        elapsed_s=1.0,
        records_per_s=0.0,
        recent_records_per_s=0.0,
        eta_s=None,
        steps=tuple(
            StepProgress(name, done.get(name, 0), 0, skipped.get(name, 0), 0, retries, 0)
            for name in STEPS
        ),
        models=models,
    )


def model(alias: str = "m", requests: int = 0, in_flight: int = 0, **retries: int) -> ModelProgress:
    return ModelProgress(alias, in_flight, requests, {}, dict(retries), requests, 2 * requests, 0.1)


def progress(
    sections: dict[int, Any] | None = None, clock: Clock | None = None, groups: int = 4
) -> RunProgress:
    return RunProgress(
        target=groups * 10,
        row_groups=groups,
        steps=STEPS,
        models=("m",),
        sections={} if sections is None else sections,
        clock=clock or Clock(),
    )


def test_live_workers_snapshots_add_up() -> None:
    run = progress()
    run.reported(
        0, snap(settled=5, groups={"running": 1, "pending": 1}, in_flight=3, done={"a": 5})
    )
    run.reported(
        1, snap(settled=7, groups={"running": 1, "pending": 1}, in_flight=2, done={"a": 7})
    )
    taken = run.take("running")
    assert taken.records_settled == 12
    assert taken.in_flight == 5
    assert taken.row_groups == {"running": 2, "pending": 2}
    assert {s.name: s.done for s in taken.steps} == {"a": 12, "b": 0}
    assert all(s.total == 40 for s in taken.steps)
    assert taken.records_target == 40 and not taken.final


def test_a_live_worker_s_accepted_row_group_is_not_counted_twice() -> None:
    run = progress()
    run.reported(
        0, snap(settled=15, written=10, groups={"drained": 1, "running": 1}, skipped={"b": 2})
    )
    run.accepted(summary(0, b=2), 0)
    taken = run.take("running")
    assert (taken.records_settled, taken.records_written) == (15, 10)
    assert taken.row_groups == {"drained": 1, "running": 1, "pending": 2}
    assert {s.name: s.skipped for s in taken.steps} == {"a": 0, "b": 2}


def test_an_ended_worker_counts_what_the_driver_accepted_and_the_cells_it_did() -> None:
    run = progress()
    # it died with row group 2 half done: only row group 0 reached the driver
    run.reported(
        0,
        snap(
            settled=15,
            written=10,
            groups={"drained": 1, "running": 1},
            done={"a": 15},
            skipped={"b": 3},
        ),
    )
    run.accepted(summary(0, written=8, dropped=2, b=1), 0)
    run.ended(0)
    taken = run.take("running")
    assert (taken.records_settled, taken.records_written) == (10, 8)
    assert taken.row_groups == {"drained": 1, "pending": 3}
    assert {s.name: s.skipped for s in taken.steps} == {"a": 0, "b": 1}
    assert {s.name: s.done for s in taken.steps} == {"a": 15, "b": 0}  # the work was done
    assert taken.in_flight == 0


def test_models_come_from_live_snapshots_then_from_the_sections() -> None:
    sections: dict[int, Any] = {}
    run = progress(sections)
    run.reported(0, snap(models=(model(requests=5, in_flight=2, rate_limit=1),)))
    run.reported(1, snap(models=(model(requests=3, in_flight=1),)))
    [live] = run.take("running").models
    assert (live.requests, live.in_flight, dict(live.retries)) == (8, 3, {"rate_limit": 1})
    assert live.prompt_tokens == 8 and live.completion_tokens == 16
    sections[0] = {
        "m": {
            "requests": 6,
            "prompt_tokens": 6,
            "completion_tokens": 12,
            "errors": {"429": 1},
            "retries": {"rate_limit": 1},
        }
    }
    run.ended(0)
    [mixed] = run.take("running").models
    assert (mixed.requests, mixed.in_flight, dict(mixed.errors)) == (9, 1, {"429": 1})


def test_rates_and_eta_come_from_the_driver_s_clock() -> None:
    clock = Clock()
    run = progress(clock=clock)
    clock.now += 4.0
    run.reported(0, snap(settled=20, groups={"running": 2}))
    taken = run.take("running")
    assert taken.elapsed_s == 4.0
    assert taken.records_per_s == 5.0
    assert taken.eta_s == 4.0  # 20 records left at 5 a second
    assert run.take("completed", final=True).eta_s is None


summaries = st.lists(
    st.tuples(
        st.sampled_from(["drained", "dropped", "failed", "cancelled"]),
        st.integers(0, 10),
        st.integers(0, 10),
        st.integers(0, 5),
        st.sampled_from([0, 1, 2, None]),
    ),
    max_size=12,
)
figures = st.fixed_dictionaries(
    {
        "requests": st.integers(0, 50),
        "prompt_tokens": st.integers(0, 500),
        "completion_tokens": st.integers(0, 500),
        "errors": st.dictionaries(st.sampled_from(["429", "503", "timeout"]), st.integers(0, 5)),
        "retries": st.dictionaries(st.sampled_from(["rate_limit", "transient"]), st.integers(0, 5)),
    }
)


@given(
    summaries,
    st.dictionaries(st.sampled_from([0, 1, 2]), figures),
    st.lists(st.integers(0, 30), min_size=3, max_size=3),
)
def test_once_every_worker_ended_the_snapshot_is_what_metadata_adds_up(
    rows: list[tuple[str, int, int, int, int | None]],
    sections: dict[int, Any],
    live_done: list[int],
) -> None:
    """However far the workers' own snapshots got (they died mid-row-group, or were newer than
    the last reply), the final snapshot's records, row groups, skipped cells and model figures
    are those of the accepted row groups and of the models sections: metadata.json's."""
    run = progress({worker: {"m": f} for worker, f in sections.items()}, groups=20)
    for worker in (0, 1, 2):
        run.reported(
            worker,
            snap(
                settled=99,
                written=77,
                groups={"running": 2, "drained": 5},
                in_flight=4,
                done={"a": live_done[worker]},
                skipped={"a": 9, "b": 9},
                models=(model(requests=1000, in_flight=3),),
            ),
        )
    for index, (state, written, dropped, skipped, worker) in enumerate(rows):
        written = written if state == "drained" else 0
        run.accepted(summary(index, state, written, dropped, b=skipped), worker)
    for worker in (0, 1, 2):
        run.ended(worker)
    final = run.take("completed", final=True)
    assert final.final and final.state == "completed"
    assert final.records_written == sum(w if s == "drained" else 0 for s, w, _, _, _ in rows)
    dropped = sum(d for _, _, d, _, _ in rows)
    assert final.records_settled - final.records_written == dropped
    states = Counter(s for s, _, _, _, _ in rows)
    assert {k: v for k, v in final.row_groups.items() if k != "pending"} == dict(states)
    assert final.row_groups.get("pending", 0) == 20 - len(rows)
    assert {s.name: s.skipped for s in final.steps} == {
        "a": 0,
        "b": sum(k for _, _, _, k, _ in rows),
    }
    assert {s.name: s.done for s in final.steps} == {"a": sum(live_done), "b": 0}
    assert final.in_flight == 0
    [m] = final.models
    merged = merge_models([{"m": f} for f in sections.values()]).get("m", {})
    assert m.in_flight == 0
    assert m.requests == merged.get("requests", 0)
    assert m.prompt_tokens == merged.get("prompt_tokens", 0)
    assert m.completion_tokens == merged.get("completion_tokens", 0)
    assert dict(m.errors) == merged.get("errors", {})
    assert dict(m.retries) == merged.get("retries", {})
