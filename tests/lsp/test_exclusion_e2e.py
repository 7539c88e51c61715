"""Content exclusion and secret masking end to end: the real `python -m lsp` over stdio (pytest-lsp), a
scripted backend that records every request, and a workspace with `.env`, `id_rsa`,
`config/secrets.yml`, a `.teampilotignore` excluding `private/`, a `.gitignore`d `build/`, and source
files that import from `private/` and hold literal AWS keys, a GitHub token and a PEM block.

Secret-shaped values are assembled from pieces so that this file holds none verbatim.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.actions_client import ActionEditor, pick
from tests.lsp.conftest import SERVER_COMMAND, options, server_env
from tests.scripted_backend import Reply, ScriptedBackend

ANSWERS_CACHE = tempfile.mkdtemp(prefix="teampilot-exclusion-cache-")

AKIA = "AKIA" + "7RTXQ2MVB4NDKLPZ"
AWS_SECRET = "Zr8pW3nV+q1Lx7/kT0bYs5Hd" + "2mCf9gJe4aRu6iOy"
GITHUB_TOKEN = "ghp_" + "Vx8cR2nLq5Tz1mKw7Ys3Bd9Fh4Jp6Ga0Ue2Ni"
DEPLOY_PASSWORD = "Depl0y-" + "Pa55!"
PEM_BODY = ["MIIEpAIBAAKCAQEA3Tz2mcQ8vLk1YxR7bW9nE4sGq0pJ6fHdU2aZ5oC3iK8lM1tN",
            "Vx7bQ2wE9rT4yU6iO0pA3sD5fG8hJ1kL4zX7cV0bN3mQ6wE9rT2yU5iO8pA1sD4f",
            "G7hJ0kL3zX6cV9bN2mQ5wE8rT1yU4iO7pA0sD3fG6hJ9kL2zX5cV8bN1mQ4wE7r",
            "T0yU3iO6pA9sD2fG5hJ8kL1zX4cV7bN0mQ3w=="]
PEM_IN_SOURCE = "\n        ".join(PEM_BODY)  # as it sits in the source below, before the dedent
ENV_SECRET = "env-" + "Sup3rS3cret-77"
RSA_BODY = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABlwAAAAdzc2gtcn",
            "NhAAAAAwEAAQAAAYEAu7W2K9xQ3mZ8vB1nC4dF6gH0jK2lL5pO8iU7yT1rE4wQ9aS3dZ6x"]
YAML_SECRET = "sk_live_" + "9Hq2LyjWDarjtT1zdp7dcQe"

WORKSPACE = {
    ".env": f"AWS_SECRET_ACCESS_KEY={ENV_SECRET}\nDATABASE_URL=postgres://app:{ENV_SECRET}@db.internal:5432/app\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(RSA_BODY) + "\n-----END OPENSSH PRIVATE KEY-----\n",
    "config/secrets.yml": f"production:\n  stripe_api_key: {YAML_SECRET}\n  webhook_signing_secret: whsec-{ENV_SECRET}\n",
    ".teampilotignore": "private/\n",
    ".gitignore": "build/\n",
    "private/__init__.py": "",
    "private/vault.py": '''
        PRIVATE_SALT = "vault-salt-7f3a9c"


        def private_helper(amount: int) -> int:
            """Private pricing rule that must never leave the machine."""
            return amount * 42 + len(PRIVATE_SALT)
        ''',
    "private/pricing.py": '''
        import boto3


        def session():
            return boto3.Session(aws_access_key_id=AWS_ACCESS_KEY_ID, aws_secret_access_key=AWS_SECRET_ACCESS_KEY)


        def price(amount: int) -> str:
            total = private_helper(amount)
            return format_price(total) + PRIVATE_MARGIN_NOTE
        ''',
    "build/generated.py": '''
        def built_helper(rows: list[int]) -> int:
            """Generated aggregation kept out of prompts."""
            return sum(rows) * 7 + 3
        ''',
    "src/__init__.py": "",
    "src/util.py": '''
        def format_price(cents: int) -> str:
            """Format cents as a price."""
            return f"${cents / 100:.2f}"
        ''',
    "src/app.py": f'''
        import boto3

        from build.generated import built_helper
        from private.vault import private_helper
        from src.util import format_price

        AWS_ACCESS_KEY_ID = "{AKIA}"
        AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
        GITHUB_TOKEN = "{GITHUB_TOKEN}"
        DEPLOY_KEY = """-----BEGIN RSA PRIVATE KEY-----
        {PEM_IN_SOURCE}
        -----END RSA PRIVATE KEY-----"""


        def session():
            return boto3.Session(aws_access_key_id=AWS_ACCESS_KEY_ID, aws_secret_access_key=AWS_SECRET_ACCESS_KEY)


        def price(amount: int) -> str:
            total = private_helper(amount)
            return format_price(total)


        def legacy_client():
            return connect(user="deploy", password="{DEPLOY_PASSWORD}")


        def build_total(rows: list[int]) -> int:
            return built_helper(rows)
        ''',
}
EXCLUDED = {  # file -> (language id, the rule the status must name)
    ".env": ("plaintext", 'built-in pattern ".env*"'),
    "id_rsa": ("plaintext", 'built-in pattern "id_rsa*"'),
    "config/secrets.yml": ("yaml", 'built-in pattern "secrets.*"'),
    "private/vault.py": ("python", '.teampilotignore:1 "private/"'),
    "private/pricing.py": ("python", '.teampilotignore:1 "private/"'),
    "build/generated.py": ("python", '.gitignore:1 "build/"'),
}
SECRETS = [AKIA, AWS_SECRET, GITHUB_TOKEN, DEPLOY_PASSWORD, ENV_SECRET, YAML_SECRET, *PEM_BODY, *RSA_BODY]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND,
                                              server_env=server_env(XDG_CACHE_HOME=ANSWERS_CACHE)))
async def exclusion_client(client: LanguageClient) -> AsyncIterator[None]:
    """A fresh `python -m lsp` per test whose answers folder is a temporary cache."""
    yield
    with contextlib.suppress(Exception):  # the test already failed; make sure the process goes away
        await asyncio.wait_for(client.shutdown_session(), 10)
    if client._server is not None and client._server.returncode is None:
        client._server.kill()


@pytest.fixture
def vscode(exclusion_client: LanguageClient) -> ActionEditor:
    """The server driven as VS Code (resolve, disabled code actions, file watchers, progress)."""
    return ActionEditor(exclusion_client, "vscode")


@pytest.fixture(params=["vscode", "no-resolve"])
def editor(request: pytest.FixtureRequest, exclusion_client: LanguageClient) -> ActionEditor:
    """VS Code, and Neovim 0.7's set without resolve support (no disabled actions, no watchers)."""
    return ActionEditor(exclusion_client, request.param)


