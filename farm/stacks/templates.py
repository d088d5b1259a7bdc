"""The one template dialect of stack recipes (process and compose alike): Jinja with strict names, where a line
that holds only a block tag (``{% if %}``, ``{% for %}``, …) leaves nothing in the output, not even its newline.

Jinja's `trim_blocks` drops the newline after a block tag and `lstrip_blocks` the spaces before one at the start
of a line; a file's last newline is kept; nothing is escaped (these are config files and command lines, not HTML).
README, "Writing a stack", shows the dialect to stack authors.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

_ENVIRONMENT = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                                  lstrip_blocks=True, autoescape=False)


def render(text: str, context: dict[str, Any]) -> str:
    """``text`` rendered as a template with ``context``; jinja2.TemplateError when it is malformed or names an
    undefined value."""
    return _compiled(text).render(**context)


@lru_cache(maxsize=1024)
def _compiled(text: str) -> jinja2.Template:
    """A template compiled once: a deployment renders each command part per replica, a sweep each file per group."""
    return _ENVIRONMENT.from_string(text)
