"""The run report (`rowforge.report.write_report`): one offline HTML page whose charts draw.

The outputs are real builds. `modelled`: the built-in mock provider, traced, with a model that
answers some requests with a 500 (retried) and one that refuses some (rows dropped), so every
section of the page has real data, the "models" section of metadata.json included. `traced`:
plain Python steps (exact, deterministic counts) with drops, failed attempts and retries, and a
"models" section of the documented shape written in by the test so that the model table's
numbers are known. `untraced`: nothing fails, no traces, no "models" section.

The rendering tests open the page in headless Chromium and require every chart container to
hold plotly's drawn `svg.main-svg`: a page whose plotly.js is missing, broken or fetched from a
CDN would show empty containers (see tests/report/browser.py).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.api import build
from rowforge.build import build_steps
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError, RetryableError, RowforgeError
from rowforge.report import REPORT_FILE, write_report
from rowforge.report.charts import _lanes
from rowforge.report.reading import Attempt, read_events, read_traces
from rowforge.scheduler import RunConfig, Step
from tests.report.browser import drawn_charts, rendered_dom, screenshot

FAST = {"retry_backoff_s": 0.0, "stall_warning_s": 60.0, "early_shutdown_window": 1000}
LEAD_SCREENSHOT = Path("/tmp/rowforge-report.png")
HOSTILE = "<script>alert('first error')</script>"


def ids(frame: pd.DataFrame) -> list[int]:
    return list(frame.index)


def refuse_sevens(row: dict[str, int]) -> int:
    if row["id"] % 7 == 0:
        raise RowforgeError("no sevens")  # not retryable: the row is dropped
    return row["id"]


_FAILED_ONCE: set[int] = set()


def flaky_fives(row: dict[str, int]) -> int:
    """Fails the first attempt of every fifth record with a retryable error."""
    if row["id"] % 5 == 0 and row["id"] not in _FAILED_ONCE:
        _FAILED_ONCE.add(row["id"])
        raise RetryableError("HTTP 503 flaky", status=503)
    return 2 * row["id"]


def double(row: dict[str, int]) -> int:
    return 2 * row["id"]


MOCK_CONFIG = {
    "seed": 3,
    "models": [
        {
            "alias": "writer",
            "provider": "mock",
            "mock": {"latency_ms": [1, 30], "error_rate": 0.1},
        },
        {"alias": "judge", "provider": "mock", "mock": {"latency_ms": [1, 5], "refusal_rate": 0.2}},
    ],
    "columns": [
        {"type": "category", "name": "topic", "values": ["tea", "rain", "maps"]},
        {"type": "llm_text", "name": "text", "model": "writer", "prompt": "About {{ topic }}."},
        {"type": "llm_text", "name": "verdict", "model": "judge", "prompt": "Judge {{ text }}."},
    ],
}

MODELS = {
    "writer": {
        "requests": 120,
        "answered": 115,
        "cancelled": 0,
        "failed_s": 0.4,
        "errors": {"503": 4, "timeout": 1},
        "retries": {"rate_limit": 2, "transient": 5},
        "prompt_tokens": 5400,
        "completion_tokens": 2100,
        "latency_ms": {"p50": 41.0, "p90": 88.0, "p99": 140.0, "max": 171.0},
        "latency_histogram_ms": [[2.786, 10], [11.467, 60], [23.84, 40], [97.5, 5], [None, 0]],
    },
    "judge": {
        "requests": 30,
        "answered": 30,
        "cancelled": 0,
        "failed_s": 0.0,
        "errors": {},
        "retries": {"rate_limit": 0, "transient": 0},
        "prompt_tokens": 900,
        "completion_tokens": 300,
        "latency_ms": {"p50": 12.0, "p90": 20.0, "p99": 25.0, "max": 26.0},
        "latency_histogram_ms": [[4.116, 29], [5.003, 1]],
    },
}


def edit_metadata(output: Path, **changes: Any) -> None:
    path = output / "metadata.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document.update(changes)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


@pytest.fixture
def modelled(tmp_path: Path) -> Path:
    """A traced run on the mock provider: 60 records in 3 row groups, two models; the writer's
    500s are retried, the judge's refusals drop rows."""
    output = tmp_path / "modelled"
    config = RunConfig(buffer_size=20, trace=True, **FAST)
    build(DatasetConfig.from_dict(MOCK_CONFIG), 60, output, config)
    return output


