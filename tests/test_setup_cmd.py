"""`python -m lsp setup EDITOR`: the snippets render, parse in their own format, match editors/, and --write never loses a user's file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lsp import setup_cmd
from lsp.setup_cmd import EDITORS, render, render_defaults
from tests.scripted_backend import ScriptedBackend

REPO = Path(__file__).resolve().parents[1]
URL = "http://gpu-box.internal:8000/v1"
KEY = 'tp-"quoted"\\key'  # quotes and a backslash: must be escaped in every format
MODEL = "team/llama-3-8b"


def parse_json_with_line_comments(text: str) -> Any:
    """Sublime and Zed settings allow // comments; ours use them on whole lines only."""
    return json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))


def rendered(editor: str) -> str:
    return render(EDITORS[editor], url=URL, api_key=KEY, model=MODEL, python="/opt/venv/bin/python")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away HOME and XDG_CONFIG_HOME, so --write never touches the real ones."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.delenv("TEAMPILOT_BACKEND_URL", raising=False)
    monkeypatch.delenv("TEAMPILOT_API_KEY", raising=False)
    monkeypatch.delenv("TEAMPILOT_MODEL", raising=False)
    return tmp_path


@pytest.mark.parametrize("editor", sorted(EDITORS))
def test_editors_folder_matches_the_shipped_snippets(editor: str) -> None:
    """editors/ holds exactly the packaged templates filled with the defaults."""
    setup = EDITORS[editor]
    shipped = (REPO / setup.editor_file).read_text(encoding="utf-8")
    assert shipped == render_defaults(setup), f"{setup.editor_file} is out of step with lsp/setup_snippets/{setup.template}"
    assert "{{" not in shipped


@pytest.mark.parametrize("editor", sorted(EDITORS))
def test_every_placeholder_is_filled(editor: str) -> None:
    text = rendered(editor)
    assert "{{" not in text
    assert "}}" not in text
    assert URL in text


def test_lsp_settings_in_json_formats() -> None:
    vscode = json.loads(rendered("vscode"))
    assert vscode["teampilot.backend.url"] == URL
    assert vscode["teampilot.backend.apiKey"] == KEY
    assert vscode["teampilot.pythonPath"] == "/opt/venv/bin/python"

    client = parse_json_with_line_comments(rendered("sublime"))["clients"]["teampilot"]
    assert client["command"] == ["/opt/venv/bin/python", "-m", "lsp", "--stdio"]
    assert client["initializationOptions"]["backend"] == {"url": URL, "apiKey": KEY, "model": MODEL}
    assert client["settings"]["teampilot"] == client["initializationOptions"]


def test_helix_languages_toml() -> None:
    config = tomllib.loads(rendered("helix"))
    server = config["language-server"]["teampilot"]
    assert server["command"] == "/opt/venv/bin/python"
    assert server["args"] == ["-m", "lsp", "--stdio"]
    assert server["config"]["backend"] == {"url": URL, "apiKey": KEY, "model": MODEL}
    python = next(lang for lang in config["language"] if lang["name"] == "python")
    assert python["language-servers"][-1] == "teampilot"


def test_zed_uses_the_backend_for_predictions_and_chat() -> None:
    config = parse_json_with_line_comments(rendered("zed"))
    prediction = config["edit_predictions"]["open_ai_compatible_api"]
    assert prediction["api_url"] == f"{URL}/completions"
    assert prediction["model"] == MODEL
    assert config["language_models"]["openai_compatible"]["teampilot"]["api_url"] == URL


def test_continue_yaml_and_json() -> None:
    yaml = pytest.importorskip("yaml")
    model = yaml.safe_load(rendered("continue"))["models"][0]
    assert model == {
        "name": "teampilot", "provider": "openai", "model": MODEL, "apiBase": URL, "apiKey": KEY,
        "roles": ["chat", "edit", "apply", "autocomplete"],
    }
    legacy = json.loads(rendered("continue-json"))
    assert legacy["models"][0]["apiBase"] == URL
    assert legacy["tabAutocompleteModel"]["apiKey"] == KEY
    assert "completionOptions" not in legacy


def test_url_trailing_slash_is_dropped() -> None:
    text = render(EDITORS["vscode"], url=URL + "/", api_key="", model="", python="python3")
    assert json.loads(text)["teampilot.backend.url"] == URL


