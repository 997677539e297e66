"""`parse_reply`: model replies with small JSON defects are read; prose is never turned into a
document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowforge.models.repair import ParsedReply, parse_reply

FENCE = "```"


@pytest.mark.parametrize(
    "reply",
    [
        '{"name": "Ada", "tags": ["a", "b"]}',
        '  \n[1, 2, {"x": null}]\n',
        '"a string"',
        "42",
        "null",
        "{}",
        '{"code": "```python\\nprint(1)\\n```"}',  # a fence inside a string: left alone
    ],
)
def test_valid_json_is_taken_as_it_is(reply: str) -> None:
    assert parse_reply(reply) == ParsedReply(json.loads(reply))


@pytest.mark.parametrize(
    "reply",
    [
        f'{FENCE}json\n{{"a": 1}}\n{FENCE}',
        f'{FENCE}JSON\n{{"a": 1}}\n{FENCE}\n',
        f'{FENCE}\n{{"a": 1}}\n{FENCE}',
        '~~~json\n{"a": 1}\n~~~',
        f'Here is the record:\n\n{FENCE}json\n{{"a": 1}}\n{FENCE}\n\nAnything else?',
        f'  {FENCE}json  \n{{"a": 1}}\n  {FENCE}',
        # a longer outer fence holding the fenced JSON, as a model quoting Markdown writes it
        f'{FENCE}`markdown\n{FENCE}json\n{{"a": 1}}\n{FENCE}\n{FENCE}`',
        f'{FENCE}\n{FENCE}json\n{{"a": 1}}\n{FENCE}',  # an unclosed outer fence, nested
        f'{FENCE}json\r\n{{"a": 1}}\r\n{FENCE}\r\n',  # Windows line ends
    ],
)
def test_a_fenced_reply_is_unwrapped_and_reported_as_fenced(reply: str) -> None:
    assert parse_reply(reply) == ParsedReply({"a": 1}, fenced=True)


def test_of_several_fenced_blocks_the_one_tagged_json_is_read() -> None:
    reply = (
        f"The code:\n{FENCE}python\nprint({{'a': 1}})\n{FENCE}\n"
        f'The data:\n{FENCE}json\n{{"a": 2}}\n{FENCE}\n'
        f'And again:\n{FENCE}json\n{{"a": 3}}\n{FENCE}'
    )
    assert parse_reply(reply) == ParsedReply({"a": 2}, fenced=True)


def test_a_fence_inside_a_json_string_is_not_taken_for_the_reply_fence() -> None:
    fenced_code = f'{FENCE}json\n{{"code": "{FENCE}py\\nx = 1\\n{FENCE}", "ok": true}}\n{FENCE}'
    assert parse_reply(fenced_code) == ParsedReply(
        {"code": f"{FENCE}py\nx = 1\n{FENCE}", "ok": True}, fenced=True
    )
    # raw line breaks in a string (invalid JSON) with a fence in it: the JSON opens first, so
    # the fence is part of it and the repair keeps the string whole
    raw = f'{{"code": "{FENCE}python\nprint(1)\n{FENCE}"}}'
    assert parse_reply(raw) == ParsedReply(
        {"code": f"{FENCE}python\nprint(1)\n{FENCE}"}, repaired=True
    )


@pytest.mark.parametrize(
    ("reply", "document"),
    [
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),  # trailing commas
        ("{'a': 'it is', 'b': ['x']}", {"a": "it is", "b": ["x"]}),  # single quotes
        ('{name: "Ada", age: 36}', {"name": "Ada", "age": 36}),  # bare keys
        ('{"a": {"b": [1, 2', {"a": {"b": [1, 2]}}),  # truncated: closing brackets missing
        ('{"text": "cut off in the mid', {"text": "cut off in the mid"}),  # and a quote
        ('// the record\n{"a": 1, /* why */ "b": 2}', {"a": 1, "b": 2}),  # comments
        ('{"a": True, "b": None}', {"a": True, "b": None}),  # Python literals
        ('{"a": 1}\n\nI hope this helps!', {"a": 1}),  # prose after the JSON
        ('Here you go: {"a": 1} - enjoy {really}', {"a": 1}),  # around it, inline
        ('Sure:\n[{"a": 1}, {"a": 2},]\nDone.', [{"a": 1}, {"a": 2}]),
        ('{"a": 1,}\n{"b": 2}', {"a": 1}),  # two documents: the one the reply opens with
        (f'{FENCE}{{"a": 1}}{FENCE}', {"a": 1}),  # a one-line "fence" is not one: read inline
    ],
)
def test_small_defects_are_repaired(reply: str, document: Any) -> None:
    assert parse_reply(reply) == ParsedReply(document, repaired=True)


def test_a_fenced_and_truncated_reply_is_both() -> None:
    reply = f'Result:\n{FENCE}json\n{{"items": ["a", "b",'  # cut off at max_tokens
    assert parse_reply(reply) == ParsedReply({"items": ["a", "b"]}, fenced=True, repaired=True)


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   \n",
        "Sure! I can help with that.",
        "The answer is 42",
        "I cannot do that: {this} is not allowed.",
        "Use {name} and {date} in the template.",
        "Sorry, I cannot help [with that].",
        "[Note] the record is below the threshold.",
        "{",
        "[",
        '{"',
        "{ }x",
        f"{FENCE}json\nI could not produce the record.\n{FENCE}",
        f"{FENCE}\n{FENCE}",
        f"{FENCE}json\n{FENCE}python\nprint(1)\n{FENCE}\n{FENCE}",
        "'just a quoted phrase'",
        "[" * 5000,  # nested too deeply for any parser
    ],
)
def test_a_reply_that_is_not_json_is_never_turned_into_a_document(reply: str) -> None:
    parsed = parse_reply(reply)
    assert parsed.problem is not None and parsed.problem.startswith("not JSON: "), parsed
    assert parsed.document is None


def test_the_problem_says_what_json_found_and_why_no_repair_was_tried() -> None:
    assert parse_reply("Sure.").problem == (
        "not JSON: Expecting value: line 1 column 1 (char 0) (no JSON object or array in it)"
    )
    assert parse_reply("[" * 5000).problem == "not JSON: nested too deeply (not repairable)"


def test_a_reply_of_null_is_a_document_none() -> None:
    parsed = parse_reply("null")
    assert parsed.problem is None and parsed.document is None


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("{}[]\"':,/*\\ \n\t`~#abnulltrue0123-.")), max_size=80)
)
def test_any_text_gives_a_document_or_a_problem_and_never_an_exception(text: str) -> None:
    parsed = parse_reply(text)
    if parsed.problem is not None:
        assert parsed == ParsedReply(problem=parsed.problem)
    elif parsed.repaired:  # a repair never invents an empty or scalar document
        assert isinstance(parsed.document, dict | list) and parsed.document


def test_a_fenced_string_keeps_its_unicode_line_separators() -> None:
    reply = f'{FENCE}json\n{{"a": "x\u2028y\u0085z"}}\n{FENCE}'
    assert parse_reply(reply) == ParsedReply({"a": "x\u2028y\u0085z"}, fenced=True)
