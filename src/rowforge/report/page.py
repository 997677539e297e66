"""`write_report`: one self-contained HTML page describing a run, from its output directory.

The page must open anywhere, offline and years later, so it is a single file: plotly.js is
embedded inline once (with the first figure, `include_plotlyjs=True`; the others reference it),
nothing is fetched from a CDN, and every text taken from the run (error messages, drop reasons,
model aliases) is HTML-escaped. Sections, in order: the metadata summary, throughput, row-group
states, the task timeline (traced runs), models (when metadata.json has a "models" section),
retries and failures. A section without its data says what is missing instead of drawing an
empty chart.
"""

from __future__ import annotations

import html
import importlib
import math
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from rowforge.report import charts
from rowforge.report.reading import (
    EVENTS_FILE,
    OTHER_ERRORS,
    TRACES_FILE,
    EventSummary,
    TraceSummary,
    read_events,
    read_output_metadata,
    read_traces,
)
from rowforge.storage.location import is_uri, name_inside
from rowforge.storage.metadata import write_atomic
from rowforge.storage.workspace import workspace

REPORT_FILE = "report.html"
#: Timeline attempts drawn at most (a uniform sample beyond that; the page says so).
MAX_TIMELINE_ATTEMPTS = 20_000
#: Row groups drawn at most in the row-group states chart (every k-th beyond that).
MAX_ROW_GROUPS = 400
#: The key of the per-model latency histogram in metadata.json's "models" entries: a list of
#: [upper bound in ms, request count] pairs. "histogram" is accepted too, for older writers.
HISTOGRAM_KEY = "latency_histogram_ms"
_HISTOGRAM_KEYS = (HISTOGRAM_KEY, "histogram")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def write_report(
    output_dir: Path | str,
    destination: Path | None = None,
    *,
    max_timeline_attempts: int = MAX_TIMELINE_ATTEMPTS,
    max_row_groups: int = MAX_ROW_GROUPS,
) -> Path | str:
    """Write the run report of `output_dir` to `destination` (default
    `<output_dir>/report.html`) and return the path written.

    Reads metadata.json whole and streams events.jsonl and traces.jsonl once each (memory does
    not grow with the run; see `rowforge.report.reading`). Raises `ConfigError` naming the path
    when `output_dir` is not a rowforge output (no readable metadata.json) or when plotly (the
    `report` extra) is not installed. The file is replaced atomically, so a browser never opens
    half a page. A remote output (`s3://...`) is read from a local copy of its control files,
    and the report is uploaded into it unless `destination` says otherwise; its URI is returned.
    """
    if is_uri(output_dir):
        with workspace(output_dir, existing=True) as space:
            written = write_report(
                space.directory,
                destination,
                max_timeline_attempts=max_timeline_attempts,
                max_row_groups=max_row_groups,
            )
            if destination is not None:
                return written
            space.publish()
        return name_inside(output_dir, REPORT_FILE)
    output = Path(output_dir)
    metadata = read_output_metadata(output)
    go = charts.load_plotly()
    target = Path(destination) if destination is not None else output / REPORT_FILE
    events_path, traces_path = output / EVENTS_FILE, output / TRACES_FILE
    planned = metadata.get("total_num_batches")
    events = (
        read_events(
            events_path,
            planned if isinstance(planned, int) else 0,
            max_row_groups=max_row_groups,
        )
        if events_path.is_file()
        else None
    )
    traces = (
        read_traces(traces_path, max_attempts=max_timeline_attempts)
        if traces_path.is_file()
        else None
    )
    page = _Page(go)
    _summary(page, output, metadata, events)
    _throughput_and_row_groups(page, events)
    _timeline(page, traces, events)
    _models(page, metadata)
    _failures(page, metadata, traces)
    archived = sorted(p.name for p in output.glob("events-*.jsonl"))
    if archived:
        page.note(
            f"This build was resumed: the charts show its last run ({EVENTS_FILE}); the "
            f"logs of the earlier runs ({', '.join(archived)}) are not drawn."
        )
    title = f"rowforge run report: {metadata.get('dataset_name', output.name)}"
    document = page.render(title, output)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, [document.encode("utf-8")])
    return target


