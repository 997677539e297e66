"""Raise the garbage collector's young-generation threshold while runs are active.

Why: CPython starts a young collection whenever tracked allocations exceed deallocations by
`threshold0` (700 by default). An engine with many requests in flight allocates in bursts: one
loop iteration that answers a hundred responses and starts a hundred requests creates more than
700 container objects before any of them dies. Each burst then triggers a collection, the
in-flight objects survive it and are promoted, and the older generations fill with objects that
die soon after, so full collections follow. Measured on the HTTP benchmark at 0 ms latency
(benchmarks/http_e2e.py): at cap 32 the run made 54 young collections and spent about 1 us of
garbage collection per request; at cap 128 it made about 700 (plus full collections) and spent
45-50 us per request, which made throughput fall when the cap rose. With a threshold of 7,000 both
caps made 3-4 collections and ran at the same speed.

The threshold is process-wide, so it is a policy of the program, not of the library: a run
changes it only when `RunConfig.gc_young_threshold` is set (the CLI, the demo and the benchmarks
set `RECOMMENDED_YOUNG_THRESHOLD`; an embedding application decides for itself). This module is
careful with it:
- it only raises `threshold0`, never lowers it, and leaves 0 (automatic collection off) alone;
- concurrent runs (threads or tasks) share one registry: the applied value is the largest active
  request, and the interpreter's value is restored when the last run ends;
- if something else changed the thresholds while runs were active, that change is kept (it
  becomes the value restored at the end) rather than overwritten.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

Thresholds = tuple[int, int, int]

#: What rowforge's own programs (the CLI, the demo, the benchmarks) set. The library leaves the
#: GC alone unless asked (`RunConfig.gc_young_threshold`): the threshold is process-wide, and an
#: embedding application owns its process.
RECOMMENDED_YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_requests: list[int] = []
_baseline: Thresholds | None = None  # what the thresholds were before rowforge raised them
_applied: Thresholds | None = None  # what rowforge last set


@contextlib.contextmanager
def young_threshold_at_least(threshold: int | None) -> Iterator[None]:
    """Within this block, the GC's young threshold is at least `threshold` (None: untouched)."""
    if threshold is None:
        yield
        return
    with _lock:
        _requests.append(threshold)
        _apply()
    try:
        yield
    finally:
        with _lock:
            _requests.remove(threshold)
            _apply()


def _apply() -> None:
    """Set the thresholds for the active requests; restore the baseline when none is left.

    Called with `_lock` held.
    """
    global _baseline, _applied
    current: Thresholds = gc.get_threshold()
    if _baseline is None or current != _applied:
        _baseline = current  # first run, or someone else set the thresholds: theirs is the base
    if not _requests:
        gc.set_threshold(*_baseline)
        _baseline = _applied = None
        return
    young, middle, old = _baseline
    if young > 0:
        young = max(young, *_requests)
    _applied = (young, middle, old)
    gc.set_threshold(*_applied)
