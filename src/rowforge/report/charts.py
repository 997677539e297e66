"""The report's plotly figures, each built from one summary of `reading` or metadata.json.

plotly is the `report` extra, imported when a report is written (`load_plotly`), so rowforge
without it still imports. Figures use SVG traces only (no WebGL): the page must render in any
browser, headless ones without a GPU included, and the timeline draws at most the sampled
attempts, so SVG stays fast. Times on the x axes are seconds since the run started (the run's
first event; event and trace times come from the same monotonic clock).
"""

from __future__ import annotations

import heapq
import importlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rowforge.errors import ConfigError
from rowforge.report.reading import ROW_GROUP_TERMINAL, Attempt, EventSummary, TraceSummary

#: One colour per task outcome (worker states) and per row-group state, the same everywhere.
OUTCOME_COLOURS = {
    "succeeded": "#2ca02c",
    "deferred": "#ff7f0e",
    "failed": "#d62728",
    "cancelled": "#7f7f7f",
}
STATE_COLOURS = {
    "pending": "#d9d9d9",
    "seeding": "#9ecae1",
    "running": "#3182bd",
    "checkpointing": "#9467bd",
    "drained": "#2ca02c",
    "dropped": "#ff7f0e",
    "failed": "#d62728",
    "cancelled": "#7f7f7f",
}
OPEN_STATES = ("pending", "seeding", "running", "checkpointing")
LABEL_LIMIT = 90


def load_plotly() -> Any:
    """plotly.graph_objects, or `ConfigError` saying how to install the `report` extra."""
    try:
        return importlib.import_module("plotly.graph_objects")
    except ImportError:
        raise ConfigError(
            "the run report draws its charts with plotly: pip install 'rowforge[report]'"
        ) from None


def _layout(go: Any, title: str, *, height: int = 420, **extra: Any) -> Any:
    return go.Layout(
        title={"text": title},
        height=height,
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
        template="plotly_white",
        **extra,
    )


def shorten(text: str, limit: int = LABEL_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def throughput(go: Any, events: EventSummary) -> Any:
    """Records written against time: one point per written (drained) row group."""
    origin = events.run_start or 0.0
    xs = [0.0] + [when - origin for when, _ in events.written]
    ys = [0] + [total for _, total in events.written]
    figure = go.Figure(
        layout=_layout(
            go,
            "Records written over time",
            xaxis={"title": {"text": "seconds since the run started"}},
            yaxis={"title": {"text": "records written"}, "rangemode": "tozero"},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            line={"shape": "hv"},
            name="records written",
            hovertemplate="%{x:.3f} s: %{y} records<extra></extra>",
        )
    )
    return figure


def row_group_states(go: Any, events: EventSummary) -> Any:
    """A Gantt-like chart: each sampled row group's states from run start to its end."""
    origin = events.run_start or 0.0
    end = events.run_end if events.run_end is not None else events.last_time or origin
    spans: dict[str, tuple[list[float], list[float], list[str]]] = {
        state: ([], [], []) for state in OPEN_STATES
    }
    ends: dict[str, tuple[list[float], list[str]]] = {s: ([], []) for s in ROW_GROUP_TERMINAL}
    groups = sorted(events.groups.values(), key=lambda g: g.ident)
    labels = [f"row group {group.ident}" for group in groups]
    for group, label in zip(groups, labels, strict=True):
        state, since = "pending", origin
        for when, dest in group.states:
            if state in spans:
                base, width, names = spans[state]
                base.append(since - origin)
                width.append(max(when - since, 0.0))
                names.append(label)
            state, since = dest, when
        if state in ends:
            ends[state][0].append(since - origin)
            ends[state][1].append(label)
        elif state in spans:  # still open when the log ends
            base, width, names = spans[state]
            base.append(since - origin)
            width.append(max(end - since, 0.0))
            names.append(label)
    height = max(320, min(1400, 120 + 16 * len(groups)))
    figure = go.Figure(
        layout=_layout(
            go,
            "Row-group states over time",
            height=height,
            barmode="overlay",
            xaxis={"title": {"text": "seconds since the run started"}},
            yaxis={"categoryorder": "array", "categoryarray": labels[::-1], "type": "category"},
            legend={"orientation": "h", "y": -0.12 if height < 600 else -0.05},
        )
    )
    for state, (base, width, names) in spans.items():
        if names:
            figure.add_trace(
                go.Bar(
                    y=names,
                    x=width,
                    base=base,
                    orientation="h",
                    name=state,
                    marker={"color": STATE_COLOURS[state]},
                    hovertemplate=f"%{{y}}: {state} from %{{base:.3f}} s for %{{x:.3f}} s"
                    "<extra></extra>",
                )
            )
    for state, (xs, names) in ends.items():
        if names:
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=names,
                    mode="markers",
                    name=f"→ {state}",
                    marker={"color": STATE_COLOURS[state], "symbol": "diamond", "size": 9},
                    hovertemplate=f"%{{y}}: {state} at %{{x:.3f}} s<extra></extra>",
                )
            )
    return figure


