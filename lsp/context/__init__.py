"""Tree-sitter context for completions and code actions (no I/O to the backend).

Modules: ``languages`` (grammars, queries, comment syntax), ``index`` (workspace definitions),
``syntax`` (enclosing scope, imports), ``retrieval`` (definitions the code uses), ``similar``
(similar snippets), ``multiline`` (single line or block), ``model`` (the data), ``extract``
(the completion context; re-exports the public names).
"""
