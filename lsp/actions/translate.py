"""Translate: convert a definition or selection to another language, as a new file beside the original."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from pygls.uris import from_fs_path

from lsp.actions.base import Action, Edit, Files, Listing, Offer, Outcome
from lsp.actions.edits import create_file_edit, workspace_edit
from lsp.actions.prompts import chat_messages, context_block
from lsp.actions.replies import best_code, require_parses
from lsp.actions.target import Target, language_name, spec_of

# source language id -> target language ids offered (a few common ones each)
TARGETS: dict[str, tuple[str, ...]] = {
    "python": ("typescript", "go", "rust", "java"),
    "javascript": ("typescript", "python", "go"),
    "typescript": ("python", "go", "rust", "java"),
    "tsx": ("python", "go"),
    "go": ("python", "typescript", "rust", "java"),
    "rust": ("python", "typescript", "go"),
    "java": ("python", "typescript", "go", "rust"),
    "c": ("rust", "go", "python"),
    "cpp": ("rust", "go", "python"),
}
EXTENSIONS: dict[str, str] = {
    "python": ".py", "typescript": ".ts", "javascript": ".js", "go": ".go", "rust": ".rs", "java": ".java",
    "c": ".c", "cpp": ".cpp", "tsx": ".tsx",
}
COMMENTS: dict[str, str] = {"python": "#"}

PROMPT = """Translate the {what} below from {source} to idiomatic {destination}.
Keep the behaviour identical; follow {destination}'s naming conventions, error handling and standard \
library; include the imports it needs. Do not add a main function or example usage.
Reply with the {destination} code only, in one fenced ```{fence} block.

{context}
"""


def translated_path(source_path: str, language: str, files: Files) -> str:
    """``name.ext`` beside the original, else ``name.translated.ext``, ``name.translated2.ext``, ... (never existing)."""
    source = PurePath(source_path)
    extension = EXTENSIONS[language]
    stem = source.stem
    candidates = [source.with_name(stem + extension), source.with_name(f"{stem}.translated{extension}")]
    candidates.extend(source.with_name(f"{stem}.translated{n}{extension}") for n in range(2, 100))
    for candidate in candidates:
        if str(candidate) != source_path and not files.exists(str(candidate)):
            return str(candidate)
    raise FileExistsError(f"no free file name beside {source_path}")


class TranslateAction(Action):
    """Translate to one target language (one listed action per target)."""

    id = "translate"
    kind = "refactor.teampilot.translate"
    max_tokens = 1536
    opens_result = True
    needs_definition = False

    def offers(self, listing: Listing) -> list[Offer]:
        """One action per common target language of the document's language."""
        spec = listing.doc.language
        if spec is None or not (listing.scope is not None or listing.has_selection):
            return []
        name = "the selection" if listing.has_selection else f"`{listing.scope.name}`" if listing.scope else ""
        return [Offer(f"teampilot: Translate {name} to {language_name(to)}", {"to": to})
                for to in TARGETS.get(spec.id, ())]

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """Ask for the translation."""
        to = str(args.get("to", ""))
        what = f"{target.kind} `{target.name}`" if target.name else "code"
        return chat_messages(PROMPT.format(what=what, source=target.language_name,
                                           destination=language_name(to), fence=to,
                                           context=context_block(target)))

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """A new file beside the original with the translated code (checked to parse)."""
        to = str(args.get("to", ""))
        if to not in EXTENSIONS:
            raise ValueError(f"unknown target language {to!r}")
        spec = spec_of(to)
        code = best_code(reply, spec, to, join=True)
        require_parses(spec, code, "translation")
        path = translated_path(target.path, to, files)
        comment = COMMENTS.get(to, "//")
        content = f"{comment} Translated from {PurePath(target.path).name} by teampilot.\n{code.rstrip()}\n"
        return Edit(workspace_edit(create_file_edit(path, content)), f"translated {target.label} to {path}",
                    show_uri=from_fs_path(path) or path)

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """Progress title."""
        return f"teampilot: translating {target.label} to {language_name(str(args.get('to') or '?'))}"
