"""Machine specs: parse one YAML file of `specs/` into frozen values, and reject bad ones.

Theory of operation
-------------------
A spec is transitions' constructor format (`states`, `initial`, `transitions` with `trigger`,
`source`, `dest`, `conditions`, `unless`) plus what rowforge needs to reason about it: a
`terminal` list, a one-line `description` on every state, guard and transition, and a `guards`
table that names the invariant (INV-n) each guard enforces.

`load_spec` returns a `MachineSpec` only if the spec passes every structural rule below; otherwise
it raises `SpecError` naming the file and the offending entry. The rules are the ones a reader of
the diagrams relies on:

- every state, guard and trigger named by a transition is declared;
- one source state never has two transitions with the same trigger (no ambiguity);
- every state is reachable from `initial`;
- terminal states have no outgoing transitions;
- every non-terminal state has a path to some terminal state (no trap states).

What a guard *computes* is not in the spec: guard implementations are supplied by the code that
owns the machine (the scheduler), and `rowforge.statemachine.reference` refuses to build a machine
whose guards are not all implemented.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from rowforge.errors import SpecError


@attrs.frozen
class StateSpec:
    """A state of a machine."""

    name: str
    description: str


@attrs.frozen
class GuardSpec:
    """A named guard and the invariant it enforces."""

    name: str
    description: str
    invariant: str


@attrs.frozen
class TransitionSpec:
    """One edge. A multi-source entry in YAML becomes one TransitionSpec per source."""

    trigger: str
    source: str
    dest: str
    conditions: tuple[str, ...]
    unless: tuple[str, ...]
    description: str

    @property
    def label(self) -> str:
        """How messages and diagrams name this edge."""
        return f"{self.trigger!r} ({self.source} -> {self.dest})"


@attrs.frozen
class MachineSpec:
    """A validated machine: the single source of truth for one kind of tracked object."""

    name: str
    path: str
    description: str
    initial: str
    states: tuple[StateSpec, ...]
    terminal: frozenset[str]
    guards: tuple[GuardSpec, ...]
    transitions: tuple[TransitionSpec, ...]

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(state.name for state in self.states)

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger, in first-appearance order."""
        return tuple(dict.fromkeys(t.trigger for t in self.transitions))

    def edge(self, source: str, trigger: str) -> TransitionSpec | None:
        """The transition `trigger` takes out of `source`, or None when it is illegal there."""
        for transition in self.transitions:
            if transition.source == source and transition.trigger == trigger:
                return transition
        return None


_TOP_KEYS = {"name", "description", "initial", "terminal", "states", "guards", "transitions"}
_TRANSITION_KEYS = {"trigger", "source", "dest", "conditions", "unless", "description"}


def load_spec(path: Path) -> MachineSpec:
    """Read and validate one spec file; raise `SpecError` naming the file and the entry."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from exc
    return parse_spec(raw, str(path))


def parse_spec(raw: Any, where: str) -> MachineSpec:
    """Validate an already-parsed spec document; `where` names it in error messages."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: a spec must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown top-level keys {sorted(unknown)}")
    name = _text(raw, "name", where)
    description = _text(raw, "description", where)
    if "initial" not in raw or raw["initial"] in (None, ""):
        raise SpecError(f"{where}: missing 'initial' state")
    initial = str(raw["initial"])

    states = tuple(_parse_state(entry, where) for entry in _list(raw, "states", where))
    names = [state.name for state in states]
    _reject_duplicates(names, f"{where}: state")
    known_states = set(names)
    if initial not in known_states:
        raise SpecError(f"{where}: initial state {initial!r} is not a declared state")

    terminal = frozenset(str(s) for s in _list(raw, "terminal", where))
    for state in sorted(terminal - known_states):
        raise SpecError(f"{where}: terminal state {state!r} is not a declared state")

    guards = tuple(_parse_guards(raw.get("guards") or {}, where))
    known_guards = {guard.name for guard in guards}

    transitions: list[TransitionSpec] = []
    for entry in _list(raw, "transitions", where):
        transitions.extend(_parse_transition(entry, where))

    spec = MachineSpec(
        name=name,
        path=where,
        description=description,
        initial=initial,
        states=states,
        terminal=terminal,
        guards=guards,
        transitions=tuple(transitions),
    )
    _check_references(spec, known_states, known_guards)
    _check_unique_triggers(spec)
    _check_terminal_states_are_final(spec)
    _check_reachable(spec)
    _check_can_terminate(spec)
    return spec


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: missing or empty {key!r}")
    return value.strip()


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: {key!r} must be a non-empty list")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise SpecError(f"{where}: expected a name or a list of names, got {value!r}")