def test_control_characters_are_refused(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert setup_cmd.main(["vscode", "--api-key", "bad\nkey"]) == 2
    assert "control characters" in capsys.readouterr().err


def test_lua_snippet_loads_in_neovim(tmp_path: Path) -> None:
    """The rendered Neovim setup is valid Lua for the installed Neovim (syntax and start-up)."""
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("neovim is not installed (scripts/install_test_clients.sh installs it)")
    script = tmp_path / "teampilot.lua"
    script.write_text(rendered("neovim"))
    done = subprocess.run(
        [nvim, "--headless", "-n", "-i", "NONE", "-u", "NONE", "-c", f"luafile {script}",
         "-c", "lua io.stdout:write(vim.fn.exists(':TeampilotAsk'))", "-c", "qall!"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("2"), (done.stdout, done.stderr)


def test_elisp_snippets_read(tmp_path: Path) -> None:
    """Both Emacs setups are readable Lisp (every form reads; eglot's also loads in this Emacs)."""
    emacs = shutil.which("emacs")
    if emacs is None:
        pytest.skip("emacs is not installed (scripts/install_test_clients.sh installs it)")
    for editor in ("emacs", "emacs-lsp-mode"):
        path = tmp_path / f"{editor}.el"
        path.write_text(rendered(editor))
        check = f'(with-temp-buffer (insert-file-contents "{path}") (condition-case nil (while t (read (current-buffer))) (end-of-file (princ "read-ok"))))'
        done = subprocess.run([emacs, "--batch", "--eval", check], capture_output=True, text=True, timeout=60, check=False)
        assert "read-ok" in done.stdout, done.stderr


# -- --write -------------------------------------------------------------------------------------


def test_write_creates_then_reports_up_to_date(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup_cmd.main(["neovim", "--backend", URL, "--write"]) == 0
    target = home / ".config" / "nvim" / "plugin" / "teampilot.lua"
    out = capsys.readouterr().out
    assert str(target) in out.splitlines()[0]  # the path is shown before anything is written
    assert URL in target.read_text()
    assert setup_cmd.main(["neovim", "--backend", URL, "--write"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_write_replaces_our_own_file_keeping_a_backup(home: Path) -> None:
    target = home / ".emacs.d" / "teampilot-eglot.el"
    target.parent.mkdir(parents=True)
    target.write_text(";; an older teampilot setup\n")
    assert setup_cmd.main(["emacs", "--backend", URL, "--write"]) == 0
    assert URL in target.read_text()
    assert (home / ".emacs.d" / "teampilot-eglot.el.bak").read_text() == ";; an older teampilot setup\n"


def test_write_merges_plain_json_settings(home: Path) -> None:
    target = home / ".config" / "Code" / "User" / "settings.json"
    if sys.platform != "linux":
        pytest.skip("the VS Code settings path checked here is Linux's")
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"editor.fontSize": 15, "teampilot.backend.url": "http://old/v1"}))
    assert setup_cmd.main(["vscode", "--backend", URL, "--api-key", "k1", "--write"]) == 0
    merged = json.loads(target.read_text())
    assert merged["editor.fontSize"] == 15
    assert merged["teampilot.backend.url"] == URL
    assert merged["teampilot.backend.apiKey"] == "k1"


def test_write_leaves_json_with_comments_alone(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = home / ".config" / "zed" / "settings.json"
    target.parent.mkdir(parents=True)
    original = '// my settings\n{"theme": "One Dark"}\n'
    target.write_text(original)
    assert setup_cmd.main(["zed", "--backend", URL, "--model", MODEL, "--write"]) == 1
    assert target.read_text() == original
    out = capsys.readouterr().out
    assert "by hand" in out
    assert "open_ai_compatible_api" in out


def test_write_appends_to_helix_languages_unless_they_clash(home: Path) -> None:
    target = home / ".config" / "helix" / "languages.toml"
    target.parent.mkdir(parents=True)
    target.write_text('[[language]]\nname = "haskell"\nauto-format = true\n')
    assert setup_cmd.main(["helix", "--backend", URL, "--write"]) == 0
    config = tomllib.loads(target.read_text())
    assert {lang["name"] for lang in config["language"]} >= {"haskell", "python", "rust"}
    assert config["language-server"]["teampilot"]["config"]["backend"]["url"] == URL
    # A second run finds teampilot already configured and changes nothing.
    before = target.read_text()
    assert setup_cmd.main(["helix", "--backend", "http://other:8000/v1", "--write"]) == 1
    assert target.read_text() == before


def test_write_never_overwrites_a_continue_config(home: Path) -> None:
    target = home / ".continue" / "config.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("models: []\n")
    assert setup_cmd.main(["continue", "--backend", URL, "--model", MODEL, "--write"]) == 1
    assert target.read_text() == "models: []\n"


def test_model_is_discovered_from_the_backend(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedBackend(api_key="k2", models=["team/served-model"]) as backend:
        assert setup_cmd.main(["continue", "--backend", backend.url, "--api-key", "k2"]) == 0
        assert backend.requests[-1].path == "/v1/models"
    out = capsys.readouterr().out
    assert 'model: "team/served-model"' in out
    assert f'apiBase: "{backend.url}"' in out


def test_model_defaults_when_the_backend_is_down(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup_cmd.main(["continue", "--backend", "http://127.0.0.1:9/v1"]) == 0
    assert f'model: "{setup_cmd.DEFAULT_CHAT_MODEL}"' in capsys.readouterr().out


def test_cli_entry_point(home: Path) -> None:
    """`python -m lsp setup` reaches this command (through lsp/__main__.py)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "lsp", "setup", "helix", "--backend", URL, "--api-key", "k3"],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(done.stdout)["language-server"]["teampilot"]["config"]["backend"]["apiKey"] == "k3"
