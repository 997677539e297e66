"""Plan: steps -> a validated dependency DAG, and row groups planned lazily.

Theory of operation
-------------------
A `Step` produces one column. A `cell` step runs once per row and sees that row's upstream
values; a `batch` step runs once per row group and sees a DataFrame of the row group's surviving
rows. `build_plan` checks names and dependencies (duplicates, unknown names, cycles all raise
`ConfigError` naming the step) and orders the steps topologically, keeping declaration order
among independent steps so both engines walk columns in the same order.

Steps whose upstream steps are all batch steps, and which are batch steps themselves, are *seed
steps*: they run while the row group is `seeding`. Every other step runs while it is `running`.

Row groups are never materialised up front: `Plan.row_group(index)` computes one on demand, so
memory depends on the open row groups, not on `num_records`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import attrs

from rowforge.errors import ConfigError

StepKind = Literal["batch", "cell"]


def _as_names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        return (names,)
    return tuple(names)


@attrs.frozen
class Step:
    """One column's generator.

    `fn` is called with a dict of the row's upstream values (cell steps) or with a DataFrame of
    the surviving rows, indexed by record index (batch steps). It may be sync or async; sync
    callables run on the event loop, so they should be quick. `resource` names what the step
    calls (a model alias) for per-resource caps. `allow_resize` lets a batch step change the
    number of rows, which only the sync engine supports.
    """

    name: str
    fn: Callable[..., Any]
    kind: StepKind = "cell"
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_as_names)
    resource: str | None = None
    allow_resize: bool = False
    is_async: bool = attrs.field(init=False)

    @is_async.default
    def _detect_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn) or inspect.iscoroutinefunction(
            getattr(self.fn, "__call__", None)  # noqa: B004 - async callable objects
        )

    def __attrs_post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"step name must be a non-empty string, got {self.name!r}")
        if self.kind not in ("batch", "cell"):
            raise ConfigError(
                f"step {self.name!r}: kind must be 'batch' or 'cell', got {self.kind!r}"
            )
        if self.allow_resize and self.kind != "batch":
            raise ConfigError(f"step {self.name!r}: allow_resize needs kind='batch'")
        if not callable(self.fn):
            raise ConfigError(f"step {self.name!r}: fn must be callable, got {self.fn!r}")


@attrs.frozen
class RowGroupPlan:
    """Rows [start, start + size) of the dataset."""

    index: int
    start: int
    size: int


@attrs.frozen
class Plan:
    """Validated steps in topological order, with the row-group layout for `num_records`."""

    steps: tuple[Step, ...]
    num_records: int
    buffer_size: int
    upstream: dict[str, tuple[str, ...]]
    downstream: dict[str, tuple[str, ...]]
    seed_steps: frozenset[str]

    @property
    def num_row_groups(self) -> int:
        return -(-self.num_records // self.buffer_size)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    @property
    def needs_resize(self) -> bool:
        return any(step.allow_resize for step in self.steps)

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def row_group(self, index: int) -> RowGroupPlan:
        start = index * self.buffer_size
        return RowGroupPlan(index, start, min(self.buffer_size, self.num_records - start))

    def row_groups(self) -> Iterable[RowGroupPlan]:
        """Lazily, in order."""
        return (self.row_group(index) for index in range(self.num_row_groups))


def build_plan(steps: Sequence[Step], num_records: int, buffer_size: int) -> Plan:
    """Validate `steps` and order them; raise `ConfigError` naming the offending step."""
    if isinstance(num_records, bool) or not isinstance(num_records, int) or num_records < 1:
        raise ConfigError(f"num_records must be a positive integer, got {num_records!r}")
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise ConfigError(f"buffer_size must be a positive integer, got {buffer_size!r}")
    if not steps:
        raise ConfigError("a plan needs at least one step")
    by_name: dict[str, Step] = {}
    for step in steps:
        if step.name in by_name:
            raise ConfigError(f"duplicate step name {step.name!r}")
        by_name[step.name] = step
    for step in steps:
        for dependency in step.depends_on:
            if dependency not in by_name:
                raise ConfigError(f"step {step.name!r} depends on unknown step {dependency!r}")
            if dependency == step.name:
                raise ConfigError(f"step {step.name!r} depends on itself")

    ordered = _topological_order(steps)
    upstream = {step.name: _transitive_upstream(step.name, by_name) for step in ordered}
    downstream = {
        step.name: tuple(s.name for s in ordered if step.name in s.depends_on) for step in ordered
    }
    seeds = frozenset(
        step.name
        for step in ordered
        if step.kind == "batch" and all(by_name[u].kind == "batch" for u in upstream[step.name])
    )
    return Plan(tuple(ordered), num_records, buffer_size, upstream, downstream, seeds)


def _topological_order(steps: Sequence[Step]) -> list[Step]:
    """Kahn's algorithm, always taking the earliest-declared ready step; report any cycle."""
    remaining = {step.name: set(step.depends_on) for step in steps}
    ordered: list[Step] = []
    while remaining:
        ready = [step for step in steps if step.name in remaining and not remaining[step.name]]
        if not ready:
            raise ConfigError(f"dependency cycle: {' -> '.join(_find_cycle(remaining))}")
        chosen = ready[0]
        ordered.append(chosen)
        del remaining[chosen.name]
        for deps in remaining.values():
            deps.discard(chosen.name)
    return ordered


def _find_cycle(remaining: dict[str, set[str]]) -> list[str]:
    """Walk dependencies among the unordered steps until a name repeats."""
    path: list[str] = []
    current = next(iter(remaining))
    while current not in path:
        path.append(current)
        current = sorted(remaining[current])[0]
    return [*path[path.index(current) :], current]


def _transitive_upstream(name: str, by_name: dict[str, Step]) -> tuple[str, ...]:
    seen: list[str] = []
    stack = list(by_name[name].depends_on)
    while stack:
        dependency = stack.pop()
        if dependency not in seen:
            seen.append(dependency)
            stack.extend(by_name[dependency].depends_on)
    order = list(by_name)
    return tuple(sorted(seen, key=order.index))
