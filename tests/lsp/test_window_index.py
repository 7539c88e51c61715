"""Similar-code windows of the workspace (BM25): ranking, exclusion, updates, and their place in the prompt.

The workspace holds excerpts in the style of requests (adapters / retries), click (option parsing)
and rich (table rendering): the query shares rare identifiers with exactly one of them.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol.types import Range, TextDocumentContentChangePartial

from lsp.context.extract import SIMILAR_SHARE, build_completion_context
from lsp.context.index import WorkspaceIndex
from lsp.context.model import estimate_tokens, render_snippet
from lsp.context.window_index import WindowIndex
from lsp.documents import Document

ADAPTERS = '''\
from urllib3.util.retry import Retry

DEFAULT_POOLBLOCK = False
DEFAULT_POOLSIZE = 10
DEFAULT_RETRIES = 0


class HTTPAdapter(BaseAdapter):
    """The built-in HTTP Adapter for urllib3."""

    def __init__(self, pool_connections=DEFAULT_POOLSIZE, pool_maxsize=DEFAULT_POOLSIZE,
                 max_retries=DEFAULT_RETRIES, pool_block=DEFAULT_POOLBLOCK):
        if max_retries == DEFAULT_RETRIES:
            self.max_retries = Retry(0, read=False)
        else:
            self.max_retries = Retry.from_int(max_retries)
        self.config = {}
        self.proxy_manager = {}
        super().__init__()
        self._pool_connections = pool_connections
        self._pool_maxsize = pool_maxsize
        self._pool_block = pool_block
        self.init_poolmanager(pool_connections, pool_maxsize, block=pool_block)
'''

PARSER = '''\
def _unpack_args(args, nargs_spec):
    """Given an iterable of arguments and an iterable of nargs specifications,
    it returns a tuple with all the unpacked arguments at the first index
    and all remaining arguments as the second.
    """
    args = deque(args)
    nargs_spec = deque(nargs_spec)
    rv = []
    spos = None

    def _fetch(c):
        try:
            if spos is None:
                return c.popleft()
            else:
                return c.pop()
        except IndexError:
            return None

    while nargs_spec:
        nargs = _fetch(nargs_spec)
        if nargs is None:
            continue
        if nargs == 1:
            rv.append(_fetch(args))
        elif nargs > 1:
            x = [_fetch(args) for _ in range(nargs)]
            rv.append(tuple(x))
    return tuple(rv), list(args)
'''

TABLE = '''\
class Table(JupyterMixin):
    """A console renderable to draw a table."""

    def add_column(self, header="", footer="", *, header_style=None, footer_style=None,
                   style=None, justify="left", vertical="top", overflow="ellipsis", width=None):
        column = Column(
            _index=len(self.columns),
            header=header,
            footer=footer,
            header_style=header_style or "",
            footer_style=footer_style or "",
            style=style or "",
            justify=justify,
            vertical=vertical,
            overflow=overflow,
            width=width,
        )
        self.columns.append(column)
'''

# a new module whose author is about to configure retries like the adapter does
QUERY = '''\
class PooledSession:
    def __init__(self, max_retries=DEFAULT_RETRIES, pool_block=DEFAULT_POOLBLOCK):
        if max_retries == DEFAULT_RETRIES:
            self.max_retries = Retry(0, read=False)
'''


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _workspace(root: Path) -> None:
    _write(root, "requests/adapters.py", ADAPTERS)
    _write(root, "click/parser.py", PARSER)
    _write(root, "rich/table.py", TABLE)
    _write(root, ".gitignore", "scratch/\n")
    _write(root, "scratch/adapters_copy.py", ADAPTERS)     # ignored by git
    _write(root, "vendor_private/adapters.py", ADAPTERS)   # refused by the exclusion rules


def _index(root: Path, refused: set[str]) -> WorkspaceIndex:
    def allow(path: str, is_dir: bool) -> bool:
        return not any(part in Path(path).parts for part in refused)

    index = WorkspaceIndex([root], allow=allow, windows=WindowIndex())
    index.build_sync()
    return index


def test_the_window_sharing_rare_identifiers_ranks_first(tmp_path: Path) -> None:
    _workspace(tmp_path)
    windows = _index(tmp_path, {"vendor_private"}).windows
    assert windows is not None
    hits = windows.search(QUERY, limit=3)
    assert hits[0].path == str(tmp_path / "requests" / "adapters.py")
    assert "self.max_retries = Retry.from_int(max_retries)" in hits[0].text
    assert all(hit.score < hits[0].score for hit in hits[1:])
    # an unrelated query finds the click excerpt, not the adapter
    [best] = windows.search("nargs = _fetch(nargs_spec)\nrv.append(_fetch(args))\n", limit=1)
    assert best.path.endswith("click/parser.py")
    assert windows.search("if x:\n    return None\n") == []  # only keywords and one-letter names


def test_a_hit_carries_the_lines_that_follow_it_in_its_file() -> None:
    windows = WindowIndex()
    lines = [f"    value_{n} = parse_field_{n}(raw)" for n in range(12)] + ["    verify_fields(value_0)", "    return value_0"]
    windows.add_file("/w/m.py", "\n".join(lines))
    [hit] = windows.search("\n".join(lines[:12]), limit=1)
    assert (hit.start_line, hit.end_line) == (0, 12)
    # what the file did after code like the query: the line the next completion may write
    assert hit.following.split("\n") == lines[12:14]


def test_ignored_and_excluded_files_never_appear(tmp_path: Path) -> None:
    _workspace(tmp_path)
    refused = {"vendor_private"}
    index = _index(tmp_path, refused)
    windows = index.windows
    assert windows is not None
    paths = {hit.path for hit in windows.search(QUERY, limit=10)}
    assert str(tmp_path / "requests" / "adapters.py") in paths
    assert not any("scratch" in p or "vendor_private" in p for p in paths)
    # the rules change: the adapter is refused from now on, before any re-index has pruned it
    refused.add("requests")
    assert not any(hit.path.endswith("adapters.py") for hit in windows.search(QUERY, limit=10))


def test_an_open_document_replaces_its_files_windows(tmp_path: Path) -> None:
    _workspace(tmp_path)
    index = _index(tmp_path, {"vendor_private"})
    windows = index.windows
    assert windows is not None
    path = tmp_path / "requests" / "adapters.py"
    edited = ADAPTERS.replace("max_retries", "retry_policy").replace("Retry", "Backoff")
    index.update_document(Document(path.as_uri(), "python", 2, edited))
    hits = windows.search(QUERY, limit=10)
    assert any(hit.path == str(path) for hit in hits), "the pool settings still match"
    assert not any("max_retries" in hit.text for hit in hits if hit.path == str(path)), "stale windows are gone"
    [hit] = windows.search("self.retry_policy = Backoff.from_int(retry_policy)", limit=1)
    assert hit.path == str(path)
    assert "Backoff(0, read=False)" in hit.text
    # the disk copy, read late by the background build, does not overwrite the open document's windows
    windows.add_file(str(path), ADAPTERS)
    assert not any("max_retries" in hit.text for hit in windows.search(QUERY, limit=10) if hit.path == str(path))
    index.remove(str(path))
    assert str(path) not in windows
    assert windows.search("self.retry_policy = Backoff.from_int(retry_policy)") == []


def _session(root: Path, index: WorkspaceIndex) -> tuple[Document, str]:
    """An open document whose own window 800 lines up resembles the lines before the cursor."""
    far = ("def legacy_session(max_retries, pool_block):\n    if max_retries == DEFAULT_RETRIES:\n"
           "        legacy_retries = Retry(0, read=False)\n    return legacy_retries\n")
    filler = "".join(f"def step_{n}(value, factor):\n    return transform(value, factor) + {n}\n\n\n"
                     for n in range(200))
    text = far + "\n\n" + filler + QUERY + "        else:\n            "
    doc = Document((root / "session.py").as_uri(), "python", 1, text)
    index.update_document(doc)
    return doc, text


def test_similar_code_in_the_prompt_skips_what_the_windows_show(tmp_path: Path) -> None:
    """The document's own far window reaches the prompt; its windows that overlap the prefix (the
    best matches of all) are not sent again; similar code stays within its share of the budget."""
    _workspace(tmp_path)
    index = _index(tmp_path, {"requests", "vendor_private"})
    doc, text = _session(tmp_path, index)
    assert index.windows is not None
    best = index.windows.search(text[-400:], limit=1)[0]
    assert best.path == doc.path, "the window at the cursor matches best"
    assert best.start_line > 700
    ctx = build_completion_context(doc, len(text), index, budget_tokens=2048)
    similar = [s for s in ctx.snippets if s.kind == "similar"]
    assert [s.path for s in similar] == ["session.py"]
    assert "legacy_retries = Retry(0, read=False)" in similar[0].text
    assert "legacy_session" not in ctx.prefix, "it lies outside the prefix window"
    assert not any(s.text in ctx.prefix for s in similar), "a window the prefix shows is not sent twice"
    assert sum(estimate_tokens(render_snippet(s, "#")) for s in similar) <= 2048 * SIMILAR_SHARE
    assert estimate_tokens(ctx.prompt()) + estimate_tokens(ctx.suffix) <= 2048


def test_a_workspace_window_outranks_a_weaker_one_of_the_document(tmp_path: Path) -> None:
    _workspace(tmp_path)
    index = _index(tmp_path, {"vendor_private"})
    doc, text = _session(tmp_path, index)
    # the session's filler is dense (2.5 characters per estimated token): at 2,048 tokens the similar
    # code's share holds about 500 characters, less than the adapter's window
    ctx = build_completion_context(doc, len(text), index, budget_tokens=4096)
    similar = [s for s in ctx.snippets if s.kind == "similar"]
    assert similar[0].path == "requests/adapters.py"
    assert "self.max_retries = Retry.from_int(max_retries)" in similar[0].text


def test_edits_keep_the_windows_they_do_not_touch_and_renew_the_rest() -> None:
    windows = WindowIndex()
    text = PARSER + "\n" + TABLE
    windows.update_document("/w/mixed.py", 1, text)
    table_query = "header_style=header_style or \"\",\nfooter_style=footer_style or \"\","
    [before] = windows.search(table_query, limit=1)
    # an edit within a line of the parser: its windows change, the table's stay as they were
    windows.update_document("/w/mixed.py", 2, text.replace("rv.append(tuple(x))", "rv.append(frozenset(x))"))
    assert [h.text for h in windows.search("frozenset", limit=3)] != []
    assert all("tuple(x)" not in h.text for h in windows.search("rv.append(tuple(x))", limit=5))
    assert windows.search(table_query, limit=1) == [before]
    # a line inserted at the top shifts every window: each is found at its new place with its new text
    windows.update_document("/w/mixed.py", 3, "import collections\n" + text)
    [after] = windows.search(table_query, limit=1)
    assert after.text == "\n".join(("import collections\n" + text).split("\n")[after.start_line:after.end_line]).strip("\n")
    assert "header_style=header_style" in after.text
    assert len(windows.search("collections", limit=3)) == 1


def test_the_scopes_earlier_similar_code_keeps_its_place_while_it_still_matches(tmp_path: Path) -> None:
    """Typing on, the best match changes; the window chosen before stays first while it still
    matches well, so the prompt's start (and the backend's prefix cache) stays the same."""
    for kind in ("user", "order"):
        _write(tmp_path, f"api/{kind}s.py", (
            f"def fetch_{kind}(session, {kind}_id):\n    \"\"\"One {kind} by id, from the API (raises on a non-2xx status).\"\"\"\n"
            f"    logger.debug(\"fetching {kind} %s\", {kind}_id)\n"
            f"    response = session.get(f\"/{kind}s/{{{kind}_id}}\", timeout=DEFAULT_TIMEOUT)\n"
            f"    response.raise_for_status()\n    payload = response.json()\n"
            f"    if not payload:\n        raise NotFoundError(f\"no {kind} {{{kind}_id}}\")\n"
            f"    return {kind.title()}.from_payload(payload)\n"))
    index = _index(tmp_path, set())
    text = ("def fetch_invoice(session, invoice_id, user_id):\n    response = session.get(f\"/invoices/{invoice_id}\")\n"
            "    response.raise_for_status()\n    ")
    doc = Document((tmp_path / "api" / "invoices.py").as_uri(), "python", 1, text)
    first = build_completion_context(doc, len(text), index)
    assert next(s.path for s in first.snippets if s.kind == "similar") == "api/users.py"
    typed = "payload = response.json()\n    order = Order.from_payload(payload[\"order_id\"])\n    "
    doc.apply_change(TextDocumentContentChangePartial(range=Range(start=doc.position_at(len(text)),
                                                                  end=doc.position_at(len(text))), text=typed))
    doc.version = 2
    fresh = build_completion_context(Document(doc.uri, "python", 2, doc.text), len(doc.text), index)
    assert [s.path for s in fresh.snippets if s.kind == "similar"] == ["api/orders.py"]  # (one fits the share)
    later = build_completion_context(doc, len(doc.text), index)
    assert [s.path for s in later.snippets if s.kind == "similar"] == ["api/users.py"]


def test_files_from_disk_stop_at_the_window_limit_open_documents_do_not() -> None:
    windows = WindowIndex(max_windows=6)
    windows.add_file("/w/parser.py", PARSER)          # 5 windows
    windows.add_file("/w/table.py", TABLE)            # would pass the limit: left out
    assert "/w/parser.py" in windows
    assert "/w/table.py" not in windows
    assert windows.full
    windows.update_document("/w/table.py", 1, TABLE)  # the editor's document is always indexed
    assert windows.search("header_style footer_style", limit=1)[0].path == "/w/table.py"