def make_workspace(root: Path) -> Path:
    """Write the workspace's files under ``root``."""
    for name, text in WORKSPACE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def excluded_lines(root: Path) -> list[str]:
    """Every line of every excluded file (stripped) that no allowed file has too (the trivial ones left out)."""
    allowed = {line.strip() for name in WORKSPACE if name not in EXCLUDED
               for line in (root / name).read_text(encoding="utf-8").splitlines()}
    lines: list[str] = []
    for name in EXCLUDED:
        lines += [line.strip() for line in (root / name).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if len(line) >= 8 and line not in allowed]


async def start(editor: ActionEditor, root: Path, backend: ScriptedBackend) -> None:
    """initialize in the workspace and wait until the index is built (so retrieval could leak)."""
    await editor.start_in(root, options(backend.url))
    await editor.index_built(20)


def latest_status(editor: ActionEditor) -> dict[str, Any]:
    """The last `teampilot/status` the editor received."""
    return editor.statuses[-1] if editor.statuses else {}


async def ask(editor: ActionEditor, uri: str, offset: int, question: str) -> dict[str, Any]:
    """Run `teampilot.ask` at ``offset``; its {"ok", "message"} answer."""
    result = await editor.client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="teampilot.ask",
        arguments=[{"uri": uri, "position": editor.position(uri, offset), "question": question}]))
    return {k: getattr(result, k) for k in ("ok", "message")} if not isinstance(result, dict) else result


def all_request_text(backend: ScriptedBackend) -> str:
    """Every request body the backend received, as JSON text."""
    with backend._lock:
        return "\n".join(json.dumps(r.json) for r in backend.requests)