@pytest.fixture
def traced(tmp_path: Path) -> Path:
    """A traced, partial run: 40 records in 4 row groups, drops, failures and retries."""
    _FAILED_ONCE.clear()
    output = tmp_path / "traced"
    steps = [
        Step("id", ids, kind="batch"),
        Step("picky", refuse_sevens, depends_on=["id"]),
        Step("flaky", flaky_fives, depends_on=["picky"]),
    ]
    build_steps(steps, 40, output, config=RunConfig(buffer_size=10, trace=True, **FAST))
    edit_metadata(output, models=MODELS, first_error=HOSTILE)
    return output


@pytest.fixture
def untraced(tmp_path: Path) -> Path:
    """An untraced run where everything succeeds, without a "models" section."""
    output = tmp_path / "untraced"
    steps = [Step("id", ids, kind="batch"), Step("double", double, depends_on=["id"])]
    build_steps(steps, 30, output, config=RunConfig(buffer_size=10, **FAST))
    document = json.loads((output / "metadata.json").read_text(encoding="utf-8"))
    document.pop("models", None)
    (output / "metadata.json").write_text(json.dumps(document), encoding="utf-8")
    return output


def external_references(page: str) -> list[str]:
    """`src`/`href` attributes that point off the page (a CDN script, a stylesheet...)."""
    return re.findall(
        r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?[^"'>]*""", page
    )


def page_text(page: str) -> str:
    """The visible text outside scripts, roughly: enough to look for a value in a table."""
    without_scripts = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", without_scripts))


def test_a_traced_run_report_is_one_offline_file_whose_every_chart_draws(
    modelled: Path, tmp_path: Path
) -> None:
    """All seven charts draw in a browser from one file that references nothing outside it."""
    metadata = json.loads((modelled / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["dropped_records"] > 0 and set(metadata["models"]) == {"writer", "judge"}
    assert metadata["models"]["writer"]["retries"]["transient"] > 0
    before = {p.name for p in modelled.iterdir()}
    report = write_report(modelled)
    assert report == modelled / REPORT_FILE
    assert {p.name for p in modelled.iterdir()} == before | {REPORT_FILE}  # one file, no other
    page = report.read_text(encoding="utf-8")
    assert external_references(page) == []
    assert page.count("<script") == page.count("</script>")
    containers = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)
    expected = {
        "rowforge-throughput",
        "rowforge-row-groups",
        "rowforge-timeline",
        "rowforge-latency",
        "rowforge-tokens",
        "rowforge-attempts",
        "rowforge-drop-reasons",
    }
    assert set(containers) == expected and len(containers) == len(expected)
    assert page.count("Plotly.newPlot") == len(expected)
    text = " ".join(page_text(page).split())
    for alias, model in metadata["models"].items():  # the models table, from the real section
        assert f"{alias} {model['requests']:,} {model['answered']:,} " in text

    dom = rendered_dom(report, tmp_path / "chromium")
    assert drawn_charts(dom) == dict.fromkeys(expected, True)

    screenshot(report, tmp_path / "chromium", tmp_path / "report.png")
    shutil.copyfile(tmp_path / "report.png", LEAD_SCREENSHOT)


def test_the_page_states_the_summary_models_and_failures_and_escapes_run_text(
    traced: Path,
) -> None:
    """The tables carry metadata's numbers and the failures' causes; text from the run
    (here a first_error holding a script tag) is shown, never executed."""
    page = write_report(traced).read_text(encoding="utf-8")
    text = " ".join(page_text(page).split())
    metadata = json.loads((traced / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["outcome"] == "partial" and metadata["dropped_records"] == 6  # 0,7,...,35
    for label, value in [
        ("outcome", "partial"),
        ("engine", metadata["engine"]),
        ("target records", "40"),
        ("actual records", "34"),
        ("dropped records", "6"),
        ("row groups planned", "4"),
        ("row groups by final state", "drained: 4"),
        ("drop reasons", "6 x step 'picky' failed: RowforgeError: no sevens"),
    ]:
        assert f"{label} {value}" in text, label
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;first error&#x27;)&lt;/script&gt;" in page
    writer = "writer 120 115 503: 4, timeout: 1 rate_limit: 2, transient: 5 5,400 2,100 41.000"
    assert writer in text
    assert "failed RowforgeError: no sevens 6" in text
    # records 5, 10, ..., 30 fail once (0 and 35 are sevens: dropped before this step)
    assert "deferred RetryableError: HTTP 503 flaky 6" in text
    assert "task attempts, 6 of them retries" in text
    assert "All " in text and "task attempts are shown" in text
    assert "run with --trace" not in text


def test_an_untraced_run_without_models_says_what_is_missing_instead_of_drawing(
    untraced: Path, tmp_path: Path
) -> None:
    """No traces: the timeline says to run with --trace; no models section: a note. Only the
    two charts the event log feeds are drawn, and the page goes where it is told."""
    destination = tmp_path / "elsewhere" / "run.html"
    report = write_report(untraced, destination)
    assert report == destination and not (untraced / REPORT_FILE).exists()
    page = report.read_text(encoding="utf-8")
    text = " ".join(page_text(page).split())
    assert "run with --trace to see the task timeline" in text
    assert 'metadata.json has no "models" section' in text
    assert "No record was dropped." in text
    assert external_references(page) == []
    dom = rendered_dom(report, tmp_path / "chromium")
    assert drawn_charts(dom) == {"rowforge-throughput": True, "rowforge-row-groups": True}


@pytest.mark.parametrize("histogram_key", ["latency_histogram_ms", "histogram"])
def test_the_latency_histogram_is_read_under_either_key(untraced: Path, histogram_key: str) -> None:
    models = {"writer": {**MODELS["writer"]}}
    histogram = [*models["writer"].pop("latency_histogram_ms")[:-1], [None, 3]]
    models["writer"][histogram_key] = histogram
    edit_metadata(untraced, models=models)
    page = write_report(untraced).read_text(encoding="utf-8")
    assert 'id="rowforge-latency"' in page and 'id="rowforge-tokens"' in page
    (bars,) = _figure_data(page, "rowforge-latency")
    shown = {label: count for label, count in zip(bars["x"], bars["y"], strict=True) if count}
    # re-binned to 10 bins a decade; the null upper bound is the unbounded last bucket
    assert shown == {"≤ 3 ms": 10, "≤ 12.5 ms": 60, "≤ 25 ms": 40, "≤ 100 ms": 5, "> 10000 s": 3}
    assert bars["x"][:3] == ["≤ 3 ms", "≤ 4 ms", "≤ 5 ms"]  # empty bins in between are shown


def test_the_timeline_draws_a_capped_sample_and_says_so(traced: Path) -> None:
    """A long run's timeline is a uniform sample of at most `max_timeline_attempts`
    attempts, while the counts still cover every attempt."""
    everything = read_traces(traced / "traces.jsonl")
    assert everything.attempts == len(everything.sample) > 50
    sample = read_traces(traced / "traces.jsonl", max_attempts=25)
    assert len(sample.sample) == 25 and sample.attempts == everything.attempts
    assert sample.by_step_outcome == everything.by_step_outcome
    assert len({(a.task, a.attempt) for a in sample.sample}) == 25  # distinct attempts
    page = write_report(traced, max_timeline_attempts=25).read_text(encoding="utf-8")
    text = " ".join(page_text(page).split())
    assert f"sample of 25 of the {everything.attempts} task attempts" in text
    timeline = _figure_data(page, "rowforge-timeline")
    segments = sum(
        trace["x"].count(None)
        for trace in timeline
        if trace.get("mode") == "lines" and trace.get("visible") != "legendonly"
    )
    assert segments == 25


def _figure_data(page: str, div_id: str) -> list[dict[str, Any]]:
    """The traces plotly is given for one figure (the JSON after `Plotly.newPlot("id", `)."""
    start = page.index(f'Plotly.newPlot(                        "{div_id}",')
    start = page.index("[", start)
    data, _ = json.JSONDecoder().raw_decode(page[start:])
    return list(data)


def test_the_event_log_is_reduced_to_a_bounded_summary(tmp_path: Path) -> None:
    """20,000 row groups: the throughput curve keeps at most `max_points` points (the last
    one exact), the states chart every k-th row group, and a torn last line is skipped."""
    log = tmp_path / "events.jsonl"
    with log.open("w", encoding="utf-8") as lines:
        start = json.loads(_event("run", "run", "running", 100.0))
        lines.write(json.dumps(start, separators=(",", ":")) + "\n")  # compact JSON is read too
        for group in range(20_000):
            when = 100.0 + group / 1000
            lines.write(_event("row_group", group, "seeding", when) + "\n")
            lines.write(_event("cell", [group, 0, "x"], "running", when) + "\n")
            lines.write(_event("row_group", group, "drained", when + 0.0005, rows=3) + "\n")
        lines.write('{"machine": "row_group", "id": 5, "dest": "dra')  # a crash mid-line
    summary = read_events(log, 20_000, max_points=500, max_row_groups=400)
    assert summary.records_written == 60_000
    assert len(summary.written) <= 501 and summary.written[-1] == (100.0 + 19.9995, 60_000)
    assert [total for _, total in summary.written] == sorted(total for _, total in summary.written)
    assert summary.group_stride == 50 and len(summary.groups) == 400
    assert summary.groups[50].states == [(100.05, "seeding"), (100.0505, "drained")]
    assert summary.group_count == 20_000 and summary.terminal == {"drained": 20_000}
    assert summary.unreadable_lines == 1
    assert summary.run_state == "running"  # from the compact line
    assert summary.run_start == 100.0 and summary.run_end is None  # never ended: killed


def _event(machine: str, ident: Any, dest: str, when: float, **details: Any) -> str:
    return json.dumps(
        {
            "machine": machine,
            "id": ident,
            "trigger": "t",
            "source": "s",
            "dest": dest,
            "time": when,
            "details": details,
        },
        sort_keys=True,
    )


def test_a_directory_that_is_not_a_rowforge_output_is_refused_by_name(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello", encoding="utf-8")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "metadata.json").write_text('{"schema_version": 99}', encoding="utf-8")
    torn = tmp_path / "torn"
    torn.mkdir()
    (torn / "metadata.json").write_text('{"schema_ver', encoding="utf-8")
    for directory, why in [
        (empty, "is not a rowforge output: it has no metadata.json"),
        (tmp_path / "absent", "does not exist"),
        (a_file, "is not a directory"),
        (foreign, "schema_version 99"),
        (torn, "unreadable metadata"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(why)) as caught:
            write_report(directory)
        assert str(directory) in str(caught.value)
        assert not (directory / REPORT_FILE).exists()


def test_timeline_lanes_never_overlap_and_number_the_peak_concurrency() -> None:
    """Inside a step's band, attempts that share a lane never overlap, and the band has as
    many lanes as attempts ever ran at once, so its height shows the step's concurrency."""
    spans = [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (5.0, 6.0), (5.5, 5.7), (5.8, 9.0)]
    attempts = [
        Attempt(f"s[0:record {i}]", "s", 0, 0, start, start, end, "succeeded", None)
        for i, (start, end) in enumerate(spans)
    ]
    lanes, count = _lanes(attempts)
    assert count == 2  # never 3 at once: one ending at 2.0 frees its lane for one starting then
    for i, j in itertools.combinations(range(len(spans)), 2):
        if lanes[i] == lanes[j]:
            (a, b), (c, d) = spans[i], spans[j]
            assert b <= c or d <= a, (spans[i], spans[j])
