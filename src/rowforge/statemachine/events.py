"""The event log: every state change as data, and a replay that checks a log against the specs.

Every transition a machine takes can be recorded as an `Event` (machine, subject id, trigger,
source, dest, monotonic time, details). A run always records run and row-group transitions, and
worker/cell transitions when tracing. `replay` re-walks a log from each subject's initial state and
refuses any step the specs do not allow (INV-1), so an `events.jsonl` on disk is evidence, not
decoration.

Two logs, one interface: `EventLog` keeps every event in memory (previews and tests, whose runs
are small, read them back from `RunResult.events`); `EventFile` appends them to events.jsonl and
keeps none, so a build's memory does not grow with its length.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TextIO

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


#: Lines an `EventFile` buffers before it writes them out even without a `flush`: a few hundred
#: kilobytes, so a traced run (thousands of worker and cell events per row group) stays bounded.
BUFFER_LINES = 1024


class EventLog:
    """An append-only, in-memory list of events."""

    #: Whether iterating the log is cheap and `RunResult.events` should carry its events.
    keeps_events: ClassVar[bool] = True

    def __init__(self) -> None:
        self._events: list[Event] = []

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
        self._append(event)
        return event

    def _append(self, event: Event) -> None:
        self._events.append(event)

    def flush(self) -> None:
        """Make every event recorded so far durable enough to be read back; in memory they
        already are."""

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)


class EventFile(EventLog):
    """Events appended to a JSON-lines file as they happen; none is kept in memory.

    Lines wait in a small buffer and reach the file whole, one `write` per flush, so a process
    killed at any moment leaves a log of complete lines that still replays (each line is a
    transition from the state the previous ones left). The buffer is flushed when it holds
    `buffer_lines` lines, whenever `flush` is called (the build does before every metadata.json
    write, so the log always covers what metadata claims) and on `close`, which also fsyncs.
    Use it as a context manager: leaving the block, by any exception too, closes the file.
    """

    keeps_events: ClassVar[bool] = False

    def __init__(self, path: Path, *, buffer_lines: int = BUFFER_LINES) -> None:
        super().__init__()
        self.path = path
        self._buffer_lines = buffer_lines
        self._pending: list[str] = []
        self._count = 0
        self._handle: TextIO | None = path.open("w", encoding="utf-8")

    def _append(self, event: Event) -> None:
        if self._handle is None:
            raise ValueError(f"{self.path}: event {event.trigger!r} recorded after close")
        self._pending.append(event.to_json())
        self._count += 1
        if len(self._pending) >= self._buffer_lines:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered lines to the operating system (they survive the process)."""
        if self._handle is None:
            return
        if self._pending:
            self._pending.append("")
            self._handle.write("\n".join(self._pending))
            self._pending.clear()
        self._handle.flush()

    def close(self) -> None:
        """Flush, fsync and close; a second call does nothing."""
        if self._handle is None:
            return
        self.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        """The events recorded so far, read back from the file."""
        self.flush()
        return iter_jsonl(self.path)

    def __len__(self) -> int:
        return self._count


def write_jsonl(events: Iterable[Event], path: Path) -> None:
    """Write one JSON object per line."""
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(event.to_json() + "\n")


def read_jsonl(path: Path) -> list[Event]:
    """Read a log written by `write_jsonl` or an `EventFile`."""
    return list(iter_jsonl(path))


def iter_jsonl(path: Path) -> Iterator[Event]:
    """The events of a log one at a time, for logs too long to hold in memory."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield Event.from_json(line)


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