@attrs.define
class _Page:
    """The page being assembled: HTML fragments in order, and how many figures it holds."""

    go: Any
    parts: list[str] = attrs.field(factory=list)
    figures: int = 0
    notes: list[str] = attrs.field(factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str, css: str = "") -> None:
        style = f' class="{css}"' if css else ""
        self.parts.append(f"<p{style}>{html.escape(text)}</p>")

    def missing(self, text: str) -> None:
        """Say why a chart is not there, where it would be."""
        self.paragraph(text, "missing")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def table(self, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
            for row in rows
        )
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, name: str, figure: Any) -> None:
        """Add a figure; the first carries plotly.js inline, the others use it."""
        pio = _plotly_io()
        self.parts.append(
            pio.to_html(
                figure,
                full_html=False,
                include_plotlyjs=self.figures == 0,
                div_id=f"rowforge-{name}",
                config=_PLOT_CONFIG,
                default_height=f"{figure.layout.height or 420}px",
            )
        )
        self.figures += 1

    def render(self, title: str, output: Path) -> str:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        notes_html = f"<h2>Notes</h2><ul class='notes'>{notes}</ul>" if notes else ""
        created = datetime.now().astimezone().isoformat(timespec="seconds")
        return (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            f"<p class='where'>{html.escape(str(output))} · report written {created}</p>"
            + "\n".join(self.parts)
            + notes_html
            + "</body></html>\n"
        )


