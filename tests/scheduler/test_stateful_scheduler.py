"""The main weapon: hypothesis drives a real async run whose every step outcome it chooses.

Each example builds a plan (one of several DAG shapes), caps, retry and early-shutdown settings,
and starts `AsyncEngine.execute()` on its own event loop. Rules are what the world can do to a
run: a parked call succeeds, fails retryably, is rate limited, fails for good, stays slow, or the
run is cancelled. Each rule runs the loop until it is quiet again (rules are synchronous; the
loop runs inside them). After every step the invariants below are checked; at teardown every
remaining call is answered (or the run cancelled) and the end-of-run contract is checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pandas as pd
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rowforge.processors import function_processor
from rowforge.scheduler import RunConfig, build_plan
from rowforge.scheduler.dispatcher import AsyncEngine
from rowforge.statemachine import SPECS, EventLog, replay
from rowforge.storage import MemorySink
from tests.scheduler.scripted import SHAPES, Controller, scripted_steps

TERMINAL_RUN = SPECS["run"].terminal
OUTCOMES = ["ok", "ok", "ok", "retryable", "rate_limit", "fatal"]
STAGE_OUTCOMES = st.sampled_from(["ok"] * 6 + ["raise", "resize"])


class ScriptedSink(MemorySink):
    """An in-memory sink that fails for chosen row groups and remembers every row count."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing = failing
        self.rows: dict[int, int] = {}

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        if row_group in self.failing:
            raise OSError(f"disk full while writing row group {row_group}")
        self.rows[row_group] = len(frame)
        return super().write(row_group, frame)


def skips_every(modulus: int) -> Any:
    """A skip condition that holds for some rows, decided by the row's upstream values."""

    def skip_when(row: dict[str, Any]) -> bool:
        return len(repr(sorted(row.items(), key=repr))) % modulus == 0

    return skip_when


