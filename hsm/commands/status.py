"""`hsm status`: counts per state and per source, timing, and each task's fate."""

from __future__ import annotations

from typing import Any

from hsm.core.index import Index
from hsm.core.states import FAILED
from hsm.core.summary import all_final, task_row
from hsm.core.summary import summarize as summarize_index
from hsm.sweep import Sweep

__all__ = ["all_final", "failed_rows", "summarize"]


def summarize(sweep: Sweep, index: Index | None = None, rows: bool = True) -> dict[str, Any]:
    """Plain data describing the sweep now (what `hsm status --json` prints); without its
    per-task rows when `rows` is False."""
    current = index if index is not None else sweep.read_index()
    return summarize_index(current, sweep.id, str(sweep.root), sweep.metadata.get("created"), rows=rows)


def failed_rows(index: Index) -> list[dict[str, Any]]:
    """The rows of the failed tasks, in task order."""
    return [task_row(tid, t) for tid, t in index["tasks"].items() if t["state"] == FAILED]
