"""The words of an identifier, for matching names by meaning (secret-sounding names, on-topic callees)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def identifier_words(name: str) -> list[str]:
    """The lower-case words of an identifier (snake_case, camelCase, SCREAMING_CASE, dotted, digit runs)."""
    return [w.lower() for w in _WORD.findall(name)]
