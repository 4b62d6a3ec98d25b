"""The failsafe policy (seeds 000 and 004), pure: when is a source disabled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """What the policy says of one source, with the numbers behind it."""

    disable: bool
    message: str


def decide(name: str, finished: int, failed: int, consecutive_failures: int, compute: dict[str, Any]) -> Decision:
    """Disable after too many failed health checks in a row, or a failure rate too high."""
    limit = int(compute.get("health_check_failure_threshold", 3))
    if compute.get("auto_disable_unhealthy_sources", True) and consecutive_failures >= limit:
        return Decision(True, f"Disabling source '{name}' due to {consecutive_failures} consecutive health check failures")
    threshold = float(compute.get("source_failure_threshold", 0.4))
    minimum = int(compute.get("min_jobs_for_failsafe", 5))
    if compute.get("enable_source_failsafe", True) and finished >= minimum and finished:
        rate = failed / finished
        if rate >= threshold:
            return Decision(
                True,
                f"Disabling source '{name}' due to high failure rate: {failed}/{finished} ({rate:.0%}) >= {threshold:.0%}",
            )
    return Decision(False, "")