def _reject_duplicates(names: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SpecError(f"{what} {name!r} is declared twice")
        seen.add(name)


def _parse_state(entry: Any, where: str) -> StateSpec:
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise SpecError(f"{where}: every state needs a 'name' and a 'description', got {entry!r}")
    state_where = f"{where}: state {entry['name']!r}"
    return StateSpec(name=str(entry["name"]), description=_text(entry, "description", state_where))


def _parse_guards(raw: Any, where: str) -> Iterable[GuardSpec]:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: 'guards' must map guard names to their description")
    for name, body in raw.items():
        guard_where = f"{where}: guard {name!r}"
        if not isinstance(body, Mapping):
            raise SpecError(f"{guard_where}: needs 'description' and 'invariant'")
        yield GuardSpec(
            name=str(name),
            description=_text(body, "description", guard_where),
            invariant=_text(body, "invariant", guard_where),
        )


def _parse_transition(entry: Any, where: str) -> Iterable[TransitionSpec]:
    if not isinstance(entry, Mapping):
        raise SpecError(f"{where}: a transition must be a mapping, got {entry!r}")
    trigger = entry.get("trigger")
    t_where = f"{where}: transition {trigger!r}"
    if not isinstance(trigger, str) or not trigger:
        raise SpecError(f"{t_where}: missing 'trigger'")
    unknown = set(entry) - _TRANSITION_KEYS
    if unknown:
        raise SpecError(f"{t_where}: unknown keys {sorted(unknown)}")
    sources = _names(entry.get("source"), t_where)
    if not sources:
        raise SpecError(f"{t_where}: missing 'source'")
    dest = entry.get("dest")
    if not isinstance(dest, str) or not dest:
        raise SpecError(f"{t_where}: missing 'dest'")
    description = _text(entry, "description", t_where)
    conditions = _names(entry.get("conditions"), t_where)
    unless = _names(entry.get("unless"), t_where)
    for source in sources:
        yield TransitionSpec(trigger, source, dest, conditions, unless, description)


def _check_references(spec: MachineSpec, states: set[str], guards: set[str]) -> None:
    declared = ", ".join(sorted(guards)) or "none"
    for transition in spec.transitions:
        where = f"{spec.path}: transition {transition.label}"
        for end in (transition.source, transition.dest):
            if end not in states:
                raise SpecError(f"{where}: unknown state {end!r}")
        for guard in transition.conditions + transition.unless:
            if guard not in guards:
                raise SpecError(f"{where}: unknown guard {guard!r} (declared guards: {declared})")


def _check_unique_triggers(spec: MachineSpec) -> None:
    seen: dict[tuple[str, str], TransitionSpec] = {}
    for transition in spec.transitions:
        key = (transition.source, transition.trigger)
        if key in seen:
            raise SpecError(
                f"{spec.path}: duplicate trigger {transition.trigger!r} from state "
                f"{transition.source!r} (to {seen[key].dest!r} and to {transition.dest!r})"
            )
        seen[key] = transition


def _check_terminal_states_are_final(spec: MachineSpec) -> None:
    for transition in spec.transitions:
        if transition.source in spec.terminal:
            raise SpecError(
                f"{spec.path}: terminal state {transition.source!r} has an outgoing "
                f"transition {transition.label}"
            )


def _successors(spec: MachineSpec) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {state: set() for state in spec.state_names}
    for transition in spec.transitions:
        graph[transition.source].add(transition.dest)
    return graph


def _reachable(graph: Mapping[str, set[str]], starts: Iterable[str]) -> set[str]:
    seen = set(starts)
    queue = deque(seen)
    while queue:
        for nxt in graph[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _check_reachable(spec: MachineSpec) -> None:
    reached = _reachable(_successors(spec), [spec.initial])
    for state in spec.state_names:
        if state not in reached:
            raise SpecError(
                f"{spec.path}: state {state!r} is unreachable from initial state {spec.initial!r}"
            )


def _check_can_terminate(spec: MachineSpec) -> None:
    # `terminal` is a non-empty list of declared states (`parse_spec` checked it).
    predecessors: dict[str, set[str]] = {state: set() for state in spec.state_names}
    for transition in spec.transitions:
        predecessors[transition.dest].add(transition.source)
    can_finish = _reachable(predecessors, spec.terminal)
    for state in spec.state_names:
        if state not in can_finish:
            raise SpecError(
                f"{spec.path}: non-terminal state {state!r} has no path to a terminal state"
            )
