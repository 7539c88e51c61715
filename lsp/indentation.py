"""The one rule for a file's indentation unit, used by completion post-processing and the actions."""

from __future__ import annotations

import re

_INDENTED_LINE = re.compile(r"^([ \t]+)\S", re.MULTILINE)


def indent_unit(text: str) -> str:
    """A file's indentation step, guessed from (a window of) its text: a tab when most indented
    lines start with one, else the smallest run of spaces if it is 2 or 4, else 4 spaces."""
    tabs = spaces = 0
    smallest = 8
    for match in _INDENTED_LINE.finditer(text):
        indent = match.group(1)
        if indent.startswith("\t"):
            tabs += 1
        else:
            spaces += 1
            smallest = min(smallest, len(indent))
    if tabs > spaces:
        return "\t"
    return " " * (smallest if smallest in (2, 4) else 4)
