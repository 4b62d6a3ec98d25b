"""`hsm assign`: pending (and redistributable) tasks go to sources, by strategy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from hsm.clock import log_stamp, now_iso
from hsm.core.settings import SourceConfig
from hsm.core.transitions import assign_tasks, enable_source, register_sources
from hsm.errors import BadInput
from hsm.sweep import Sweep


@dataclass
class AssignResult:
    """How many tasks went where."""

    assigned: dict[str, list[str]] = field(default_factory=dict)
    enabled: list[str] = field(default_factory=list)  # sources the sweep had disabled, named again

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


def check_paths(root: Path, sources: list[SourceConfig]) -> None:
    """Refuse a sweep dir a Slurm or PBS job script cannot name, before any of its tasks is reserved
    (a directive is one line, read with the scheduler's own word splitting)."""
    if any(s.type == "hpc" for s in sources) and ('"' in str(root) or "\n" in str(root)):
        raise BadInput(f"{root}: a Slurm or PBS job script cannot name a path holding a double quote or a "
                       "newline: move the project, or give --outputs elsewhere")


def assign(sweep: Sweep, sources: list[SourceConfig], strategy: str, seed: int | None = None) -> AssignResult:
    """Assign pending tasks, and assigned-but-unsubmitted tasks of sources not chosen now.

    Sources already known to the sweep keep their entry; the ones given here are added
    or updated. Running this again with nothing pending changes nothing.
    """
    check_paths(sweep.root, sources)
    result = AssignResult()
    with sweep.update() as u:
        u.changed |= register_sources(u.index, {s.name: s.as_dict() for s in sources})
        stamp = log_stamp()
        for s in sources:
            # Named now, so wanted now: a source this sweep had disabled is enabled again.
            if enable_source(u.index, s.name):
                result.enabled.append(s.name)
                sweep.append_log("health_status.log", [f"[{stamp}] INFO - Source '{s.name}' enabled: named in --sources"])
                u.changed = True
        placed = assign_tasks(u.index, {s.name: s.max_parallel for s in sources}, strategy, seed, now_iso())
        if not placed:
            return result
        u.changed = True
        lines = []
        for tid, (name, previous) in placed.items():
            result.assigned.setdefault(name, []).append(tid)
            moved = f" (from {previous})" if previous and previous != name else ""
            lines.append(f"[{stamp}] {tid} -> {name}{moved} strategy={strategy}")
        sweep.append_log("task_assignments.log", lines)
    return result
