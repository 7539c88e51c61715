"""Secret masking: credentials in text sent to the backend become placeholders of the same kind.

What counts (a small table of patterns, each covered by the golden tests in
``tests/lsp/test_secrets.py``):

- well-known token formats: AWS access key ids, GitHub / GitLab / Slack tokens, Slack webhooks, JWTs,
  ``Bearer`` tokens, PEM private-key blocks (multi-line, or on one line with ``\\n`` escapes);
- literal values assigned to secret-sounding names (``password``, ``secret``, ``token``, ``api_key``,
  ``AWS_SECRET_ACCESS_KEY``, ``client_secret``, ...): passwords and secrets when they are not a plain
  word, tokens and keys when the literal is long and high-entropy;
- the password of a connection string (``postgres://user:PASSWORD@host``).

What does not: UUIDs under id-like names, hashes with an algorithm prefix (lockfiles' ``sha512-...``,
``sha256:...``, ``h1:...``), values that say they are examples (``...EXAMPLE``, ``changeme``,
``${VAR}``, ``<your-token>``), and values assigned to names that say they are fakes
(``fake_token``, ``DUMMY_PASSWORD``, ``fixture_key``, ``example_secret``).

A value is replaced in place by ``<secret:KIND>`` (a private-key block's body by one such line), so
the rest of the text stays byte-for-byte the same. Results are cached per line: as the user types,
only the edited line is scanned again.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from lsp.words import identifier_words

PLACEHOLDER_MARK = "<secret:"
PLACEHOLDER = re.compile(r"<secret:([a-z0-9-]+)>")
MAX_CACHED_LINES = 50_000


def placeholder(kind: str) -> str:
    """The text that replaces a secret of this kind."""
    return f"{PLACEHOLDER_MARK}{kind}>"


@dataclass(frozen=True)
class Secret:
    """One masked value (a private key's value is its whole body, lines joined by ``\\n``)."""

    kind: str
    value: str


@dataclass(frozen=True)
class MaskedText:
    """A text with its secrets replaced, and the secrets that were replaced."""

    text: str
    secrets: tuple[Secret, ...] = ()


@dataclass
class MaskRecord:
    """Filled by the backend client for one request: what it masked, and how long masking took."""

    secrets: list[Secret] = field(default_factory=list)
    seconds: float = 0.0


# ---- names and values ----------------------------------------------------------------------------
_FAKE_WORDS = frozenset({"fake", "fakes", "dummy", "dummies", "example", "examples", "sample", "samples", "mock",
                         "mocks", "mocked", "fixture", "fixtures", "placeholder", "placeholders"})
_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase", "pwd", "pw"})
_KEY_PAIRS = {"api key": "api-key", "access key": "api-key", "private key": "secret", "secret key": "secret",
              "auth key": "api-key", "signing key": "secret", "encryption key": "secret", "master key": "secret",
              "session key": "secret", "account key": "api-key", "client secret": "secret"}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HASH_PREFIX = re.compile(r"(?i)(?:sha1|sha224|sha256|sha384|sha512|md5|blake2[bs]?|h1)[-:=]")
_EXAMPLE_MARKERS = ("example", "dummy", "fake", "placeholder", "changeme", "change_me", "redacted", "xxxx", "****",
                    "your_", "your-", "<", ">")
_AWS_SECRET_SHAPE = re.compile(r"[A-Za-z0-9/+]{40}")


def secret_kind_of_name(name: str) -> str | None:
    """The kind of secret a name promises (``DB_PASSWORD`` -> "password"), or None."""
    words = identifier_words(name)
    if not words or _FAKE_WORDS.intersection(words):
        return None
    last, pair = words[-1], " ".join(words[-2:])
    aws = "aws" in words
    if last in _PASSWORD_WORDS:
        return "password"
    if aws and (last in {"secret", "secrets"} or pair in {"access key", "secret key"}):
        return "aws-secret-key"
    if last in {"secret", "secrets"}:
        return "secret"
    if last in {"token", "tokens"}:
        return "token"
    if last == "apikey":
        return "api-key"
    if last in {"credential", "credentials", "creds"}:
        return "credential"
    return _KEY_PAIRS.get(pair)


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_like_example(value: str) -> bool:
    """Values that say they are not real: examples, templates, redactions, one repeated character."""
    low = value.lower()
    if value.startswith(("$", "{", "%", "#")) or "${" in value or "{{" in value:
        return True
    return any(marker in low for marker in _EXAMPLE_MARKERS) or len(set(value)) <= 2


def plausible_secret(kind: str, value: str) -> bool:
    """Whether a literal assigned to a name of this kind looks like a real secret."""
    if not 4 <= len(value) <= 4096 or any(c.isspace() for c in value) or looks_like_example(value):
        return False
    if _HASH_PREFIX.match(value):
        return False
    if kind in {"password", "secret", "aws-secret-key"}:
        return not (value.isalpha() and (value.islower() or value.isupper()))  # a plain word is a label
    if _UUID.fullmatch(value):
        return False
    mixed = any(c.isdigit() for c in value) or (any(c.islower() for c in value) and any(c.isupper() for c in value))
    return len(value) >= 12 and mixed and entropy(value) >= 3.0


def _token_value(value: str) -> bool:
    return not looks_like_example(value)


# ---- the pattern table ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Detector:
    """A well-known token format: its kind, its pattern (group ``v`` is the secret) and a value check."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] = _token_value


TOKEN_DETECTORS: tuple[Detector, ...] = (
    Detector("aws-access-key-id", re.compile(r"\b(?P<v>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})\b")),
    Detector("github-token", re.compile(r"\b(?P<v>gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    Detector("gitlab-token", re.compile(r"\b(?P<v>gl(?:pat|dt|rt|ptt|ft|imt|soat|cbt|oas|agent)-[A-Za-z0-9_-]{20,})")),
    Detector("slack-token", re.compile(r"\b(?P<v>xox[abposr]-[A-Za-z0-9-]{10,})")),
    Detector("slack-webhook", re.compile(r"hooks\.slack\.com/services/(?P<v>[A-Za-z0-9_/+-]{20,})")),
    Detector("jwt", re.compile(r"\b(?P<v>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})")),
    Detector("token", re.compile(r"\b[Bb]earer\s+(?P<v>[A-Za-z0-9._~+/-]{16,}=*)")),
    Detector("private-key", re.compile(
        r"PRIVATE KEY(?: BLOCK)?-----(?:\\[nr])*(?P<v>(?:\\[nr]|[A-Za-z0-9+/=:,\- ])+?)(?:\\[nr])*-----END")),
)
_CONNECTION = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/@'\"`]{0,128}:(?P<v>[^\s@/'\"`]{1,256})@")
_ASSIGNMENT = re.compile(  # a name starts only at a word's start, and never gives back: linear in the line
    r"""(?<![\w$.-])(?P<name>[A-Za-z_$][\w$.-]*+)["']?"""
    r"""(?:\s*:\s*[A-Za-z_][\w.\[\]<>|?, ]{0,40}?(?=\s*=))?"""   # a type annotation (Python, TypeScript)
    r"""\s*(?::=|=>|==|=|:)\s*"""
    r"""(?:[rRbBuUfF]{1,2})?(?P<q>["'`])(?P<v>[^"'`\s\\]{4,})(?P=q)""")
_BARE_ASSIGNMENT = re.compile(
    r"""^\s*(?:export\s+)?(?P<name>[A-Za-z_][\w.-]*)\s*[:=]\s*(?P<v>[^\s"'`#;,(){}\[\]]{6,})\s*(?:[#;].*)?$""")
_PLAIN_REFERENCE = re.compile(r"[A-Za-z_][\w.]*|[\d.]+")
_NAME_BEFORE = re.compile(r"[A-Za-z_$][\w$.-]*")
# a line is scanned only if its lower-case text contains one of these (cheaper than any regex)
_TRIGGERS = ("akia", "asia", "abia", "acca", "a3t", "gh", "gl", "xox", "eyj", "private key", "://", "bearer", "pass",
             "pw", "secret", "token", "key", "cred")
_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----\W*$")
_END = re.compile(r"^\W*-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_BODY_LINE = re.compile(r"\s*[A-Za-z0-9+/]{16,}={0,2}\s*")
_KEY_LINE = re.compile(r"\s*[A-Za-z0-9+/]{4,}={0,2}\s*")
_HEADER_LINE = re.compile(r"\s*(?:(?:Proc-Type|DEK-Info|Version|Comment|Hash|Charset): .*|=[A-Za-z0-9+/]{4})\s*")


def _fake_line(line: str, start: int) -> bool:
    """Whether a name before ``start`` on the line says the value is a fake (``FAKE_TOKEN = ...``)."""
    return any(_FAKE_WORDS.intersection(identifier_words(m.group(0))) for m in _NAME_BEFORE.finditer(line, 0, start))


def find_line_secrets(line: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every secret value on one line, left to right, not overlapping."""
    low = line.lower()
    if not any(trigger in low for trigger in _TRIGGERS):
        return []
    found: list[tuple[int, int, str]] = []
    for detector in TOKEN_DETECTORS:
        for m in detector.pattern.finditer(line):
            if detector.check(m.group("v")) and not _fake_line(line, m.start("v")):
                found.append((m.start("v"), m.end("v"), detector.kind))
    for m in _CONNECTION.finditer(line):
        if not looks_like_example(m.group("v")) and not _fake_line(line, m.start()):
            found.append((m.start("v"), m.end("v"), "password"))
    for m in _ASSIGNMENT.finditer(line):
        _add_assignment(found, m)
    bare = _BARE_ASSIGNMENT.match(line)
    if bare is not None and not _PLAIN_REFERENCE.fullmatch(bare.group("v")):
        _add_assignment(found, bare)
    found.sort(key=lambda s: (s[0], -s[1]))
    kept: list[tuple[int, int, str]] = []
    for span in found:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def _add_assignment(found: list[tuple[int, int, str]], m: re.Match[str]) -> None:
    kind = secret_kind_of_name(m.group("name"))
    value = m.group("v")
    if kind is None or _fake_line(m.string, m.start("name")):
        return
    if kind == "aws-secret-key" and not _AWS_SECRET_SHAPE.fullmatch(value):
        kind = "secret"
    if plausible_secret(kind, value):
        found.append((m.start("v"), m.end("v"), kind))


# ---- masking -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Line:
    """What masking knows about one line: its masked text, its secrets, its shape for key blocks."""

    masked: str
    secrets: tuple[Secret, ...]
    shape: str  # "" | "B" (a private key begins) | "E" (one ends) | "b" (looks like a key body line)


def _scan_line(line: str) -> _Line | None:
    spans = find_line_secrets(line)
    shape = ""
    if "PRIVATE KEY" in line:
        shape = "B" if _BEGIN.search(line) else "E" if _END.match(line) else ""
    elif _BODY_LINE.fullmatch(line) and any(c.isdigit() or c in "+/" for c in line) and \
            any(c.isupper() for c in line) and any(c.islower() for c in line):
        shape = "b"
    if not spans and not shape:
        return None
    parts: list[str] = []
    secrets: list[Secret] = []
    last = 0
    for start, end, kind in spans:
        parts += [line[last:start], placeholder(kind)]
        secrets.append(Secret(kind, line[start:end]))
        last = end
    parts.append(line[last:])
    return _Line("".join(parts), tuple(secrets), shape)


_UNSEEN = object()


class SecretMasker:
    """Masks secrets in texts; remembers each line's result, so re-masking a similar text is cheap."""

    def __init__(self, max_cached_lines: int = MAX_CACHED_LINES) -> None:
        self.max_cached_lines = max_cached_lines
        self._lines: dict[str, _Line | None] = {}

    def _scan(self, line: str) -> _Line | None:
        if len(self._lines) >= self.max_cached_lines:
            self._lines.clear()
        result = self._lines[line] = _scan_line(line)
        return result

    def mask(self, text: str) -> MaskedText:
        """The text with every secret replaced by its placeholder, and the secrets replaced."""
        lines = text.split("\n")
        results: list[Any] = list(map(self._lines.get, lines, repeat(_UNSEEN)))
        with contextlib.suppress(ValueError):  # as the user types, one or two lines are new
            index = results.index(_UNSEEN)
            while True:
                results[index] = self._scan(lines[index])
                index = results.index(_UNSEEN, index + 1)
        if not any(results):
            return MaskedText(text)
        secrets: list[Secret] = []
        out = [r.masked if r is not None else line for line, r in zip(lines, results, strict=True)]
        for r in results:
            if r is not None:
                secrets.extend(r.secrets)
        shapes = [r.shape if r is not None else "" for r in results]
        if any(shapes):
            out = _mask_key_blocks(lines, out, shapes, secrets)
        return MaskedText("\n".join(out), tuple(secrets))


def _key_line(line: str) -> bool:
    """A line of base64 key material (at least one digit, ``+``, ``/``, or mixed case)."""
    if not _KEY_LINE.fullmatch(line):
        return False
    return any(c.isdigit() or c in "+/" for c in line) or (any(c.isupper() for c in line) and
                                                          any(c.islower() for c in line))


def _in_key(line: str) -> bool:
    """Inside a BEGIN ... END block: key material, a PEM/PGP header, or a blank line."""
    return _key_line(line) or not line.strip() or bool(_HEADER_LINE.fullmatch(line))


def _key_blocks(lines: Sequence[str], shapes: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) line ranges of private-key bodies: after a BEGIN, before an END, or long runs.

    A text cut inside a key (a prompt window) has only one of the markers: the body is taken up to
    the text's end, or from its start.
    """
    blocks: list[tuple[int, int]] = []
    n, i = len(lines), 0
    while i < n:
        if shapes[i] == "B":
            j = i + 1
            while j < n and shapes[j] != "E" and _in_key(lines[j]):
                j += 1
            end = j
            while end > i + 1 and not lines[end - 1].strip():
                end -= 1
            if any(_key_line(lines[k]) for k in range(i + 1, end)):
                blocks.append((i + 1, end))
            i = j + 1 if j < n and shapes[j] == "E" else j
        elif shapes[i] == "E":
            floor = blocks[-1][1] if blocks else 0
            j = i
            while j > floor and _key_line(lines[j - 1]):
                j -= 1
            if j < i:
                blocks.append((j, i))
            i += 1
        elif shapes[i] == "b":
            j = i
            while j < n and (shapes[j] == "b" or (not shapes[j] and _key_line(lines[j]))):
                j += 1
            if j < n and shapes[j] == "E":
                i = j  # the END line takes the run
                continue
            if j - i >= 3 and sum(len(lines[k].strip()) >= 60 for k in range(i, j)) >= 2:
                blocks.append((i, j))
            i = j
        else:
            i += 1
    return blocks


def _mask_key_blocks(lines: Sequence[str], out: list[str], shapes: Sequence[str],
                     secrets: list[Secret]) -> list[str]:
    """Replace each private-key body by one placeholder line (indented like its first line)."""
    blocks: list[tuple[int, int]] = []
    for start, end in _key_blocks(lines, shapes):
        if blocks and blocks[-1][1] == start:
            start = blocks.pop()[0]  # adjacent pieces of one body: one placeholder
        blocks.append((start, end))
    if not blocks:
        return out
    result: list[str] = []
    previous = 0
    for start, end in blocks:
        result.extend(out[previous:start])
        first = lines[start]
        indent = first[: len(first) - len(first.lstrip())]
        body = "\n".join(lines[start:end])[len(indent):]
        secrets.append(Secret("private-key", body))
        result.append(indent + placeholder("private-key"))
        previous = end
    result.extend(out[previous:])
    return result


# ---- after the model answered --------------------------------------------------------------------
def reveals_secret(text: str, secrets: Sequence[Secret]) -> bool:
    """Whether ``text`` (a suggestion) contains a placeholder or any masked value (a key's body lines)."""
    if PLACEHOLDER_MARK in text:
        return True
    for secret in secrets:
        if secret.kind == "private-key":
            if any(len(part.strip()) >= 16 and part.strip() in text for part in secret.value.split("\n")):
                return True
        elif secret.value in text:
            return True
    return False


def restore_secrets(text: str, secrets: Sequence[Secret]) -> str | None:
    """Put the masked values back where a reply kept their placeholders (an edit of the user's own code).

    Returns None when a placeholder cannot be restored unambiguously: several values of its kind
    were masked, or none was.
    """
    if PLACEHOLDER_MARK not in text:
        return text
    by_kind: dict[str, set[str]] = {}
    for secret in secrets:
        by_kind.setdefault(secret.kind, set()).add(secret.value)
    ambiguous = False

    def value_of(match: re.Match[str]) -> str:
        nonlocal ambiguous
        values = by_kind.get(match.group(1), set())
        if len(values) != 1:
            ambiguous = True
            return match.group(0)
        return next(iter(values))

    restored = PLACEHOLDER.sub(value_of, text)
    return None if ambiguous else restored
