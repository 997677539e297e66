"""Jinja2 templates over a row: sandboxed, strict, compiled once (columns and processors).

A template's source must be a string; anything else, and any syntax error, is a `ConfigError`
naming the field (`where`). Compiling is cached by source, so a config checked, validated and
compiled compiles each distinct template once.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from rowforge.errors import ConfigError

ENVIRONMENT = jinja2.sandbox.ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
)


def compile_template(source: str, where: str) -> jinja2.Template:
    """Compile `source` or raise `ConfigError` naming `where` (the field path) and the line."""
    compiled = _compile(source) if isinstance(source, str) else _not_a_string(source)
    if isinstance(compiled, str):
        raise ConfigError(f"{where}: {compiled}")
    return compiled


def template_problem(source: object) -> str | None:
    """What is wrong with `source` as a template (`bad template at line 2: ...`), or None."""
    compiled = _compile(source) if isinstance(source, str) else _not_a_string(source)
    return compiled if isinstance(compiled, str) else None


def referenced_columns(source: str, where: str) -> set[str]:
    """The names a template reads (its undeclared variables)."""
    compile_template(source, where)
    return set(_variables(source))


def _not_a_string(source: object) -> str:
    from rowforge.models.config import describe

    return f"must be a string (a Jinja2 template), got {describe(source)}"


@functools.lru_cache(maxsize=2048)
def _compile(source: str) -> jinja2.Template | str:
    """The compiled template, or a one-line description of why it does not compile."""
    try:
        return ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        return f"bad template at line {error.lineno}: {error.message}"
    except RecursionError:
        return "bad template: nested too deeply"


@functools.lru_cache(maxsize=2048)
def _variables(source: str) -> frozenset[str]:
    return frozenset(jinja2.meta.find_undeclared_variables(ENVIRONMENT.parse(source)))


def render(template: jinja2.Template, row: dict[str, Any]) -> str:
    return template.render(**row)
