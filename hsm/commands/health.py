"""`hsm health`: probe each source of a sweep and apply the failsafe policy.

The same policy acts on failed polls and submits (`record_failures`), so a sweep driven
by cron (`hsm submit`, `hsm poll`, `hsm health`) fails over as `hsm run` does.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import Any

from hsm.clock import log_stamp, now_iso
from hsm.config import ProjectConfig
from hsm.core.health import is_permanent
from hsm.core.index import Index, SourceEntry
from hsm.core.summary import parse_iso
from hsm.core.transitions import HealthFold, fold_health
from hsm.errors import HsmError
from hsm.sources import make_source
from hsm.sweep import Sweep


def probed(entry: SourceEntry) -> bool:
    """Whether a health round probes this source: enabled ones, and ones the policy may enable again."""
    return not entry.get("disabled") or entry.get("disabled_by") == "health"


def probe_sources(sweep: Sweep, project: ProjectConfig, index: Index,
                  among: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """One health call per source (no lock held)."""
    wanted = set(among) if among is not None else None
    probes: dict[str, dict[str, Any]] = {}
    for name, entry in index.get("sources", {}).items():
        if (wanted is not None and name not in wanted) or not probed(entry):
            continue
        try:
            probes[name] = make_source(name, entry, sweep, project).health()
        except HsmError as exc:
            probes[name] = {"status": "unhealthy", "details": str(exc), "ok": False, "reached": False}
    return probes


def health(sweep: Sweep, project: ProjectConfig, among: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Probe every source (outside the lock), then record and act on the results under it.

    A source the policy disables gives back everything that has not started there; the
    tasks go to the enabled sources (`failover.upkeep`, `failover.reassign`).
    """
    from hsm.commands import failover, utilization

    index = sweep.read_index()
    probes = probe_sources(sweep, project, index, among)
    fold = record(sweep, probes)
    out = dict(probes)
    for name, entry in index.get("sources", {}).items():
        if name not in out and (among is None or name in set(among)):
            out[name] = {"status": "disabled", "details": entry.get("disabled_reason", "disabled"), "ok": True}
    for name, why in fold.disabled.items():
        out[name] = {**out[name], "status": "disabled", "details": why}
    failover.upkeep(sweep, project, compute_of(sweep, project))
    failover.reassign(sweep, project.strategy, among)
    utilization.sample(sweep)  # a cron loop's samples, as `hsm run` takes its own
    return out


def compute_of(sweep: Sweep, project: ProjectConfig) -> Mapping[str, Any]:
    """The thresholds the sweep was expanded with (the project's for an older sweep)."""
    return sweep.metadata.get("compute") or project.compute


def record(sweep: Sweep, probes: Mapping[str, Mapping[str, Any]]) -> HealthFold:
    """Fold probes (or failed calls) into the index and log what the policy did."""
    if not probes:
        return HealthFold()
    with sweep.update() as u:
        fold = fold_health(u.index, probes, sweep.metadata.get("compute", {}), now_iso())
        u.changed = True
        lines = health_lines(fold)
        sweep.append_log("health_status.log", lines)
        sweep.append_log("sweep.log", [line for line in lines if " - INFO - Health check passed" not in line])
    return fold


def failed_call(message: str) -> dict[str, Any]:
    """A failed poll, push or submit as a failed health check."""
    return {"status": "unhealthy", "details": message, "ok": False, "reached": False, "permanent": is_permanent(message)}


def record_failures(sweep: Sweep, errors: Mapping[str, str]) -> HealthFold:
    """Count failed calls to sources as failed health checks."""
    return record(sweep, {name: failed_call(message) for name, message in errors.items()})


def backing_off(entry: SourceEntry, interval: float, now: _dt.datetime | None = None) -> bool:
    """True while a failing source waits before it is called again: 2, 4, 8 ... seconds after its
    last failed check, at most `interval` (so a dead host is not hammered, nor the log filled)."""
    health = entry.get("health") or {}
    failures = int(health.get("consecutive_failures", 0))
    checked = parse_iso(health.get("checked"))
    if not failures or checked is None:
        return False
    wait = min(2.0 ** failures, interval)
    return (now or _dt.datetime.now(_dt.timezone.utc)) < checked + _dt.timedelta(seconds=wait)


def health_lines(fold: HealthFold) -> list[str]:
    """The seeds' log lines for one health fold."""
    stamp = log_stamp()
    lines = []
    for name, (ok, details, failures) in fold.checked.items():
        if ok:
            lines.append(f"[{stamp}] INFO - Health check passed for {name}: {details}")
        else:
            lines.append(f"[{stamp}] WARNING - Health check failed for {name}: {details} (consecutive failures: {failures})")
    for name, why in fold.disabled.items():
        lines.append(f"[{stamp}] ERROR - {why}")
        moved = fold.redistributed.get(name)
        if moved:
            lines.append(f"[{stamp}] INFO - Redistributing {len(moved)} pending tasks from disabled source '{name}'")
    for why in fold.enabled.values():
        lines.append(f"[{stamp}] INFO - {why}")
    return lines
