"""A document with a very long run of word characters (embedded data, a hex or base64 literal, a
minified bundle): every regex the server runs over the text must stay linear in it. A pattern that
tries a match at each character of the run and scans to its end each time costs seconds for such
a line, while it holds the interpreter: the event loop stalls with it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.uris import from_fs_path

from tests.lsp.conftest import Editor, options
from tests.scripted_backend import Reply, ScriptedBackend

HEX = "0123456789abcdef" * 6_250  # 100,000 word characters in one run
MINIFIED = ",".join(f"k{n}:{n}" for n in range(12_000))  # a minified object: many `name:` and no `=` on one line
ANSWER_WITHIN_S = 10.0                # quadratic scans of the run take minutes


def _firmware_module(blob: str) -> tuple[str, str]:
    """A TypeScript module that embeds a firmware image (``blob``), and the text up to a cursor after
    ``codec.de`` on a line that holds the blob too."""
    head = (
        f"export const FIRMWARE = {blob};\n"
        "export class Codec {\n  decode(hex: string): Uint8Array {\n    return new Uint8Array(hex.length / 2);\n  }\n}\n"
        "const codec: Codec = new Codec();\n"
        f"const image = codec.decode({blob}) ?? codec.de"
    )
    return head + "\n", head


@pytest.mark.parametrize("blob", [f'"{HEX}"', f"{{{MINIFIED}}}"], ids=["hex-literal", "minified-object"])
async def test_a_very_long_line_neither_stalls_the_index_update_nor_a_completion(
        blob: str, editor: Editor, backend: ScriptedBackend, tmp_path: Path) -> None:
    text, before_cursor = _firmware_module(blob)
    (tmp_path / "firmware.ts").write_text(text)
    backend.completion = Reply(chunks=["code(FIRMWARE)"])
    await editor.start_in(tmp_path, options(backend.url, debounceMs=0))
    await editor.index_built()
    uri = from_fs_path(str(tmp_path / "firmware.ts")) or ""
    editor.open(uri, text, language="typescript")
    # the outline facts read the declarations (`codec: Codec`) and member uses (`codec.decode`) of the whole text
    await editor.index_settled(timeout_s=ANSWER_WITHIN_S)

    offset = len(before_cursor)
    inline = await asyncio.wait_for(editor.inline(uri, offset), ANSWER_WITHIN_S)
    assert inline == ["code(FIRMWARE)"]
    items = await asyncio.wait_for(editor.complete(uri, offset), ANSWER_WITHIN_S)
    assert [item.insert_text or (item.text_edit.new_text if item.text_edit else "") for item in items] == \
        ["decode(FIRMWARE)"]  # the word typed (`de`) and the suggestion: the edit starts at the word
    edit = items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    assert edit.range.start.character == edit.range.end.character - 2
