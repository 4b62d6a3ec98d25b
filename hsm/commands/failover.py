"""Moving work between sources: disabling, enabling, stealing, and upkeep after faults.

Each function follows the steps' rule: decide under the lock, call the sources outside
it, record what they answered under it again. Everything here is idempotent, so `hsm
run` calls `upkeep` and `rebalance` every loop and a cron `hsm health` or `hsm poll` can
call them too; a crash anywhere leaves work that the next call finishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hsm.clock import log_stamp, now_iso
from hsm.commands import errors
from hsm.config import ProjectConfig
from hsm.core import failover as fo
from hsm.core.index import Index, TaskRef
from hsm.core.states import ACTIVE
from hsm.core.transitions import assign_tasks, disable_source, enable_source
from hsm.errors import BadInput, HsmError
from hsm.sources import make_source
from hsm.sweep import Sweep


@dataclass
class Moved:
    """What taking work away from one source did."""

    source: str
    revoked: list[str] = field(default_factory=list)  # taken back before they started
    started: list[str] = field(default_factory=list)  # had started meanwhile: left to run
    abandoned: list[str] = field(default_factory=list)  # given up without the source's word
    reassigned: dict[str, list[str]] = field(default_factory=dict)  # source -> tasks assigned to it now


def enabled_capacity(index: Index, among: Iterable[str] | None = None) -> dict[str, int]:
    """The enabled sources (of `among`, when given) and their slots, in the index's order."""
    wanted = set(among) if among is not None else None
    return {n: int(e.get("max_parallel", 1)) for n, e in index.get("sources", {}).items()
            if not e.get("disabled") and (wanted is None or n in wanted)}


def silent_sources(index: Index) -> set[str]:
    """Sources whose last call failed: no new work goes there until they answer again."""
    return {n for n, e in index.get("sources", {}).items() if e.get("unreachable_since")}


def assignable_capacity(index: Index, among: Iterable[str] | None = None) -> dict[str, int]:
    """The enabled sources that answer, and their slots: where new work may go."""
    silent = silent_sources(index)
    return {n: c for n, c in enabled_capacity(index, among).items() if n not in silent}


def _log(sweep: Sweep, lines: list[str]) -> None:
    """Failover lines go to the health log and the sweep log (callers hold the lock)."""
    sweep.append_log("health_status.log", lines)
    sweep.append_log("sweep.log", lines)


# --- taking back ----------------------------------------------------------------------------------


def take_back(sweep: Sweep, project: ProjectConfig, name: str, refs: list[TaskRef], outcome: str = "revoked") -> Moved:
    """Take back a source's unstarted attempts; abandon them when the source does not answer.

    An abandoned attempt might still start there: it is stopped when the source answers again.
    """
    moved = Moved(name)
    if not refs:
        return moved
    entry = sweep.read_index()["sources"][name]
    answered = False
    # A source that has stopped answering is not asked again: the call would only wait for its timeout.
    if not entry.get("unreachable_since"):
        try:
            answer = make_source(name, entry, sweep, project).revoke(refs)
            answered = True
        except HsmError:
            pass
    with sweep.update() as u:
        now = now_iso()
        if answered:
            back = {r.id for r in refs if r.id in set(answer.revoked)}
            moved.revoked = fo.take_back(u.tasks, name, [r for r in refs if r.id in back], outcome, "revoked", now)
            moved.started = list(answer.started)
        else:
            moved.abandoned = fo.abandon(u.index, name, refs, now).requeued
        u.changed |= bool(moved.revoked or moved.abandoned)
    return moved


