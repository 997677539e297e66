"""Naming a Python object by its import path and importing it back: `module:qualified.name`.

A leaf module (it imports nothing of rowforge but its errors), so configs, recipes and processors
can name functions without reaching into the scheduler or storage.
"""

from __future__ import annotations

import importlib
from typing import Any

from rowforge.errors import ConfigError


def reference(obj: Any) -> str | None:
    """`module:qualname` when `obj` can be imported back by that name, else None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found = resolve(f"{module}:{qualname}")
    except ConfigError:
        return None
    return f"{module}:{qualname}" if found is obj else None


def resolve(ref: str) -> Any:
    """Import `module:qualified.name`."""
    module_name, _, qualname = ref.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot import {ref!r}: {error}") from error
    return found
