"""Exactly-once cell accounting (INV-4).

A cell is counted when it reaches a terminal state, and only through `Ledger.settle`, which fires
the cell's transition and then records the cell as counted. The cell machine's `not_yet_counted`
guard asks the ledger (`has_counted`), not a flag on the cell: a second settle of the same cell is
refused by the guard even where the spec would allow the edge, and otherwise by the spec (its
state is terminal). So `generated + skipped + failed + never_started == total cells` holds by
construction, and the hypothesis tests check it after every step.

The ledger remembers the counted cells of open row groups only: `forget` drops a closed row
group's cells (they are terminal, so no edge can count them again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rowforge.scheduler.subjects import Cell
from rowforge.statemachine import CompiledMachine


class Ledger:
    """Per-column counts of generated, skipped and failed cells."""

    def __init__(self, cells: CompiledMachine, counted: set[Cell]) -> None:
        """`counted` is the set the cell machine's `not_yet_counted` guard reads (the engine
        hands the same set to both); only the ledger adds to it."""
        self._cells = cells
        self.generated: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        table = cells.table
        self._by_outcome = {
            table.dest_of("generate"): self.generated,
            table.dest_of("skip"): self.skipped,
            table.dest_of("fail"): self.failed,
        }
        self._counted = counted

    def has_counted(self, cell: Cell) -> bool:
        """Whether `cell` is already in the counts (the `not_yet_counted` guard's evidence)."""
        return cell in self._counted

    def settle(self, cell: Cell, trigger: str) -> None:
        """Move `cell` to its terminal state by `trigger` and count it once."""
        self.count(cell, self._cells.fire(cell, trigger))

    def count(self, cell: Cell, outcome: str) -> None:
        """Count a cell that reached `outcome`. `settle` is the way for cells that transition;
        a resize builds its new cells already generated and counts them here."""
        self._counted.add(cell)
        self._by_outcome[outcome][cell.column] += 1

    def forget(self, cells: Iterable[Cell]) -> None:
        """A row group closed: its cells are terminal and need no memory here any more."""
        self._counted.difference_update(cells)
