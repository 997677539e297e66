"""Generate `docs/state-machines.md` from the specs: Mermaid diagrams plus reference tables.

The document is a pure function of the specs (no timestamps, spec order preserved), so
`make diagrams` twice gives byte-identical output and a test can require that the committed file
equals what the specs generate. Run as `python -m rowforge.statemachine.diagrams [OUTPUT]` or
`rowforge diagrams`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from rowforge.hints import runnable_command
from rowforge.statemachine.catalog import SPECS
from rowforge.statemachine.spec import MachineSpec, TransitionSpec

# Relative: the working directory, never the installed package (`make diagrams` passes the
# repository's docs/state-machines.md).
DEFAULT_OUTPUT = Path("state-machines.md")

_HEADER = """\
# rowforge state machines

<!-- Generated from specs/*.yaml by `make diagrams`; do not edit by hand. -->

Each machine below is loaded from `specs/` at import time. On the diagrams, `[*]` marks the
initial state and the terminal states; an edge reads `trigger [guards]`, where `!guard` means the
guard must be false (`unless` in the spec). Every guard names the invariant of
[invariants.md](invariants.md) it enforces.
"""


def guard_label(transition: TransitionSpec) -> str:
    """`a, b, !c` for conditions a, b and unless c; empty when unguarded."""
    return ", ".join([*transition.conditions, *(f"!{g}" for g in transition.unless)])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_machine(spec: MachineSpec) -> str:
    """One section: description, Mermaid diagram, states, guards and transitions tables."""
    lines = [f"## {spec.name}", "", spec.description, "", f"Source: `specs/{Path(spec.path).name}`"]
    lines += ["", "```mermaid", "stateDiagram-v2", f"    [*] --> {spec.initial}"]
    for transition in spec.transitions:
        guards = guard_label(transition)
        label = f"{transition.trigger} [{guards}]" if guards else transition.trigger
        lines.append(f"    {transition.source} --> {transition.dest}: {label}")
    lines += [f"    {state} --> [*]" for state in spec.state_names if state in spec.terminal]
    lines += ["```", ""]

    lines += ["| state | kind | description |", "|---|---|---|"]
    for state in spec.states:
        kind = _state_kind(spec, state.name)
        lines.append(f"| `{state.name}` | {kind} | {_cell(state.description)} |")
    lines += ["", "| guard | invariant | description |", "|---|---|---|"]
    lines += [f"| `{g.name}` | {g.invariant} | {_cell(g.description)} |" for g in spec.guards]
    lines += ["", "| trigger | source | dest | guards | description |", "|---|---|---|---|---|"]
    for t in spec.transitions:
        guards = _cell(guard_label(t)) or "-"
        lines.append(
            f"| `{t.trigger}` | `{t.source}` | `{t.dest}` | {guards} | {_cell(t.description)} |"
        )
    return "\n".join(lines) + "\n"


def _state_kind(spec: MachineSpec, state: str) -> str:
    if state == spec.initial:
        return "initial"
    return "terminal" if state in spec.terminal else "-"


def render_document(specs: Mapping[str, MachineSpec]) -> str:
    """The whole generated document."""
    sections: Iterable[str] = (render_machine(spec) for spec in specs.values())
    return _HEADER + "\n" + "\n".join(sections)


def write_document(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the document to `output` (creating its directory) and return the path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_document(SPECS), encoding="utf-8")
    return output


def is_current(output: Path = DEFAULT_OUTPUT) -> bool:
    """True when `output` holds exactly what the specs generate."""
    return output.is_file() and output.read_text(encoding="utf-8") == render_document(SPECS)


def main(argv: list[str] | None = None) -> int:
    """`[--check] [OUTPUT]`: write the document, or with --check exit 1 when it is stale."""
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    paths = [arg for arg in args if arg != "--check"]
    output = Path(paths[0]) if paths else DEFAULT_OUTPUT
    if check:
        if is_current(output):
            print(f"{output} matches specs/")
            return 0
        again = runnable_command("diagrams", output)
        print(f"{output} is stale: run '{again}' to write it again", file=sys.stderr)
        return 1
    print(f"wrote {write_document(output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
