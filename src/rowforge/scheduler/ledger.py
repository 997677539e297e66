"""Exactly-once cell accounting (INV-4).

A cell is counted when it reaches a terminal state, and only through `Ledger.settle`, which fires
the cell's transition first: a second settle of the same cell is an illegal transition (its
state is terminal) and, were the spec ever loosened, the `not_yet_counted` guard still refuses it.
So `generated + skipped + failed + never_started == total cells` holds by construction, and the
hypothesis tests check it after every step.
"""

from __future__ import annotations

from collections import Counter

from rowforge.scheduler.subjects import Cell
from rowforge.statemachine import CompiledMachine

_OUTCOME_OF_TRIGGER = {"generate": "generated", "skip": "skipped", "fail": "failed"}


class Ledger:
    """Per-column counts of generated, skipped and failed cells."""

    def __init__(self, cells: CompiledMachine) -> None:
        self._cells = cells
        self.generated: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._by_outcome = {
            "generated": self.generated,
            "skipped": self.skipped,
            "failed": self.failed,
        }

    def settle(self, cell: Cell, trigger: str) -> None:
        """Move `cell` to its terminal state by `trigger` and count it once."""
        self._cells.fire(cell, trigger)
        cell.counted = True
        self._by_outcome[_OUTCOME_OF_TRIGGER[trigger]][cell.column] += 1

    def totals(self) -> dict[str, int]:
        return {
            "generated": sum(self.generated.values()),
            "skipped": sum(self.skipped.values()),
            "failed": sum(self.failed.values()),
        }
