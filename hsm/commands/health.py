"""`hsm health`: probe each source of a sweep and apply the failsafe policy."""

from __future__ import annotations

from typing import Any

from hsm.clock import log_stamp, now_iso
from hsm.config import ProjectConfig
from hsm.core.health import decide
from hsm.core.states import ASSIGNED, FAILED, PENDING
from hsm.errors import HsmError
from hsm.sources import make_source
from hsm.sweep import Sweep


def health(sweep: Sweep, project: ProjectConfig) -> dict[str, dict[str, Any]]:
    """Probe every source (outside the lock), then record and act on the results under it.

    A source the policy disables gives its unsubmitted tasks back to the pool, so the
    next `assign` spreads them over the healthy sources.
    """
    index = sweep.read_index()
    sources = index.get("sources", {})
    probes: dict[str, dict[str, Any]] = {}
    for name, settings in sources.items():
        if settings.get("disabled"):
            probes[name] = {"status": "disabled", "details": settings.get("disabled_reason", "disabled"), "ok": True}
            continue
        try:
            probes[name] = make_source(name, settings, sweep, project).health()
        except HsmError as exc:
            probes[name] = {"status": "unhealthy", "details": str(exc), "ok": False}
    compute = sweep.metadata.get("compute", {})
    stamp = log_stamp()
    with sweep.update() as u:
        lines: list[str] = []
        for name, probe in probes.items():
            entry = u.index["sources"].get(name)
            if entry is None or entry.get("disabled"):
                continue
            record = entry.setdefault("health", {})
            record["consecutive_failures"] = 0 if probe["ok"] else record.get("consecutive_failures", 0) + 1
            record["status"] = probe["status"]
            record["checked"] = now_iso()
            u.changed = True
            if probe["ok"]:
                lines.append(f"[{stamp}] INFO - Health check passed for {name}: {probe['details']}")
            else:
                lines.append(
                    f"[{stamp}] WARNING - Health check failed for {name}: {probe['details']} "
                    f"(consecutive failures: {record['consecutive_failures']})"
                )
            finished = sum(1 for t in u.tasks.values() if t.get("source") == name and t["state"] in ("completed", "failed"))
            failed = sum(1 for t in u.tasks.values() if t.get("source") == name and t["state"] == FAILED)
            decision = decide(name, finished, failed, record["consecutive_failures"], compute)
            if decision.disable:
                entry["disabled"] = True
                entry["disabled_reason"] = decision.message
                lines.append(f"[{stamp}] ERROR - {decision.message}")
                moved = [tid for tid, t in u.tasks.items() if t.get("source") == name and t["state"] == ASSIGNED]
                for tid in moved:
                    u.tasks[tid]["state"] = PENDING
                    u.tasks[tid].pop("source", None)
                if moved:
                    lines.append(f"[{stamp}] INFO - Redistributing {len(moved)} pending tasks from disabled source '{name}'")
                probes[name] = {**probe, "status": "disabled", "details": decision.message}
        sweep.append_log("health_status.log", lines)
    return probes
