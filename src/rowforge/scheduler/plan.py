"""Plan: steps -> a validated dependency DAG, and row groups planned lazily.

Theory of operation
-------------------
A `Step` produces its own column and, optionally, `extra_columns` at the same time (a generator
that returns a value with side products, or several sampled columns drawn together). A `cell`
step runs once per row and sees that row's upstream values; a `batch` step runs once per row
group and sees a DataFrame of the row group's surviving rows. A dependency names a step or any
column a step produces; the plan resolves it to the step.

A step's `skip_when` condition is decided per row when the row's cell becomes ready (its
upstream cells are settled; for cell steps whose inputs all come from seed steps, after the
pre-batch processors): the cell is skipped instead of run, the row keeps it with `skip_value`,
and a dependent step with `propagate_skip` skips that row too. A skipped cell is counted once,
as skipped (INV-4); the row is not dropped.

`build_plan` checks names and dependencies (duplicates, unknown names, cycles all raise
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
    """One column's generator (and of the `extra_columns` it produces at the same time).

    `fn` is called with a dict of the row's upstream values (cell steps) or with a DataFrame of
    the surviving rows, indexed by record index (batch steps). It may be sync or async; sync
    callables run on the event loop, so they should be quick. A step with `extra_columns`
    returns a mapping with its own column and each extra column (cell steps) or a DataFrame
    with those columns (batch steps). `resource` names what the step calls (a model alias) for
    per-resource caps. `allow_resize` lets a batch step change the number of rows, which only
    the sync engine supports.

    `skip_when(upstream_values) -> bool` decides per row whether to skip the step there
    instead of running it (an exception counts as true and is logged: a row whose condition
    cannot be read is not worth a model call). A skipped cell holds `skip_value` (its extra
    columns None). With `propagate_skip` (the default), a row where a direct dependency was
    skipped is skipped here too, so a chain of dependents never runs on missing inputs.
    """

    name: str
    fn: Callable[..., Any]
    kind: StepKind = "cell"
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_as_names)
    resource: str | None = None
    allow_resize: bool = False
    extra_columns: tuple[str, ...] = attrs.field(default=(), converter=_as_names)
    skip_when: Callable[[dict[str, Any]], Any] | None = None
    skip_value: Any = None
    propagate_skip: bool = True
    is_async: bool = attrs.field(init=False)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the step produces: its own first."""
        return (self.name, *self.extra_columns)

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
        for column in self.extra_columns:
            if not column or not isinstance(column, str):
                raise ConfigError(
                    f"step {self.name!r}: extra_columns must be non-empty strings, got {column!r}"
                )
        if len(set(self.columns)) != len(self.columns):
            raise ConfigError(f"step {self.name!r}: extra_columns repeat a column: {self.columns}")
        if self.skip_when is not None and not callable(self.skip_when):
            raise ConfigError(
                f"step {self.name!r}: skip_when must be callable, got {self.skip_when!r}"
            )
        if self.skip_when is not None and self.allow_resize:
            raise ConfigError(f"step {self.name!r}: skip_when cannot be combined with allow_resize")
        if not isinstance(self.propagate_skip, bool):
            raise ConfigError(
                f"step {self.name!r}: propagate_skip must be true or false, "
                f"got {self.propagate_skip!r}"
            )


@attrs.frozen
class RowFailed:
    """What a batch step returns in place of one row's value when that row failed: the row is
    dropped as if a cell step had raised `error` for it (its cell fails, the reason names the
    step and the error), and the other rows go on. A batch step still returns one entry per
    row it was given (INV-5)."""

    error: BaseException


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
    #: Each step's direct dependencies as step names (a dependency on an extra column resolved
    #: to the step producing it, repeats removed).
    dependencies: dict[str, tuple[str, ...]]
    #: The columns a step sees: every column of its transitive upstream steps.
    upstream_columns: dict[str, tuple[str, ...]]
    by_name: dict[str, Step]

    @property
    def num_row_groups(self) -> int:
        return -(-self.num_records // self.buffer_size)

    @property
    def step_names(self) -> tuple[str, ...]:
        """One name per step, in plan order: the keys of per-step accounting."""
        return tuple(step.name for step in self.steps)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the steps produce, in plan order (a step's own column first)."""
        return tuple(column for step in self.steps for column in step.columns)

    @property
    def needs_resize(self) -> bool:
        return any(step.allow_resize for step in self.steps)

    def step(self, name: str) -> Step:
        return self.by_name[name]

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
    producer: dict[str, str] = {}
    for step in steps:
        if step.name in by_name:
            raise ConfigError(f"duplicate step name {step.name!r}")
        by_name[step.name] = step
        for column in step.columns:
            if column in producer:
                raise ConfigError(
                    f"column {column!r} is produced by both step {producer[column]!r} and "
                    f"step {step.name!r}"
                )
            producer[column] = step.name
    dependencies: dict[str, tuple[str, ...]] = {}
    for step in steps:
        resolved: list[str] = []
        for dependency in step.depends_on:
            if dependency not in producer:
                raise ConfigError(f"step {step.name!r} depends on unknown step {dependency!r}")
            if producer[dependency] == step.name:
                raise ConfigError(f"step {step.name!r} depends on itself")
            if producer[dependency] not in resolved:
                resolved.append(producer[dependency])
        dependencies[step.name] = tuple(resolved)
        if step.skip_when is not None and not resolved:
            raise ConfigError(
                f"step {step.name!r}: skip_when decides from upstream values, and the step has "
                "no dependencies (depends_on)"
            )

    ordered = _topological_order(steps, dependencies)
    upstream = {step.name: _transitive_upstream(step.name, dependencies) for step in ordered}
    downstream = {
        step.name: tuple(s.name for s in ordered if step.name in dependencies[s.name])
        for step in ordered
    }
    seeds = frozenset(
        step.name
        for step in ordered
        if step.kind == "batch" and all(by_name[u].kind == "batch" for u in upstream[step.name])
    )
    upstream_columns = {
        name: tuple(column for u in ups for column in by_name[u].columns)
        for name, ups in upstream.items()
    }
    return Plan(
        tuple(ordered),
        num_records,
        buffer_size,
        upstream,
        downstream,
        seeds,
        dependencies,
        upstream_columns,
        by_name,
    )


def _topological_order(
    steps: Sequence[Step], dependencies: dict[str, tuple[str, ...]]
) -> list[Step]:
    """Kahn's algorithm, always taking the earliest-declared ready step; report any cycle."""
    remaining = {step.name: set(dependencies[step.name]) for step in steps}
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


def _transitive_upstream(name: str, dependencies: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    seen: list[str] = []
    stack = list(dependencies[name])
    while stack:
        dependency = stack.pop()
        if dependency not in seen:
            seen.append(dependency)
            stack.extend(dependencies[dependency])
    order = list(dependencies)
    return tuple(sorted(seen, key=order.index))
