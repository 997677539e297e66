"""`make demo`: the engine on simulated model calls, end to end, in well under a minute.

Until the column types and the mock model of the public API exist, the demo declares its steps
directly: a seed step, two "LLM" steps on model `writer` (20-100 ms simulated latency, a few
rate limits and refusals injected deterministically), a judge step on model `judge`, and a
batch step. It writes Parquet under `demo-output/` and prints where the files went.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from rowforge.errors import RateLimitError
from rowforge.scheduler import RunConfig, Step, run_steps
from rowforge.storage import ParquetSink

TOPICS = ["billing", "shipping", "returns", "accounts", "warranty", "installation"]


def _rng(*key: Any) -> random.Random:
    return random.Random(repr(key))


def seed_topics(frame: pd.DataFrame) -> list[str]:
    return [_rng("topic", index).choice(TOPICS) for index in frame.index]


async def _simulated_call(key: Any) -> None:
    rng = _rng("latency", key)
    await asyncio.sleep(rng.uniform(0.02, 0.1))
    if rng.random() < 0.02:
        raise RateLimitError("429 from the simulated provider", retry_after=0.05)


async def write_question(row: dict[str, Any]) -> str:
    await _simulated_call(("q", row["topic"], id(row)))
    return f"How do I resolve a {row['topic']} issue with my order?"


async def write_answer(row: dict[str, Any]) -> str:
    await _simulated_call(("a", row["question"], id(row)))
    if _rng("refuse", row["question"], id(row)).random() < 0.01:
        raise ValueError("the simulated model refused to answer")
    return f"For {row['topic']}: open the help centre, choose '{row['topic']}', follow the steps."


async def judge(row: dict[str, Any]) -> int:
    await _simulated_call(("j", row["answer"], id(row)))
    return 1 + len(row["answer"]) % 5


def answer_length(frame: pd.DataFrame) -> list[int]:
    return [len(text) for text in frame["answer"]]


class ProgressSink(ParquetSink):
    """A Parquet sink that prints one line per row group written."""

    def __init__(self, output_dir: Path, total_groups: int) -> None:
        super().__init__(output_dir)
        self.total_groups = total_groups
        self.written = 0
        self.records = 0

    def write(self, row_group: int, frame: pd.DataFrame) -> str | None:
        path = super().write(row_group, frame)
        self.written += 1
        self.records += len(frame)
        print(f"  row group {self.written}/{self.total_groups} written ({self.records} records)")
        return path


def main(num_records: int = 1000, output_dir: str = "demo-output") -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    steps = [
        Step("topic", seed_topics, kind="batch"),
        Step("question", write_question, depends_on=["topic"], resource="writer"),
        Step("answer", write_answer, depends_on=["question"], resource="writer"),
        Step("score", judge, depends_on=["answer"], resource="judge"),
        Step("answer_length", answer_length, kind="batch", depends_on=["answer"]),
    ]
    config = RunConfig(
        buffer_size=100,
        max_parallel_requests={"writer": 64, "judge": 32},
        max_concurrent_row_groups=4,
        retry_backoff_s=0.05,
    )
    target = Path(output_dir)
    shutil.rmtree(target / "parquet-files", ignore_errors=True)  # the demo's own files only
    sink = ProgressSink(target, -(-num_records // config.buffer_size))
    print(f"rowforge demo: {num_records} records, 2 simulated models, writing to {target}/")
    started = time.monotonic()
    result = run_steps(steps, num_records, config=config, sink=sink)
    elapsed = time.monotonic() - started
    print(
        f"done: {result.outcome}, {result.actual_records}/{result.target_records} records in "
        f"{elapsed:.1f}s ({result.actual_records / elapsed:.0f} records/s); "
        f"dropped {result.dropped_records}: {result.drop_reasons() or 'none'}"
    )
    print(f"parquet files: {sink.directory}/ ({len(result.file_paths)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
