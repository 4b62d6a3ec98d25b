"""`hsm monitor watch`, `recent` and `source`: what a sweep is doing, as plain data.

Everything here only reads: the index (replaced atomically, so read without the lock),
the metadata and the tail of each log. It can run beside `hsm run` or a cron loop at any
rate. Only `source_view` calls a source: one health probe, the call `hsm monitor health`
makes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any

from hsm import store
from hsm.commands import sources as sources_logic
from hsm.config import ProjectConfig
from hsm.core import activity, progress
from hsm.core.index import Index
from hsm.core.states import COMPLETED, FAILED
from hsm.core.summary import parse_iso
from hsm.errors import BadInput, HsmError
from hsm.sweep import Sweep, list_sweeps

TAIL_BYTES = 65536  # of each log: enough for the last events of a sweep of any size
ACTIVITY_EVENTS = 8


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def tail_lines(path: Path, size: int = TAIL_BYTES) -> list[str]:
    """The whole lines among the last `size` bytes of a file; [] when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            start = max(0, fh.tell() - size)
            fh.seek(start)
            data = fh.read(size)
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if start and lines else lines  # the first one was cut


def log_files(sweep: Sweep) -> list[Path]:
    """The logs that say what happened: assignments, each source's, the sweep's, the health log."""
    paths = sweep.paths
    per_source = sorted(paths.source_logs.glob("*.log")) if paths.source_logs.is_dir() else []
    return [paths.log("task_assignments.log"), *per_source, paths.log("sweep.log"), paths.log("health_status.log")]


def recent_activity(sweep: Sweep, index: Index, limit: int = ACTIVITY_EVENTS) -> list[activity.Event]:
    """The last events of the sweep's logs, oldest first."""
    durations = {tid: float(t["duration"]) for tid, t in index["tasks"].items()
                 if t["state"] == COMPLETED and isinstance(t.get("duration"), (int, float))}
    return activity.recent((tail_lines(p) for p in log_files(sweep)), limit, durations)


def changed_at(sweep: Sweep) -> _dt.datetime | None:
    """When the sweep's index was last written."""
    try:
        return _dt.datetime.fromtimestamp(sweep.paths.mapping.stat().st_mtime, _dt.timezone.utc)
    except OSError:
        return None


def watch_data(sweep: Sweep, now: _dt.datetime | None = None, index: Index | None = None,
               events: int = ACTIVITY_EVENTS) -> dict[str, Any]:
    """One frame of `hsm monitor watch`: the overview, each source's load and condition, recent events."""
    now = now or utc_now()
    index = index if index is not None else sweep.read_index()
    data = progress.overview(index, now, parse_iso(sweep.metadata.get("created")), changed_at(sweep))
    data.update(sweep_id=sweep.id, path=str(sweep.root), created=sweep.metadata.get("created"),
                sources=progress.source_rows(index),
                activity=[{"stamp": e.stamp, "clock": e.clock, "text": e.text, "took": e.took}
                          for e in recent_activity(sweep, index, events)])
    return data


def watched_sweeps(project: ProjectConfig, seen: list[Path]) -> list[Sweep]:
    """The project's unfinished sweeps, and those in `seen` (shown before: they stay until the end);
    `seen` gets the new ones."""
    for sweep in sources_logic.unfinished_sweeps(project):
        if sweep.root not in seen:
            seen.append(sweep.root)
    found = []
    for root in seen:
        try:
            found.append(Sweep.open(root))
        except HsmError:
            continue  # removed meanwhile
    return found


# --- recent sweeps ---------------------------------------------------------------------------------


def created_of(sweep: Sweep) -> _dt.datetime:
    """When the sweep was made: its metadata, else its directory's time."""
    when = parse_iso(sweep.metadata.get("created"))
    if when is None:
        when = _dt.datetime.fromtimestamp(sweep.root.stat().st_mtime, _dt.timezone.utc)
    return when


def sweeps_newest_first(project: ProjectConfig) -> list[tuple[_dt.datetime, Sweep]]:
    """The project's sweeps that open, with their creation time, newest first."""
    found = []
    for path in list_sweeps(project.outputs_dir):
        try:
            sweep = Sweep.open(path)
            found.append((created_of(sweep), sweep))
        except (HsmError, OSError):
            continue  # a damaged sweep dir: `hsm status` says what is wrong with it
    return sorted(found, key=lambda pair: (pair[0], pair[1].id), reverse=True)


def recent_sweeps(project: ProjectConfig, days: float = 7, limit: int = 10,
                  now: _dt.datetime | None = None) -> list[dict[str, Any]]:
    """The sweeps created in the last `days` days, newest first, at most `limit`: counts, status, sources."""
    now = now or utc_now()
    since = now - _dt.timedelta(days=days)
    rows: list[dict[str, Any]] = []
    for created, sweep in sweeps_newest_first(project):
        if created < since or len(rows) >= limit:
            break
        try:
            index = sweep.read_index()
        except HsmError:
            continue
        data = progress.overview(index, now, created, changed_at(sweep))
        data.update(sweep_id=sweep.id, path=str(sweep.root), created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    sources=[{"name": r["name"], "disabled": r["disabled"]} for r in progress.source_rows(index)])
        rows.append(data)
    return rows


