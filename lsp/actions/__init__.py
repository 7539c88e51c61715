"""Code actions: explain, generate tests, implement, document, fix, translate and ask.

`feature.ActionsFeature` is what ``lsp/server.py`` delegates ``textDocument/codeAction``,
``codeAction/resolve`` and ``workspace/executeCommand`` to; `runner` runs a picked action (progress,
cancellation, delivery), `targeting` snapshots the code it works on, and one module per action
(explain.py, tests.py, ...) says what to ask the model and what to do with its reply. Every run
reports work-done progress, is cancellable from the editor (which closes the backend stream), and
never changes a document whose version moved since the action was listed.
"""

from lsp.actions.feature import ASK_COMMAND, RUN_COMMAND, SHOW_COMMAND, ActionsFeature

__all__ = ["ASK_COMMAND", "RUN_COMMAND", "SHOW_COMMAND", "ActionsFeature"]
