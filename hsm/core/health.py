"""The failsafe policy, pure: how healthy a host is, and when a source is disabled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """What the policy says of one source, with the numbers behind it."""

    disable: bool
    message: str
    rule: str = ""  # "health" (enabled again after healthy checks) or "failure_rate" (stays disabled)


def decide(name: str, finished: int, failed: int, consecutive_failures: int, compute: Mapping[str, Any]) -> Decision:
    """Disable after too many failed health checks in a row, or a failure rate too high."""
    limit = int(compute.get("health_check_failure_threshold", 3))
    if compute.get("auto_disable_unhealthy_sources", True) and consecutive_failures >= limit:
        return Decision(True, f"Disabling source '{name}' due to {consecutive_failures} consecutive health check failures",
                        "health")
    threshold = float(compute.get("source_failure_threshold", 0.4))
    minimum = int(compute.get("min_jobs_for_failsafe", 5))
    if compute.get("enable_source_failsafe", True) and finished >= minimum and finished:
        rate = failed / finished
        if rate >= threshold:
            return Decision(
                True,
                f"Disabling source '{name}' due to high failure rate: {failed}/{finished} ({rate:.0%}) >= {threshold:.0%}",
                "failure_rate",
            )
    return Decision(False, "")


# What a source says when its own setup is wrong: no number of retries will cure it.
PERMANENT_ERRORS = (
    "invalid partition", "invalid account", "invalid qos", "invalid feature specification",
    "unknown queue", "unknown host", "could not resolve hostname", "name or service not known",
    "host key verification failed", "permission denied (publickey", ": exec: ",
    "batch job submission failed: invalid",
    # sbatch refusing an option's value (--time, --mem, ...), qsub refusing a resource.
    "error: invalid --", "illegal attribute or resource value", "unknown resource",
)


def is_permanent(message: str) -> bool:
    """True when a failed call's message shows a configuration error rather than a passing fault."""
    text = message.lower()
    return any(p in text for p in PERMANENT_ERRORS)


def classify_health(info: Mapping[str, Any], compute: Mapping[str, Any]) -> dict[str, Any]:
    """healthy / degraded / unhealthy from a host's free disk, load and memory."""
    free = float(info.get("free_bytes") or 0)
    load1 = float(info.get("load1") or 0.0)
    cpus = int(info.get("cpus") or 1)
    total, avail = info.get("mem_total"), info.get("mem_available")
    used = 100.0 * (1 - avail / total) if total and avail is not None else 0.0
    details = f"{free / 2**30:.1f}GB free, load {load1:.2f} on {cpus} CPUs, memory {used:.0f}% used"
    # The figures themselves, for views that show them (`hsm monitor source`); the index keeps only details.
    metrics = {"free_bytes": free, "load1": load1, "cpus": cpus, "mem_total": total, "mem_available": avail}
    if free < float(compute.get("disk_floor_mb", 200)) * 2**20:
        return {"status": "unhealthy", "details": "Critical disk space: " + details, "ok": False, "metrics": metrics}
    if free < float(compute.get("disk_min_free_gb", 3.0)) * 2**30 or load1 > 2 * cpus or used > 95:
        return {"status": "degraded", "details": details, "ok": True, "metrics": metrics}
    return {"status": "healthy", "details": details, "ok": True, "metrics": metrics}
