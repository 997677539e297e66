"""Guard implementations and the subjects that machines track.

A spec only *names* its guards; the code that owns a machine supplies what each guard computes as
a `Guards` mapping from guard name to a predicate over the tracked subject. A predicate returns a
bool; it must not change the subject (both machine kinds may evaluate it, and a rejected
transition must leave everything as it was).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Protocol

from rowforge.errors import SpecError


class Subject(Protocol):
    """An object a machine tracks: it carries its own `state`, written only by a machine."""

    state: str

    @property
    def ident(self) -> Hashable: ...


Guard = Callable[[Any], bool]
Guards = Mapping[str, Guard]


def check_guards_implemented(machine: str, used: Iterable[str], guards: Guards) -> None:
    """Refuse to build a machine whose spec names a guard nobody implemented."""
    missing = sorted(set(used) - set(guards))
    if missing:
        raise SpecError(f"machine {machine!r}: no implementation for guards {missing}")
