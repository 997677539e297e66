"""The report's plotly figures, each built from one summary of `reading` or metadata.json.

plotly is the `report` extra, imported when a report is written (`load_plotly`), so rowforge
without it still imports. Figures use SVG traces only (no WebGL): the page must render in any
browser, headless ones without a GPU included, and the timeline draws at most the sampled
attempts, so SVG stays fast. Times on the x axes are seconds since the run started (the run's
first event; event and trace times come from the same monotonic clock).
"""

from __future__ import annotations

import bisect
import heapq
import importlib
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
#: Roughly the pixels a step's band of lanes gets in the timeline (110 px a step, 80% used).
BAND_PX = 88


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
    widest = 1  # the most lanes of any step: lines get thinner as lanes get denser
    waits: tuple[list[float | None], list[float | None]] = ([], [])
    for band, step in enumerate(steps):
        attempts = by_step[step]
        lanes, count = _lanes(attempts)
        widest = max(widest, count)
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
    width = max(1.0, min(4.0, 0.8 * BAND_PX / widest))
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
                line={"color": OUTCOME_COLOURS.get(outcome, "#17becf"), "width": width},
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


#: Display bins for latency: 10 per decade from 1 ms to 10^4 s, with readable bounds. The meter's
#: own buckets (5% wide, only the non-empty ones listed) are too many and too uneven to show.
DISPLAY_BOUNDS_MS: tuple[float, ...] = (
    *(m * 10.0**e for e in range(7) for m in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8)),
    10.0**7,
)


def rebin_latency(pairs: Sequence[tuple[float, int]]) -> dict[int, int]:
    """Counts per display bin index (`DISPLAY_BOUNDS_MS`; one past the end: above the last
    bound). A bucket counts in the first display bin whose bound is at least its upper bound,
    so a 5%-wide bucket lands at most one bin too high."""
    counts: dict[int, int] = {}
    for upper, count in pairs:
        if count:
            index = bisect.bisect_left(DISPLAY_BOUNDS_MS, upper)
            counts[index] = counts.get(index, 0) + count
    return counts


def _bin_label(index: int) -> str:
    if index >= len(DISPLAY_BOUNDS_MS):
        return f"> {DISPLAY_BOUNDS_MS[-1] / 1000:g} s"
    bound = DISPLAY_BOUNDS_MS[index]
    return f"≤ {bound:g} ms" if bound < 1000 else f"≤ {bound / 1000:g} s"


def latency_histograms(go: Any, histograms: Mapping[str, Sequence[tuple[float, int]]]) -> Any:
    """Requests per latency bin, per model, from metadata.json's models[*].latency_histogram_ms
    ([upper bound in ms, count] pairs; an upper bound of +inf is an unbounded last bucket),
    re-binned to `DISPLAY_BOUNDS_MS`. Every bin from the fastest to the slowest non-empty one is
    shown, empty ones too, so gaps in the distribution stay visible."""
    binned = {alias: rebin_latency(pairs) for alias, pairs in histograms.items()}
    used = [index for counts in binned.values() for index in counts]
    shown = list(range(min(used), max(used) + 1)) if used else []
    labels = [_bin_label(index) for index in shown]
    figure = go.Figure(
        layout=_layout(
            go,
            "Request latency per model (answered requests)",
            barmode="group",
            xaxis={
                "title": {"text": "latency"},
                "type": "category",
                "categoryorder": "array",
                "categoryarray": labels,
            },
            yaxis={"title": {"text": "requests"}},
        )
    )
    for alias, counts in binned.items():
        figure.add_trace(go.Bar(x=labels, y=[counts.get(index, 0) for index in shown], name=alias))
    return figure


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
