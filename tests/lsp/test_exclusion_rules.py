"""Exclusion rules (lsp/exclusion/rules.py): built-in patterns, .gitignore, .teampilotignore in any
folder, the `exclude` setting, which rule decided, and rule changes (editor buffer, disk, watcher)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lsp.exclusion import BUILTIN_PATTERNS, ExclusionRules


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write(tmp_path, {
        ".gitignore": "# build output\nbuild/\n*.log\n",
        ".teampilotignore": "private/\n!docs/credentials.md\n",
        "src/.teampilotignore": "generated_*.py\n",
        "src/app.py": "print('hi')\n",
        "build/.teampilotignore": "!keep.py\n",
    })
    return tmp_path


@pytest.mark.parametrize(("rel", "pattern"), [
    (".env", ".env*"), (".env.local", ".env*"), ("config/.env.production", ".env*"), ("certs/server.pem", "*.pem"),
    ("keys/deploy.key", "*.key"), ("id_rsa", "id_rsa*"), (".ssh/id_ed25519.pub", "id_ed25519*"),
    ("store.p12", "*.p12"), ("cert.pfx", "*.pfx"), (".npmrc", ".npmrc"), ("home/.pypirc", ".pypirc"),
    (".netrc", ".netrc"), ("credentials.json", "credentials*"), ("config/secrets.yml", "secrets.*"),
    ("vault.kdbx", "*.kdbx"), (".git/config", ".git/"),
])
def test_builtin_patterns(workspace: Path, rel: str, pattern: str) -> None:
    rules = ExclusionRules([str(workspace)])
    decision = rules.check(str(workspace / rel))
    assert decision.excluded
    assert decision.rule == f'built-in pattern "{pattern}"'
    assert pattern in BUILTIN_PATTERNS


@pytest.mark.parametrize("rel", ["src/app.py", "env.py", "keyboard.py", "secretsanta.py", "docs/keys.md",
                                 "src/environment.ts"])
def test_ordinary_files_are_allowed(workspace: Path, rel: str) -> None:
    decision = ExclusionRules([str(workspace)]).check(str(workspace / rel))
    assert not decision.excluded
    assert decision.rule == ""


@pytest.mark.parametrize(("rel", "rule"), [
    ("private/notes.py", '.teampilotignore:1 "private/"'),
    ("private/deep/er/x.ts", '.teampilotignore:1 "private/"'),
    ("src/generated_api.py", 'src/.teampilotignore:1 "generated_*.py"'),
    ("build/out.py", '.gitignore:2 "build/"'),
    ("build/keep.py", '.gitignore:2 "build/"'),        # a folder git excludes cannot be re-included inside
    ("logs/server.log", '.gitignore:3 "*.log"'),
])
def test_ignore_files_at_any_level_name_the_rule(workspace: Path, rel: str, rule: str) -> None:
    decision = ExclusionRules([str(workspace)]).check(str(workspace / rel))
    assert decision.excluded
    assert decision.rule == rule


def test_teampilotignore_can_re_include_what_a_builtin_excludes(workspace: Path) -> None:
    decision = ExclusionRules([str(workspace)]).check(str(workspace / "docs" / "credentials.md"))
    assert not decision.excluded
    assert decision.rule == '.teampilotignore:2 "!docs/credentials.md"'


def test_the_exclude_setting(workspace: Path) -> None:
    rules = ExclusionRules([str(workspace)], ["**/fixtures/**", "/vendor/"])
    assert rules.check(str(workspace / "tests" / "fixtures" / "a.py")).rule == 'setting exclude "**/fixtures/**"'
    assert rules.check(str(workspace / "vendor" / "lib.py")).excluded
    assert not rules.check(str(workspace / "src" / "vendor" / "lib.py")).excluded
    rules.set_patterns([])
    assert not rules.check(str(workspace / "tests" / "fixtures" / "a.py")).excluded


def test_files_outside_the_workspace_get_the_builtin_patterns_only(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    rules = ExclusionRules([str(workspace)])
    assert rules.check(str(elsewhere / ".env")).excluded
    assert rules.check(str(elsewhere / "private" / "x.py")).allowed
    assert rules.check("untitled:Untitled-1").allowed


def test_disabled_rules_allow_everything(workspace: Path) -> None:
    assert ExclusionRules([str(workspace)], enabled=False).check(str(workspace / ".env")).allowed


def test_an_editor_buffer_of_an_ignore_file_applies_at_once(workspace: Path) -> None:
    rules = ExclusionRules([str(workspace)])
    changes: list[int] = []
    rules.on_change(lambda: changes.append(rules.generation))
    target = str(workspace / "src" / "app.py")
    assert rules.allows(target)
    ignore = str(workspace / ".teampilotignore")
    rules.set_overlay(ignore, "private/\nsrc/app.py\n")  # unsaved edit
    assert rules.check(target).rule == '.teampilotignore:2 "src/app.py"'
    assert changes
    rules.clear_overlay(ignore)  # closed without saving: the disk's content again
    assert rules.allows(target)


def test_a_change_on_disk_applies_after_the_revalidation_interval_or_when_reported(workspace: Path) -> None:
    now = [0.0]
    rules = ExclusionRules([str(workspace)], revalidate_s=2.0, clock=lambda: now[0])
    target = str(workspace / "src" / "app.py")
    assert rules.allows(target)
    (workspace / "src" / ".teampilotignore").write_text("generated_*.py\napp.py\n", encoding="utf-8")
    now[0] = 1.0
    assert rules.allows(target)  # cached within the interval
    now[0] = 2.5
    assert rules.check(target).rule == 'src/.teampilotignore:2 "app.py"'
    # a new ignore file in a folder that had none, reported by the editor's file watcher
    (workspace / "src" / ".gitignore").write_text("other.py\n", encoding="utf-8")
    other = str(workspace / "src" / "other.py")
    assert rules.allows(other)  # not looked at again within the interval...
    rules.file_changed(str(workspace / "src" / ".gitignore"))  # ...unless the editor reports it
    assert rules.check(other).rule == 'src/.gitignore:1 "other.py"'


def test_explain(workspace: Path) -> None:
    rules = ExclusionRules([str(workspace)])
    assert rules.explain(str(workspace / "private" / "a.py")) == 'private/a.py is excluded by .teampilotignore:1 "private/"'
    assert rules.explain(str(workspace / "src" / "app.py")) == "src/app.py is not excluded (no rule matches)"


def test_cli_explains_a_file_and_counts_its_secrets_without_printing_them(workspace: Path) -> None:
    secret = "hunter2-" + "Pa55"
    write(workspace, {"private/db.py": f'password = "{secret}"\n', "src/ok.py": "x = 1\n"})
    command = [sys.executable, "-m", "lsp", "check", "--root", str(workspace), "--explain-exclusion"]
    out = subprocess.run([*command, str(workspace / "private" / "db.py")], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert 'private/db.py is excluded by .teampilotignore:1 "private/"' in out
    assert "password x1" in out
    assert secret not in out
    out = subprocess.run([*command, str(workspace / "src" / "ok.py"), "--exclude", "src/"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert 'src/ok.py is excluded by setting exclude "src/"' in out
    assert "no secrets found" in out
