"""The event log: every state change as data, and a replay that checks a log against the specs.

Every transition a machine takes can be recorded as an `Event` (machine, subject id, trigger,
source, dest, monotonic time, details). A run always records run and row-group transitions, and
worker/cell transitions when tracing. `replay` re-walks a log from each subject's initial state and
refuses any step the specs do not allow (INV-1), so an `events.jsonl` on disk is evidence, not
decoration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from rowforge.errors import ReplayError
from rowforge.statemachine.spec import MachineSpec


@attrs.frozen
class Event:
    """One transition taken by one subject."""

    machine: str
    ident: Hashable
    trigger: str
    source: str
    dest: str
    time: float
    details: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "machine": self.machine,
                "id": self.ident,
                "trigger": self.trigger,
                "source": self.source,
                "dest": self.dest,
                "time": self.time,
                "details": dict(self.details),
            },
            sort_keys=True,
            default=str,
        )

    @classmethod
    def from_json(cls, line: str) -> Event:
        raw = json.loads(line)
        ident = raw["id"]
        return cls(
            machine=raw["machine"],
            ident=tuple(ident) if isinstance(ident, list) else ident,
            trigger=raw["trigger"],
            source=raw["source"],
            dest=raw["dest"],
            time=float(raw["time"]),
            details=raw.get("details") or {},
        )


class EventLog:
    """An append-only, in-memory list of events, optionally mirrored line by line to a stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._events: list[Event] = []
        self._stream = stream

    def record(
        self,
        machine: str,
        ident: Hashable,
        trigger: str,
        source: str,
        dest: str,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        event = Event(machine, ident, trigger, source, dest, time.monotonic(), details or {})
        self._events.append(event)
        if self._stream is not None:
            self._stream.write(event.to_json() + "\n")
        return event

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)


def write_jsonl(events: Iterable[Event], path: Path) -> None:
    """Write one JSON object per line."""
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(event.to_json() + "\n")


def read_jsonl(path: Path) -> list[Event]:
    """Read a log written by `write_jsonl` or an `EventLog` stream."""
    with path.open(encoding="utf-8") as lines:
        return [Event.from_json(line) for line in lines if line.strip()]


def replay(
    events: Iterable[Event], specs: Mapping[str, MachineSpec]
) -> dict[tuple[str, Hashable], str]:
    """Re-walk `events` through `specs`; return each subject's final state.

    Raises `ReplayError` at the first event whose machine is unknown, whose source is not the
    subject's current state, or whose edge (source, trigger, dest) is not in the spec.
    """
    edges = {
        name: {(t.source, t.trigger): t for t in spec.transitions} for name, spec in specs.items()
    }
    states: dict[tuple[str, Hashable], str] = {}
    for number, event in enumerate(events, start=1):
        spec = specs.get(event.machine)
        where = f"event {number} ({event.machine} {event.ident!r} {event.trigger!r})"
        if spec is None:
            raise ReplayError(f"{where}: unknown machine {event.machine!r}")
        key = (event.machine, event.ident)
        current = states.get(key, spec.initial)
        if event.source != current:
            raise ReplayError(
                f"{where}: subject is in {current!r} but the event starts from {event.source!r}"
            )
        edge = edges[event.machine].get((event.source, event.trigger))
        if edge is None or edge.dest != event.dest:
            raise ReplayError(
                f"{where}: {event.source!r} -> {event.dest!r} by {event.trigger!r} "
                f"is not a transition of {spec.path}"
            )
        states[key] = event.dest
    return states