def _lanes(attempts: Sequence[Attempt]) -> tuple[list[int], int]:
    """A lane per attempt so that attempts of one step sharing a lane never overlap (greedy
    interval colouring by start time); the lane count is the step's peak concurrency."""
    order = sorted(range(len(attempts)), key=lambda i: attempts[i].started)
    lanes = [0] * len(attempts)
    busy: list[tuple[float, int]] = []  # (finished, lane), a heap
    free: list[int] = []
    count = 0
    for i in order:
        while busy and busy[0][0] <= attempts[i].started:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, count = count, count + 1
        lanes[i] = lane
        heapq.heappush(busy, (attempts[i].finished, lane))
    return lanes, count


def timeline(go: Any, traces: TraceSummary, origin: float | None) -> Any:
    """Each sampled attempt as a segment from start to finish, one band per step; inside a band
    attempts stack in lanes, so the band's height shows the step's concurrency. Attempts that
    never started (cancelled while queued) have no segment."""
    start = origin if origin is not None else traces.first_time or 0.0
    ran = [a for a in traces.sample if a.started > 0 and a.finished > 0]
    steps = [s for s in traces.steps if any(a.step == s for a in ran)]
    by_step = {step: [a for a in ran if a.step == step] for step in steps}
    segments: dict[str, tuple[list[float | None], list[float | None], list[str | None]]] = {}
    waits: tuple[list[float | None], list[float | None]] = ([], [])
    for band, step in enumerate(steps):
        attempts = by_step[step]
        lanes, count = _lanes(attempts)
        for attempt, lane in zip(attempts, lanes, strict=True):
            y = band - 0.4 + 0.8 * (lane + 0.5) / max(count, 1)
            xs, ys, texts = segments.setdefault(attempt.outcome, ([], [], []))
            label = f"{attempt.task} attempt {attempt.attempt}: {attempt.outcome}"
            if attempt.error:
                label += f" ({shorten(attempt.error, 120)})"
            xs.extend((attempt.started - start, attempt.finished - start, None))
            ys.extend((y, y, None))
            texts.extend((label, label, None))
            if attempt.created > 0 and attempt.started > attempt.created:
                waits[0].extend((attempt.created - start, attempt.started - start, None))
                waits[1].extend((y, y, None))
    height = max(320, 140 + 110 * len(steps))
    figure = go.Figure(
        layout=_layout(
            go,
            "Task attempts per step (start to finish)",
            height=height,
            xaxis={"title": {"text": "seconds since the run started"}},
            yaxis={
                "tickvals": list(range(len(steps))),
                "ticktext": steps,
                "range": [len(steps) - 0.5, -0.5],
                "zeroline": False,
                "showgrid": False,
            },
            hovermode="closest",
        )
    )
    if waits[0]:
        figure.add_trace(
            go.Scatter(
                x=waits[0],
                y=waits[1],
                mode="lines",
                name="queued (created to started)",
                line={"color": "#c7c7c7", "width": 1},
                visible="legendonly",
                hoverinfo="skip",
            )
        )
    for outcome in sorted(segments, key=_outcome_order):
        xs, ys, texts = segments[outcome]
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                text=texts,
                mode="lines",
                name=outcome,
                line={"color": OUTCOME_COLOURS.get(outcome, "#17becf"), "width": 3},
                hovertemplate="%{text}<br>%{x:.3f} s<extra></extra>",
            )
        )
    return figure


