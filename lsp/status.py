"""User-facing status: the `teampilot/status` notification and rate-limited error messages."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STATUS_METHOD = "teampilot/status"
INACTIVE = "inactive"  # the file in use is excluded (lsp/exclusion): nothing from it is sent

# what each backend failure condition means for the status line
STATE_OF_CONDITION = {
    "unavailable": "error",
    "unauthorized": "error",
    "timeout": "error",
    "http": "error",
    "bad-response": "error",
    "rate-limited": "error",
    "loading": "loading",
}


@dataclass
class StatusReporter:
    """Sends `teampilot/status` when the state changes and at most one message per condition and interval.

    ``notify(method, params)`` and ``show_message(text)`` are the transport; ``clock`` is injectable
    for tests.
    """

    notify: Callable[[str, Any], None]
    show_message: Callable[[str], None]
    interval_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    last: dict[str, Any] | None = None
    last_active: dict[str, Any] | None = None  # the last status other than "inactive"
    _shown: dict[str, float] = field(default_factory=dict)

    def report_status(self, state: str, message: str, model: str | None = None) -> None:
        """Send a status notification unless it equals the last one sent."""
        params = {"state": state, "message": message, "model": model}
        if state != INACTIVE:
            self.last_active = params
        if params == self.last:
            return
        self.last = params
        self.notify(STATUS_METHOD, params)

    def resume(self) -> None:
        """After ``inactive`` (an excluded file), send the status as it was before."""
        if self.last is None or self.last["state"] != INACTIVE:
            return
        previous = self.last_active or {"state": "ok", "message": "ready", "model": self.last["model"]}
        self.report_status(previous["state"], previous["message"], previous["model"])

    def report_error_once(self, condition: str, message: str) -> bool:
        """Show ``message`` unless this condition was shown within the interval; True if shown."""
        now = self.clock()
        shown_at = self._shown.get(condition)
        if shown_at is not None and now - shown_at < self.interval_s:
            return False
        self._shown[condition] = now
        self.show_message(message)
        return True

    def clear(self, condition: str | None = None) -> None:
        """Forget shown conditions (all, or one) so the next failure is shown again."""
        if condition is None:
            self._shown.clear()
        else:
            self._shown.pop(condition, None)
