"""What the code actions need from the language server, as a protocol (like `CompletionHost`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lsprotocol import types
    from pygls.progress import Progress
    from pygls.workspace import Workspace

    from lsp.client import BackendClient
    from lsp.context.index import WorkspaceIndex
    from lsp.documents import DocumentStore
    from lsp.exclusion import ExclusionRules


class ActionsHost(Protocol):
    """The server as the actions see it: documents, index, backend, and the LSP calls they make."""

    documents: DocumentStore
    exclusion: ExclusionRules

    @property
    def index(self) -> WorkspaceIndex | None: ...

    @property
    def backend(self) -> BackendClient: ...

    @property
    def client_capabilities(self) -> types.ClientCapabilities: ...

    @property
    def position_encoding(self) -> str: ...

    @property
    def work_done_progress(self) -> Progress: ...

    @property
    def workspace(self) -> Workspace: ...

    def content_excluded(self, path: str) -> str | None: ...

    def excluded_code_actions(self, path: str) -> list[types.CodeAction] | None: ...

    def report_error_once(self, condition: str, message: str) -> None: ...

    async def workspace_apply_edit_async(
        self, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult: ...

    async def window_show_document_async(self, params: types.ShowDocumentParams) -> types.ShowDocumentResult: ...

    def window_show_message(self, params: types.ShowMessageParams) -> None: ...
