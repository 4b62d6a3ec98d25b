"""`hsm assign`: pending (and redistributable) tasks go to sources, by strategy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hsm.clock import log_stamp
from hsm.core.assign import Slot, assign as place
from hsm.core.settings import SourceConfig
from hsm.core.states import ACTIVE, ASSIGNED, PENDING
from hsm.sweep import Sweep


@dataclass
class AssignResult:
    """How many tasks went where."""

    assigned: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.assigned.values())


def cap_sources(sources: list[SourceConfig], parallel_limit: int | None) -> list[SourceConfig]:
    """Share a global cap on parallel tasks among the sources, each keeping at least one."""
    if not parallel_limit or sum(s.max_parallel for s in sources) <= parallel_limit:
        return sources
    total = sum(s.max_parallel for s in sources)
    capped = []
    for s in sources:
        share = max(1, s.max_parallel * parallel_limit // total)
        capped.append(replace(s, max_parallel=min(s.max_parallel, share)))
    return capped


def assign(sweep: Sweep, sources: list[SourceConfig], strategy: str, seed: int | None = None) -> AssignResult:
    """Assign pending tasks, and assigned-but-unsubmitted tasks of sources not chosen now.

    Sources already known to the sweep keep their entry; the ones given here are added
    or updated. Running this again with nothing pending changes nothing.
    """
    result = AssignResult()
    names = {s.name for s in sources}
    with sweep.update() as u:
        known = u.index.setdefault("sources", {})
        for s in sources:
            entry = {**known.get(s.name, {}), **s.as_dict()}
            if known.get(s.name) != entry:
                known[s.name] = entry
                u.changed = True
        candidates = [
            tid for tid, t in u.tasks.items()
            if t["state"] == PENDING or (t["state"] == ASSIGNED and t.get("source") not in names)
        ]
        if not candidates:
            return result
        load = {s.name: 0 for s in sources}
        for t in u.tasks.values():
            if t.get("source") in load and (t["state"] == ASSIGNED or t["state"] in ACTIVE):
                load[t["source"]] += 1
        slots = [Slot(s.name, s.max_parallel, load[s.name]) for s in sources]
        mapping = place(candidates, slots, strategy, seed)
        stamp = log_stamp()
        lines = []
        for tid, name in mapping.items():
            entry = u.tasks[tid]
            previous = entry.get("source")
            entry["state"] = ASSIGNED
            entry["source"] = name
            result.assigned.setdefault(name, []).append(tid)
            moved = f" (from {previous})" if previous and previous != name else ""
            lines.append(f"[{stamp}] {tid} -> {name}{moved} strategy={strategy}")
        u.changed = True
        sweep.append_log("task_assignments.log", lines)
    return result