def _plotly_io() -> Any:
    return importlib.import_module("plotly.io")  # present: `load_plotly` already imported plotly


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; }
.where { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.missing { color: #8a6d3b; background: #fcf8e3; padding: 0.6em 1em; border-radius: 4px; }
.notes li { color: #555; }
"""


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()) or "—"
    return str(value)


def _seconds_between(start: Any, end: Any) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _drop_reasons(metadata: Mapping[str, Any]) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for group in metadata.get("row_groups") or []:
        for reason, count in ((group or {}).get("drop_reasons") or {}).items():
            if isinstance(count, int):
                reasons[str(reason)] += count
    return reasons


def _summary(
    page: _Page, output: Path, metadata: Mapping[str, Any], events: EventSummary | None
) -> None:
    page.heading("Summary")
    groups = metadata.get("row_groups") or []
    states = Counter(str((g or {}).get("state")) for g in groups)
    wall = _seconds_between(metadata.get("started_at"), metadata.get("finished_at"))
    run_time = None
    if events is not None and events.run_start is not None and events.run_end is not None:
        run_time = events.run_end - events.run_start
    elapsed = run_time if run_time is not None else wall
    actual = metadata.get("actual_num_records")
    rate = actual / elapsed if isinstance(actual, int) and elapsed else None
    reasons = _drop_reasons(metadata)
    rows: list[tuple[Any, ...]] = [
        ("dataset", metadata.get("dataset_name")),
        ("outcome", metadata.get("outcome")),
        ("early shutdown", "yes" if metadata.get("early_shutdown") else "no"),
        ("engine", metadata.get("engine")),
        ("target records", metadata.get("target_num_records")),
        ("actual records", actual),
        ("dropped records", metadata.get("dropped_records")),
        ("resized records", metadata.get("resized_records")),
        ("buffer size (records per row group)", metadata.get("buffer_size")),
        ("row groups planned", metadata.get("total_num_batches")),
        ("row groups written", metadata.get("num_completed_batches")),
        ("row groups by final state", dict(sorted(states.items())) or None),
        ("started at", metadata.get("started_at")),
        ("finished at", metadata.get("finished_at") or "not finished (running or killed)"),
        ("wall time (s)", wall),
        ("run time from the event log (s)", run_time),
        ("records written per second", rate),
        ("skipped cells", {k: v for k, v in (metadata.get("skipped_cells") or {}).items() if v}),
        ("drop reasons", "; ".join(f"{n} x {r}" for r, n in reasons.most_common(10)) or None),
        ("first error", metadata.get("first_error")),
        ("config hash", metadata.get("config_hash")),
    ]
    page.table(("", "value"), rows)


def _throughput_and_row_groups(page: _Page, events: EventSummary | None) -> None:
    page.heading("Throughput")
    if events is None:
        page.missing(
            f"No {EVENTS_FILE} in this output: throughput and row-group states cannot be drawn."
        )
        return
    page.figure("throughput", charts.throughput(page.go, events))
    page.heading("Row-group states")
    page.figure("row-groups", charts.row_group_states(page.go, events))
    drawn, seen = len(events.groups), events.group_count
    if events.group_stride > 1:
        page.paragraph(
            f"{drawn:,} of the {seen:,} row groups in the log are drawn (every "
            f"{events.group_stride}th row group index)."
        )
    if events.unreadable_lines:
        page.note(f"{events.unreadable_lines} unreadable line(s) of {EVENTS_FILE} were skipped.")


def _timeline(page: _Page, traces: TraceSummary | None, events: EventSummary | None) -> None:
    page.heading("Task timeline")
    if traces is None:
        page.missing("No traces.jsonl in this output: run with --trace to see the task timeline.")
        return
    if not traces.attempts:
        page.missing("traces.jsonl holds no task attempt.")
        return
    origin = events.run_start if events is not None else None
    page.figure("timeline", charts.timeline(page.go, traces, origin))
    drawn = len(traces.sample)
    if drawn < traces.attempts:
        page.paragraph(
            f"Showing a uniform random sample of {drawn:,} of the {traces.attempts:,} task "
            "attempts (the counts below include every attempt)."
        )
    else:
        page.paragraph(f"All {traces.attempts:,} task attempts are shown.")
    if traces.unreadable_lines:
        page.note(f"{traces.unreadable_lines} unreadable line(s) of {TRACES_FILE} were skipped.")


@attrs.frozen
class ModelStats:
    """One entry of metadata.json's "models" section, read defensively."""

    alias: str
    requests: int
    answered: int | None
    errors: dict[str, int]
    retries: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: dict[str, float]
    histogram: list[tuple[float, int]]


def parse_models(metadata: Mapping[str, Any]) -> list[ModelStats] | None:
    """The "models" section, or None when metadata.json has none (or it is not a mapping)."""
    section = metadata.get("models")
    if not isinstance(section, Mapping):
        return None
    models = []
    for alias, raw in section.items():
        entry = raw if isinstance(raw, Mapping) else {}
        histogram_raw = next((entry[k] for k in _HISTOGRAM_KEYS if k in entry), None)
        models.append(
            ModelStats(
                alias=str(alias),
                requests=_int(entry.get("requests")),
                answered=entry["answered"] if isinstance(entry.get("answered"), int) else None,
                errors=_counts(entry.get("errors")),
                retries=_counts(entry.get("retries")),
                prompt_tokens=_int(entry.get("prompt_tokens")),
                completion_tokens=_int(entry.get("completion_tokens")),
                latency_ms={
                    k: float(v)
                    for k, v in (entry.get("latency_ms") or {}).items()
                    if isinstance(v, int | float)
                },
                histogram=_histogram(histogram_raw),
            )
        )
    return models


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _int(v) for k, v in value.items()}


def _histogram(value: Any) -> list[tuple[float, int]]:
    """[[upper_ms, count], ...] as (upper, count); an upper bound of null, "inf" or +Infinity
    is the unbounded last bucket."""
    pairs = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, list | tuple) or len(item) != 2:
            continue
        upper, count = item
        try:
            bound = math.inf if upper is None else float(upper)
        except (TypeError, ValueError):
            continue
        pairs.append((bound, _int(count)))
    return pairs


def _models(page: _Page, metadata: Mapping[str, Any]) -> None:
    page.heading("Models")
    models = parse_models(metadata)
    if models is None:
        page.missing(
            'metadata.json has no "models" section: it was written by a rowforge version that '
            "did not record per-model requests, latency and tokens."
        )
        return
    if not models:
        page.missing("The run called no model.")
        return
    page.table(
        (
            "model",
            "requests",
            "answered",
            "errors",
            "retries",
            "prompt tokens",
            "completion tokens",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
        ),
        [
            (
                m.alias,
                m.requests,
                m.answered,
                m.errors,
                m.retries,
                m.prompt_tokens,
                m.completion_tokens,
                *(m.latency_ms.get(k) for k in ("p50", "p90", "p99", "max")),
            )
            for m in models
        ],
    )
    histograms = {m.alias: m.histogram for m in models if m.histogram}
    if histograms:
        page.figure("latency", charts.latency_histograms(page.go, histograms))
    else:
        page.missing("No latency histogram was recorded for any model.")
    tokens = {m.alias: (m.prompt_tokens, m.completion_tokens) for m in models}
    page.figure("tokens", charts.token_use(page.go, tokens))


def _failures(page: _Page, metadata: Mapping[str, Any], traces: TraceSummary | None) -> None:
    page.heading("Retries and failures")
    if traces is None:
        page.missing("Attempts by outcome need traces.jsonl: run with --trace to see them.")
    elif traces.attempts:
        page.figure("attempts", charts.attempts_by_outcome(page.go, traces))
        retried = sum(traces.retried_attempts.values())
        page.paragraph(
            f"{traces.attempts:,} task attempts, {retried:,} of them retries of an earlier attempt."
        )
        if traces.errors:
            page.table(
                ("outcome", "error", "attempts"),
                [(o, e, n) for (o, e), n in traces.errors.most_common(30)],
            )
            if any(e == OTHER_ERRORS for _, e in traces.errors):
                page.note("Error texts beyond the first 200 distinct ones are counted together.")
    models = parse_models(metadata) or []
    model_rows = [
        (m.alias, label, "error", n) for m in models for label, n in sorted(m.errors.items())
    ] + [(m.alias, cause, "retry", n) for m in models for cause, n in sorted(m.retries.items())]
    if model_rows:
        page.table(("model", "cause", "kind", "count"), model_rows)
    reasons = _drop_reasons(metadata)
    if reasons:
        page.figure("drop-reasons", charts.drop_reasons(page.go, reasons))
    else:
        page.paragraph("No record was dropped.")
