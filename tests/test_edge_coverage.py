"""The spec-edge coverage check of `make test` (tests/edge_coverage.py) can fail.

`make test` fails when a spec edge was taken by no test; these tests make sure the recorder sees
transitions of both machine kinds and that an edge nobody took is reported.
"""

from __future__ import annotations

from rowforge.statemachine import SPECS, TABLES, CompiledMachine, ReferenceMachine

from . import edge_coverage


class _Subject:
    def __init__(self, ident: str, state: str) -> None:
        self.ident = ident
        self.state = state


def test_transitions_of_both_machine_kinds_are_recorded() -> None:
    edge_coverage.install()
    edge_coverage.install()  # idempotent: one wrapper, not two
    run = _Subject("run-under-test", SPECS["run"].initial)
    always = {g.name: (lambda _s: True) for g in SPECS["run"].guards}
    machine = ReferenceMachine(SPECS["run"], always)
    machine.add(run)
    machine.fire(run, "start")
    worker = _Subject("worker-under-test", "pending")
    guards = {g.name: (lambda _s: True) for g in SPECS["worker"].guards}
    CompiledMachine(TABLES["worker"], guards).fire(worker, "start")
    assert ("run", "pending", "start") in edge_coverage.TAKEN
    assert ("worker", "pending", "start") in edge_coverage.TAKEN


def test_an_edge_no_test_took_is_reported() -> None:
    everything = edge_coverage.spec_edges()
    assert edge_coverage.untaken(everything) == []
    missing = ("run", "aborting", "interrupt")
    assert missing in everything
    assert edge_coverage.untaken(everything - {missing}) == [missing]
