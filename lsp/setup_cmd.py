"""`python -m lsp setup EDITOR`: print, or write, the teampilot setup for one editor, filled in.

The snippets are package data (`lsp/setup_snippets/`): templates with `{{BACKEND_URL}}`,
`{{API_KEY}}`, `{{MODEL}}` and `{{PYTHON}}` placeholders. `editors/` in the repository holds the same
files rendered with the defaults (a test keeps the two in step).

With `--write` the command shows the target path, then writes it without ever losing what is there:
files that are ours (a Neovim plugin file, an Emacs file) are replaced with a `.bak` copy kept; strict
JSON settings files are merged (with a `.bak`); a Helix `languages.toml` gets our block appended when
it does not configure the same languages; anything else is left untouched and the command says what to
merge by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import httpx

DEFAULT_URL = "http://127.0.0.1:8000/v1"
DEFAULT_CHAT_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
DEFAULT_PYTHON = "python3"

WriteMode = Literal["own", "new-only", "json-merge", "toml-append", "none"]


def _config_home() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return Path(xdg) if xdg else Path.home() / ".config"


def _app_support(name: str) -> Path:
    """The per-user settings folder of a desktop app (VS Code, Sublime Text) on this OS."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / name
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", str(Path.home()))) / name
    return _config_home() / name


@dataclass(frozen=True)
class EditorSetup:
    """One editor's snippet: its template, its copy under editors/, and where --write puts it."""

    name: str
    template: str
    editor_file: str
    write_mode: WriteMode
    target: Callable[[], Path] | None
    needs_model: bool = False
    next_steps: str = ""


EDITORS: dict[str, EditorSetup] = {
    setup.name: setup
    for setup in (
        EditorSetup(
            "vscode", "vscode-settings.json", "editors/vscode/settings.example.json", "json-merge",
            lambda: _app_support("Code") / "User" / "settings.json",
            next_steps="Install the extension first: see editors/vscode/README.md (npm ci && npx @vscode/vsce package).",
        ),
        EditorSetup(
            "neovim", "neovim.lua", "editors/neovim/teampilot.lua", "own",
            lambda: _config_home() / "nvim" / "plugin" / "teampilot.lua",
            next_steps="Neovim loads plugin/ files at startup; restart it and open a Python file (:LspInfo / :checkhealth lsp).",
        ),
        EditorSetup(
            "emacs", "emacs-eglot.el", "editors/emacs/teampilot-eglot.el", "own",
            lambda: Path.home() / ".emacs.d" / "teampilot-eglot.el",
            next_steps='Add to your init file: (load "~/.emacs.d/teampilot-eglot.el")',
        ),
        EditorSetup(
            "emacs-lsp-mode", "emacs-lsp-mode.el", "editors/emacs/teampilot-lsp-mode.el", "own",
            lambda: Path.home() / ".emacs.d" / "teampilot-lsp-mode.el",
            next_steps='Add to your init file: (load "~/.emacs.d/teampilot-lsp-mode.el")',
        ),
        EditorSetup(
            "helix", "helix-languages.toml", "editors/helix/languages.toml", "toml-append",
            lambda: _config_home() / "helix" / "languages.toml",
            next_steps="Check with: hx --health python",
        ),
        EditorSetup(
            "sublime", "sublime-LSP.sublime-settings", "editors/sublime/LSP.sublime-settings", "json-merge",
            lambda: _app_support("sublime-text" if sys.platform.startswith("linux") else "Sublime Text")
            / "Packages" / "User" / "LSP.sublime-settings",
            next_steps="Needs the LSP package (Package Control: Install Package > LSP). For questions copy editors/sublime/teampilot_ask.py to Packages/User.",
        ),
        EditorSetup(
            "zed", "zed-settings.json", "editors/zed/settings.json", "json-merge",
            lambda: _config_home() / "zed" / "settings.json",
            needs_model=True,
            next_steps="Set TEAMPILOT_API_KEY and ZED_OPEN_AI_COMPATIBLE_EDIT_PREDICTION_API_KEY (or enter the key in Zed's settings UI).",
        ),
        EditorSetup(
            "jetbrains", "jetbrains.txt", "editors/jetbrains/lsp4ij.txt", "none", None,
        ),
        EditorSetup(
            "continue", "continue-config.yaml", "editors/continue/config.yaml", "new-only",
            lambda: Path.home() / ".continue" / "config.yaml", needs_model=True,
            next_steps="Continue reloads its config on save.",
        ),
        EditorSetup(
            "continue-json", "continue-config.json", "editors/continue/config.json", "new-only",
            lambda: Path.home() / ".continue" / "config.json", needs_model=True,
            next_steps="Legacy format: Continue prefers config.yaml when both exist.",
        ),
    )
}


def read_template(setup: EditorSetup) -> str:
    """The raw template text shipped in lsp/setup_snippets/."""
    return resources.files("lsp").joinpath("setup_snippets", setup.template).read_text(encoding="utf-8")


def _escape(value: str) -> str:
    """Escape a value for a double-quoted string (JSON, TOML, YAML, Lua and Emacs Lisp agree on this)."""
    if any(ord(ch) < 0x20 for ch in value):
        raise ValueError(f"control characters are not allowed in settings: {value!r}")
    return json.dumps(value, ensure_ascii=False)[1:-1]


