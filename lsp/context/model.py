"""The context's data: snippets, scopes, the finished context and how it renders as a prompt."""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 3.5  # a rough mean for code, where no text is at hand to estimate from

_PUNCTUATION = string.punctuation.replace("_", "").encode()  # "_" joins a name's words
_PUNCTUATION_TO_SPACE = bytes.maketrans(_PUNCTUATION, b" " * len(_PUNCTUATION))
_DIGITS_ONLY = bytes(byte if byte in string.digits.encode() else ord(" ") for byte in range(256))
_UPPERCASE = string.ascii_uppercase.encode()
# the UTF-8 lead bytes of non-ASCII characters: two-byte ones (Latin, Greek, Cyrillic, Arabic...),
# three-byte ones less CJK's (Indic, Thai, Georgian, Hangul, symbols), CJK ideographs, four-byte ones
_LEAD_2 = bytes(range(0xC0, 0xE0))
_LEAD_3 = bytes(range(0xE0, 0xE4)) + bytes(range(0xEA, 0xF0))
_LEAD_CJK = bytes(range(0xE4, 0xEA))
_LEAD_4 = bytes(range(0xF0, 0x100))

#: Tokens per unit of each of :func:`token_counts`, fitted to Llama 3's tokenizer (the default model's)
#: by ``scripts/fit_token_estimate.py``: the smallest estimate never below the real count on the
#: prompts + suffixes of ``scripts/eval_context.py`` (seeds 7, 11 and 13, all languages together and
#: TypeScript and Go alone), zod's locale files and unusual text (CSV, hex tables, Chinese prose), plus
#: 2 %. On seed 17's prompts, which it was not fitted to, the real count is 0.896 of the estimate at the
#: median and 0.992 at most. Random base64 runs up to 4 % over it.
TOKEN_WEIGHTS: dict[str, float] = {
    "characters": 0.1568, "punctuation": 0.3686, "words": 0.3801, "uppercase": 0.3006, "numbers": 3.052,
    "non_ascii_2": 2.0968, "non_ascii_3": 1.8763, "cjk": 0.6845, "non_ascii_4": 1.8763, "tabs": 0.2773,
    "newlines": 0.4396,
}


def _count(data: bytes, byte_set: bytes) -> int:
    """How many bytes of ``data`` are in ``byte_set``."""
    return len(data) - len(data.translate(None, byte_set))


def token_counts(text: str) -> dict[str, int]:
    """What the token estimate weighs: characters, punctuation, words (split at spaces and punctuation),
    capitals (camel-case humps), numbers, non-ASCII characters by their UTF-8 length (CJK apart), tabs
    and line breaks. Counted in C (``bytes.translate``), about 15 microseconds per 1,000 characters."""
    data = text.encode("utf-8", "surrogatepass")
    return {
        "characters": len(text),
        "punctuation": _count(data, _PUNCTUATION),
        "words": len(data.translate(_PUNCTUATION_TO_SPACE).split()),
        "uppercase": _count(data, _UPPERCASE),
        "numbers": len(data.translate(_DIGITS_ONLY).split()),
        "non_ascii_2": _count(data, _LEAD_2),
        "non_ascii_3": _count(data, _LEAD_3),
        "cjk": _count(data, _LEAD_CJK),
        "non_ascii_4": _count(data, _LEAD_4),
        "tabs": data.count(b"\t"),
        "newlines": data.count(b"\n"),
    }


def estimate_tokens(text: str) -> int:
    """Estimated tokens of text for the default model (Llama 3), rarely below the real count.

    Words cost about a token each; punctuation, camel-case humps, numbers, line breaks and non-ASCII
    characters add to that, while indentation costs little. A fixed 3.5 characters per token overcounts
    Python's prompts by 14 % and undercounts a third of Go's, by up to 37 %. Additive: parts can be
    estimated apart and summed.
    """
    return math.ceil(sum(TOKEN_WEIGHTS[name] * count for name, count in token_counts(text).items()))


def chars_per_token(text: str) -> float:
    """How many characters of ``text`` make a token, by :func:`estimate_tokens`."""
    return len(text) / estimate_tokens(text) if text.strip() else CHARS_PER_TOKEN


@dataclass(frozen=True)
class Snippet:
    """A piece of context shown ahead of the prefix. ``kind``: "definition" | "similar" | "import" | "outline"."""

    path: str
    text: str
    kind: str


@dataclass(frozen=True)
class Scope:
    """A function/method/class around a position; str offsets into the document text."""

    kind: str
    name: str
    start: int
    end: int
    body_start: int
    body_end: int


@dataclass(frozen=True)
class CodeContext:
    """What the completion request needs: windows, scope, imports, snippets, single/multi-line."""

    language_id: str
    path: str
    prefix: str
    suffix: str
    scope: Scope | None
    imports: tuple[str, ...]
    snippets: tuple[Snippet, ...]
    multiline: bool
    line_comment: str = "//"
    timings: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    def render_snippets(self) -> str:
        """Snippets as line-comment blocks with ``Path:`` headers, then the current file's path comment."""
        comment = self.line_comment
        parts: list[str] = []
        for snippet in self.snippets:
            parts.append(render_snippet(snippet, comment))
        parts.append(f"{comment} Path: {self.path}\n")
        return "".join(parts)

    def prompt(self) -> str:
        """Comment-prefixed snippets (each with a ``Path:`` header), the file's path comment, the prefix."""
        return self.render_snippets() + self.prefix


def render_snippet(snippet: Snippet, comment: str) -> str:
    """One snippet as a comment block: ``<comment> Path: p`` then each line commented."""
    lines = [f"{comment} Path: {snippet.path}"]
    lines.extend(f"{comment} {line}" if line.strip() else comment for line in snippet.text.split("\n"))
    return "\n".join(lines) + "\n"
