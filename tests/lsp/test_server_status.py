"""StatusReporter: status only on change, one message per condition and interval."""

from __future__ import annotations

from typing import Any

from lsp.status import STATUS_METHOD, StatusReporter


def _reporter(now: list[float]) -> tuple[StatusReporter, list[tuple[str, Any]], list[str]]:
    sent: list[tuple[str, Any]] = []
    shown: list[str] = []
    reporter = StatusReporter(notify=lambda m, p: sent.append((m, p)), show_message=shown.append,
                              interval_s=60, clock=lambda: now[0])
    return reporter, sent, shown


def test_status_is_sent_only_when_it_changes() -> None:
    reporter, sent, _ = _reporter([0.0])
    reporter.report_status("ok", "ready", "m")
    reporter.report_status("ok", "ready", "m")
    reporter.report_status("error", "down", None)
    assert sent == [(STATUS_METHOD, {"state": "ok", "message": "ready", "model": "m"}),
                    (STATUS_METHOD, {"state": "error", "message": "down", "model": None})]


def test_one_message_per_condition_and_interval() -> None:
    now = [0.0]
    reporter, _, shown = _reporter(now)
    assert reporter.report_error_once("unavailable", "down")
    assert not reporter.report_error_once("unavailable", "down again")
    assert reporter.report_error_once("unauthorized", "bad key")
    now[0] = 61.0
    assert reporter.report_error_once("unavailable", "still down")
    reporter.clear("unavailable")
    assert reporter.report_error_once("unavailable", "after clear")
    assert shown == ["down", "bad key", "still down", "after clear"]
