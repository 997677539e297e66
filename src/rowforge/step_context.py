"""Which step (column) the code running now works for, for messages that should name it.

A model client does not know which column called it, yet a slow-request warning that says
"model 'writer' (column 'reply')" tells the user where to look. The scheduler sets
`CURRENT_STEP` around each step call; every worker runs in its own task (or, in the sync
engine, sets and resets it around the call), so concurrent calls never see each other's value.
A leaf module, so the models package and the scheduler can both read it without importing each
other.
"""

from __future__ import annotations

from contextvars import ContextVar

CURRENT_STEP: ContextVar[str | None] = ContextVar("rowforge_current_step", default=None)
