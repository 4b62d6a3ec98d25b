"""The summary's per-source condition (health, disabled: by whom and why) and how `hsm status` shows it."""

from __future__ import annotations

from typing import Any

from hsm.cli.render import condition_text, summary_table
from hsm.core.summary import summarize


def index(sources: dict[str, Any], *tasks: dict[str, Any]) -> Any:
    return {"schema": 1, "sweep_id": "s", "sources": sources,
            "tasks": {f"task_{i:03d}": t for i, t in enumerate(tasks, 1)}}


def test_every_source_of_the_sweep_is_summarized_with_what_is_known_of_it() -> None:
    ix = index({"a": {"type": "local", "max_parallel": 2,
                      "health": {"status": "degraded", "checked": "2026-11-30T10:00:00Z", "consecutive_failures": 0}},
                "b": {"type": "ssh", "max_parallel": 1, "disabled": True, "disabled_by": "policy",
                      "disabled_reason": "Disabling source 'b' due to 3 consecutive health check failures",
                      "health": {"status": "unhealthy", "checked": "2026-11-30T10:00:00Z", "consecutive_failures": 3}},
                "c": {"type": "ssh", "max_parallel": 1}},
               {"state": "running", "source": "a"}, {"state": "pending"})
    s = summarize(ix, "s", "/p/s")["sources"]
    assert list(s) == ["a", "b", "c"]  # b and c have no tasks, and are still shown
    assert s["a"] == {"type": "local", "max_parallel": 2, "counts": {"running": 1},
                      "health": {"status": "degraded", "checked": "2026-11-30T10:00:00Z", "consecutive_failures": 0}}
    assert (s["b"]["disabled"], s["b"]["disabled_by"]) == (True, "policy") and s["b"]["counts"] == {}
    assert s["c"] == {"type": "ssh", "max_parallel": 1, "counts": {}}

    assert condition_text(s["a"]) == "⚠️ degraded"
    assert condition_text(s["b"]) == "⛔ disabled by policy: 3 consecutive health check failures"
    assert condition_text(s["c"]) == "-"
    table = summary_table(summarize(ix, "s", "/p/s"))
    assert "Health" in table.splitlines()[1] and "⛔ disabled by policy" in table
