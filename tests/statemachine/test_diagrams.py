"""The committed state diagrams are exactly what the specs generate."""

from __future__ import annotations

from pathlib import Path

from rowforge.statemachine import SPECS
from rowforge.statemachine.diagrams import main, render_document

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "state-machines.md"


def test_committed_diagrams_match_the_specs() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_document(SPECS), (
        "docs/state-machines.md is stale: run 'make diagrams' and commit it"
    )


def test_generation_is_byte_identical_across_runs(tmp_path: Path) -> None:
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    assert main([str(first)]) == 0
    assert main([str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "stale.md"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1


def test_every_guarded_edge_shows_its_guards() -> None:
    text = render_document(SPECS)
    assert "    pending --> running: start [leases_held]" in text
    guards = (
        "no_live_workers, all_row_groups_terminal, all_row_groups_admitted, "
        "some_rows_written, !target_reached"
    )
    assert f"running --> partial: complete_partial [{guards}]" in text
    for name in SPECS:
        assert f"## {name}" in text
