"""Mutation testing for the machine specs (specs/*.yaml), which mutmut cannot mutate.

    python -m tests.mutants_killed.spec_mutants [--rev HEAD] [--spec worker] [--list]

For each spec file it applies one small change at a time, in a snapshot of the project under
mutants/specs/ (git-ignored), and runs the tests that exercise the machines: tests/statemachine,
tests/scheduler/test_stateful_scheduler.py and tests/scheduler/test_guard_functions.py (which
pins every edge's guards), with CI=true (the short hypothesis profile), stopping
at the first failure. The changes:

    drop-transition   remove one transition entry
    drop-source       remove one source state of a transition with several
    drop-condition    remove one guard from `conditions`
    drop-unless       remove one guard from `unless`
    negate-guard      move one guard from `conditions` to `unless` (and back)
    retarget          send a transition to the next declared state instead of its `dest`

A mutant the spec loader rejects (an unreachable state, a state with no way out) counts as killed
by the loader. tests/statemachine/test_diagrams.py is left out: it compares the committed diagrams
with the specs, so it fails for every change and would say nothing about behaviour.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.mutants_killed.run_mutmut import WORK, snapshot

TESTS = [
    "tests/statemachine",
    "tests/scheduler/test_stateful_scheduler.py",
    "tests/scheduler/test_guard_functions.py",
]
LEFT_OUT = ["tests/statemachine/test_diagrams.py"]


@dataclass(frozen=True)
class SpecMutant:
    spec: str
    kind: str
    where: str
    document: Any

    @property
    def name(self) -> str:
        return f"{self.spec}: {self.kind} {self.where}"


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _label(entry: dict[str, Any]) -> str:
    return f"{entry['trigger']}({'|'.join(_names(entry['source']))} -> {entry['dest']})"


def mutants_of(spec: str, document: dict[str, Any]) -> Iterator[SpecMutant]:
    states = [state["name"] for state in document["states"]]
    transitions = document["transitions"]

    def changed(index: int, change: Any) -> dict[str, Any]:
        mutated = copy.deepcopy(document)
        change(mutated["transitions"][index])
        return mutated

    for i, entry in enumerate(transitions):
        label = _label(entry)
        removed = copy.deepcopy(document)
        del removed["transitions"][i]
        yield SpecMutant(spec, "drop-transition", label, removed)

        sources = _names(entry["source"])
        if len(sources) > 1:
            for source in sources:
                yield SpecMutant(
                    spec, "drop-source", f"{source} of {label}",
                    changed(i, lambda t, s=source: t.update(
                        source=[x for x in _names(t["source"]) if x != s]
                    )),
                )
        for key, other, negate in (("conditions", "unless", "negate-guard"),
                                   ("unless", "conditions", "negate-guard")):
            for guard in _names(entry.get(key)):
                drop = "drop-condition" if key == "conditions" else "drop-unless"
                yield SpecMutant(
                    spec, drop, f"{guard} of {label}",
                    changed(i, lambda t, k=key, g=guard: t.update(
                        {k: [x for x in _names(t[k]) if x != g]}
                    )),
                )
                yield SpecMutant(
                    spec, negate, f"{guard} ({key} -> {other}) of {label}",
                    changed(i, lambda t, k=key, o=other, g=guard: t.update(
                        {k: [x for x in _names(t[k]) if x != g], o: [*_names(t.get(o)), g]}
                    )),
                )
        position = states.index(entry["dest"])
        for step in range(1, len(states)):
            target = states[(position + step) % len(states)]
            if target not in sources:
                yield SpecMutant(
                    spec, "retarget", f"{label} to {target}",
                    changed(i, lambda t, d=target: t.update(dest=d)),
                )
                break


def loader_rejects(work: Path, path: Path) -> str | None:
    """The loader's complaint about the mutated spec, or None if it loads."""
    check = (
        "import sys; from pathlib import Path; from rowforge.statemachine.spec import load_spec\n"
        "try:\n    load_spec(Path(sys.argv[1]))\n"
        "except Exception as exc:\n    print(exc); sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check, str(path)], cwd=work, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(work / "src")},
    )
    if result.returncode == 0:
        return None
    # the package loads every spec on import, so the complaint may come as a traceback
    lines = (result.stdout.strip() or result.stderr.strip() or "rejected").splitlines()
    return lines[-1]


def first_failure(work: Path) -> tuple[bool, str]:
    """Run the machine tests against the snapshot; (killed, the failing test or '')."""
    ignore = [f"--ignore={path}" for path in LEFT_OUT]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rf",
         "--tb=no", *ignore, *TESTS],
        cwd=work, capture_output=True, text=True,
        env={**os.environ, "CI": "true", "PYTHONPATH": str(work / "src")},
    )
    failed = [line[7:] for line in result.stdout.splitlines() if line.startswith("FAILED ")]
    errors = [line[6:] for line in result.stdout.splitlines() if line.startswith("ERROR ")]
    if result.returncode == 0:
        return False, ""
    return True, (failed or errors or [f"pytest exit {result.returncode}"])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="test this commit (e.g. HEAD) instead of the working tree")
    parser.add_argument("--spec", action="append", help="only this spec (worker, cell, ...)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args()

    work = WORK / "specs"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    snapshot(work, args.rev)
    spec_files = sorted((work / "specs").glob("*.yaml"))
    if args.spec:
        spec_files = [p for p in spec_files if p.stem in args.spec]

    all_mutants = [
        mutant
        for path in spec_files
        for mutant in mutants_of(path.name, yaml.safe_load(path.read_text()))
    ]
    if args.list:
        print("\n".join(m.name for m in all_mutants))
        return

    baseline_killed, baseline_failure = first_failure(work)
    if baseline_killed:
        raise SystemExit(f"the machine tests fail on the unmutated specs: {baseline_failure}")

    counts = {"killed by loader": 0, "killed by tests": 0, "survived": 0}
    survivors: list[str] = []
    report = [f"spec mutants of {args.rev or 'the working tree'}; tests: {' '.join(TESTS)}"]
    for mutant in all_mutants:
        path = work / "specs" / mutant.spec
        original = path.read_text()
        path.write_text(yaml.safe_dump(mutant.document, sort_keys=False))
        started = time.monotonic()
        try:
            rejected = loader_rejects(work, path)
            if rejected:
                outcome, detail = "killed by loader", rejected
            else:
                killed, detail = first_failure(work)
                outcome = "killed by tests" if killed else "survived"
        finally:
            path.write_text(original)
        counts[outcome] += 1
        if outcome == "survived":
            survivors.append(mutant.name)
        line = f"{outcome:16} {mutant.name}  [{detail}] ({time.monotonic() - started:.0f} s)"
        report.append(line)
        print(line, flush=True)

    total = sum(counts.values())
    summary = ", ".join(f"{k} {v}" for k, v in counts.items()) + f", total {total}"
    report.append("== spec mutation score: " + summary)
    print(report[-1])
    (work / "report.txt").write_text("\n".join(report) + "\n")
    if survivors:
        print("survivors:\n  " + "\n  ".join(survivors))


if __name__ == "__main__":
    main()
