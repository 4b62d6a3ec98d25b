"""`hsm submit`: assigned tasks are handed to their sources; never twice.

Reserve, act, record: under the lock each assigned task becomes `submitted` with a new
attempt number; outside it the source accepts the attempts; under the lock again what
the source returned (a job id) is recorded. An attempt that was reserved but not
recorded (a crash, an unreachable host) is delivered again with the same number, and
the sources ignore an attempt they already have.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from hsm.clock import log_stamp, now_iso
from hsm.commands.health import record_failures
from hsm.config import ProjectConfig
from hsm.core.index import TaskRef
from hsm.core.transitions import fold_accepted, reserve_attempts, undelivered
from hsm.errors import BadInput, HsmError
from hsm.sources import make_source
from hsm.sources.base import SubmitResult
from hsm.sweep import Sweep
from hsm.sync import SyncMismatch


@dataclass
class SubmitSummary:
    """What this submit delivered, and what it could not."""

    delivered: list[tuple[str, str]] = field(default_factory=list)  # (task id, source)
    errors: dict[str, str] = field(default_factory=dict)  # source -> message
    disabled: dict[str, str] = field(default_factory=dict)  # sources the policy disabled -> why


def _record_jobs(sweep: Sweep, accepted: Mapping[str, Mapping[str, Any]]) -> None:
    """Record what a source accepted, under the lock."""
    with sweep.update() as u:
        u.changed |= fold_accepted(u.tasks, accepted)


def submit(sweep: Sweep, project: ProjectConfig, dependency: str | None = None,
           skip: Collection[str] = ()) -> SubmitSummary:
    """Deliver every assigned (or reserved but undelivered) task to its source (but those in `skip`).

    `dependency` (e.g. `afterok:123`) is passed to the schedulers of hpc sources.
    """
    summary = SubmitSummary()
    with sweep.update() as u:
        u.changed |= bool(reserve_attempts(u.tasks, now_iso()))
        sources = dict(u.index.get("sources", {}))
        pending = undelivered(u.tasks)
    accepted: dict[str, dict[str, Any]] = {}
    for name, refs in pending.items():
        if name in skip or sources.get(name, {}).get("disabled"):
            continue  # a disabled source's attempts are taken back (`failover.upkeep`)
        result = _deliver(sweep, project, name, sources.get(name), refs, dependency, summary)
        if result is not None:
            accepted.update(result.accepted)
            summary.delivered += [(tid, name) for tid in result.accepted]
            if result.refused:
                summary.errors[name] = next(iter(result.refused.values()))
    if accepted or summary.errors:
        with sweep.update() as u:
            u.changed |= fold_accepted(u.tasks, accepted)
            _log(sweep, summary)
    if summary.errors:
        # A refused or failed delivery is a failed health check; a configuration error disables at once.
        summary.disabled = record_failures(sweep, summary.errors).disabled
    return summary


def _deliver(sweep: Sweep, project: ProjectConfig, name: str, settings: Mapping[str, Any] | None,
             refs: list[TaskRef], dependency: str | None, summary: SubmitSummary) -> SubmitResult | None:
    """Hand one source its reserved attempts (no lock held); None when it could not take them."""
    if settings is None:
        summary.errors[name] = f"source '{name}' is not in the sweep's task_mapping.yaml"
        return None
    if dependency and settings.get("type") == "hpc":
        settings = {**settings, "options": {**(settings.get("options") or {}), "dependency": dependency}}
    try:
        source = make_source(name, settings, sweep, project)
        # A scheduler source records each chunk's job ids before it submits the next.
        return source.submit(refs, lambda fields: _record_jobs(sweep, fields))
    except (BadInput, SyncMismatch):
        raise  # a broken template or config, a differing project copy: retrying cannot help
    except HsmError as exc:
        summary.errors[name] = str(exc)
        return None


def _log(sweep: Sweep, summary: SubmitSummary) -> None:
    stamp = log_stamp()
    by_source: dict[str, list[str]] = {}
    for tid, name in summary.delivered:
        by_source.setdefault(name, []).append(tid)
    for name, tids in by_source.items():
        sweep.append_log(f"sources/{name}.log", [f"[{stamp}] INFO - submitted {tid}" for tid in tids])
    lines = [f"[{stamp}] INFO - submit: {len(t)} tasks to {n}" for n, t in by_source.items()]
    lines += [f"[{stamp}] ERROR - submit to {n} failed: {msg}" for n, msg in summary.errors.items()]
    sweep.append_log("sweep.log", lines)
