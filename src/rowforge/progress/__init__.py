"""Progress of a run: snapshots taken from the engine (see `snapshot`)."""

from rowforge.progress.snapshot import ModelProgress, ProgressSnapshot, StepProgress

__all__ = ["ModelProgress", "ProgressSnapshot", "StepProgress"]
