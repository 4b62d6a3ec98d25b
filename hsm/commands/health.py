"""`hsm health`: probe each source of a sweep and apply the failsafe policy."""

from __future__ import annotations

from typing import Any

from hsm.clock import log_stamp, now_iso
from hsm.config import ProjectConfig
from hsm.core.transitions import HealthFold, fold_health
from hsm.errors import HsmError
from hsm.sources import make_source
from hsm.sweep import Sweep


def health(sweep: Sweep, project: ProjectConfig) -> dict[str, dict[str, Any]]:
    """Probe every source (outside the lock), then record and act on the results under it.

    A source the policy disables gives its unsubmitted tasks back to the pool, so the
    next `assign` spreads them over the healthy sources.
    """
    index = sweep.read_index()
    probes: dict[str, dict[str, Any]] = {}
    for name, settings in index.get("sources", {}).items():
        if settings.get("disabled"):
            probes[name] = {"status": "disabled", "details": settings.get("disabled_reason", "disabled"), "ok": True}
            continue
        try:
            probes[name] = make_source(name, settings, sweep, project).health()
        except HsmError as exc:
            probes[name] = {"status": "unhealthy", "details": str(exc), "ok": False}
    with sweep.update() as u:
        fold = fold_health(u.index, probes, sweep.metadata.get("compute", {}), now_iso())
        u.changed |= bool(fold.checked)
        sweep.append_log("health_status.log", _lines(fold))
    for name, why in fold.disabled.items():
        probes[name] = {**probes[name], "status": "disabled", "details": why}
    return probes


def _lines(fold: HealthFold) -> list[str]:
    stamp = log_stamp()
    lines = []
    for name, (ok, details, failures) in fold.checked.items():
        if ok:
            lines.append(f"[{stamp}] INFO - Health check passed for {name}: {details}")
        else:
            lines.append(f"[{stamp}] WARNING - Health check failed for {name}: {details} (consecutive failures: {failures})")
        if name in fold.disabled:
            lines.append(f"[{stamp}] ERROR - {fold.disabled[name]}")
            moved = fold.redistributed.get(name)
            if moved:
                lines.append(f"[{stamp}] INFO - Redistributing {len(moved)} pending tasks from disabled source '{name}'")
    return lines