def scripted_processor(stage: str, outcomes: dict[int, str], buffer_size: int) -> Any:
    def scripted(frame: pd.DataFrame) -> pd.DataFrame:
        outcome = outcomes.get(int(frame.index[0]) // buffer_size, "ok")
        if outcome == "raise":
            raise RuntimeError(f"{stage} processor refused")
        if outcome == "resize":
            return frame.iloc[1:] if len(frame) > 1 else pd.concat([frame, frame])
        return frame

    return function_processor(scripted, stage, name=f"scripted_{stage}")  # type: ignore[arg-type]


class SchedulerMachine(RuleBasedStateMachine):
    """A scheduler run under hypothesis' control."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.controller = Controller()
        self.engine: AsyncEngine | None = None
        self.task: asyncio.Task[None] | None = None
        self.cancelled = False

    @initialize(
        shape=st.sampled_from(sorted(SHAPES)),
        num_records=st.integers(1, 9),
        buffer_size=st.integers(1, 4),
        max_in_flight=st.integers(1, 4),
        cap_m1=st.integers(1, 3),
        cap_m2=st.integers(1, 3),
        row_groups=st.integers(1, 3),
        max_retries=st.integers(0, 2),
        window=st.integers(2, 6),
        rate=st.sampled_from([0.3, 0.5, 1.0]),
        disable_shutdown=st.booleans(),
        trace=st.booleans(),
        pre_batch=st.dictionaries(st.integers(0, 8), STAGE_OUTCOMES, max_size=3),
        post_batch=st.dictionaries(st.integers(0, 8), STAGE_OUTCOMES, max_size=3),
        failing_writes=st.sets(st.integers(0, 8), max_size=2),
        adaptive=st.booleans(),
        skip_modulus=st.sampled_from([0, 0, 2, 3]),
    )
    def start(
        self,
        shape: str,
        num_records: int,
        buffer_size: int,
        max_in_flight: int,
        cap_m1: int,
        cap_m2: int,
        row_groups: int,
        max_retries: int,
        window: int,
        rate: float,
        disable_shutdown: bool,
        trace: bool,
        pre_batch: dict[int, str],
        post_batch: dict[int, str],
        failing_writes: set[int],
        adaptive: bool,
        skip_modulus: int,
    ) -> None:
        config = RunConfig(
            buffer_size=buffer_size,
            max_in_flight=max_in_flight,
            max_parallel_requests={"m1": cap_m1, "m2": cap_m2},
            max_concurrent_row_groups=row_groups,
            max_retries=max_retries,
            max_rate_limit_retries=3,
            retry_backoff_s=0.0,
            early_shutdown_window=window,
            early_shutdown_error_rate=rate,
            disable_early_shutdown=disable_shutdown,
            trace=trace,
            stall_warning_s=60,
            adaptive_concurrency=adaptive,
        )
        steps = scripted_steps(self.controller, shape)
        if skip_modulus:  # steps with inputs skip some rows (and propagate to their dependents)
            steps = [
                attrs.evolve(step, skip_when=skips_every(skip_modulus), skip_value="(skipped)")
                if step.depends_on
                else step
                for step in steps
            ]
        plan = build_plan(steps, num_records, buffer_size)
        self.stage_outcomes = {"pre_batch": pre_batch, "post_batch": post_batch}
        processors = [
            scripted_processor("pre_batch", pre_batch, buffer_size),
            scripted_processor("post_batch", post_batch, buffer_size),
        ]
        self.sink = ScriptedSink(failing_writes)
        self.engine = AsyncEngine(plan, config, self.sink, EventLog(), processors=processors)
        self.task = self.loop.create_task(self.engine.execute())
        self.settle()

    # -- driving the loop ------------------------------------------------------------------

    def settle(self) -> None:
        """Run the loop until nothing changes (calls parked, run finished, writes done)."""

        async def quiet() -> None:
            previous: Any = None
            for _ in range(200):
                for _ in range(5):
                    await asyncio.sleep(0)
                if self.engine is not None and self.engine._checkpoints:
                    await asyncio.sleep(0.0005)
                    continue
                now = self.signature()
                if now == previous:
                    return
                previous = now
            raise AssertionError("the loop never went quiet")

        self.loop.run_until_complete(quiet())
        if self.task is not None and self.task.done():
            self.controller.ended = True

    def signature(self) -> tuple[Any, ...]:
        assert self.engine is not None
        return (
            len(self.controller.pending),
            self.controller.started,
            self.engine.run.state,
            len(self.engine.events),
            len(self.engine.groups),
            self.engine.run.live_workers,
        )

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    # -- rules: what the world does --------------------------------------------------------

    @precondition(lambda self: self.running and self.controller.pending)
    @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES))
    def answer_one_call(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.controller.pending) - 1))
        self.controller.resolve(self.controller.pending[index], outcome)
        self.settle()

    @precondition(lambda self: self.running and self.controller.pending)
    @rule(outcome=st.sampled_from(OUTCOMES))
    def answer_every_parked_call(self, outcome: str) -> None:
        for call in list(self.controller.pending):
            self.controller.resolve(call, outcome)
        self.settle()

    @rule()
    def let_time_pass(self) -> None:
        """Slow and hung calls stay parked; retries and writes move on (also after the end)."""
        self.settle()

    @precondition(lambda self: self.running)
    @rule(chance=st.integers(0, 9))
    def cancel_the_run(self, chance: int) -> None:
        """Ctrl-C, rarely (one draw in ten), so most examples run to their own end."""
        if chance:
            return
        assert self.task is not None
        self.task.cancel()
        self.cancelled = True
        self.settle()
        assert self.task.cancelled(), "cancellation must propagate out of execute()"
        assert self.engine is not None and self.engine.run.state == "cancelled"

    # -- invariants, after every step ------------------------------------------------------

    @invariant()
    def caps_hold(self) -> None:  # INV-10
        engine = self.engine
        if engine is None:
            return
        admission = engine.admission
        assert 0 <= admission.in_flight <= admission.global_cap
        assert admission.peak_in_flight <= admission.global_cap
        for resource, used in admission.per_resource.items():
            assert 0 <= used <= admission.resource_caps[resource]
            assert admission.peak_per_resource[resource] <= admission.resource_caps[resource]
        assert len(engine.groups) <= engine.config.max_concurrent_row_groups
        assert engine.peak_open_row_groups <= engine.config.max_concurrent_row_groups

    @invariant()
    def leases_match_live_workers(self) -> None:  # INV-3
        engine = self.engine
        if engine is None:
            return
        holders = [w for g in engine.groups.values() for w in g.live_workers if w.has_leases]
        assert len(holders) == engine.admission.in_flight
        live = sum(len(group.live_workers) for group in engine.groups.values())
        assert live == engine.run.live_workers

    @invariant()
    def cells_are_counted_at_most_once(self) -> None:  # INV-4
        engine = self.engine
        if engine is None:
            return
        for column in engine.plan.columns:
            counted = (
                engine.ledger.generated[column]
                + engine.ledger.skipped[column]
                + engine.ledger.failed[column]
            )
            assert counted <= engine.plan.num_records
        for group in engine.groups.values():
            for column, cells in group.cells.items():
                settled = sum(engine.ledger.has_counted(cell) for cell in cells)
                terminal = sum(cell.state in ("generated", "skipped", "failed") for cell in cells)
                assert settled == terminal, column

    @invariant()
    def calls_only_see_generated_inputs(self) -> None:  # INV-9
        assert self.controller.upstream_violations == []

    @invariant()
    def event_log_replays_to_current_states(self) -> None:  # INV-1
        engine = self.engine
        if engine is None:
            return
        states = replay(engine.events, SPECS)
        assert states.get(("run", "run"), "pending") == engine.run.state
        for index, group in engine.groups.items():
            assert states.get(("row_group", index), "pending") == group.state
        for summary in engine.closed:
            assert states[("row_group", summary.index)] == summary.state

    @invariant()
    def written_row_groups_are_whole_and_unresized(self) -> None:  # INV-5, INV-7
        engine = self.engine
        if engine is None:
            return
        drained = {s.index: s for s in engine.closed if s.state == "drained"}
        assert set(self.sink.rows) == set(drained), "written exactly when drained"
        for index, rows in self.sink.rows.items():
            assert rows == drained[index].records_written
            assert rows <= engine.plan.row_group(index).size
            assert self.stage_outcomes["post_batch"].get(index, "ok") == "ok"
            assert self.stage_outcomes["pre_batch"].get(index, "ok") == "ok"
            assert index not in self.sink.failing

    @invariant()
    def a_failed_checkpoint_fails_the_run(self) -> None:  # INV-6
        engine = self.engine
        if engine is None:
            return
        failed = [s for s in engine.closed if s.state == "failed"]
        if failed:
            assert engine.run.state in ("aborting", "cancelling", *TERMINAL_RUN)
            assert engine.first_error is not None
            if engine.run.state in TERMINAL_RUN:
                assert engine.run.state in ("failed", "cancelled")

    @invariant()
    def a_draining_run_leaves_no_call_parked(self) -> None:  # INV-2, INV-8
        """Early shutdown and aborts cancel in-flight calls; they do not wait them out."""
        engine = self.engine
        if engine is None or engine.run.state in ("pending", "running"):
            return
        assert self.controller.pending == []

    @invariant()
    def terminal_run_has_no_live_work(self) -> None:  # INV-2
        engine = self.engine
        if engine is None or engine.run.state not in TERMINAL_RUN:
            return
        assert engine.run.live_workers == 0
        assert not engine.groups
        assert self.controller.calls_after_end == 0
        alive = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        assert alive == []

    # -- the end of every example ----------------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.engine is not None:
                self.finish_and_check()
        finally:
            self.loop.close()

    def finish_and_check(self) -> None:
        assert self.engine is not None and self.task is not None
        for _ in range(500):
            if not self.running:
                break
            for call in list(self.controller.pending):
                self.controller.resolve(call, "ok")
            self.settle()
        assert not self.running, "INV-8: a run with finite work must terminate"
        engine = self.engine
        assert engine.run.state in TERMINAL_RUN
        self.terminal_run_has_no_live_work()
        assert engine.admission.balanced  # INV-3
        # INV-4: every cell of every planned record is counted exactly once, or never started.
        admitted_groups = {summary.index for summary in engine.closed}
        for column in engine.plan.columns:
            counted = (
                engine.ledger.generated[column]
                + engine.ledger.skipped[column]
                + engine.ledger.failed[column]
            )
            admitted_rows = sum(engine.plan.row_group(i).size for i in admitted_groups)
            assert counted == admitted_rows, column
        written = sum(summary.records_written for summary in engine.closed)
        assert written == engine.run.records_written
        dataset = engine.sink.dataset()  # type: ignore[attr-defined]
        assert len(dataset) == written
        assert dataset.notna().all().all(), "a written row is complete"
        # INV-4: a written row keeps skipped cells only where the step's condition skipped them
        kept = (dataset == "(skipped)").sum().to_dict() if len(dataset) else {}
        for column, count in kept.items():
            assert count <= engine.ledger.skipped[column], column
        # INV-6: each outcome means what it says, whichever spec edge led to it.
        state = engine.run.state
        fatal = any(summary.state == "failed" for summary in engine.closed)
        if state == "completed":
            assert written == engine.plan.num_records and engine.first_error is None
        if state == "partial":
            assert written > 0 and not fatal
            assert written < engine.plan.num_records or engine.early_shutdown
        if state == "failed":
            assert written == 0 or fatal, "a run that wrote rows fails only for a fatal error"
            assert engine.first_error is not None or written == 0
        assert (state == "cancelled") == self.cancelled, "cancelled means the run was cancelled"


# 300 examples take about 10 s on this machine: well inside the one-minute CI budget.
SchedulerMachine.TestCase.settings = settings(
    settings.default, max_examples=300, stateful_step_count=30, deadline=None
)
test_scheduler_invariants_hold_under_any_outcomes = SchedulerMachine.TestCase
