"""The data a code action travels with: the request the client sends back, and a run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types


def plain(value: Any) -> Any:
    """JSON-like values from pygls (namedtuples for unknown objects, attrs for known ones) as dicts."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        from lsprotocol import converters

        return converters.get_converter().unstructure(value)
    return value


def range_json(rng: types.Range) -> dict[str, Any]:
    """An LSP range as the JSON a code action's data carries."""
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


@dataclass(frozen=True)
class ActionRequest:
    """Which action to run where: a listed code action's ``data``, or an ask command's arguments."""

    action: str
    uri: str
    version: int | None
    range: dict[str, Any]
    args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActionRequest:
        """Read a code action's data (as listed by this server, or as sent back by a client)."""
        args = data.get("args")
        rng = data.get("range")
        version = data.get("version")
        return cls(action=str(data.get("action")), uri=str(data.get("uri", "")),
                   version=version if isinstance(version, int) else None,
                   range=rng if isinstance(rng, dict) else {}, args=args if isinstance(args, dict) else {})


@dataclass(frozen=True)
class RunResult:
    """How one action run ended: a message, and the edit (resolve) or the answer file it made."""

    ok: bool
    message: str
    edit: types.WorkspaceEdit | None = None
    show_uri: str | None = None
    answer: str | None = None

    def public(self) -> dict[str, Any]:
        """The JSON-safe part: what `workspace/executeCommand` answers."""
        out: dict[str, Any] = {"ok": self.ok, "message": self.message}
        if self.answer is not None:
            out["answer"] = self.answer
        return out
