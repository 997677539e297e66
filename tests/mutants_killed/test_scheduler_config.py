"""`RunConfig`'s validators, defaults and `cap_for` on their own.

Kills mutants of `make mutants` (scheduler, config.py) that the engine's tests cannot see because
they only ever build valid configs: every validator's exact `ConfigError` text (a string mutant
changes it), its boundaries (`<`/`<=`, `>`/`>=`, `0`->`1` in a comparison move the smallest
accepted value, so the exact minimum is accepted and the value just below it is rejected), the
bool, infinity, NaN and string cases each `isinstance`/`or` guards against (an `or`->`and` lets
them through), every field's default (a constant mutant changes it), `_optional` skipping only
None (`is not None`->`is None` both rejects None and accepts anything), `_choice` and `_caps`
naming the offending value and key, and `cap_for` with no resource, a capped resource and an
uncapped one. `_choice` and `_optional` run when the class is defined, so they are also called
directly: a mutant of theirs is only active when it is called after import.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from rowforge.errors import ConfigError
from rowforge.scheduler import RunConfig
from rowforge.scheduler.config import (
    _at_least_one,
    _caps,
    _choice,
    _count,
    _finite_non_negative,
    _finite_positive,
    _optional,
    _positive,
    _positive_int,
    _rate,
)

NAN = float("nan")
INF = float("inf")


def config(**options: Any) -> RunConfig:
    return RunConfig(**options)


def rejected(field: str, value: Any) -> str:
    """The exact message RunConfig gives for `field=value`."""
    with pytest.raises(ConfigError) as caught:
        config(**{field: value})
    return str(caught.value)


def attribute(name: str) -> attrs.Attribute[Any]:
    field: attrs.Attribute[Any] = getattr(attrs.fields(RunConfig), name)
    return field


# --- defaults -------------------------------------------------------------------------------


def test_every_default_is_exactly_the_documented_value() -> None:
    defaults = config()
    assert attrs.asdict(defaults) == {
        "buffer_size": 1000,
        "max_in_flight": 256,
        "max_parallel_requests": {},
        "default_max_parallel_requests": 32,
        "max_concurrent_row_groups": 2,
        "retry_budget_s": 120.0,
        "retry_backoff_s": 0.5,
        "retry_backoff_max_s": 30.0,
        "max_retry_after_s": 300.0,
        "no_success_budget_s": 300.0,
        "max_retries": None,
        "max_rate_limit_retries": None,
        "task_timeout_s": None,
        "early_shutdown_window": 50,
        "early_shutdown_error_rate": 0.5,
        "disable_early_shutdown": False,
        "adaptive_concurrency": False,
        "on_partial": "warn",
        "stall_warning_s": 30.0,
        "engine": "auto",
        "trace": False,
        "seed": 0,
        "gc_young_threshold": None,
        "progress_interval_s": 1.0,
        "executor": "local",
        "ray_address": None,
        "workers": 2,
    }
    assert defaults.disable_early_shutdown is False
    assert defaults.adaptive_concurrency is False
    assert defaults.trace is False


def test_each_config_gets_its_own_empty_caps_mapping() -> None:
    first, second = config(), config()
    assert first.max_parallel_requests == {}
    assert isinstance(first.max_parallel_requests, dict)
    assert first.max_parallel_requests is not second.max_parallel_requests


def test_the_config_is_frozen_and_keyword_only() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config().buffer_size = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunConfig(10)  # type: ignore[call-arg]


# --- _at_least_one --------------------------------------------------------------------------

AT_LEAST_ONE = [
    "buffer_size",
    "max_in_flight",
    "default_max_parallel_requests",
    "max_concurrent_row_groups",
    "early_shutdown_window",
]


@pytest.mark.parametrize("field", AT_LEAST_ONE)
def test_int_fields_accept_exactly_one_and_larger(field: str) -> None:
    assert getattr(config(**{field: 1}), field) == 1
    assert getattr(config(**{field: 2}), field) == 2
    assert getattr(config(**{field: 10**9}), field) == 10**9


@pytest.mark.parametrize("field", AT_LEAST_ONE)
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (-1, "-1"),
        (True, "True"),
        (False, "False"),
        (1.0, "1.0"),
        (2.5, "2.5"),
        (INF, "inf"),
        (NAN, "nan"),
        ("3", "'3'"),
    ],
)
def test_int_fields_reject_zero_negatives_bools_floats_and_strings(
    field: str, value: Any, shown: str
) -> None:
    assert rejected(field, value) == f"RunConfig.{field} must be an int >= 1, got {shown}"


# --- _positive ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["stall_warning_s", "task_timeout_s", "progress_interval_s"])
def test_positive_fields_accept_any_number_above_zero_including_infinity(field: str) -> None:
    for value in (1e-9, 0.5, 1, 1.0, 2, 30.0, INF):
        assert getattr(config(**{field: value}), field) == value


@pytest.mark.parametrize("field", ["stall_warning_s", "task_timeout_s", "progress_interval_s"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (0.0, "0.0"),
        (-0.5, "-0.5"),
        (-INF, "-inf"),
        (NAN, "nan"),
        (True, "True"),
        (False, "False"),
        ("1", "'1'"),
    ],
)
def test_positive_fields_reject_zero_negatives_nan_bools_and_strings(
    field: str, value: Any, shown: str
) -> None:
    assert rejected(field, value) == f"RunConfig.{field} must be a positive number, got {shown}"


# --- _finite_non_negative -------------------------------------------------------------------

FINITE_NON_NEGATIVE = [
    "retry_budget_s",
    "retry_backoff_s",
    "retry_backoff_max_s",
    "max_retry_after_s",
]


@pytest.mark.parametrize("field", FINITE_NON_NEGATIVE)
def test_durations_accept_zero_and_any_finite_positive_number(field: str) -> None:
    for value in (0, 0.0, 1e-9, 1, 2.5, 1e300):
        assert getattr(config(**{field: value}), field) == value


@pytest.mark.parametrize("field", FINITE_NON_NEGATIVE)
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (-1, "-1"),
        (-1e-9, "-1e-09"),
        (INF, "inf"),
        (-INF, "-inf"),
        (NAN, "nan"),
        (True, "True"),
        (False, "False"),
        ("2", "'2'"),
    ],
)
def test_durations_reject_negatives_infinity_nan_bools_and_strings(
    field: str, value: Any, shown: str
) -> None:
    assert (
        rejected(field, value) == f"RunConfig.{field} must be a finite number >= 0, got {shown}"
    )


# --- _finite_positive (no_success_budget_s) -------------------------------------------------


def test_no_success_budget_accepts_none_and_finite_positive_numbers() -> None:
    for value in (None, 1e-9, 1, 0.5, 300.0, 1e300):
        assert config(no_success_budget_s=value).no_success_budget_s == value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (0.0, "0.0"),
        (-1, "-1"),
        (INF, "inf"),
        (NAN, "nan"),
        (True, "True"),
        (False, "False"),
        ("5", "'5'"),
    ],
)
def test_no_success_budget_rejects_zero_infinity_nan_bools_and_strings(
    value: Any, shown: str
) -> None:
    assert rejected("no_success_budget_s", value) == (
        f"RunConfig.no_success_budget_s must be a finite number > 0 or None, got {shown}"
    )


# --- _count (max_retries, max_rate_limit_retries) -------------------------------------------


@pytest.mark.parametrize("field", ["max_retries", "max_rate_limit_retries"])
def test_retry_caps_accept_none_zero_and_positive_ints(field: str) -> None:
    for value in (None, 0, 1, 7):
        assert getattr(config(**{field: value}), field) == value


@pytest.mark.parametrize("field", ["max_retries", "max_rate_limit_retries"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [(-1, "-1"), (True, "True"), (False, "False"), (1.0, "1.0"), (INF, "inf"), ("1", "'1'")],
)
def test_retry_caps_reject_negatives_bools_floats_and_strings(
    field: str, value: Any, shown: str
) -> None:
    assert rejected(field, value) == f"RunConfig.{field} must be an int >= 0 or None, got {shown}"


# --- _rate (early_shutdown_error_rate) ------------------------------------------------------


def test_the_error_rate_accepts_exactly_one_and_anything_just_above_zero() -> None:
    for value in (1, 1.0, 0.5, 1e-9, 0.999):
        assert config(early_shutdown_error_rate=value).early_shutdown_error_rate == value


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (0.0, "0.0"), (-0.5, "-0.5"), (1.0000001, "1.0000001"), (2, "2"), (INF, "inf"),
     (NAN, "nan"), (True, "True"), ("0.5", "'0.5'")],
)
def test_the_error_rate_rejects_zero_anything_above_one_bools_and_strings(
    value: Any, shown: str
) -> None:
    assert rejected("early_shutdown_error_rate", value) == (
        f"RunConfig.early_shutdown_error_rate must be in (0, 1], got {shown}"
    )


# --- _positive_int (gc_young_threshold) -----------------------------------------------------


def test_the_gc_threshold_accepts_none_one_and_larger_ints() -> None:
    for value in (None, 1, 2, 10_000):
        assert config(gc_young_threshold=value).gc_young_threshold == value


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (-1, "-1"), (True, "True"), (False, "False"), (1.0, "1.0"), ("700", "'700'")],
)
def test_the_gc_threshold_rejects_zero_negatives_bools_floats_and_strings(
    value: Any, shown: str
) -> None:
    assert rejected("gc_young_threshold", value) == (
        f"RunConfig.gc_young_threshold must be a positive int or None, got {shown}"
    )


# --- _choice --------------------------------------------------------------------------------


def test_every_allowed_choice_is_accepted() -> None:
    assert config(on_partial="warn").on_partial == "warn"
    assert config(on_partial="raise").on_partial == "raise"
    assert config(engine="auto").engine == "auto"
    assert config(engine="async").engine == "async"
    assert config(engine="sync").engine == "sync"


def test_a_choice_not_allowed_names_the_field_the_choices_and_the_value() -> None:
    assert rejected("on_partial", "ignore") == (
        "RunConfig.on_partial must be one of ('warn', 'raise'), got 'ignore'"
    )
    assert rejected("engine", "threads") == (
        "RunConfig.engine must be one of ('auto', 'async', 'sync'), got 'threads'"
    )
    assert rejected("engine", "SYNC") == (
        "RunConfig.engine must be one of ('auto', 'async', 'sync'), got 'SYNC'"
    )
    assert rejected("engine", None) == (
        "RunConfig.engine must be one of ('auto', 'async', 'sync'), got None"
    )


def test_choice_called_directly_checks_against_exactly_its_arguments() -> None:
    check = _choice("x", "y")
    assert callable(check)
    check(None, attribute("engine"), "x")
    check(None, attribute("engine"), "y")
    with pytest.raises(ConfigError) as caught:
        check(None, attribute("engine"), "z")
    assert str(caught.value) == "RunConfig.engine must be one of ('x', 'y'), got 'z'"


# --- _optional ------------------------------------------------------------------------------


def test_optional_skips_none_and_checks_everything_else() -> None:
    seen: list[Any] = []

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        seen.append((instance, attribute.name, value))

    optional = _optional(check)
    assert callable(optional)
    assert optional("inst", attribute("max_retries"), None) is None
    assert seen == []
    optional("inst", attribute("max_retries"), 0)
    optional("inst", attribute("max_retries"), False)
    assert seen == [("inst", "max_retries", 0), ("inst", "max_retries", False)]


@pytest.mark.parametrize(
    "field",
    ["no_success_budget_s", "max_retries", "max_rate_limit_retries", "task_timeout_s",
     "gc_young_threshold"],
)
def test_optional_fields_accept_none_but_still_check_a_value(field: str) -> None:
    assert getattr(config(**{field: None}), field) is None
    with pytest.raises(ConfigError, match=rf"^RunConfig\.{field} must be .*, got -5$"):
        config(**{field: -5})


# --- _caps and cap_for ----------------------------------------------------------------------


def test_caps_accept_one_and_larger() -> None:
    caps = {"small": 1, "big": 64}
    assert config(max_parallel_requests=caps).max_parallel_requests == caps


@pytest.mark.parametrize(
    ("cap", "shown"),
    [(0, "0"), (-3, "-3"), (1.5, "1.5"), ("4", "'4'"), (None, "None"), (True, "True")],
)
def test_a_bad_cap_names_its_key_and_value(cap: Any, shown: str) -> None:
    message = rejected("max_parallel_requests", {"fine": 2, "gpt-x": cap, "later": 0})
    assert message == (
        f"RunConfig.max_parallel_requests['gpt-x'] must be an int >= 1, got {shown}"
    )


def test_caps_called_directly_report_the_first_bad_key() -> None:
    field = attribute("max_parallel_requests")
    _caps(None, field, {})
    _caps(None, field, {"a": 1, "b": 2})
    with pytest.raises(ConfigError) as caught:
        _caps(None, field, {"a": 1, "b": 0, "c": -1})
    assert str(caught.value) == "RunConfig.max_parallel_requests['b'] must be an int >= 1, got 0"


def test_cap_for_no_resource_is_none() -> None:
    assert config().cap_for(None) is None
    assert config(max_parallel_requests={"m": 3}).cap_for(None) is None


def test_cap_for_a_resource_uses_its_own_cap_or_the_default() -> None:
    settings = config(max_parallel_requests={"m": 3, "n": 1}, default_max_parallel_requests=7)
    assert settings.cap_for("m") == 3
    assert settings.cap_for("n") == 1
    assert settings.cap_for("other") == 7
    assert config().cap_for("anything") == 32


# --- the validators called directly ---------------------------------------------------------


def test_validators_called_directly_accept_their_minimum() -> None:
    _at_least_one(None, attribute("buffer_size"), 1)
    _positive(None, attribute("stall_warning_s"), 0.1)
    _finite_non_negative(None, attribute("retry_budget_s"), 0)
    _finite_positive(None, attribute("no_success_budget_s"), 0.1)
    _count(None, attribute("max_retries"), 0)
    _rate(None, attribute("early_shutdown_error_rate"), 1)
    _positive_int(None, attribute("gc_young_threshold"), 1)


def test_a_config_error_is_raised_for_the_first_bad_field_only_by_name() -> None:
    # Two bad fields: the message is the one of the field that is validated first (declaration
    # order), which names it; nothing else is mentioned.
    with pytest.raises(ConfigError) as caught:
        RunConfig(buffer_size=0, max_in_flight=0)
    assert str(caught.value) == "RunConfig.buffer_size must be an int >= 1, got 0"
