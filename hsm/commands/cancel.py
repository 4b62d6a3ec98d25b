"""`hsm cancel`: stop every task of a sweep on every source."""

from __future__ import annotations

from dataclasses import dataclass, field

from hsm.clock import log_stamp, now_iso
from hsm.commands.poll import active_refs, observe, record
from hsm.config import ProjectConfig
from hsm.core.states import CANCELLED
from hsm.core.transitions import cancel_unfinished, killed_by_the_cancel
from hsm.errors import HsmError
from hsm.sources import make_source
from hsm.sweep import Sweep


@dataclass
class CancelSummary:
    """How many tasks this cancel stopped, and the sources it could not reach."""

    cancelled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def cancel(sweep: Sweep, project: ProjectConfig) -> CancelSummary:
    """Stop running and queued tasks, then mark every unfinished task cancelled.

    Tasks that finished before the cancel reached them keep their real outcome: the
    sources are polled once more before anything is marked.
    """
    summary = CancelSummary()
    index = sweep.read_index()
    sources = index.get("sources", {})
    refs = active_refs(index)
    for name, tasks in refs.items():
        if name not in sources:
            continue
        try:
            make_source(name, sources[name], sweep, project).cancel(tasks)
        except HsmError as exc:
            summary.errors[name] = str(exc)
    seen = record(sweep, killed_by_the_cancel(observe(sweep, project, sources, refs)))
    # Tasks the cancel stopped report themselves cancelled through their status files.
    summary.cancelled += [tid for tid, _, _, after in seen.transitions if after == CANCELLED]
    with sweep.update() as u:
        marked = cancel_unfinished(u.tasks, summary.errors, now_iso())
        summary.cancelled += marked
        u.changed |= bool(marked)
        stamp = log_stamp()
        lines = [f"[{stamp}] INFO - cancel: {len(summary.cancelled)} tasks cancelled"]
        lines += [f"[{stamp}] ERROR - cancel on {n} failed: {m}" for n, m in summary.errors.items()]
        sweep.append_log("sweep.log", lines)
    return summary