def reassign(sweep: Sweep, strategy: str, among: Iterable[str] | None = None,
             move_assigned: bool = True) -> dict[str, list[str]]:
    """Pending tasks (whose retry delay has passed), and with `move_assigned` the assigned ones
    of sources not among these, go to the enabled sources; source -> tasks."""
    with sweep.update() as u:
        capacity = assignable_capacity(u.index, among)
        placed = assign_tasks(u.index, capacity, strategy, now=now_iso(), move_assigned=move_assigned)
        if not placed:
            return {}
        u.changed = True
        by_source: dict[str, list[str]] = {}
        for tid, (name, _) in placed.items():
            by_source.setdefault(name, []).append(tid)
        stamp = log_stamp()
        sweep.append_log("task_assignments.log",
                         [f"[{stamp}] {tid} -> {name} strategy={strategy} (reassigned)" for tid, (name, _) in placed.items()])
        shown = ", ".join(f"{n}({len(t)})" for n, t in by_source.items())
        _log(sweep, [f"[{stamp}] INFO - Tasks reassigned: {shown}"])
    return by_source


def _redistribution_line(name: str, count: int) -> str:
    return f"[{log_stamp()}] INFO - Redistributing {count} pending tasks from disabled source '{name}'"


# --- disable, enable ------------------------------------------------------------------------------


def disable(sweep: Sweep, project: ProjectConfig, name: str, reason: str, *, by: str = "user") -> Moved:
    """Disable a source for this sweep and move everything unstarted there to the others."""
    with sweep.update() as u:
        if name not in u.index.get("sources", {}):
            raise BadInput(f"source '{name}' is not a source of sweep {sweep.id}")
        already = u.index["sources"][name].get("disabled")
        if not already:
            unassigned = disable_source(u.index, name, reason, by, now_iso())
            u.changed = True
            _log(sweep, [f"[{log_stamp()}] ERROR - {reason}"])
        else:
            unassigned = []
        refs = fo.unstarted(u.tasks, name)
    moved = take_back(sweep, project, name, refs)
    moved.revoked = unassigned + moved.revoked  # assigned, not sent yet: taken back as well
    count = len(moved.revoked) + len(moved.abandoned)
    if count:
        with sweep.update():
            _log(sweep, [_redistribution_line(name, count)])
    moved.reassigned = reassign(sweep, project.strategy)
    return moved


def enable(sweep: Sweep, project: ProjectConfig, name: str) -> bool:
    """Enable a source for this sweep again; True when it was disabled."""
    with sweep.update() as u:
        if name not in u.index.get("sources", {}):
            raise BadInput(f"source '{name}' is not a source of sweep {sweep.id}")
        changed = enable_source(u.index, name)
        if changed:
            u.changed = True
            _log(sweep, [f"[{log_stamp()}] INFO - Source '{name}' enabled"])
    return changed


# --- stealing ----------------------------------------------------------------------------------------


def rebalance(sweep: Sweep, project: ProjectConfig, among: Iterable[str] | None = None,
              strategy: str | None = None) -> list[Moved]:
    """Idle sources take waiting work from sources that hold more than they will start soon."""
    index = sweep.read_index()
    capacity, silent = enabled_capacity(index, among), silent_sources(index)
    plan = fo.plan_steal(index["tasks"], capacity, silent)
    if not plan:
        return []
    idle = list(fo.idle_sources(index["tasks"], capacity, silent))
    moves = []
    for victim, count in plan.items():
        moved = take_back(sweep, project, victim, fo.steal_order(index["tasks"], victim, count), outcome="stolen")
        moves.append(moved)
    if any(m.revoked or m.abandoned for m in moves):
        placed = reassign(sweep, strategy or project.strategy, idle, move_assigned=False)
        for m in moves:
            m.reassigned = placed
    return moves


def needs_rebalance(index: Index, among: Iterable[str] | None = None) -> bool:
    """True when an idle source could take waiting work (read from the index, no call)."""
    return bool(fo.plan_steal(index["tasks"], enabled_capacity(index, among), silent_sources(index)))


# --- upkeep after faults -------------------------------------------------------------------------


