"""A run's display in a real terminal, for test_pty.py (run: python -m tests.display.pty_demo).

`exit MESSAGES_FILE`: feed ProgressDisplay synthetic snapshots for about a second while another
thread logs warnings on "rowforge" (and print()s one line), one of them emitted exactly while the
live view stops; then print the summary. The stop is widened on purpose: `Console.pop_render_hook`
(called inside `Live.stop`, after its final draw is buffered and before the cursor-up/erase is
flushed) signals the logging thread and then waits 0.2 s, so without the display's lock that record
is written in the middle of the stop and leaves a ghost bar line. Every message emitted is written,
one per line, to MESSAGES_FILE.

`interrupt`: feed snapshots until Ctrl-C, then print the summary of an interrupted run with the
resume command `RESUME_COMMAND`. The terminal is made slow on purpose: each flush after a frame
is written takes 0.15 s, so a Ctrl-C sent as soon as a frame shows arrives while rich still
holds the frame in its buffer (the moment `_sigint_deferred` exists for).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from rowforge.display import ProgressDisplay
from tests.display.factory import snapshot

RESUME_COMMAND = ".venv/bin/rowforge resume /tmp/rowforge-demo/out"
STRAY_PRINT = "a print() from a worker thread, on stdout"
TARGET = 1000
log = logging.getLogger("rowforge")


def _widen_stop(stopping: threading.Event) -> None:
    original = Console.pop_render_hook

    def pop_render_hook(self: Console) -> None:
        stopping.set()
        time.sleep(0.2)
        original(self)

    Console.pop_render_hook = pop_render_hook  # type: ignore[method-assign]


def _logger(stop: threading.Event, stopping: threading.Event, emitted: list[str]) -> None:
    def warn(message: str) -> None:
        emitted.append(message)
        log.warning(message)

    count = 0
    while not stop.is_set():
        if stopping.is_set():
            warn("slow request: model gpt-small, column answer, emitted while the view stops")
            return
        if count < 12:
            warn(f"slow request {count:02d}: model judge-large, column question, 31.0 s")
            count += 1
            if count == 6:
                print(STRAY_PRINT, flush=True)  # stdout is the terminal too
        stopping.wait(0.07)


def run_exit(messages_file: Path) -> None:
    stop, stopping = threading.Event(), threading.Event()
    emitted: list[str] = []
    thread = threading.Thread(target=_logger, args=(stop, stopping, emitted))
    with ProgressDisplay(label="rowforge run") as display:
        thread.start()
        started = time.monotonic()
        settled = 0
        while (elapsed := time.monotonic() - started) < 1.0:
            settled = min(TARGET - 1, int(elapsed * 900))
            display.update(snapshot(settled, TARGET, elapsed_s=elapsed + 0.01))
            time.sleep(0.01)
        display.update(snapshot(TARGET, TARGET, elapsed_s=1.0, final=True))
        _widen_stop(stopping)
    stop.set()
    thread.join()
    display.summary("complete", parquet_dir="out/parquet-files", metadata_path="out/metadata.json")
    messages_file.write_text("".join(message + "\n" for message in emitted))


class _SlowTerminal:
    """stderr, with a slow flush (a terminal draining its output slowly)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, text: str) -> int:
        return int(self._file.write(text))

    def flush(self) -> None:
        self._file.flush()
        time.sleep(0.15)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def run_interrupt() -> None:
    display = ProgressDisplay(Console(file=_SlowTerminal(sys.stderr)), label="rowforge run")
    latest: Any = None
    try:
        with display:
            started = time.monotonic()
            while True:
                elapsed = time.monotonic() - started
                latest = snapshot(min(TARGET - 1, int(elapsed * 50)), TARGET, elapsed_s=elapsed)
                display.update(latest)
                time.sleep(0.01)
    except KeyboardInterrupt:
        display.summary("interrupted", resume_command=RESUME_COMMAND)


if __name__ == "__main__":
    if sys.argv[1] == "exit":
        run_exit(Path(sys.argv[2]))
    else:
        run_interrupt()