def _outcome_order(outcome: str) -> int:
    order = list(OUTCOME_COLOURS)
    return order.index(outcome) if outcome in order else len(order)


def attempts_by_outcome(go: Any, traces: TraceSummary) -> Any:
    """Stacked attempts per step by outcome: deferred ones were retried, failed ones gave up."""
    figure = go.Figure(
        layout=_layout(
            go,
            "Task attempts by step and outcome (deferred = retried)",
            barmode="stack",
            yaxis={"title": {"text": "attempts"}},
        )
    )
    outcomes = sorted({o for _, o in traces.by_step_outcome}, key=_outcome_order)
    for outcome in outcomes:
        figure.add_trace(
            go.Bar(
                x=traces.steps,
                y=[traces.by_step_outcome.get((step, outcome), 0) for step in traces.steps],
                name=outcome,
                marker={"color": OUTCOME_COLOURS.get(outcome, "#17becf")},
            )
        )
    return figure


def drop_reasons(go: Any, reasons: Counter[str]) -> Any:
    """Dropped records by reason (metadata.json's row_groups[*].drop_reasons, summed)."""
    top = reasons.most_common(20)[::-1]
    figure = go.Figure(
        layout=_layout(
            go,
            "Dropped records by reason",
            height=max(300, 120 + 36 * len(top)),
            xaxis={"title": {"text": "records"}},
            yaxis={"automargin": True},
        )
    )
    figure.add_trace(
        go.Bar(
            x=[count for _, count in top],
            y=[shorten(reason, 70) for reason, _ in top],
            customdata=[reason for reason, _ in top],
            orientation="h",
            marker={"color": OUTCOME_COLOURS["failed"]},
            hovertemplate="%{customdata}: %{x}<extra></extra>",
            name="dropped records",
        )
    )
    return figure


def latency_histograms(go: Any, histograms: Mapping[str, Sequence[tuple[float, int]]]) -> Any:
    """Requests per latency bucket, per model (metadata.json's models[*].latency_histogram_ms:
    [upper bound in ms, count] pairs; an unbounded last bucket has upper bound +inf)."""
    bounds = sorted({upper for pairs in histograms.values() for upper, _ in pairs})
    labels = {upper: _bucket_label(upper) for upper in bounds}
    figure = go.Figure(
        layout=_layout(
            go,
            "Request latency per model",
            barmode="group",
            xaxis={
                "title": {"text": "latency (upper bound of the bucket)"},
                "type": "category",
                "categoryorder": "array",
                "categoryarray": [labels[b] for b in bounds],
            },
            yaxis={"title": {"text": "requests"}},
        )
    )
    for alias, pairs in histograms.items():
        figure.add_trace(
            go.Bar(
                x=[labels[upper] for upper, _ in pairs],
                y=[count for _, count in pairs],
                name=alias,
            )
        )
    return figure


def _bucket_label(upper: float) -> str:
    return "> last bound" if math.isinf(upper) else f"≤ {upper:g} ms"


def token_use(go: Any, tokens: Mapping[str, tuple[int, int]]) -> Any:
    """Prompt and completion tokens per model."""
    aliases = list(tokens)
    figure = go.Figure(
        layout=_layout(
            go,
            "Token use per model",
            barmode="group",
            yaxis={"title": {"text": "tokens"}},
        )
    )
    figure.add_trace(go.Bar(x=aliases, y=[tokens[a][0] for a in aliases], name="prompt"))
    figure.add_trace(go.Bar(x=aliases, y=[tokens[a][1] for a in aliases], name="completion"))
    return figure
