"""`Step`, `Plan` and `build_plan` on their own.

Kills mutants of `make mutants` (scheduler, plan.py) that the engine tests leave alive because
they build only valid plans with few steps: each `ConfigError` text exactly (string mutants), the
`or`/`and` and `<`/`<=` of every guard (an empty or non-string name, a bool, zero or a float
`num_records`, a `buffer_size` of 0), `is_async` for an async function, an async callable object
and sync callables (the `or` and the `"__call__"` string), a `depends_on` string kept whole; the
row-group arithmetic (ceil division, the short last group) and `step()`'s KeyError; the cycle
message of `_find_cycle` (where it starts, which dependency it follows, where the reported cycle
begins when the walk starts outside it); Kahn's order taking the earliest-declared ready step;
upstream sets that are transitive, without repeats and in declaration order; downstream naming
direct dependents only; seed steps (batch steps whose upstreams are all batch, `all` not `any`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rowforge.errors import ConfigError
from rowforge.scheduler.plan import Plan, RowGroupPlan, Step, build_plan


def noop(row: Any) -> None:
    return None


async def anoop(row: Any) -> None:
    return None


class AsyncCallable:
    async def __call__(self, row: Any) -> None:
        return None


class SyncCallable:
    def __call__(self, row: Any) -> None:
        return None


def cell(name: str, *depends_on: str, **options: Any) -> Step:
    return Step(name, noop, "cell", depends_on, **options)


def batch(name: str, *depends_on: str, **options: Any) -> Step:
    return Step(name, noop, "batch", depends_on, **options)


def plan_error(steps: list[Step], num_records: Any = 10, buffer_size: Any = 4) -> str:
    with pytest.raises(ConfigError) as caught:
        build_plan(steps, num_records, buffer_size)
    return str(caught.value)


def step_error(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        Step(*args, **kwargs)
    return str(caught.value)


# --- Step -----------------------------------------------------------------------------------


def test_a_step_has_cell_kind_no_dependencies_no_resource_and_no_resize_by_default() -> None:
    step = Step("a", noop)
    assert step.name == "a"
    assert step.fn is noop
    assert step.kind == "cell"
    assert step.depends_on == ()
    assert step.resource is None
    assert step.allow_resize is False
    assert step.is_async is False


def test_depends_on_given_as_one_string_is_one_name_not_its_letters() -> None:
    assert Step("b", noop, depends_on="up").depends_on == ("up",)
    assert Step("b", noop, depends_on=["up", "x"]).depends_on == ("up", "x")
    assert Step("b", noop, depends_on=iter(["p"])).depends_on == ("p",)


def test_is_async_detects_async_functions_and_async_callable_objects() -> None:
    assert Step("a", anoop).is_async is True
    assert Step("a", AsyncCallable()).is_async is True
    assert Step("a", noop).is_async is False
    assert Step("a", SyncCallable()).is_async is False
    assert Step("a", lambda row: row).is_async is False
    assert Step("a", len).is_async is False


@pytest.mark.parametrize(("name", "shown"), [("", "''"), (5, "5"), (None, "None"), (b"a", "b'a'")])
def test_a_step_name_must_be_a_non_empty_string(name: Any, shown: str) -> None:
    assert step_error(name, noop) == f"step name must be a non-empty string, got {shown}"


def test_both_kinds_are_accepted_and_any_other_kind_is_named() -> None:
    assert Step("a", noop, "batch").kind == "batch"
    assert Step("a", noop, "cell").kind == "cell"
    assert step_error("a", noop, "row") == "step 'a': kind must be 'batch' or 'cell', got 'row'"
    assert step_error("a", noop, "Cell") == "step 'a': kind must be 'batch' or 'cell', got 'Cell'"


def test_allow_resize_needs_a_batch_step() -> None:
    assert Step("a", noop, "batch", allow_resize=True).allow_resize is True
    assert Step("a", noop, "cell", allow_resize=False).allow_resize is False
    assert step_error("a", noop, "cell", allow_resize=True) == (
        "step 'a': allow_resize needs kind='batch'"
    )


@pytest.mark.parametrize(("fn", "shown"), [(3, "3"), (None, "None"), ("f", "'f'")])
def test_fn_must_be_callable(fn: Any, shown: str) -> None:
    assert step_error("a", fn) == f"step 'a': fn must be callable, got {shown}"


def test_a_step_with_a_resource_keeps_it() -> None:
    assert Step("a", noop, resource="model").resource == "model"


# --- build_plan: argument checks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_records", "shown"),
    [(True, "True"), (False, "False"), (0, "0"), (-1, "-1"), (2.0, "2.0"), ("3", "'3'"),
     (None, "None")],
)
def test_num_records_must_be_a_positive_int(num_records: Any, shown: str) -> None:
    assert plan_error([cell("a")], num_records=num_records) == (
        f"num_records must be a positive integer, got {shown}"
    )


@pytest.mark.parametrize(
    ("buffer_size", "shown"),
    [(0, "0"), (-2, "-2"), (4.0, "4.0"), ("4", "'4'"), (None, "None"), (True, "True")],
)
def test_buffer_size_must_be_a_positive_int(buffer_size: Any, shown: str) -> None:
    assert plan_error([cell("a")], buffer_size=buffer_size) == (
        f"buffer_size must be a positive integer, got {shown}"
    )


def test_one_record_and_a_buffer_of_one_are_accepted() -> None:
    plan = build_plan([cell("a")], 1, 1)
    assert (plan.num_records, plan.buffer_size, plan.num_row_groups) == (1, 1, 1)
    assert list(plan.row_groups()) == [RowGroupPlan(0, 0, 1)]


def test_a_plan_needs_a_step() -> None:
    assert plan_error([]) == "a plan needs at least one step"


def test_a_duplicate_name_is_named() -> None:
    assert plan_error([cell("a"), cell("b"), cell("a")]) == "duplicate step name 'a'"


def test_an_unknown_dependency_is_named_with_its_step() -> None:
    assert plan_error([cell("a"), cell("b", "a", "zz")]) == (
        "step 'b' depends on unknown step 'zz'"
    )


def test_a_step_that_depends_on_itself_is_named() -> None:
    assert plan_error([cell("x"), cell("a", "x", "a")]) == "step 'a' depends on itself"


# --- cycles ---------------------------------------------------------------------------------


def test_a_two_step_cycle_is_reported_from_the_first_declared_step() -> None:
    assert plan_error([cell("a", "b"), cell("b", "a")]) == "dependency cycle: a -> b -> a"
    assert plan_error([cell("b", "a"), cell("a", "b")]) == "dependency cycle: b -> a -> b"


def test_a_three_step_cycle_follows_each_steps_dependency() -> None:
    # a needs c, c needs b, b needs a: the walk goes a -> c -> b -> a.
    steps = [cell("a", "c"), cell("b", "a"), cell("c", "b")]
    assert plan_error(steps) == "dependency cycle: a -> c -> b -> a"


def test_the_cycle_walk_follows_the_alphabetically_first_dependency() -> None:
    # a needs both c and b (each of which needs a): the walk takes b, sorted first.
    steps = [cell("a", "c", "b"), cell("c", "a"), cell("b", "a")]
    assert plan_error(steps) == "dependency cycle: a -> b -> a"


def test_a_step_that_only_depends_on_a_cycle_is_not_part_of_the_message() -> None:
    # x is declared first and is where the walk starts, but it is not in the cycle.
    steps = [cell("x", "a"), cell("a", "b"), cell("b", "a")]
    assert plan_error(steps) == "dependency cycle: a -> b -> a"
    steps = [cell("x", "y"), cell("y", "a"), cell("a", "c"), cell("c", "b"), cell("b", "a")]
    assert plan_error(steps) == "dependency cycle: a -> c -> b -> a"


def test_a_cycle_after_orderable_steps_is_found_among_the_rest() -> None:
    # `free` and `first` are ordered before the cycle is noticed; only the cycle is reported.
    steps = [cell("free"), cell("first", "free"), cell("p", "q", "first"), cell("q", "p")]
    assert plan_error(steps) == "dependency cycle: p -> q -> p"


# --- order, upstream, downstream ------------------------------------------------------------


def test_independent_steps_keep_their_declaration_order() -> None:
    plan = build_plan([cell("c"), cell("a"), cell("b")], 10, 4)
    assert plan.columns == ("c", "a", "b")
    assert [step.name for step in plan.steps] == ["c", "a", "b"]


def test_the_earliest_declared_ready_step_is_taken_first() -> None:
    # b is declared first but waits for a; once a is done, b is ready before c (declared later).
    plan = build_plan([cell("b", "a"), cell("a"), cell("c"), cell("d", "b")], 10, 4)
    assert plan.columns == ("a", "b", "c", "d")


def test_upstream_is_transitive_without_repeats_in_declaration_order() -> None:
    steps = [
        cell("zeta"),
        cell("alpha"),
        cell("mid", "zeta", "alpha"),
        cell("left", "mid"),
        cell("right", "mid", "zeta"),
        cell("last", "right", "left"),
    ]
    plan = build_plan(steps, 10, 4)
    assert plan.upstream == {
        "zeta": (),
        "alpha": (),
        "mid": ("zeta", "alpha"),
        "left": ("zeta", "alpha", "mid"),
        "right": ("zeta", "alpha", "mid"),
        "last": ("zeta", "alpha", "mid", "left", "right"),
    }


def test_downstream_names_only_direct_dependents_in_order() -> None:
    steps = [
        cell("zeta"),
        cell("alpha"),
        cell("mid", "zeta", "alpha"),
        cell("left", "mid"),
        cell("right", "mid", "zeta"),
        cell("last", "right", "left"),
    ]
    plan = build_plan(steps, 10, 4)
    assert plan.downstream == {
        "zeta": ("mid", "right"),
        "alpha": ("mid",),
        "mid": ("left", "right"),
        "left": ("last",),
        "right": ("last",),
        "last": (),
    }


def test_downstream_follows_the_topological_order_not_the_declaration_order() -> None:
    # late is declared before early but waits for mid, which waits for early.
    steps = [cell("late", "root", "mid"), cell("early", "root"), cell("root"), cell("mid", "early")]
    plan = build_plan(steps, 1, 1)
    assert plan.columns == ("root", "early", "mid", "late")
    assert plan.downstream["root"] == ("early", "late")


# --- seed steps -----------------------------------------------------------------------------


def test_seed_steps_are_batch_steps_with_only_batch_upstreams() -> None:
    steps = [
        batch("s1"),
        batch("s2", "s1"),
        cell("c1", "s1"),
        batch("s3", "c1"),
        batch("s4", "s3"),
        batch("s5", "s2", "c1"),
        cell("c2", "s2"),
        batch("s6"),
    ]
    plan = build_plan(steps, 10, 4)
    assert plan.seed_steps == frozenset({"s1", "s2", "s6"})


def test_a_plan_of_cell_steps_has_no_seed_steps() -> None:
    assert build_plan([cell("a"), cell("b", "a")], 10, 4).seed_steps == frozenset()


# --- Plan -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_records", "buffer_size", "groups"),
    [(10, 4, 3), (8, 4, 2), (9, 4, 3), (1, 1000, 1), (1000, 1000, 1), (1001, 1000, 2), (5, 1, 5)],
)
def test_the_number_of_row_groups_rounds_up(
    num_records: int, buffer_size: int, groups: int
) -> None:
    plan = build_plan([cell("a")], num_records, buffer_size)
    assert plan.num_row_groups == groups
    assert len(list(plan.row_groups())) == groups


def test_row_groups_cover_the_records_with_a_short_last_group() -> None:
    plan = build_plan([cell("a")], 10, 4)
    assert plan.row_group(0) == RowGroupPlan(0, 0, 4)
    assert plan.row_group(1) == RowGroupPlan(1, 4, 4)
    assert plan.row_group(2) == RowGroupPlan(2, 8, 2)
    groups = plan.row_groups()
    assert isinstance(groups, Iterator)
    assert list(groups) == [RowGroupPlan(0, 0, 4), RowGroupPlan(1, 4, 4), RowGroupPlan(2, 8, 2)]
    assert plan.row_group(2).index == 2
    assert plan.row_group(2).start == 8
    assert plan.row_group(2).size == 2


def test_row_groups_of_an_exact_multiple_are_all_full() -> None:
    plan = build_plan([cell("a")], 6, 3)
    assert list(plan.row_groups()) == [RowGroupPlan(0, 0, 3), RowGroupPlan(1, 3, 3)]


def test_step_finds_a_step_by_name_or_raises_key_error() -> None:
    a, b = cell("a"), cell("b", "a")
    plan = build_plan([b, a], 10, 4)
    assert plan.step("a") is a
    assert plan.step("b") is b
    with pytest.raises(KeyError) as caught:
        plan.step("missing")
    assert caught.value.args == ("missing",)


def test_needs_resize_is_true_if_any_step_allows_it() -> None:
    assert build_plan([cell("a"), batch("b")], 10, 4).needs_resize is False
    plan = build_plan([cell("a"), batch("b", allow_resize=True), batch("c")], 10, 4)
    assert plan.needs_resize is True
    assert build_plan([batch("b", allow_resize=True)], 10, 4).needs_resize is True


def test_build_plan_keeps_its_arguments() -> None:
    plan = build_plan([cell("a")], 10, 4)
    assert isinstance(plan, Plan)
    assert plan.num_records == 10
    assert plan.buffer_size == 4
    assert plan.columns == ("a",)
    assert isinstance(plan.steps, tuple)
    assert plan.upstream == {"a": ()}
    assert plan.downstream == {"a": ()}
