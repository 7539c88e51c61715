"""Pure post-processing of raw model output into a suggestion worth showing.

Each step is a plain function over strings, so it is tested table-driven. :func:`postprocess`
runs them in order; it returns ``None`` when the suggestion should not be shown at all.
The parse check needs a parser: `lsp.documents.worsens_parse` (an incremental re-parse).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# special tokens of the model families we serve; the first one ends the suggestion
_SPECIAL = re.compile(
    r"<\|[a-z_]+(?:\|[a-z_]+)?\|>"  # <|eot_id|> <|end_of_text|> <|endoftext|> <|fim_middle|> <|im_end|>
    r"|<\|[a-z]+_[a-z_]+\|>"
    r"|<fim[_-](?:prefix|suffix|middle|pad)>|</?fim_middle>|<file_sep>|<repo_name>"
    r"|<｜[^｜]{1,40}｜>"  # DeepSeek's full-width bars
    r"|</s>|<s>|<EOT>|<PRE>|<SUF>|<MID>|\[/?INST\]|<\|begin_of_text\|>"
)
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_REPEATED_SPAN = re.compile(r"(.{1,12}?)\1{7,}", re.DOTALL)


def strip_special_tokens(text: str) -> str:
    """Cut the text at the first special token (end of turn, FIM markers, BOS/EOS text)."""
    match = _SPECIAL.search(text)
    return text if match is None else text[: match.start()]


def is_blank(text: str) -> bool:
    """True for empty or whitespace-only text."""
    return not text.strip()


def is_repetitive(text: str) -> bool:
    """True for degenerate output: one line over and over, or a short span repeated many times."""
    stripped = text.strip()
    if not stripped:
        return True
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if len(lines) >= 4 and len(set(lines)) * 3 <= len(lines):
        return True
    match = _REPEATED_SPAN.search(stripped)
    return match is not None and (match.end() - match.start()) * 2 >= len(stripped)


def trim_suffix_overlap(completion: str, suffix: str) -> str:
    """Drop the end of ``completion`` that repeats the start of ``suffix``.

    Two cases: whole lines (the classic duplicated closing ``}`` / ``return x`` below the cursor)
    and the rest of the cursor's line (cursor inside ``f(|)``: a completion ``a, b)`` loses ``)``).
    """
    if not completion or not suffix:
        return completion
    # rest of the cursor line: the completion ends with it (ignoring trailing whitespace)
    line_rest = suffix.split("\n", 1)[0].rstrip()
    body = completion.rstrip()
    if line_rest and "\n" not in completion.rstrip("\n"):
        if body.endswith(line_rest):
            return body[: -len(line_rest)]
        # longest suffix of the completion that is a prefix of the rest of the line
        for size in range(min(len(body), len(line_rest)), 0, -1):
            if line_rest.startswith(body[-size:]) and not body[-size:].isalnum():
                return body[:-size]
    # whole lines: drop the completion's trailing lines that the suffix starts with
    comp_lines = completion.rstrip().split("\n")
    suffix_lines = [line for line in suffix.split("\n") if line.strip()]
    if len(comp_lines) > 1 and suffix_lines and not line_rest:
        # the suffix's first non-blank lines, in order
        best = 0
        for size in range(1, min(len(comp_lines) - 1, len(suffix_lines)) + 1):
            tail = [line.strip() for line in comp_lines[-size:]]
            head = [line.strip() for line in suffix_lines[:size]]
            if tail == head and any(tail):
                best = size
        if best:
            return "\n".join(comp_lines[:-best])
    return completion


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(indent: str, tab: int = 4) -> int:
    return len(indent.expandtabs(tab))


def cut_at_scope_end(completion: str, cursor_line: str, *, brace_language: bool) -> str:
    """Stop a multi-line completion where it leaves the scope the cursor is in.

    Indentation languages: the first line indented less than the cursor's block (after a line ending
    in ``:`` the block is one level deeper). Brace languages: a closing brace that closes a scope the
    completion did not open ends the suggestion before that brace's line, or at it when it closes
    the scope the cursor opened (``{|}``-style bodies are handled by the suffix overlap step).
    """
    lines = completion.split("\n")
    if len(lines) == 1:
        return completion
    base = _width(_indent_of(cursor_line)) if cursor_line.strip() else _width(cursor_line)
    opens_block = cursor_line.rstrip().endswith((":", "{", "(", "["))
    kept = [lines[0]]
    depth = sum(1 for ch in lines[0] if ch in _OPENERS) - sum(1 for ch in lines[0] if ch in _CLOSERS)
    for line in lines[1:]:
        if not line.strip():
            kept.append(line)
            continue
        width = _width(_indent_of(line))
        stripped = line.strip()
        change = sum(1 for ch in stripped if ch in _OPENERS) - sum(1 for ch in stripped if ch in _CLOSERS)
        if brace_language:
            if depth <= 0 and stripped[0] in _CLOSERS:
                if opens_block and width <= base:
                    kept.append(line)  # closes the block the cursor's line opened: that is the end
                break
            depth += change
            kept.append(line)
            if depth < 0:
                break
        else:
            limit = base + 1 if opens_block else base
            if width < limit and depth <= 0:
                break
            depth += change
            kept.append(line)
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def _brackets(text: str) -> Iterator[tuple[int, str]]:
    """The brackets of ``text`` outside string literals, with their offsets (a simple quote tracker, good
    enough for one suggestion or the lines before it). A ``'`` or ``"`` string ends at its line's end at
    the latest (an apostrophe in a comment opens none for long); triple quotes and backticks (template
    literals, Go's raw strings) span lines."""
    quote = ""
    escaped = False
    index = 0
    while index < len(text):
        ch = text[index]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote != "`":
                escaped = True
            elif text.startswith(quote, index):
                index += len(quote) - 1
                quote = ""
            elif ch == "\n" and len(quote) == 1 and quote != "`":
                quote = ""
        elif ch in "\"'`":
            quote = text[index:index + 3] if ch != "`" and text.startswith(ch * 3, index) else ch
            index += len(quote) - 1
        elif ch in _OPENERS or ch in _CLOSERS:
            yield index, ch
        index += 1


def unmatched_brackets(text: str) -> tuple[list[str], int]:
    """Openers left open by ``text`` (in order) and the index of its first closer with no opener in it.

    The second value is -1 when every closer matches an opener inside the text. Brackets inside
    string literals are ignored.
    """
    stack: list[str] = []
    for index, ch in _brackets(text):
        if ch in _OPENERS:
            stack.append(ch)
        elif stack and stack[-1] == _CLOSERS[ch]:
            stack.pop()
        else:
            return stack, index
    return stack, -1


SUFFIX_SCAN_CHARS = 4000  # how far after the cursor the bracket count looks


def unclosed_closers(text: str) -> list[tuple[str, int]]:
    """Closers in ``text`` that close something opened before it, with their offsets, in order."""
    out: list[tuple[str, int]] = []
    start = 0
    while True:
        _, stray = unmatched_brackets(text[start:])
        if stray < 0:
            return out
        out.append((text[start + stray], start + stray))
        start += stray + 1


def closed_by_suffix(opened: list[str], cursor_line: str, suffix: str) -> bool:
    """Whether the code after the cursor already closes the brackets the completion left ``opened``.

    ``raise Error(`` followed by argument lines and a ``)``: the user is retyping a call's first line,
    and the suffix's first closers that close nothing in it close the completion's openers, innermost
    first. A closer on a line indented less than the cursor's closes an enclosing block instead
    (``setup(`` … cursor … ``)`` at column 0), and so does one of another kind.
    """
    if not opened:
        return False
    closers = unclosed_closers(suffix[:SUFFIX_SCAN_CHARS])
    wanted = [_OPENERS[ch] for ch in reversed(opened)]
    if [ch for ch, _ in closers[: len(wanted)]] != wanted:
        return False
    first = closers[0][1]
    line_start = suffix.rfind("\n", 0, first) + 1
    line = suffix[line_start:first] if line_start else cursor_line + suffix[:first]
    return _width(_indent_of(line)) >= _width(_indent_of(cursor_line))


def open_brackets(text: str) -> list[tuple[str, int]]:
    """The openers ``text`` leaves open, with their offsets, innermost last (a closer of something opened
    before the text forgets what was open; brackets inside string literals are ignored)."""
    stack: list[tuple[str, int]] = []
    for index, ch in _brackets(text):
        if ch in _OPENERS:
            stack.append((ch, index))
        elif stack and stack[-1][0] == _CLOSERS[ch]:
            stack.pop()
        else:
            stack = []
    return stack


def suffix_closes_earlier(closer: str, prefix: str, suffix: str) -> bool:
    """Whether the code after the cursor closes the bracket that ``closer`` would close, opened before the
    cursor: the suffix's first closer of nothing in it is of that kind, on a line indented at least as far as
    the opener's line. ``fmt.Sprintf("...",`` then a line of arguments ending ``),`` then ``},``: the ``}``
    closes an enclosing literal, and the line's ``)`` is the call's own.
    """
    tail = prefix[-SUFFIX_SCAN_CHARS:]
    opened = open_brackets(tail)
    if not opened or opened[-1][0] != _CLOSERS[closer]:
        return True  # what it closes is out of sight: trust the suffix
    closers = unclosed_closers(suffix[:SUFFIX_SCAN_CHARS])
    if not closers or closers[0][0] != closer:
        return False
    opener_line = tail[tail.rfind("\n", 0, opened[-1][1]) + 1:]
    at = closers[0][1]
    line = suffix[suffix.rfind("\n", 0, at) + 1:at] if "\n" in suffix[:at] else prefix.rsplit("\n", 1)[-1]
    return _width(_indent_of(line)) >= _width(_indent_of(opener_line))


def balance_brackets(completion: str, suffix: str, cursor_line: str = "", prefix: str = "") -> str:
    """Balance only the brackets the completion opened.

    A closer that closes a bracket opened before the cursor is left to the code after the cursor when
    that code already closes it (the suggestion is cut there): the rest of the line starts with it, or the
    line is otherwise finished and the following lines close that bracket (:func:`suffix_closes_earlier`,
    given the ``prefix``). Brackets the completion opened and did not close on a single-line suggestion are
    closed, unless the rest of the line closes them or the following lines do (:func:`closed_by_suffix`).
    """
    stack, stray = unmatched_brackets(completion)
    line_rest = suffix.split("\n", 1)[0].strip()
    if stray >= 0:
        closer = completion[stray]
        if line_rest.startswith(closer) or (not line_rest and suffix_closes_earlier(closer, prefix + completion[:stray],
                                                                                    suffix)):
            # the suffix closes it: keep what comes before
            head = completion[:stray]
            if line_rest.startswith(closer) or head.strip():
                completion = head.rstrip() if "\n" in head else head
                stack, _ = unmatched_brackets(completion)
    if stack and "\n" not in completion:
        closers = "".join(_OPENERS[ch] for ch in reversed(stack))
        if not line_rest.startswith(closers[:1]) and not closed_by_suffix(stack, cursor_line, suffix):
            completion = completion + closers
    return completion


def fix_indentation(completion: str, cursor_line: str, indent_unit: str) -> str:
    """Make the suggestion's indentation match the document.

    Tabs/spaces follow ``indent_unit``; when a multi-line suggestion starts at an empty cursor line
    but its body is indented from column 0, it is shifted to the cursor's indentation.
    """
    lines = completion.split("\n")
    if len(lines) == 1:
        return completion
    use_tabs = indent_unit == "\t"
    width = len(indent_unit.expandtabs(4)) or 4
    out = [lines[0]]
    for line in lines[1:]:
        indent = _indent_of(line)
        columns = _width(indent)
        fixed = "\t" * (columns // 4) + " " * (columns % 4) if use_tabs else " " * columns
        if not use_tabs and "\t" in indent:
            fixed = " " * (indent.count("\t") * width + indent.count(" "))
        out.append(fixed + line[len(indent):] if line.strip() else "")
    # a block that follows an empty, indented cursor line must not start left of the cursor
    if not cursor_line.strip() and cursor_line and lines[0] == "":
        base = _width(cursor_line)
        body = [line for line in out[1:] if line.strip()]
        if body:
            least = min(_width(_indent_of(line)) for line in body)
            if least < base:
                shift = (" " * (base - least)) if not use_tabs else "\t" * ((base - least) // 4)
                out = [out[0]] + [shift + line if line.strip() else line for line in out[1:]]
    return "\n".join(out)


def first_line(completion: str) -> str:
    """The suggestion up to the first line break after some text (single-line mode)."""
    if "\n" not in completion:
        return completion
    head, _, rest = completion.partition("\n")
    if head.strip():
        return head
    # leading break (cursor at end of line): keep the next line with its indentation
    nxt = rest.split("\n", 1)[0]
    return "\n" + nxt if nxt.strip() else ""


@dataclass(frozen=True)
class PostprocessInput:
    """What the post-processing needs to know besides the raw text."""

    prefix: str  # document text before the cursor (at least the cursor's line)
    suffix: str  # document text after the cursor
    multiline: bool
    brace_language: bool = False
    indent_unit: str = "    "


def postprocess(raw: str, ctx: PostprocessInput) -> str | None:
    """Turn raw model output into the suggestion to show, or None to show nothing."""
    text = strip_special_tokens(raw).replace("\r\n", "\n")
    if is_blank(text):
        return None
    cursor_line = ctx.prefix.rsplit("\n", 1)[-1]
    if not ctx.multiline:
        text = first_line(text)
    text = fix_indentation(text, cursor_line, ctx.indent_unit)
    if "\n" in text.strip("\n"):
        text = cut_at_scope_end(text, cursor_line, brace_language=ctx.brace_language)
    text = trim_suffix_overlap(text, ctx.suffix)
    text = balance_brackets(text, ctx.suffix, cursor_line, ctx.prefix)
    text = text.rstrip() if "\n" in text else text.rstrip("\n")
    if not cursor_line.strip() and text.startswith("\n") and not ctx.multiline:
        text = text.lstrip("\n")
    if is_blank(text) or is_repetitive(text):
        return None
    return text
