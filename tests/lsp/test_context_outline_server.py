"""Through the real server: another module's class not typed yet reaches the backend as an outline header,
imported or not yet imported."""

from __future__ import annotations

from pathlib import Path

from pygls.uris import from_fs_path

from tests.lsp.conftest import Editor, options
from tests.scripted_backend import Reply, ScriptedBackend

# excerpts of requests (PyPI): exceptions.py, and a models.py that imports what it will raise
EXCEPTIONS = (
    "class RequestException(IOError):\n    \"\"\"There was an ambiguous exception that occurred while handling your\n"
    "    request.\n    \"\"\"\n\n\n"
    "class InvalidURL(RequestException, ValueError):\n    \"\"\"The URL provided was somehow invalid.\"\"\"\n\n\n"
    "class MissingSchema(RequestException, ValueError):\n    \"\"\"The URL scheme (e.g. http or https) is missing.\"\"\"\n"
)
MODELS = (
    "from .exceptions import InvalidURL, MissingSchema\n\n\n"
    + "".join(f"def _helper_{n}(value: str) -> str:\n    return value + '{n}'\n\n\n" for n in range(80))
    + "class PreparedRequest:\n    def prepare_url(self, url: str) -> None:\n"
    "        if not url.startswith(('http:', 'https:')):\n            raise MissingSchema(url)\n"
    "        if not url[8:]:\n            "
)


RAISE = 'raise InvalidURL(f"Invalid URL {url!r}")'


async def _prompt_at_the_end(editor: Editor, backend: ScriptedBackend, tmp_path: Path, exceptions: str,
                             models: str) -> str:
    """The prompt the backend gets for an inline completion at the end of ``models`` (open, indexed)."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "exceptions.py").write_text(exceptions)
    (tmp_path / "pkg" / "models.py").write_text(models + "\n")
    backend.completion = Reply(chunks=[RAISE])
    await editor.start_in(tmp_path, options(backend.url, debounceMs=0))
    await editor.index_built()
    uri = from_fs_path(str(tmp_path / "pkg" / "models.py")) or ""
    editor.open(uri, models + "\n")
    await editor.index_settled()  # the outline facts are computed in a worker thread after the open
    assert await editor.inline(uri, len(models)) == [RAISE]
    prompt: str = backend.completion_requests()[-1].json["prompt"]
    return prompt


async def test_imported_class_reaches_the_prompt_before_its_name_is_typed(
        editor: Editor, backend: ScriptedBackend, tmp_path: Path) -> None:
    prompt = await _prompt_at_the_end(editor, backend, tmp_path, EXCEPTIONS, MODELS)
    block = prompt.split("# Path: pkg/exceptions.py\n", 1)[1].split("# Path:", 1)[0]
    assert "# class InvalidURL(RequestException, ValueError):" in block
    assert len(prompt) <= 2048 * 3.5


async def test_what_an_imported_module_also_defines_reaches_the_prompt_before_its_import(
        editor: Editor, backend: ScriptedBackend, tmp_path: Path) -> None:
    # the editor adds `InvalidURL` to the imports once the completion is taken: only MissingSchema is imported.
    # Other exceptions lie between the two, so that the code most like these lines does not show InvalidURL
    models = MODELS.replace("import InvalidURL, MissingSchema", "import MissingSchema")
    others = "".join(f"class Error{n}(RequestException):\n    \"\"\"Error number {n}.\"\"\"\n\n\n" for n in range(40))
    exceptions = EXCEPTIONS.replace("class MissingSchema", others + "class MissingSchema")
    prompt = await _prompt_at_the_end(editor, backend, tmp_path, exceptions, models)
    assert "# class InvalidURL(RequestException, ValueError):" in prompt.split("# Path: pkg/exceptions.py\n", 1)[1]



# requests' auth.py, where nothing shares a token with prepare_auth's lines (the similar code shows none of it)
AUTH = ("class AuthBase:\n    def __call__(self, r):\n        raise NotImplementedError\n\n\n"
        "class HTTPBasicAuth(AuthBase):\n    def __init__(self, username, password):\n        self.username = username\n")


async def test_a_class_the_words_at_the_cursor_name_reaches_the_prompt_before_any_import_from_its_module(
        editor: Editor, backend: ScriptedBackend, tmp_path: Path) -> None:
    # models.py imports nothing from the module yet; "basic" is a rare word of the workspace
    models = ("import re\n\n\n" + "".join(f"def _helper_{n}(value: str) -> str:\n    return value + '{n}'\n\n\n"
                                          for n in range(80))
              + "class PreparedRequest:\n    def prepare_auth(self, auth, url=''):\n        if auth:\n"
              "            # special-case basic HTTP auth\n            ")
    prompt = await _prompt_at_the_end(editor, backend, tmp_path, AUTH, models)
    assert "# class HTTPBasicAuth(AuthBase):" in prompt.partition("# Path: pkg/exceptions.py\n")[2]
