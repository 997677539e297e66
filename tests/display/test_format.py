"""The display's formatters keep every figure inside its field, at any magnitude.

A figure wider than its column shifts the rest of a live-view line and can make the view wrap,
which leaves stale lines behind; so widths are checked over ranges far beyond any real run
(hypothesis), and the readable forms are pinned by examples."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowforge.display.format import (
    COUNT_WIDTH,
    DURATION_WIDTH,
    RATE_WIDTH,
    format_count,
    format_duration,
    format_rate,
)

any_float = st.floats(allow_nan=True, allow_infinity=True)
magnitudes = st.floats(min_value=0.0, max_value=1e308, allow_nan=False)


@given(any_float)
def test_rate_fits_seven_characters(value: float) -> None:
    text = format_rate(value)
    assert len(text) <= RATE_WIDTH, text
    assert text.endswith("/s")


@given(st.floats(min_value=0.0, max_value=1e33))
def test_rate_reads_back_within_a_tenth_of_its_value(value: float) -> None:
    """Not just short: the text parses back to roughly the value (a wrong suffix or a dropped
    digit would be off by a factor of ten or more)."""
    text = format_rate(value)[:-2]
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21}
    scale |= {"Y": 1e24, "R": 1e27, "Q": 1e30}
    parsed = float(text[:-1]) * scale[text[-1]] if text[-1] in scale else float(text)
    assert parsed == pytest.approx(value, rel=0.1, abs=0.005)


@given(st.integers(min_value=-(10**6), max_value=10**300) | st.none())
def test_count_fits_five_characters(value: int | None) -> None:
    assert len(format_count(value)) <= COUNT_WIDTH


@given(st.integers(min_value=0, max_value=9999))
def test_count_is_exact_below_ten_thousand(value: int) -> None:
    assert format_count(value) == str(value)


@given(any_float | st.none())
def test_duration_fits_seven_characters(value: float | None) -> None:
    assert len(format_duration(value)) <= DURATION_WIDTH


@given(st.floats(min_value=0.0, max_value=1000 * 24 * 3600 - 1801))  # below "1000d": years
def test_duration_fields_never_overflow_their_unit(seconds: float) -> None:
    """Rounding never yields "60s", "1m60s" or "2h60m": the smaller field stays below its
    unit."""
    text = format_duration(seconds)
    two_units = re.fullmatch(r"(\d+)([dhm])(\d\d)([hms])", text)
    if two_units:
        assert int(two_units[3]) < {"h": 24, "m": 60, "s": 60}[two_units[4]], text
    else:
        assert re.fullmatch(r"\d+ms|\d\.\ds|\d\ds", text), text
        assert seconds < 60


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.004, "0.00/s"),
        (0.0, "0.00/s"),
        (9.994, "9.99/s"),
        (9.996, "10.0/s"),
        (12.34, "12.3/s"),
        (999.4, "999/s"),
        (999.6, "1.0k/s"),
        (1234.0, "1.2k/s"),
        (12_345.0, "12k/s"),
        (1_234_567.0, "1.2M/s"),
        (1e36, "1e36/s"),
        (-1.0, "?/s"),
        (float("nan"), "?/s"),
        (None, "?/s"),
        (float("inf"), "inf/s"),
    ],
)
def test_rate_examples(value: float | None, text: str) -> None:
    assert format_rate(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (9999, "9999"),
        (10_000, "10k"),
        (999_499, "999k"),
        (999_500, "1.0M"),
        (1_234_567, "1.2M"),
        (10**40, "1e40"),
        (10**400, "1e400"),
        (-1, "?"),
        (None, "?"),
    ],
)
def test_count_examples(value: int | None, text: str) -> None:
    assert format_count(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0.34, "340ms"),
        (0.9996, "1.0s"),
        (9.5, "9.5s"),
        (9.96, "10s"),
        (59.7, "1m00s"),
        (187.0, "3m07s"),
        (7500.0, "2h05m"),
        (100 * 3600.0, "4d04h"),
        (999 * 86400 + 23 * 3600, "999d23h"),
        (1e10, "317y"),
        (1e300, "3e292y"),
        (-1.0, "?"),
    ],
)
def test_duration_examples(value: float | None, text: str) -> None:
    assert format_duration(value) == text
