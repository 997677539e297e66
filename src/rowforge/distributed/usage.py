"""Adding up the models sections of several workers (metadata.json's "models").

Each worker meters its own model clients; the run's figures are their sum: counts and tokens
add, error and retry counts add per label, the latency histograms add bucket by bucket. The
latency percentiles are read again from the summed histogram, so they have its resolution (a
bucket's upper bound), and "max" is the largest worker's maximum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Section = Mapping[str, Mapping[str, Any]]


def merge_models(sections: Sequence[Section]) -> dict[str, dict[str, Any]]:
    """The models section of a run whose workers wrote `sections`."""
    merged: dict[str, dict[str, Any]] = {}
    for section in sections:
        for alias, figures in section.items():
            merged[alias] = _add(merged.get(alias, {}), figures)
    for figures in merged.values():
        if "latency_histogram_ms" in figures:
            figures["latency_ms"] = _percentiles(figures)
    return dict(sorted(merged.items()))


def _add(total: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(total)
    for key, value in more.items():
        if key == "latency_ms":  # the percentiles are read again from the summed histogram
            highest = [m for m in (out.get(key, {}).get("max"), value.get("max")) if m is not None]
            out[key] = {"max": max(highest)} if highest else {}
        elif key == "latency_histogram_ms":
            buckets = dict((bound, count) for bound, count in out.get(key, []))
            for bound, count in value:
                buckets[bound] = buckets.get(bound, 0) + count
            out[key] = [[bound, buckets[bound]] for bound in sorted(buckets)]
        elif isinstance(value, Mapping):
            out[key] = _add(out.get(key, {}), value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            out.setdefault(key, value)
        else:
            summed = out.get(key, 0) + value
            out[key] = round(summed, 3) if isinstance(summed, float) else summed
    return out


def _percentiles(figures: Mapping[str, Any]) -> dict[str, float]:
    """p50/p90/p99 at the summed histogram's resolution; max as the workers measured it."""
    buckets = figures["latency_histogram_ms"]
    total = sum(count for _, count in buckets)
    if not total:
        return {}
    out: dict[str, float] = {}
    highest = figures.get("latency_ms", {}).get("max")
    for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        seen = 0
        for bound, count in buckets:
            seen += count
            if seen >= share * total:
                out[name] = bound
                break
    if highest is not None:
        out["max"] = highest
    return out
