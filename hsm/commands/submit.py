"""`hsm submit`: assigned tasks are handed to their sources; never twice.

Reserve, act, record: under the lock each assigned task becomes `submitted` with a new
attempt number; outside it the source accepts the attempts; under the lock again what
the source returned (a job id) is recorded. An attempt that was reserved but not
recorded (a crash, an unreachable host) is delivered again with the same number, and
the sources ignore an attempt they already have.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hsm.clock import log_stamp, now_iso
from hsm.config import ProjectConfig
from hsm.core.states import ASSIGNED, QUEUED, SUBMITTED
from hsm.errors import BadInput, HsmError
from hsm.sources import make_source
from hsm.sources.base import TaskRef
from hsm.sweep import IndexUpdate, Sweep
from hsm.sync import SyncMismatch

# Outcome fields of an earlier attempt, cleared when a new one starts.
_OUTCOME = ("host", "start", "end", "duration", "exit_code", "reason", "seen", "job")


@dataclass
class SubmitSummary:
    """What this submit delivered, and what it could not."""

    delivered: list[tuple[str, str]] = field(default_factory=list)  # (task id, source)
    errors: dict[str, str] = field(default_factory=dict)  # source -> message


def _fold_accepted(u: IndexUpdate, accepted: dict[str, dict]) -> None:
    """Record what a source accepted, for attempts still waiting for it (lock held)."""
    for tid, fields in accepted.items():
        entry = u.tasks.get(tid)
        if entry is not None and entry["state"] == SUBMITTED and not entry.get("job") \
                and fields.get("attempt", entry.get("attempt")) == entry.get("attempt"):
            entry.update(fields)
            u.changed = True


def _record_jobs(sweep: Sweep, accepted: dict[str, dict]) -> None:
    """Record what a source accepted, under the lock."""
    with sweep.update() as u:
        _fold_accepted(u, accepted)


def submit(sweep: Sweep, project: ProjectConfig, dependency: str | None = None) -> SubmitSummary:
    """Deliver every assigned (or reserved but undelivered) task to its source.

    `dependency` (e.g. `afterok:123`) is passed to the schedulers of hpc sources.
    """
    summary = SubmitSummary()
    now = now_iso()
    with sweep.update() as u:
        for entry in u.tasks.values():
            if entry["state"] == ASSIGNED:
                for key in _OUTCOME:
                    entry.pop(key, None)
                entry["state"] = SUBMITTED
                entry["attempt"] = entry.get("attempt", 0) + 1
                entry["submitted_at"] = now
                u.changed = True
        sources = dict(u.index.get("sources", {}))
        pending: dict[str, list[TaskRef]] = {}
        waiting: dict[str, list[TaskRef]] = {}
        for tid, entry in u.tasks.items():
            if entry["state"] == SUBMITTED and not entry.get("job"):
                pending.setdefault(entry["source"], []).append(TaskRef(tid, entry["attempt"], entry["state"]))
            elif entry["state"] in (SUBMITTED, QUEUED):
                waiting.setdefault(entry["source"], []).append(TaskRef(tid, entry["attempt"], entry["state"]))

    accepted: dict[str, dict] = {}
    for name, refs in pending.items():
        if name not in sources:
            summary.errors[name] = f"source '{name}' is not in the sweep's task_mapping.yaml"
            continue
        settings = sources[name]
        if dependency and settings.get("type") == "hpc":
            settings = {**settings, "options": {**settings.get("options", {}), "dependency": dependency}}
        try:
            source = make_source(name, settings, sweep, project)
            # A scheduler source records each chunk's job ids before it submits the next.
            submit_recording = getattr(source, "submit_recording", None)
            if submit_recording is not None:
                result = submit_recording(refs, lambda fields: _record_jobs(sweep, fields))
            else:
                result = source.submit(refs)
        except (BadInput, SyncMismatch):
            raise  # a broken template or config, a differing project copy: retrying cannot help
        except HsmError as exc:
            summary.errors[name] = str(exc)
            continue
        accepted.update(result.accepted)
        summary.delivered += [(tid, name) for tid in result.accepted]
        if result.refused:
            summary.errors[name] = next(iter(result.refused.values()))
    for name, refs in waiting.items():
        if name in sources:
            source = make_source(name, sources[name], sweep, project)
            ensure = getattr(source, "ensure_running", None)
            if ensure is not None:
                ensure(refs)

    if accepted or summary.errors:
        with sweep.update() as u:
            _fold_accepted(u, accepted)
            stamp = log_stamp()
            by_source: dict[str, list[str]] = {}
            for tid, name in summary.delivered:
                by_source.setdefault(name, []).append(tid)
            for name, tids in by_source.items():
                sweep.append_log(f"sources/{name}.log", [f"[{stamp}] INFO - submitted {tid}" for tid in tids])
            lines = [f"[{stamp}] INFO - submit: {len(t)} tasks to {n}" for n, t in by_source.items()]
            lines += [f"[{stamp}] ERROR - submit to {n} failed: {msg}" for n, msg in summary.errors.items()]
            sweep.append_log("sweep.log", lines)
    return summary
