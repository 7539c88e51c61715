"""API keys: loading, constant-time checking, and the refusal to serve a network anonymously."""

from __future__ import annotations

import hmac
from pathlib import Path

from backend.errors import Unauthorized
from backend.settings import Settings

ANONYMOUS = "anonymous"


class KeyRing:
    """The accepted API keys, each with a name that labels metrics (never the key itself)."""

    def __init__(self, keys: dict[str, str]) -> None:
        """keys: name -> key."""
        self._keys = [(name, key.encode()) for name, key in keys.items()]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Keys from --api-key (named key1, key2, ...) and --api-keys-file (name:key lines)."""
        keys = {f"key{i}": key for i, key in enumerate(settings.api_key, start=1) if key}
        if settings.api_keys_file is not None:
            keys.update(read_keys_file(settings.api_keys_file))
        return cls(keys)

    @property
    def enabled(self) -> bool:
        """Whether any key is required."""
        return bool(self._keys)

    def check(self, authorization: str | None, api_key_header: str | None = None) -> str:
        """The name of the key presented ('Authorization: Bearer KEY' or 'api-key: KEY'); 401 otherwise.

        Every configured key is compared (constant time each), so timing does not tell which matched.
        """
        if not self._keys:
            return ANONYMOUS
        presented = ""
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                presented = value.strip()
        if not presented and api_key_header:
            presented = api_key_header.strip()
        if not presented:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        candidate = presented.encode()
        matched = ""
        for name, key in self._keys:
            if hmac.compare_digest(candidate, key) and not matched:
                matched = name
        if not matched:
            raise Unauthorized("Incorrect API key provided.")
        return matched


def read_keys_file(path: Path) -> dict[str, str]:
    """Parse 'name:key' lines; blank lines and '#' comments are skipped."""
    keys: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, key = line.partition(":")
        if not sep or not name.strip() or not key.strip():
            raise ValueError(f"{path}:{number}: expected 'name:key'")
        keys[name.strip()] = key.strip()
    return keys


def check_bind_allowed(settings: Settings, keys: KeyRing) -> None:
    """Refuse to bind a non-loopback host without keys unless --allow-anonymous."""
    if not settings.is_loopback() and not keys.enabled and not settings.allow_anonymous:
        raise SystemExit(
            f"Refusing to listen on {settings.host} without an API key: anyone on the network could use the "
            "model. Pass --api-key / --api-keys-file, or --allow-anonymous if that is intended."
        )
