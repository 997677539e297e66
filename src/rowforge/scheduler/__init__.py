"""rowforge.scheduler: plan, dispatch and account for the work of one run.

Data flows one way: `plan` (steps -> DAG, row groups) -> an engine (`dispatcher.AsyncEngine` or
`sync_engine.SyncEngine`, both on `core.EngineCore`) driving the machines of
`rowforge.statemachine` -> a sink. `runner` chooses the engine per run and reports the outcome.
"""

from rowforge.scheduler.config import RunConfig
from rowforge.scheduler.outcome import RowGroupSummary, RunResult
from rowforge.scheduler.plan import Plan, RowFailed, Step, build_plan
from rowforge.scheduler.runner import run_plan, run_plan_async, run_steps, run_steps_async
from rowforge.scheduler.trace import TaskTrace

__all__ = [
    "Plan",
    "RowFailed",
    "RowGroupSummary",
    "RunConfig",
    "RunResult",
    "Step",
    "TaskTrace",
    "build_plan",
    "run_plan",
    "run_plan_async",
    "run_steps",
    "run_steps_async",
]
