"""Client capability sets of real editors for the language server tests.

pytest-lsp ships capabilities recorded from real editors. None of those versions knew LSP 3.18's
`textDocument.inlineCompletion`, so every set here is extended with it (as VS Code >= 1.90 and
Neovim >= 0.12 send it). Neovim 0.7 has no `workspace/configuration`; Neovim 0.11 offers UTF-8
positions first; VS Code 1.65 offers nothing (UTF-16).
"""

from __future__ import annotations

import attrs
from lsprotocol import types
from pytest_lsp import client_capabilities

# id -> pytest-lsp client spec
EDITORS = {
    "neovim-0.7": "neovim@v0.7.0",
    "neovim-0.11": "neovim@v0.11.0",
    "vscode": "visual-studio-code@v1.65.2",
}
# the sets every end-to-end test runs against
DEFAULT_EDITORS = ("neovim-0.7", "vscode")


def capabilities_for(editor: str, *, inline_completion: bool = True) -> types.ClientCapabilities:
    """The recorded capabilities of ``editor`` (a key of EDITORS), with inline completion added."""
    caps = client_capabilities(EDITORS[editor])
    if not inline_completion:
        return caps
    text_document = caps.text_document or types.TextDocumentClientCapabilities()
    text_document = attrs.evolve(
        text_document, inline_completion=types.InlineCompletionClientCapabilities(dynamic_registration=False)
    )
    return attrs.evolve(caps, text_document=text_document)


def position_encoding_of(editor: str) -> str:
    """The encoding the server must pick for ``editor``: the first one the client offers, else UTF-16."""
    caps = client_capabilities(EDITORS[editor])
    offered = caps.general.position_encodings if caps.general is not None else None
    return str(offered[0]) if offered else "utf-16"
