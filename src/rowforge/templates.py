"""Jinja2 templates over a row: sandboxed, strict, compiled once (columns and processors)."""

from __future__ import annotations

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
    try:
        return ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise _template_error(where, error) from error


def referenced_columns(source: str, where: str) -> set[str]:
    """The names a template reads (its undeclared variables)."""
    try:
        parsed = ENVIRONMENT.parse(source)
    except jinja2.TemplateSyntaxError as error:
        raise _template_error(where, error) from error
    return set(jinja2.meta.find_undeclared_variables(parsed))


def _template_error(where: str, error: jinja2.TemplateSyntaxError) -> ConfigError:
    return ConfigError(f"{where}: bad template at line {error.lineno}: {error.message}")


def render(template: jinja2.Template, row: dict[str, Any]) -> str:
    return template.render(**row)
