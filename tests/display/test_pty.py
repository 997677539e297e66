"""The display in a real pseudo-terminal: what stays on screen after it exits.

A recorded Console cannot show ghost lines: they come from the order in which two threads'
writes reach the terminal and from cursor movements. So pty_demo.py runs in a pty (pexpect),
its whole output is replayed through a small terminal emulator (vt.py), and the final screen is
checked: every log line whole on a line of its own, the summary last, and no line of the live
view left anywhere (no bar glyph, no step row).
"""

from __future__ import annotations

import io
import os
import sys
import termios
from pathlib import Path

import pexpect
import pytest

from tests.display.factory import STEP_NAMES
from tests.display.pty_demo import RESUME_COMMAND, STRAY_PRINT
from tests.display.vt import replay

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 100, 30
BAR_GLYPHS = set("━╸╺")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


def _spawn(*args: str) -> tuple[pexpect.spawn, io.StringIO]:
    """The demo in a 100x30 pty, and the buffer collecting everything it writes."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"}
    }
    env["TERM"] = "xterm-256color"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tests.display.pty_demo", *args],
        cwd=str(REPO),
        env=env,
        dimensions=(HEIGHT, WIDTH),
        encoding="utf-8",
        codec_errors="strict",
        timeout=15,
    )
    output = io.StringIO()
    child.logfile_read = output
    return child, output


def _no_view_left(screen: list[str]) -> None:
    for line in screen:
        assert not BAR_GLYPHS & set(line), f"bar line left on screen: {line!r}"
        assert not line.startswith(STEP_NAMES), f"step row left on screen: {line!r}"
        assert "records settled" not in line, f"header left on screen: {line!r}"


def test_log_lines_stay_whole_and_no_bar_remains(tmp_path: Path) -> None:
    """Including the record emitted while the live view stops (the demo widens that window)."""
    messages_file = tmp_path / "messages.txt"
    child, output = _spawn("exit", str(messages_file))
    child.expect(pexpect.EOF)
    child.close()
    raw = output.getvalue()
    assert child.exitstatus == 0, raw[-2000:]
    assert "━" in raw, "the live view was never drawn"
    screen = [line for line in replay(raw, WIDTH) if line]
    messages = messages_file.read_text().splitlines()
    assert len(messages) >= 5 and "while the view stops" in messages[-1]
    assert screen.count(STRAY_PRINT) == 1
    log_lines = [line for line in screen if line.startswith("WARNING")]
    assert log_lines == [f"WARNING rowforge: {message}" for message in messages]
    _no_view_left(screen)
    summary_at = next(i for i, line in enumerate(screen) if "records written" in line)
    assert screen[summary_at].startswith("rowforge run: complete: 1,000 of 1,000")
    assert not [line for line in screen[summary_at:] if line.startswith("WARNING")]
    assert screen[-1] == "  metadata: out/metadata.json"
    # warnings are styled (yellow) on a terminal
    assert f"\x1b[33mWARNING rowforge: {messages[0]}" in raw


def _keep_output_on_interrupt(child: pexpect.spawn) -> None:
    """Set NOFLSH on the pty: by default the tty discards output not yet read when it sends
    SIGINT, which would drop a random piece of a frame in flight and make the replay depend on
    how fast this test reads, not on the display (a real terminal reads at once)."""
    attributes = termios.tcgetattr(child.child_fd)
    attributes[3] |= termios.NOFLSH
    termios.tcsetattr(child.child_fd, termios.TCSANOW, attributes)


def test_ctrl_c_prints_the_resume_command() -> None:
    """Ctrl-C (SIGINT from the tty) ends the view cleanly and the summary names the command
    that finishes the run."""
    child, output = _spawn("interrupt")
    _keep_output_on_interrupt(child)
    child.expect_exact(STEP_NAMES[-1])  # the live view is up
    child.expect_exact("judge-large")
    child.sendintr()
    child.expect_exact(RESUME_COMMAND)
    child.expect(pexpect.EOF)
    child.close()
    raw = output.getvalue()
    screen = [line for line in replay(raw, WIDTH) if line]
    assert child.exitstatus == 0 and not child.signalstatus, raw[-2000:]
    _no_view_left(screen)
    assert screen[-2:] == ["Interrupted. To finish the run:", f"  {RESUME_COMMAND}"]
    head = next(line for line in screen if "records written" in line)
    assert head.startswith("rowforge run: interrupted: ")
