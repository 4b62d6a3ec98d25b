"""`hsm status`: counts per state and per source, timing, and each task's fate."""

from __future__ import annotations

from typing import Any

from hsm.core.index import Index
from hsm.core.summary import all_final
from hsm.core.summary import summarize as summarize_index
from hsm.sweep import Sweep

__all__ = ["all_final", "summarize"]


def summarize(sweep: Sweep, index: Index | None = None) -> dict[str, Any]:
    """Plain data describing the sweep now (what `hsm status --json` prints)."""
    current = index if index is not None else sweep.read_index()
    return summarize_index(current, sweep.id, str(sweep.root), sweep.metadata.get("created"))
