"""How rowforge names a cause: one wording everywhere (drop reasons, traces, messages)."""

from __future__ import annotations

from rowforge.errors import describe_error


def test_a_cause_reads_type_then_message() -> None:
    assert describe_error(ValueError("bad row")) == "ValueError: bad row"


def test_an_empty_message_leaves_just_the_type_without_a_dangling_colon() -> None:
    assert describe_error(TimeoutError()) == "TimeoutError"
