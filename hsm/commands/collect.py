"""`hsm collect`: bring task directories home from sources that run elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from hsm.clock import log_stamp
from hsm.config import ProjectConfig
from hsm.errors import HsmError
from hsm.sources import make_source
from hsm.sources.base import TaskRef
from hsm.sweep import Sweep


@dataclass
class CollectSummary:
    """Tasks brought home per source, and the sources that failed."""

    collected: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def collect(sweep: Sweep, project: ProjectConfig, final: bool = False) -> CollectSummary:
    """Ask each source of the sweep to bring its task dirs home (a no-op for local ones)."""
    summary = CollectSummary()
    index = sweep.read_index()
    by_source: dict[str, list[TaskRef]] = {}
    for tid, entry in index["tasks"].items():
        if entry.get("source") and entry.get("attempt"):
            by_source.setdefault(entry["source"], []).append(
                TaskRef(tid, entry["attempt"], entry["state"], entry.get("seen"), entry.get("job"))
            )
    for name, refs in by_source.items():
        settings = index.get("sources", {}).get(name)
        if settings is None:
            continue
        try:
            result = make_source(name, settings, sweep, project).collect(refs, final=final)
        except HsmError as exc:
            summary.errors[name] = str(exc)
            continue
        if result.get("collected"):
            summary.collected[name] = result["collected"]
    if summary.collected or summary.errors:
        with sweep.lock().held():
            stamp = log_stamp()
            lines = [f"[{stamp}] INFO - collect: {n} tasks from {name}" for name, n in summary.collected.items()]
            lines += [f"[{stamp}] ERROR - collect from {name} failed: {m}" for name, m in summary.errors.items()]
            sweep.append_log("sweep.log", lines)
    return summary
