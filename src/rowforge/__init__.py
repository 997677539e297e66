"""rowforge: synthetic datasets on an explicit state-machine scheduler.

The engine-level API works on steps (one callable per column): `build_steps`, `preview_steps`,
`resume`; see `rowforge.scheduler` for `Step` and `RunConfig`, `rowforge.processors` for
processors. Every error rowforge raises on purpose derives from `RowforgeError`.
"""

from rowforge.build import build_steps, preview_steps, resume
from rowforge.errors import (
    ConfigError,
    DatasetGenerationError,
    DatasetProcessingError,
    PartialDatasetError,
    RateLimitError,
    RetryableError,
    RowforgeError,
)
from rowforge.scheduler import RunConfig, RunResult, Step

__all__ = [
    "ConfigError",
    "DatasetGenerationError",
    "DatasetProcessingError",
    "PartialDatasetError",
    "RateLimitError",
    "RetryableError",
    "RowforgeError",
    "RunConfig",
    "RunResult",
    "Step",
    "build_steps",
    "preview_steps",
    "resume",
]