def render(setup: EditorSetup, *, url: str, api_key: str, model: str, python: str) -> str:
    """Fill one editor's template in."""
    text = read_template(setup)
    values = {"BACKEND_URL": url.rstrip("/"), "API_KEY": api_key, "MODEL": model, "PYTHON": python}
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", _escape(value))
    return text


def render_defaults(setup: EditorSetup) -> str:
    """The template filled with the defaults: what editors/ ships."""
    model = DEFAULT_CHAT_MODEL if setup.needs_model else ""
    return render(setup, url=DEFAULT_URL, api_key="", model=model, python=DEFAULT_PYTHON)


def discover_model(url: str, api_key: str, timeout_s: float = 2.0) -> str | None:
    """The first model id the backend lists, or None when it cannot be asked."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
        response.raise_for_status()
        data = response.json().get("data") or []
        return str(data[0]["id"]) if data else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError):
        return None


def _strip_line_comments(text: str) -> str:
    """Drop whole-line // comments (our JSON-with-comments templates use only those)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def _deep_merge(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in ours.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _backup(path: Path) -> Path:
    backup = path.with_name(path.name + ".bak")
    shutil.copy2(path, backup)
    return backup


def write_snippet(setup: EditorSetup, text: str, target: Path) -> tuple[bool, str]:
    """Write `text` to `target` by the editor's write mode; returns (written, what happened)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return True, f"created {target}"
    current = target.read_text(encoding="utf-8")
    if current == text:
        return True, f"{target} is already up to date"
    if setup.write_mode == "own":
        backup = _backup(target)
        target.write_text(text, encoding="utf-8")
        return True, f"replaced {target} (previous version in {backup})"
    if setup.write_mode == "json-merge":
        try:
            existing = json.loads(current) if current.strip() else {}
        except json.JSONDecodeError:
            return False, f"{target} is not plain JSON (comments?): merge the snippet below into it by hand"
        if not isinstance(existing, dict):
            return False, f"{target} does not hold a JSON object: merge the snippet below by hand"
        merged = _deep_merge(existing, json.loads(_strip_line_comments(text)))
        backup = _backup(target)
        target.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        return True, f"merged into {target} (previous version in {backup})"
    if setup.write_mode == "toml-append":
        try:
            existing_toml = tomllib.loads(current)
        except tomllib.TOMLDecodeError as error:
            return False, f"{target} does not parse as TOML ({error}): fix it or merge by hand"
        ours = tomllib.loads(text)
        if "teampilot" in existing_toml.get("language-server", {}):
            return False, f"{target} already configures teampilot: edit it by hand"
        taken = {lang.get("name") for lang in existing_toml.get("language", [])}
        clash = sorted(str(lang["name"]) for lang in ours.get("language", []) if lang["name"] in taken)
        if clash:
            return False, f"{target} already configures {', '.join(clash)}: add \"teampilot\" to their language-servers by hand"
        backup = _backup(target)
        target.write_text(current.rstrip("\n") + "\n\n" + text, encoding="utf-8")
        return True, f"appended to {target} (previous version in {backup})"
    return False, f"{target} exists and differs: merge the snippet below into it by hand"


def _say(text: str, *, err: bool = False) -> None:
    """Write one message (a snippet, a note) to the terminal."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text if text.endswith("\n") else text + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The `python -m lsp setup` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m lsp setup",
        description="Print (or write) the teampilot setup for your editor, filled in.",
    )
    parser.add_argument("editor", choices=sorted(EDITORS), help="which editor or client")
    parser.add_argument("--backend", default=os.environ.get("TEAMPILOT_BACKEND_URL", DEFAULT_URL),
                        help="backend URL ending in /v1 (default: $TEAMPILOT_BACKEND_URL or %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("TEAMPILOT_API_KEY", ""),
                        help="your API key (default: $TEAMPILOT_API_KEY)")
    parser.add_argument("--model", default=os.environ.get("TEAMPILOT_MODEL"),
                        help="served model id (default: the first one the backend lists)")
    parser.add_argument("--python", default=sys.executable or DEFAULT_PYTHON,
                        help="Python that runs the language server (default: this one)")
    parser.add_argument("--write", action="store_true", help="write the file after showing where")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m lsp setup`; returns the exit status."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    setup = EDITORS[args.editor]
    url = str(args.backend).rstrip("/")
    if not url.endswith("/v1"):
        _say(f"note: backend URLs end in /v1 (got {url})", err=True)
    model = args.model
    if model is None:
        model = ""
        if setup.needs_model:
            model = discover_model(url, args.api_key) or DEFAULT_CHAT_MODEL
            _say(f"note: model {model!r} (pass --model to choose another)", err=True)
    try:
        text = render(setup, url=url, api_key=args.api_key, model=model, python=args.python)
    except ValueError as error:
        _say(f"error: {error}", err=True)
        return 2
    if not args.write:
        _say(text)
        if setup.next_steps:
            _say(f"\n# {setup.next_steps}", err=True)
        return 0
    if setup.target is None:
        _say(text)
        _say(f"note: {setup.name} is configured in its settings dialog; nothing to write", err=True)
        return 0
    target = setup.target()
    _say(f"writing the {setup.name} setup to {target}")
    written, what = write_snippet(setup, text, target)
    _say(what)
    if not written:
        _say(text)
        return 1
    if setup.next_steps:
        _say(setup.next_steps)
    return 0
