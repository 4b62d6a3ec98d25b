"""`hsm status`: counts per state and per source, timing, and each task's fate."""

from __future__ import annotations

from typing import Any

from hsm.core.summary import all_final, summarize as summarize_index
from hsm.sweep import Sweep

__all__ = ["all_final", "summarize"]


def summarize(sweep: Sweep, index: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plain data describing the sweep now (what `hsm status --json` prints)."""
    index = index if index is not None else sweep.read_index()
    return summarize_index(index, sweep.id, str(sweep.root), sweep.metadata.get("created"))  # type: ignore[arg-type]
