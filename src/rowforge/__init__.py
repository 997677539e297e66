"""rowforge: synthetic datasets on an explicit state-machine scheduler.

Public API: `load_config`, `validate_config`, `build`, `preview`, `resume` over a
`DatasetConfig`; `RunConfig` for how a run executes; the error classes (all derive from
`RowforgeError`). The engine-level `build_steps` / `preview_steps` run plain Python callables
as steps (`rowforge.scheduler.Step`).
"""

from rowforge.api import BuildResult, PreviewResults, build, preview, resume, validate_config
from rowforge.build import build_steps, preview_steps
from rowforge.config.dataset import DatasetConfig, load_config, save_config
from rowforge.errors import (
    ConfigError,
    DatasetGenerationError,
    DatasetProcessingError,
    EarlyShutdownError,
    PartialDatasetError,
    RateLimitError,
    RetryableError,
    RowforgeError,
)
from rowforge.models import MockSettings, ModelConfig
from rowforge.scheduler import RunConfig, RunResult, Step

__all__ = [
    "BuildResult",
    "ConfigError",
    "DatasetConfig",
    "DatasetGenerationError",
    "DatasetProcessingError",
    "EarlyShutdownError",
    "MockSettings",
    "ModelConfig",
    "PartialDatasetError",
    "PreviewResults",
    "RateLimitError",
    "RetryableError",
    "RowforgeError",
    "RunConfig",
    "RunResult",
    "Step",
    "build",
    "build_steps",
    "load_config",
    "preview",
    "preview_steps",
    "resume",
    "save_config",
    "validate_config",
]
