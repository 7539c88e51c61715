"""Single line or block: what the cursor's syntactic position asks the completion for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp.documents import Document


def is_multiline_position(doc: Document, offset: int) -> bool:
    """Whether the cursor's syntactic position asks for a block rather than the rest of a line."""
    line = doc.line_of(offset)
    start, end = doc.line_start(line), doc.line_end(line)
    before = doc.text[start:offset]
    after = doc.text[offset:end]
    if after.strip() and after.strip() not in {")", "}", "]", ");", "};", ")}", "})", "):"}:
        return False  # mid-line: finish this line
    stripped = before.rstrip()
    if stripped:
        if stripped.endswith((":", "{")) and not stripped.lstrip().startswith(("#", "//", "*")):
            # `case x:` / labels stay multi-line too; dict literal `{` as well
            return not (doc.language is not None and not doc.language.indent_blocks and stripped.endswith(":")
                        and not stripped.lstrip().startswith(("case", "default")))
        return False
    # blank line: multi-line when inside an empty block
    prev_line = line - 1
    while prev_line >= 0 and not doc.line_text(prev_line).strip():
        prev_line -= 1
    if prev_line < 0:
        return False
    previous = doc.line_text(prev_line).rstrip()
    if not previous.endswith((":", "{", "=>")) or previous.lstrip().startswith(("#", "//")):
        return False
    prev_indent = len(previous) - len(previous.lstrip())
    next_line = line + 1
    while next_line < doc.line_count and not doc.line_text(next_line).strip():
        next_line += 1
    if next_line >= doc.line_count:
        return True
    following = doc.line_text(next_line)
    next_indent = len(following) - len(following.lstrip())
    return next_indent <= prev_indent
