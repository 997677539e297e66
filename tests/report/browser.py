"""Headless Chromium for the report tests: the DOM after the page's scripts ran, a screenshot.

A report is only useful if its charts draw in a browser, which no HTML parser can tell: plotly
builds each chart in JavaScript. So the tests open the page in Chromium (`make browser` installs
it) with networking features off, and look for what plotly leaves in a drawn chart's container:
an `<svg class="main-svg">`. A missing Chromium fails the test with what to run, rather than
skipping it: a skipped rendering test would let a blank page pass.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    """The Chromium executable, or a failed test saying how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.fail("Chromium is not installed; the report tests need it: run `make browser`")
    return found


def _run(page: Path, profile: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *options, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def rendered_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (virtual time lets plotly finish drawing)."""
    result = _run(page, profile, "--dump-dom", "--virtual-time-budget=10000")
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout


def screenshot(page: Path, profile: Path, destination: Path) -> None:
    """A PNG of the page's first 1400x4000 pixels."""
    destination.unlink(missing_ok=True)
    result = _run(
        page,
        profile,
        f"--screenshot={destination}",
        "--window-size=1400,4000",
        "--virtual-time-budget=10000",
    )
    assert result.returncode == 0 and destination.stat().st_size > 10_000, result.stderr[-2000:]


class _Charts(HTMLParser):
    """Per plotly chart container (`div.plotly-graph-div`, by id): whether a `svg.main-svg`
    was drawn inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn: dict[str, bool] = {}
        self._open: list[str | None] = []  # per open div: the chart id it is, or None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "div":
            chart = values.get("id") if "plotly-graph-div" in classes else None
            if chart is not None:
                self.drawn.setdefault(chart, False)
            self._open.append(chart)
        elif tag == "svg" and "main-svg" in classes:
            for chart in reversed(self._open):
                if chart is not None:
                    self.drawn[chart] = True
                    break

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._open:
            self._open.pop()


def drawn_charts(dom: str) -> dict[str, bool]:
    """{chart container id: whether plotly drew an svg.main-svg inside it}."""
    parser = _Charts()
    parser.feed(dom)
    return parser.drawn
