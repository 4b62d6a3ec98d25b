"""Failures, written down the moment they are recorded: what failed, why, and what to do.

Each failed attempt gets `logs/errors/task_NNN_error.txt` (category, reason, exit code, the
end of its stderr); `logs/errors/failed_tasks.yaml` lists every failed attempt of the sweep
and `error_patterns.yaml` groups them by category. The step that records a failure (a poll,
the upkeep that gives up on a silent host) calls `record` under the sweep lock, so these
files have one writer at a time; `analysis` reads them for `hsm monitor errors` and the
error report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hsm import store
from hsm.commands.attempts import attempt_dir
from hsm.core.diagnosis import Pattern, announcement, diagnose, patterns
from hsm.core.index import Index
from hsm.errors import HsmError
from hsm.sweep import Sweep

TAIL_LINES = 30
TAIL_BYTES = 16384
FAILED_TASKS = "failed_tasks.yaml"
ERROR_PATTERNS = "error_patterns.yaml"


def read_tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a text file (at most TAIL_BYTES read); [] when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def failure(tid: str, entry: Mapping[str, Any], at: str, tail: Sequence[str] | None = None) -> dict[str, Any]:
    """One failed attempt as the error files keep it, from the task's index entry at the time it failed."""
    return {"id": tid, "attempt": entry.get("attempt"), "source": entry.get("source"), "host": entry.get("host"),
            "exit_code": entry.get("exit_code"), "reason": entry.get("reason"), "at": at,
            "stderr_tail": list(tail) if tail is not None else None}


def record(sweep: Sweep, failures: Sequence[dict[str, Any]]) -> list[str]:
    """Diagnose new failed attempts and write them down; the lines that announce their patterns
    (`Error pattern detected: "Import error" (3 tasks)`, then the suggestion).

    A failure whose stderr tail is not given (`None`) is read from the task's stderr.log here
    (a local or shared-file-system source); a remote source's poll brings the tail along.
    """
    if not failures:
        return []
    for f in failures:
        if f.get("stderr_tail") is None:
            f["stderr_tail"] = read_tail(sweep.paths.task(f["id"]) / "stderr.log")
        _write_error_file(sweep, diagnosed(f))
    before = {p.category: len(p.tasks) for p in patterns(_load_failed(sweep))}
    known = _merge(_load_failed(sweep), failures)
    grouped = patterns(known)
    _write_lists(sweep, known, grouped)
    # Announced when a pattern gains a task: the retries of one task say nothing new.
    return [line for p in grouped if len(p.tasks) > before.get(p.category, 0) for line in announcement(p)]


def refresh(sweep: Sweep, index: Index) -> list[str]:
    """Record the failed attempts the index knows and the error files do not (a sweep from an
    older hsm, a failure recorded by a step that was killed before it wrote them down)."""
    known = {(f["id"], f.get("attempt")) for f in _load_failed(sweep)}
    missing = []
    for tid, entry in index["tasks"].items():
        for past in entry.get("history", []):
            if past.get("outcome") in ("failed", "abandoned") and (tid, past.get("attempt")) not in known:
                where = attempt_dir(sweep, tid, past.get("attempt"))
                tail = read_tail(where / "stderr.log") or read_tail(where / "stderr_tail.log")
                missing.append(failure(tid, past, str(past.get("at")), tail))
        if entry.get("state") == "failed" and (tid, entry.get("attempt")) not in known:
            missing.append(failure(tid, entry, str(entry.get("end"))))
    return record(sweep, missing)


def diagnosed(f: dict[str, Any]) -> dict[str, Any]:
    """A failed attempt (with its `stderr_tail`) with its category, title, suggestion and evidence."""
    found = diagnose(f.get("reason"), f.get("exit_code"), f.get("stderr_tail") or [])
    f.update(category=found.category, title=found.title, suggestion=found.suggestion, evidence=found.evidence)
    return f


def analysis(sweep: Sweep, index: Index | None = None) -> dict[str, Any]:
    """Everything known about the sweep's failures: each failed attempt, the patterns, failures per
    source and what to do about them."""
    known = _load_failed(sweep)
    if index is not None:
        for f in known:
            entry = index["tasks"].get(f["id"], {})
            final = entry.get("state") == "failed" and entry.get("attempt") == f.get("attempt")
            f["outcome"] = "failed" if final else "retried"
    return summary(sweep.id, known)


def summary(sweep_id: str, failed: list[dict[str, Any]]) -> dict[str, Any]:
    """These failed attempts with their patterns, the tasks that failed per source and what to do."""
    grouped = patterns(failed)
    by_source: dict[str, list[str]] = {}
    for f in failed:
        ids = by_source.setdefault(str(f.get("source") or "(none)"), [])
        if f["id"] not in ids:
            ids.append(f["id"])
    return {"sweep_id": sweep_id, "failed": failed, "patterns": [p.as_dict() for p in grouped],
            "by_source": by_source, "recommendations": list(dict.fromkeys(p.suggestion for p in grouped))}


def _write_error_file(sweep: Sweep, f: Mapping[str, Any]) -> None:
    lines = [
        f"Task: {f['id']} (attempt {f.get('attempt')})",
        f"Source: {f.get('source')}" + (f" on {f['host']}" if f.get("host") else ""),
        f"Failed at: {f.get('at')}",
        f"Category: {f['title']}",
        f"Reason: {f.get('reason')}",
        f"Exit code: {f.get('exit_code')}",
        f"Evidence: {f['evidence']}",
        f"Suggestion: {f['suggestion']}",
        "",
        "Last lines of stderr:" if f["stderr_tail"] else "stderr was empty or could not be read.",
        *(f"  {line}" for line in f["stderr_tail"]),
    ]
    sweep.paths.error_logs.mkdir(parents=True, exist_ok=True)
    store.atomic_write(sweep.paths.error_logs / f"{f['id']}_error.txt", "\n".join(lines) + "\n")


def _load_failed(sweep: Sweep) -> list[dict[str, Any]]:
    path = sweep.paths.error_logs / FAILED_TASKS
    try:
        data = store.read_yaml(path) if path.exists() else {}
    except HsmError:  # not ours to judge: written atomically, so only a person's edit gets here
        data = {}
    failed = data.get("failed") if isinstance(data, dict) else None
    return [f for f in failed or [] if isinstance(f, dict) and "id" in f and "category" in f]


def _merge(known: list[dict[str, Any]], new: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Known failed attempts with the new ones; an attempt recorded twice keeps its latest record."""
    merged = {(f["id"], f.get("attempt")): f for f in known}
    for f in new:
        merged[(f["id"], f.get("attempt"))] = {**f, "outcome": f.get("outcome", "failed")}
    return sorted(merged.values(), key=lambda f: (str(f["id"]), f.get("attempt") or 0))


def _write_lists(sweep: Sweep, known: list[dict[str, Any]], grouped: list[Pattern]) -> None:
    errors = sweep.paths.error_logs
    errors.mkdir(parents=True, exist_ok=True)
    store.write_yaml(errors / FAILED_TASKS, {"sweep_id": sweep.id, "failed": known})
    store.write_yaml(errors / ERROR_PATTERNS, {"sweep_id": sweep.id, "patterns": [p.as_dict() for p in grouped]})