async def test_nothing_secret_or_excluded_reaches_the_backend(vscode: ActionEditor, backend: ScriptedBackend,
                                                             tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    await start(vscode, root, backend)
    assert [r.method for r in vscode.registrations] == ["workspace/didChangeWatchedFiles"]
    # excluded documents are open (recent documents feed similar-code windows) ...
    for name, (language, _) in EXCLUDED.items():
        vscode.open_file(root / name, language)
    app = vscode.open_file(root / "src" / "app.py", "python")
    util = vscode.open_file(root / "src" / "util.py", "python")
    text = vscode.texts[app]
    backend.completion = Reply(chunks=["amount"])
    # ... completions all over the allowed files: next to the private import's use, inside the PEM block,
    # after the gitignored helper, at the end
    positions = [text.index("private_helper(amount)") + len("private_helper("), text.index(PEM_BODY[1]) + 10,
                 text.index("built_helper(rows)") + len("built_helper("), len(text)]
    for offset in positions:
        await vscode.inline(app, offset)
    await vscode.inline(util, len(vscode.texts[util]))
    prompts = [r.json["prompt"] for r in backend.completion_requests()]
    assert len(prompts) == 5
    assert "# Path: src/util.py" in prompts[0]  # retrieval from the workspace index works ...
    assert "private_helper(amount: int)" not in prompts[0]  # ... and skips the excluded file
    assert "<secret:aws-access-key-id>" in prompts[1]
    assert "<secret:private-key>" in prompts[1]
    # every code action at a function that calls into private/, and teampilot.ask with a secret in the question
    backend.chat = Reply(chunks=["```python\ndef price(amount: int) -> str:\n    \"\"\"Priced.\"\"\"\n"
                                 "    total = private_helper(amount)\n    return format_price(total)\n```"])
    actions = await vscode.actions_at(app, text.index("total = private_helper"))
    assert len(actions) >= 4
    for action in actions:
        await vscode.run(action)
    answer = await ask(vscode, app, text.index("GITHUB_TOKEN ="), f"is {GITHUB_TOKEN} safe to keep here?")
    assert answer["ok"], answer
    assert len(backend.chat_requests()) == len(actions) + 1
    assert "is <secret:github-token> safe to keep here?" in json.dumps(backend.chat_requests()[-1].json)
    sent = all_request_text(backend)
    leaked = [s for s in SECRETS if s in sent] + [line for line in excluded_lines(root) if json.dumps(line)[1:-1] in sent]
    assert leaked == []


async def test_an_edit_gets_the_masked_value_back_and_a_suggestion_cannot(vscode: ActionEditor,
                                                                         backend: ScriptedBackend,
                                                                         tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    await start(vscode, root, backend)
    app = vscode.open_file(root / "src" / "app.py", "python")
    text = vscode.texts[app]
    backend.chat = Reply(chunks=['```python\ndef legacy_client():\n    from db import connect\n\n'
                                 '    return connect(user="deploy", password="<secret:password>")\n```'])
    line = text[: text.index("return connect(")].count("\n")
    undefined = types.Diagnostic(range=types.Range(types.Position(line, 11), types.Position(line, 18)),
                                 message="undefined name 'connect'", severity=types.DiagnosticSeverity.Error)
    fix = pick(await vscode.actions_at(app, text.index("return connect("), diagnostics=[undefined]), "Fix")
    edit = await vscode.run(fix)
    assert edit is not None
    inserted = "".join(e.new_text for change in edit.document_changes or [] if isinstance(change, types.TextDocumentEdit)
                       for e in change.edits if isinstance(e, types.TextEdit))
    assert f'password="{DEPLOY_PASSWORD}"' in inserted  # the user's own value, back in the user's own code
    assert "<secret:" not in inserted
    assert "<secret:password>" in json.dumps(backend.chat_requests()[-1].json)
    assert DEPLOY_PASSWORD not in json.dumps(backend.chat_requests()[-1].json)
    # a suggestion that brings back a masked value (or its placeholder) is never shown
    end = text.index("def build_total")
    for reply in (f'"{AWS_SECRET}"', '"<secret:aws-secret-key>"'):
        backend.completion = Reply(chunks=[reply])
        vscode.type(app, end, "\n")
        end += 1
        assert await vscode.inline(app, end) == []
    stats = await vscode.stats()
    assert stats["secretsDropped"] == 2


async def test_excluded_files_are_inactive_and_send_nothing(editor: ActionEditor, backend: ScriptedBackend,
                                                           tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    await start(editor, root, backend)
    await editor.wait_status(lambda s: s["state"] == "ok")
    before = len(backend.requests)
    for name, (language, rule) in EXCLUDED.items():
        uri = editor.open_file(root / name, language)
        assert await editor.inline(uri, len(editor.texts[uri])) == []
        status = await editor.wait_status(lambda s, n=name: s["state"] == "inactive" and n in s["message"])
        assert status["message"] == f"teampilot is off for {name}: excluded by {rule}"
        actions = await editor.actions_at(uri, 0)
        if editor.kind == "vscode" and language == "python":  # VS Code shows why, greyed out
            assert [(a.title, a.disabled.reason if a.disabled else None) for a in actions] == [
                ("teampilot: not available in this file", status["message"])]
        else:
            assert actions == []
        answer = await ask(editor, uri, 0, "what does this do?")
        assert not answer["ok"]
        assert rule in answer["message"]
    assert len(backend.requests) == before
    # an allowed file: active again at once
    app = editor.open_file(root / "src" / "app.py", "python")
    assert await editor.inline(app, len(editor.texts[app])) == ["scripted"]
    assert latest_status(editor)["state"] == "ok"


async def test_editing_teampilotignore_takes_effect_at_once(vscode: ActionEditor, backend: ScriptedBackend,
                                                            tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    await start(vscode, root, backend)
    app = vscode.open_file(root / "src" / "app.py", "python")
    vault = vscode.open_file(root / "private" / "vault.py", "python")
    at_call = vscode.texts[app].index("private_helper(amount)") + len("private_helper(")
    ignore = vscode.open_file(root / ".teampilotignore", "plaintext")
    assert await vscode.inline(vault, len(vscode.texts[vault])) == []
    # the buffer changes (unsaved): private/ is no longer excluded, at once
    vscode.replace_all(ignore, "# nothing excluded\n")
    assert await vscode.inline(vault, len(vscode.texts[vault])) == ["scripted"]
    assert latest_status(vscode)["state"] == "ok"
    updates = await vscode.index_settled()
    vscode.client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=vault)))  # now indexed like any file (in a worker thread)
    await vscode.index_settled(updates)
    await vscode.inline(app, at_call)
    assert "private_helper(amount: int)" in backend.completion_requests()[-1].json["prompt"]  # the control
    # and back: excluded again at once, for the file and for retrieval from it
    vscode.replace_all(ignore, "private/\n")
    assert await vscode.inline(vault, len(vscode.texts[vault])) == []
    assert latest_status(vscode)["state"] == "inactive"
    vscode.type(app, at_call, "1, ")
    await vscode.inline(app, at_call + 3)
    assert "private_helper(amount: int)" not in backend.completion_requests()[-1].json["prompt"]
    # on disk, reported by the file watcher the server registered: at once as well
    vscode.client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=ignore)))
    (root / ".teampilotignore").write_text("private/\nsrc/\n", encoding="utf-8")
    vscode.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[types.FileEvent(
        uri=from_fs_path(str(root / ".teampilotignore")) or "", type=types.FileChangeType.Changed)]))
    requests = len(backend.completion_requests())
    assert await vscode.inline(app, len(vscode.texts[app])) == []
    await vscode.wait_status(lambda s: s["message"] == 'teampilot is off for src/app.py: excluded by '
                                                      '.teampilotignore:2 "src/"')
    assert len(backend.completion_requests()) == requests


