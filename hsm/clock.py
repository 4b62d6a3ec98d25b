"""Timestamps: ISO-8601 UTC, second precision, as every state file and log line uses."""

from __future__ import annotations

import datetime as _dt


def now_iso() -> str:
    """The current time as `2026-11-22T06:31:33Z`."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_stamp() -> str:
    """The time at the head of a log line: `2026-11-22 06:31:33`."""
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def later_iso(seconds: float) -> str:
    """The time `seconds` from now, as `now_iso` writes it (rounded up to the next second)."""
    at = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=seconds + 0.999)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
