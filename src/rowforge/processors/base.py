"""The processor protocol: a named DataFrame transform that runs at one stage of a row group.

Stages: `pre_batch` runs after a row group's seed (batch) steps and before its cell steps;
`post_batch` runs after every cell is generated, just before the checkpoint writes the rows. A
processor receives the surviving rows (indexed by record index) and must return a DataFrame with
the same number of rows (INV-5; `runner.run_stage` enforces it).

Users subclass `Processor`, or wrap a plain function with `function_processor(fn, stage)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs
import pandas as pd

from rowforge.errors import ConfigError

Stage = Literal["pre_batch", "post_batch"]
STAGES: tuple[Stage, ...] = ("pre_batch", "post_batch")


class Processor:
    """Base class: set `stage` (and optionally `name`) and implement `process`."""

    stage: Stage = "post_batch"

    @property
    def name(self) -> str:
        return type(self).__name__

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError


@attrs.frozen
class FunctionProcessor(Processor):
    """A plain `DataFrame -> DataFrame` function at a stage."""

    fn: Callable[[pd.DataFrame], pd.DataFrame]
    stage: Stage = attrs.field(default="post_batch")
    label: str | None = None

    def __attrs_post_init__(self) -> None:
        check_stage(self.stage, self.name)

    @property
    def name(self) -> str:
        return self.label or str(getattr(self.fn, "__name__", repr(self.fn)))

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.fn(frame)


def function_processor(
    fn: Callable[[pd.DataFrame], pd.DataFrame], stage: Stage, name: str | None = None
) -> FunctionProcessor:
    """Use a plain function as a processor at `stage`."""
    return FunctionProcessor(fn, stage, name)


def check_stage(stage: str, name: str) -> None:
    if stage not in STAGES:
        raise ConfigError(f"processor {name!r}: stage must be one of {STAGES}, got {stage!r}")
