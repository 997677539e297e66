"""Fixed-width figures for the progress display: rates, counts and durations.

A live view is a grid: a figure that grows past its field pushes the rest of the line right and
makes the view wrap, which moves every line below and leaves stale text behind. So every
formatter here has a width it never exceeds, whatever the magnitude (a rate of 0.004/s and one of
10^30/s both fit), and never raises: a display must not end a run because a counter was odd
(negative, NaN, None). Widths: `format_rate` <= 7, `format_count` <= 5, `format_duration` <= 7.
"""

from __future__ import annotations

import math

RATE_WIDTH = 7
COUNT_WIDTH = 5
DURATION_WIDTH = 7

# Decimal (SI) suffixes, each 1000 times the one before; beyond the last one, an exponent.
_SUFFIXES = ("k", "M", "G", "T", "P", "E", "Z", "Y", "R", "Q")
UNKNOWN = "?"


def _scaled(value: float, plain: tuple[tuple[int, float], ...]) -> str:
    """`value` (finite, >= 0) in at most 5 characters: first the `plain` formats (decimals,
    exclusive upper bound of the rounded value), then 1.2k / 12k / 123k and so on up the
    suffixes, then a bare exponent (1e36).

    The bound is checked on the rounded text, not on `value`, so 9.996 does not become
    "10.00" (a digit too many): it falls through to the next, coarser format.
    """
    for decimals, bound in plain:
        text = f"{value:.{decimals}f}"
        if float(text) < bound:
            return text
    for power, suffix in enumerate(_SUFFIXES, start=1):
        scaled = value / 1000.0**power
        for decimals, bound in ((1, 10.0), (0, 1000.0)):
            text = f"{scaled:.{decimals}f}"
            if float(text) < bound:
                return text + suffix
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_rate(per_second: float | None) -> str:
    """A rate per second in at most 7 characters: "0.00/s", "9.99/s", "12.3/s", "123/s",
    "1.2k/s", "12k/s", "1.2M/s", ... "1e36/s"; "?/s" when unknown, negative or NaN."""
    if per_second is None or math.isnan(per_second) or per_second < 0:
        return UNKNOWN + "/s"
    if math.isinf(per_second):
        return "inf/s"
    return _scaled(per_second, ((2, 10.0), (1, 100.0), (0, 1000.0))) + "/s"


def format_count(count: int | None) -> str:
    """A count in at most 5 characters: exact below 10,000 ("9999"), then "12k", "999k",
    "1.2M", ... and "1e40" for the astronomically large; "?" when unknown or negative."""
    if count is None or count < 0:
        return UNKNOWN
    if count < 10_000:
        return str(count)
    try:
        value = float(count)
    except OverflowError:  # an int beyond a float: say its order of magnitude
        digits = str(count)
        return f"{digits[0]}e{len(digits) - 1}" if len(digits) <= 1000 else "huge"
    return _scaled(value, ())


def format_duration(seconds: float | None) -> str:
    """A duration in at most 7 characters: "340ms", "9.5s", "42s", "3m07s", "2h05m",
    "4d03h", "999d23h", then years ("12y", "1.2ky", ...); "-" when None (an ETA not known
    yet), "?" when negative or NaN.

    Each unit's bound is checked after rounding, so 59.7 s reads "1m00s", never "60s" or
    "0m60s".
    """
    if seconds is None:
        return "-"
    if math.isnan(seconds) or seconds < 0:
        return UNKNOWN
    if math.isinf(seconds):
        return "inf"
    if seconds < 1 and round(seconds * 1000) < 1000:
        return f"{round(seconds * 1000)}ms"
    if round(seconds, 1) < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m{secs:02d}s"
    whole_minutes = round(seconds / 60)
    if whole_minutes < 100 * 60:
        hours, minutes = divmod(whole_minutes, 60)
        return f"{hours}h{minutes:02d}m"
    whole_hours = round(seconds / 3600)
    if whole_hours < 1000 * 24:
        days, hours = divmod(whole_hours, 24)
        return f"{days}d{hours:02d}h"
    years = seconds / (365.25 * 24 * 3600)
    return _scaled(years, ((0, 1000.0),)) + "y"
