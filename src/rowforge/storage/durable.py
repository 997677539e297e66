"""Durable renames: a file renamed into place survives a power loss only once its directory is
fsynced too (the new name lives in the directory's entries, not in the file)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Flush `directory`'s entries to disk, making the renames done in it durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
