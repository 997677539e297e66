"""Synthetic `ProgressSnapshot`s for the display tests: a run of two steps on two models whose
figures follow one number, `settled` records out of `target`."""

from __future__ import annotations

from rowforge.progress import ModelProgress, ProgressSnapshot, StepProgress

STEP_NAMES = ("question", "answer")
MODEL_ALIASES = ("gpt-small", "judge-large")


def snapshot(
    settled: int = 40,
    target: int = 100,
    *,
    elapsed_s: float = 12.0,
    final: bool = False,
    cell_work: bool = True,
    state: str = "running",
) -> ProgressSnapshot:
    """A run `settled` of `target` records in; `cell_work=False` gives steps with no cells
    (a run of samplers only: nothing worth a live view)."""
    total = target if cell_work else 0
    steps = tuple(
        StepProgress(
            name=name,
            done=min(settled, total) - index,
            failed=index,
            skipped=0,
            total=total,
            retries=3 * index,
            rate_limited=index,
        )
        for index, name in enumerate(STEP_NAMES)
    )
    models = tuple(
        ModelProgress(
            alias=alias,
            in_flight=0 if final else 4 + index,
            requests=settled * (index + 1),
            errors={"429": 2} if index else {},
            retries={"rate_limit": 2} if index else {},
            prompt_tokens=1500 * settled,
            completion_tokens=300 * settled,
            recent_latency_s=0.8 + index,
        )
        for index, alias in enumerate(MODEL_ALIASES)
    )
    rate = settled / elapsed_s if elapsed_s else 0.0
    return ProgressSnapshot(
        state="complete" if final else state,
        row_groups={"done": settled // 10, "running": 0 if final else 2},
        records_target=target,
        records_settled=settled,
        records_written=settled - settled % 10,
        in_flight=0 if final else 9,
        deferred=0,
        elapsed_s=elapsed_s,
        records_per_s=rate,
        recent_records_per_s=rate * 1.1,
        eta_s=(target - settled) / rate if rate else None,
        steps=steps,
        models=models,
        final=final,
    )
