"""Every trigger and guard the engine names in code exists in the spec of the machine it fires.

A trigger the spec does not know raises `IllegalTransition` only when that code path runs; this
test reads the engine's source (`rowforge.scheduler`) and checks every name statically, so a
typo or a trigger removed from a spec fails here even on paths no other test reaches. It finds:

- `<...>.machines.<m>.fire/pick/refusal(subject, "trigger" | ("t1", "t2"))` and `.holds(subject,
  "guard")`, also through a local alias (`machine = self.machines.row_groups`);
- the engine's helpers that take a trigger: `_close_with(group, "t")` (row group),
  `_finish_worker(worker, "t")` (worker), `<ledger>.settle(cell, "t")` (cell);
- `TABLES["m"].sources("t", ...)` and `TABLES["m"].dest_of("t")`;
- when the argument is a variable, every string literal assigned to it in the same function.

Together with the edge coverage of `make test` (tests/edge_coverage.py: every spec edge is taken by
some test) this ties code and specs both ways.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import rowforge.scheduler
from rowforge.statemachine import SPECS

MACHINE_OF_ATTRIBUTE = {
    "run": "run",
    "row_groups": "row_group",
    "workers": "worker",
    "cells": "cell",
}
HELPERS = {"_close_with": "row_group", "_finish_worker": "worker", "settle": "cell"}
TRIGGER_METHODS = {"fire", "pick", "refusal"}

Found = tuple[str, str, str, str]  # (kind "trigger"|"guard", machine, name, where)


def _machine_of(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """`self.machines.row_groups` (or an alias of it) -> "row_group"."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "machines"
    ):
        return MACHINE_OF_ATTRIBUTE.get(node.attr)
    return None


def _strings(node: ast.AST) -> Iterator[str]:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            yield inner.value


def _literals(argument: ast.expr, function: ast.AST) -> list[str]:
    """The strings `argument` can be: its own literals, or those assigned to it in `function`."""
    if not isinstance(argument, ast.Name):
        return list(_strings(argument))
    found: list[str] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                values = (
                    node.value.elts
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                    else [node.value] * len(names)
                )
                for name, value in zip(names, values, strict=False):
                    if isinstance(name, ast.Name) and name.id == argument.id:
                        found.extend(_strings(value))
    return found


def _tables_machine(node: ast.expr) -> str | None:
    """`TABLES["cell"]` -> "cell"."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "TABLES"
        and isinstance(node.slice, ast.Constant)
    ):
        return str(node.slice.value)
    return None


def scan(source: str, where: str) -> list[Found]:
    """Every (kind, machine, name) the code in `source` hands to a machine."""
    tree = ast.parse(source)
    found: list[Found] = []
    functions = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ] or [tree]
    for function in functions:
        aliases = {
            target.id: machine
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
            and (machine := _machine_of(node.value, {})) is not None
        }
        for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
            if not isinstance(call.func, ast.Attribute):
                continue
            method, receiver = call.func.attr, call.func.value
            line = f"{where}:{call.lineno}"
            machine = _machine_of(receiver, aliases)
            if machine is not None and method in TRIGGER_METHODS | {"holds"} and len(call.args) > 1:
                kind = "guard" if method == "holds" else "trigger"
                found += [(kind, machine, s, line) for s in _literals(call.args[1], function)]
            elif method in HELPERS and len(call.args) > 1:
                found += [
                    ("trigger", HELPERS[method], s, line)
                    for s in _literals(call.args[1], function)
                ]
            elif method in ("sources", "dest_of") and (table := _tables_machine(receiver)):
                found += [("trigger", table, s, line) for a in call.args for s in _strings(a)]
    return found


def engine_sources() -> Iterator[tuple[str, str]]:
    package = Path(rowforge.scheduler.__file__).parent
    for path in sorted(package.glob("*.py")):
        yield path.read_text(encoding="utf-8"), f"scheduler/{path.name}"


def unknown_names(found: list[Found]) -> list[Found]:
    known = {
        name: (set(spec.triggers), {guard.name for guard in spec.guards})
        for name, spec in SPECS.items()
    }
    return [
        item
        for item in found
        if item[2] not in known[item[1]][0 if item[0] == "trigger" else 1]
    ]


def test_every_trigger_and_guard_named_in_the_engine_is_in_its_spec() -> None:
    found = [item for source, where in engine_sources() for item in scan(source, where)]
    assert unknown_names(found) == []
    # The scanner sees the engine's vocabulary (it is not vacuously passing).
    seen = {(machine, name) for _, machine, name, _ in found}
    for expected in [
        ("run", "start"),
        ("run", "drain"),
        ("run", "abort"),
        ("run", "interrupt"),
        ("row_group", "admit"),
        ("row_group", "seeded"),
        ("row_group", "cells_done"),
        ("row_group", "salvage"),
        ("row_group", "write"),
        ("row_group", "drop"),
        ("row_group", "fail"),
        ("row_group", "cancel"),
        ("row_group", "no_live_workers"),
        ("row_group", "row_count_unchanged"),
        ("worker", "start"),
        ("worker", "succeed"),
        ("worker", "defer"),
        ("worker", "fail"),
        ("worker", "cancel"),
        ("worker", "release"),
        ("cell", "start"),
        ("cell", "generate"),
        ("cell", "skip"),
        ("cell", "fail"),
    ]:
        assert expected in seen, expected


def test_a_trigger_missing_from_the_spec_is_reported() -> None:
    source = '''
def _advance(self, group):
    machine = self.machines.row_groups
    candidates = ("cells_done", "finish_early")
    machine.pick(group, candidates)
    self.machines.run.fire(self.run, "complete")
    self.machines.run.fire(self.run, "abandon")
    machine.holds(group, "no_live_wrkers")
    self._close_with(group, "evaporate", "reason")
'''
    unknown = unknown_names(scan(source, "x"))
    reported = {(kind, machine, name) for kind, machine, name, _ in unknown}
    assert reported == {
        ("trigger", "row_group", "finish_early"),
        ("trigger", "run", "abandon"),
        ("guard", "row_group", "no_live_wrkers"),
        ("trigger", "row_group", "evaporate"),
    }