async def test_masking_keeps_the_prompt_otherwise_identical(vscode: ActionEditor, backend: ScriptedBackend,
                                                            tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    await start(vscode, root, backend)
    app = vscode.open_file(root / "src" / "app.py", "python")
    original = vscode.texts[app]
    cursor = original.index("    return built_helper(rows)") + len("    return ")
    updates = await vscode.index_settled()  # (the open document's windows are indexed in a worker thread)
    await vscode.inline(app, cursor)
    masked = backend.completion_requests()[-1].json
    # the same file with every secret replaced by its placeholder by hand (reopened, so that no context
    # is carried over): the same prompt, byte for byte
    by_hand = (original.replace(AKIA, "<secret:aws-access-key-id>").replace(AWS_SECRET, "<secret:aws-secret-key>")
               .replace(GITHUB_TOKEN, "<secret:github-token>").replace(DEPLOY_PASSWORD, "<secret:password>")
               .replace("\n".join(PEM_BODY), "<secret:private-key>"))
    vscode.client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=app)))
    vscode.open(app, by_hand)
    await vscode.index_settled(updates)
    await vscode.inline(app, cursor - (len(original) - len(by_hand)))
    plain = backend.completion_requests()[-1].json
    assert masked["prompt"] == plain["prompt"]
    assert masked["suffix"] == plain["suffix"]
    assert by_hand.split("\n\n\ndef session")[0] in masked["prompt"]
