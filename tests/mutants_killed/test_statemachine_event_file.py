"""Survivors of `make mutants` in rowforge.statemachine.events (`EventFile`), killed: events.jsonl
receives whole lines only, when the buffer fills (`BUFFER_LINES` unless told), on `flush` and on
`close`; closing fsyncs the file once; leaving the `with` block by an exception still closes it;
nothing is recorded after close, and the refusal names the file and the trigger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rowforge.statemachine import EventFile, read_jsonl
from rowforge.statemachine import events as events_module
from rowforge.statemachine.events import BUFFER_LINES


def lines_on_disk(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "only whole lines reach the file"
    return text.splitlines()


def test_lines_reach_the_file_a_full_buffer_at_a_time_then_on_flush(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventFile(path, buffer_lines=3) as log:
        recorded = []
        for number in range(7):
            recorded.append(log.record("row_group", number, "admit", "pending", "seeding"))
            assert len(lines_on_disk(path)) == (number + 1) // 3 * 3
            assert len(log) == number + 1
        log.flush()
        assert lines_on_disk(path) == [event.to_json() for event in recorded]
        log.flush()  # nothing pending: nothing more written
        assert len(lines_on_disk(path)) == 7
    assert read_jsonl(path) == recorded
    assert not EventFile.keeps_events


def test_the_default_buffer_holds_buffer_lines_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventFile(path)
    for number in range(BUFFER_LINES - 1):
        log.record("cell", number, "start", "pending", "running")
    assert lines_on_disk(path) == []
    log.record("cell", BUFFER_LINES, "start", "pending", "running")
    assert len(lines_on_disk(path)) == BUFFER_LINES
    log.close()


def test_close_flushes_and_fsyncs_the_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []

    class SpyOS:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def fsync(self, fd: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            os.fsync(fd)

    monkeypatch.setattr(events_module, "os", SpyOS())
    path = tmp_path / "events.jsonl"
    log = EventFile(path, buffer_lines=10)
    log.record("run", "run", "start", "pending", "running")
    log.flush()
    assert synced == [], "a flush hands lines to the OS; only close fsyncs"
    log.record("run", "run", "complete", "running", "completed")
    log.close()
    assert synced == [str(path)]
    assert len(lines_on_disk(path)) == 2
    log.close()  # a second close does nothing
    log.flush()  # nor does a flush after close
    assert synced == [str(path)]


def test_leaving_the_block_by_an_exception_closes_the_log_and_later_events_are_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    with pytest.raises(KeyboardInterrupt), EventFile(path, buffer_lines=10) as log:
        log.record("run", "run", "start", "pending", "running")
        raise KeyboardInterrupt
    assert len(lines_on_disk(path)) == 1
    with pytest.raises(ValueError) as refused:
        log.record("run", "run", "cancel", "running", "cancelled")
    assert str(refused.value) == f"{path}: event 'cancel' recorded after close"
    assert len(log) == 1
    assert len(lines_on_disk(path)) == 1


def test_iterating_reads_back_what_was_recorded_so_far(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventFile(path, buffer_lines=100) as log:
        first = log.record("row_group", 0, "admit", "pending", "seeding", {"rows": 10})
        assert list(log) == [first]
        second = log.record("row_group", 0, "seeded", "seeding", "running")
        assert list(log) == [first, second]
        assert first.details == {"rows": 10} and second.details == {}
