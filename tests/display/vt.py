"""A tiny terminal emulator: enough of VT100 to replay what rich writes and see the final screen.

pyte is not a dependency, and a check on the raw byte stream cannot tell a bar line that was erased
from one that stayed. This replays the stream onto a grid: printable characters (with deferred line
wrap, as xterm does), CR, LF, BS, cursor up/down/forward/back/column, erase in line and erase
below. LF is taken as CR LF, as a tty's ONLCR (on by default) turns it, so a Console writing to a
StringIO replays like one writing to a pty. Colours (SGR), cursor visibility and other private
modes are ignored; any other control sequence fails the replay, so a test never passes on a stream
it misread."""

from __future__ import annotations

import re

_CSI = re.compile(r"\x1b\[([?0-9;]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


class UnsupportedSequence(ValueError):
    """A control sequence this emulator does not implement."""


def replay(stream: str, width: int) -> list[str]:
    """Every line the stream leaves on screen or in scrollback (right-stripped), top to bottom.

    The cursor moves within the whole history rather than within the last `height` lines; a
    live region taller than the screen would differ, the displays under test are smaller.
    """
    lines: list[list[str]] = [[]]
    row = col = 0
    pending_wrap = False
    index = 0
    while index < len(stream):
        char = stream[index]
        if char == "\x1b":
            osc = _OSC.match(stream, index)
            if osc:
                index = osc.end()
                continue
            csi = _CSI.match(stream, index)
            if not csi:
                raise UnsupportedSequence(repr(stream[index : index + 8]))
            index = csi.end()
            params, final = csi.groups()
            if params.startswith("?") or final == "m":
                continue  # private modes (cursor visibility), colours
            numbers = [int(p) if p else 0 for p in params.split(";")] if params else []
            n = numbers[0] if numbers else 0
            pending_wrap = False
            if final == "A":
                row = max(0, row - max(n, 1))
            elif final == "B":
                row += max(n, 1)
            elif final == "C":
                col = min(width - 1, col + max(n, 1))
            elif final == "D":
                col = max(0, col - max(n, 1))
            elif final == "G":
                col = min(width - 1, max(n, 1) - 1)
            elif final == "K":
                while len(lines) <= row:
                    lines.append([])
                line = lines[row]
                if n == 0:
                    del line[col:]
                elif n == 1:
                    line[: col + 1] = [" "] * min(col + 1, len(line))
                elif n == 2:
                    line.clear()
            elif final == "J" and n == 0:
                while len(lines) <= row:
                    lines.append([])
                del lines[row + 1 :]
                del lines[row][col:]
            else:
                raise UnsupportedSequence(repr(csi.group()))
            continue
        index += 1
        if char == "\r":
            col, pending_wrap = 0, False
        elif char == "\n":  # as a tty with ONLCR (the default) shows it: CR LF
            row, col, pending_wrap = row + 1, 0, False
        elif char == "\b":
            col, pending_wrap = max(0, col - 1), False
        elif char in "\x07\x00":
            continue
        elif char < " ":
            raise UnsupportedSequence(repr(char))
        else:
            if pending_wrap:
                row, col, pending_wrap = row + 1, 0, False
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            if len(line) < col:
                line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = char
            else:
                line.append(char)
            if col == width - 1:
                pending_wrap = True
            else:
                col += 1
        while len(lines) <= row:
            lines.append([])
    return ["".join(line).rstrip() for line in lines]