# --- one source ------------------------------------------------------------------------------------


def latest_sweep_using(project: ProjectConfig, name: str) -> Sweep | None:
    """The most recent sweep whose index has source `name`."""
    for _, sweep in sweeps_newest_first(project):
        try:
            if name in sweep.read_index().get("sources", {}):
                return sweep
        except HsmError:
            continue
    return None


def source_view(project: ProjectConfig, name: str, sweep: Sweep | None = None,
                now: _dt.datetime | None = None) -> dict[str, Any]:
    """A source's record in a sweep (default: the latest that used it) and one health probe of it now."""
    now = now or utc_now()
    if sweep is None:
        sweep = latest_sweep_using(project, name)
    index: Index = sweep.read_index() if sweep else {"sources": {}, "tasks": {}}
    known = list(project.sources) + [n for n in index.get("sources", {}) if n not in project.sources]
    if name not in known:
        where = f" of sweep {sweep.id} or" if sweep else ""
        raise BadInput(f"unknown source '{name}': not a source{where} of the project (known: {', '.join(known) or 'none'})")
    stats = progress.source_stats(index, name)
    if name not in index.get("sources", {}) and name in project.sources:
        stats["slots"] = project.sources[name].max_parallel
    started = time.monotonic()
    row = sources_logic.health_report(project, sweep, [name])[0]
    latency = time.monotonic() - started
    checked = parse_iso(stats["health"].get("checked"))
    return {
        "source": name, "type": row.type, "sweep_id": sweep.id if sweep else None, **stats,
        "utilization": stats["running"] / stats["slots"] if stats["slots"] else None,
        "probe": {k: v for k, v in row.probe.items()}, "probe_seconds": latency,
        "status_now": row.status,
        "last_check_seconds_ago": progress.seconds_between(checked, now),
    }


# --- errors ----------------------------------------------------------------------------------------


def unrecorded_failures(sweep: Sweep, index: Index, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed tasks the error record does not have (a sweep older than it): diagnosed here, from the
    index and the end of their stderr, and written nowhere."""
    from hsm.commands import errors

    have = {(f["id"], f.get("attempt")) for f in known}
    found = []
    for tid, t in index["tasks"].items():
        if t["state"] != FAILED or (tid, t.get("attempt")) in have:
            continue
        tail = errors.read_tail(sweep.paths.task(tid) / "stderr.log")
        found.append({**errors.diagnosed(errors.failure(tid, t, str(t.get("end") or ""), tail)), "outcome": "failed"})
    return found


def _check_source(sweep: Sweep, index: Index, failed: list[dict[str, Any]], source: str) -> None:
    names = list(index.get("sources", {})) + sorted({str(f.get("source")) for f in failed} - set(index.get("sources", {})))
    if source not in names:
        raise BadInput(f"--source: '{source}' is not a source of sweep {sweep.id} (sources: {', '.join(names) or 'none'})")


def error_report(sweep: Sweep, source: str | None = None, tasks: str | None = None) -> dict[str, Any]:
    """The sweep's failures (`hsm.commands.errors.analysis`), only those of `source` and of the tasks
    `tasks` names (`task_023,task_045`, `7,9:12`) when given; with `tasks`, each task's `details`."""
    from hsm.commands import errors
    from hsm.commands.complete import select_tasks

    index = sweep.read_index()
    report = errors.analysis(sweep, index)
    failed = list(report["failed"]) + unrecorded_failures(sweep, index, report["failed"])
    if source is not None:
        _check_source(sweep, index, failed, source)
        failed = [f for f in failed if f.get("source") == source]
    chosen = sorted(select_tasks(tasks, list(index["tasks"]))) if tasks is not None else None
    if chosen is not None:
        failed = [f for f in failed if f["id"] in set(chosen)]
    failed.sort(key=lambda f: (str(f["id"]), f.get("attempt") or 0))
    out: dict[str, Any] = {**errors.summary(sweep.id, failed), "filters": {"source": source, "tasks": chosen}}
    if chosen is not None:
        out["details"] = [{"id": tid, "state": index["tasks"][tid]["state"], "source": index["tasks"][tid].get("source"),
                           "failures": [f for f in failed if f["id"] == tid]} for tid in chosen]
    return out


def export_report(report: dict[str, Any], path: Path) -> Path:
    """Write the report as JSON (a `.json` file) or YAML (anything else)."""
    if not path.parent.is_dir():
        raise BadInput(f"--export: {path}: no such directory {path.parent}")
    if path.is_dir():
        raise BadInput(f"--export: {path} is a directory")
    text = json.dumps(report, indent=2, default=str) + "\n" if path.suffix.lower() == ".json" else store.yaml_text(report)
    store.atomic_write(path, text)
    return path
