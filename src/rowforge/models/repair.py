"""`parse_reply`: a model's reply as a JSON document, forgiving the small defects models make.

Theory of operation: asked for JSON, models often answer with JSON that `json.loads` refuses
for a trivial reason: it sits in a Markdown code fence, has a sentence before or after it, a
trailing comma, single quotes, a comment, or stops before its closing braces (a reply cut at
`max_tokens`). Asking again costs a request; repairing costs nothing, and the caller still
checks the document against its schema. So `parse_reply` tries, in order, until one works:

1. the reply as it is (valid JSON is never touched, even when a string in it holds a fence);
2. the content of a Markdown code fence (```` ```json ```` or ```` ``` ````, or `~~~`), when
   a fence opens before any JSON does: text around the fence is dropped, a fence inside the
   fence's content is opened too, and of several fenced blocks the first tagged `json` wins,
   else the first one (`fenced=True`);
3. the JSON object or array found in that text, with what follows it dropped, read by
   `json.loads` if it is valid and else repaired by the `json_repair` library
   (`repaired=True`).

What is not JSON stays not JSON: `json_repair` answers "" for prose, `{}` for a lone brace,
and a list of words for prose with brackets in it, so step 3 looks only at text that opens
like a JSON object or array (a `{` or `[` that opens a line and is followed by a key or a
value, or anywhere, `{"key":` or `["`), and keeps what it reads only when it is an object or
array of that kind with something in it (an empty `{}` or `[]` is taken only as the whole
reply, by step 1 or 2). Everything else gets a `problem` (`not JSON: ...`), never an invented
document. The check is a heuristic: a line of prose that begins with a JSON array
(`[1] is the first point`) still reads as that array; the caller's schema check catches it.

Usage: `parsed = parse_reply(text)`; when `parsed.problem is None`, `parsed.document` is the
JSON value (which may itself be None, for a reply of `null`: test `problem`, not `document`);
otherwise ask again or fail with `parsed.problem`. `fenced` and `repaired` say which help it
needed, for counting how often a model's output needs it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import json_repair

#: A fence's opening line: up to 3 spaces, 3+ backticks or tildes, an optional one-word info
#: string (`json`), nothing else. A one-line ```{...}``` is not a fence; step 3 reads it.
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})[ \t]*([\w.+-]*)[ \t]*\Z")

#: How a JSON object or array opens at the start of a line: a key (quoted, or a bare name
#: and a colon) or a closing brace; a value or a closing bracket; or a comment.
_OPENS_LINE = re.compile(
    r"""\{\s*(?:["'}]|//|/\*|[A-Za-z_$][\w$]*\s*:)"""
    r"""|\[\s*(?:["'{\[\]\d-]|//|/\*|true\b|false\b|null\b)"""
)

#: How a JSON object or array opens in the middle of a line of prose: unmistakably.
_OPENS_INLINE = re.compile(r'\{\s*"[^"\n]*"\s*:|\[\s*(?:"|\{\s*"[^"\n]*"\s*:)')

_DECODER = json.JSONDecoder()


@attrs.frozen
class ParsedReply:
    """A reply read as JSON: `document` when `problem` is None, else why it is not JSON.

    `fenced`: a Markdown code fence was removed. `repaired`: the JSON needed more than that
    (text before or after it dropped, or its syntax fixed by `json_repair`).
    """

    document: Any = None
    fenced: bool = False
    repaired: bool = False
    problem: str | None = None


def parse_reply(reply: str) -> ParsedReply:
    """`reply` as a JSON document, stripped of a Markdown fence and repaired when it has to be
    (see the module docstring); never raises for any text."""
    try:
        return ParsedReply(json.loads(reply))
    except (ValueError, RecursionError) as error:
        failure: Exception = error
    text, fenced = _unfenced(reply)
    if fenced:
        try:
            return ParsedReply(json.loads(text), fenced=True)
        except (ValueError, RecursionError) as error:
            failure = error
    start = _json_start(text)
    if start is None:
        return ParsedReply(problem=f"not JSON: {_reason(failure)} (no JSON object or array in it)")
    document = _repaired(text[start:])
    if document is None:
        return ParsedReply(problem=f"not JSON: {_reason(failure)} (not repairable)")
    return ParsedReply(document, fenced=fenced, repaired=True)


def _reason(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _unfenced(text: str) -> tuple[str, bool]:
    """The content of the fenced block in `text` (of the block inside it, when that is fenced
    too), and whether there was one."""
    fenced = False
    while (content := _fenced_block(text)) is not None:
        text, fenced = content, True
    return text, fenced


def _fenced_block(text: str) -> str | None:
    """The first fenced block tagged json in `text`, else its first fenced block; None when
    there is none, or when JSON starts before the first fence (the fence is then inside it)."""
    lines = re.split(r"\r?\n", text)
    blocks: list[tuple[str, list[str]]] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        if not blocks and _json_start("\n".join(lines[: index - 1])) is not None:
            return None
        fence, info = opening.groups()
        body: list[str] = []
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence; an unclosed one (a cut-off reply) runs to the end
        blocks.append((info, body))
    if not blocks:
        return None
    tagged = [body for info, body in blocks if info.lower().startswith("json")]
    return "\n".join(tagged[0] if tagged else blocks[0][1])


def _closes(line: str, fence: str) -> bool:
    """Whether `line` closes a block opened by `fence`: the same character, at least as many."""
    mark = line.strip()
    return len(mark) >= len(fence) and mark == fence[0] * len(mark)


def _json_start(text: str) -> int | None:
    """Where the first JSON object or array in `text` opens, by the rules in the module
    docstring; None when nothing in it opens like one."""
    for bracket in re.finditer(r"[{\[]", text):
        at = bracket.start()
        opens_line = not text[text.rfind("\n", 0, at) + 1 : at].strip()
        if (_OPENS_LINE if opens_line else _OPENS_INLINE).match(text, at):
            return at
    return None


def _repaired(text: str) -> Any:
    """The object or array `text` opens with, with what follows it dropped: as it is when it is
    valid JSON, else as `json_repair` reads it; None when that is not a non-empty one (a bare
    `{}` or `[]` is only taken when it is the whole reply, by `json.loads`)."""
    is_object = text.startswith("{")
    try:
        document = _DECODER.raw_decode(text)[0]
    except (ValueError, RecursionError):
        document = _json_repaired(text, is_object)
    kind = dict if is_object else list
    return document if isinstance(document, kind) and document else None


def _json_repaired(text: str, is_object: bool) -> Any:
    try:
        document = json_repair.loads(text)
    except (ValueError, RecursionError):
        return None
    if is_object and isinstance(document, list) and document and isinstance(document[0], dict):
        return document[0]  # json_repair lists the documents it found: keep the first
    return document


#: A Markdown fenced block: the fence (``` or ~~~, three or more), an optional tag, the body.
_CODE_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[^\s`]*)[^\n]*\n"
    r"(?P<body>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.DOTALL | re.MULTILINE,
)


def code_block(reply: str, language: str) -> str | None:
    """The code of the last Markdown code block in `reply` tagged `language` (any case) or not
    tagged at all, stripped; None when there is none (no block, or only blocks in another
    language). Models asked for code often add prose around the block: it is dropped."""
    wanted = language.lower()
    found = None
    for match in _CODE_FENCE.finditer(reply):
        tag = match.group("tag").lower()
        if tag in ("", wanted):
            found = match.group("body").strip()
    return found


def code_request(language: str) -> str:
    """What an `llm_code` column adds to its prompt: a request for one code block in
    `language`. The mock model recognises this wording (`requested_language`) and answers in a
    block, so the wording lives here once."""
    return (
        f"\n\nAnswer with code in {language} only, in one Markdown code block "
        f"(```{language} ... ```)."
    )


_CODE_REQUEST = re.compile(r"in one Markdown code block \(```([a-z][a-z0-9+#._-]*) \.\.\. ```\)")


def requested_language(prompt: str) -> str | None:
    """The language `prompt` asks a code block in (`code_request`'s wording), or None."""
    match = _CODE_REQUEST.search(prompt)
    return match.group(1) if match else None
