"""The words of an identifier, for matching names by meaning (secret-sounding names, on-topic callees)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def identifier_words(name: str) -> list[str]:
    """The lower-case words of an identifier (snake_case, camelCase, SCREAMING_CASE, dotted, digit runs)."""
    return [w.lower() for w in _WORD.findall(name)]


def name_words(name: str) -> frozenset[str]:
    """The words of an identifier worth matching: lower case, no short ones or numbers (``parseURLQuery`` -> parse,
    url, query)."""
    return frozenset(w for w in identifier_words(name) if len(w) > 2 and not w.isdigit())