def needs_upkeep(index: Index) -> bool:
    """True when `upkeep` has something to look at (read from the index, no call)."""
    sources = index.get("sources", {})
    if any(e.get("abandoned") or e.get("unreachable_since") for e in sources.values()):
        return True
    disabled = {n for n, e in sources.items() if e.get("disabled")}
    return bool(disabled) and any(t.get("source") in disabled and t["state"] in fo.UNSTARTED
                                  for t in index["tasks"].values())


def upkeep(sweep: Sweep, project: ProjectConfig, compute: Mapping[str, object]) -> list[Moved]:
    """Finish what faults left: unstarted work still on disabled sources is taken back, work on
    sources silent past `unreachable_grace` is given up, and what was given up on a source
    that answers again is stopped there."""
    index = sweep.read_index()
    moves = []
    for name, entry in index.get("sources", {}).items():
        if entry.get("disabled"):
            refs = fo.unstarted(index["tasks"], name)
            if refs:
                moved = take_back(sweep, project, name, refs)
                moves.append(moved)
                if moved.revoked or moved.abandoned:
                    with sweep.update():
                        _log(sweep, [_redistribution_line(name, len(moved.revoked) + len(moved.abandoned))])
    grace = float(compute.get("unreachable_grace", 300.0))  # type: ignore[arg-type]
    moves += _abandon_silent(sweep, index, grace)
    stop_abandoned(sweep, project, sweep.read_index())
    return moves


def _abandon_silent(sweep: Sweep, index: Index, grace: float) -> list[Moved]:
    import datetime as _dt

    until = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%SZ")
    silent = fo.silent_too_long(index, until)
    moves = []
    for name in silent:
        with sweep.update() as u:
            refs = [TaskRef(tid, t.get("attempt", 0), t["state"], None, t.get("job"))
                    for tid, t in u.tasks.items() if t.get("source") == name and t["state"] in ACTIVE]
            result = fo.abandon(u.index, name, refs, now_iso())
            u.changed |= bool(result.requeued or result.failed)
            since = u.index["sources"][name].get("unreachable_since")
            stamp = log_stamp()
            lines = [f"[{stamp}] WARNING - Source '{name}' has not answered since {since}: "
                     f"giving up {len(refs)} unfinished tasks there (reason lost)"]
            if result.failed:
                lines.append(f"[{stamp}] ERROR - {len(result.failed)} tasks failed (reason lost): given up "
                             f"{fo.ABANDON_LIMIT} times: {', '.join(result.failed[:10])}")
            # Nothing of the host can be read now: the failure is the silence itself.
            lost = [errors.failure(tid, u.tasks[tid]["history"][-1], now_iso(), [])
                    for tid in [*result.requeued, *result.failed]]
            lines += [f"[{stamp}] WARNING - {line}" for line in errors.record(sweep, lost)]
            _log(sweep, lines)
        moves.append(Moved(name, abandoned=result.requeued))
    return moves


def stop_abandoned(sweep: Sweep, project: ProjectConfig, index: Index) -> dict[str, int]:
    """Stop, on each source that answers, the attempts hsm gave up on there; source -> stopped."""
    stopped = {}
    for name, entry in index.get("sources", {}).items():
        kept = entry.get("abandoned") or []
        if not kept or entry.get("unreachable_since"):
            continue
        refs = [TaskRef(str(k[0]), int(k[1]), "running", None, k[2] if len(k) > 2 else None) for k in kept]
        try:
            make_source(name, entry, sweep, project).stop(refs)
        except HsmError:
            continue  # still not answering: the next upkeep tries again
        with sweep.update() as u:
            left = u.index["sources"][name].get("abandoned") or []
            u.index["sources"][name]["abandoned"] = [k for k in left if k not in kept]
            if not u.index["sources"][name]["abandoned"]:
                u.index["sources"][name].pop("abandoned", None)
            u.changed = True
            _log(sweep, [f"[{log_stamp()}] INFO - Stopped {len(refs)} attempts given up on '{name}' "
                         "while it did not answer"])
        stopped[name] = len(refs)
    return stopped
