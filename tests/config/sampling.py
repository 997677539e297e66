"""Statistics helpers for sampler tests: draw many records straight from the compiled steps, and
check a sample's moments or a frequency within five standard errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from rowforge.config.columns import Column
from rowforge.config.compile import compile_config
from rowforge.config.dataset import DatasetConfig

N = 100_000


def draws(*columns: Column, rows: int = N, seed: int = 11) -> pd.DataFrame:
    """Every column's values for `rows` records, from the compiled steps' functions (in
    declaration order, which is a topological order here)."""
    frame = pd.DataFrame(index=range(rows))
    for step in compile_config(DatasetConfig(columns, seed=seed)).steps:
        frame[step.name] = step.fn(frame)
    return frame


def assert_moments(values: Any, mean: float, variance: float) -> None:
    """The sample mean and variance are within five standard errors of `mean` and `variance`
    (the variance's standard error from the sample's fourth central moment)."""
    sample = np.asarray(values, dtype=float)
    deviations = sample - sample.mean()
    fourth = float(np.mean(deviations**4))
    assert abs(sample.mean() - mean) < 5 * math.sqrt(variance / len(sample)), sample.mean()
    spread = math.sqrt(max(fourth - variance**2, 0) / len(sample))
    assert abs(sample.var() - variance) < 5 * spread, sample.var()


def assert_frequency(hits: int, total: int, p: float) -> None:
    assert abs(hits / total - p) <= 5 * math.sqrt(p * (1 - p) / total), (hits, total, p)
