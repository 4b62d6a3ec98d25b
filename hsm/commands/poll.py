"""`hsm poll`: observe every source once and fold what it saw into the index."""

from __future__ import annotations

from collections.abc import Mapping

from hsm.clock import log_stamp, now_iso
from hsm.config import ProjectConfig
from hsm.core.index import Index, PollResult, SourceEntry, TaskRef
from hsm.core.states import FINAL
from hsm.core.transitions import PollFold, delivered_unfinished, fold_observations, poll_has_news
from hsm.errors import HsmError
from hsm.sources import make_source
from hsm.sweep import Sweep

PollSummary = PollFold  # the transitions a poll recorded, and the sources it could not reach


def active_refs(index: Index) -> dict[str, list[TaskRef]]:
    """Delivered, unfinished task attempts, grouped by source."""
    return delivered_unfinished(index["tasks"])


def observe(sweep: Sweep, project: ProjectConfig, sources: Mapping[str, SourceEntry],
            refs: dict[str, list[TaskRef]]) -> dict[str, PollResult]:
    """Ask each source about its tasks: O(1) calls per source, none under the lock."""
    results: dict[str, PollResult] = {}
    for name, tasks in refs.items():
        if name not in sources:
            continue
        try:
            results[name] = make_source(name, sources[name], sweep, project).poll(tasks)
        except HsmError as exc:
            results[name] = PollResult(reachable=False, error=str(exc))
    return results


def record(sweep: Sweep, results: dict[str, PollResult], index: Index | None = None) -> PollSummary:
    """Fold observations into the index under the lock; log every transition.

    `index`, when given, is what the caller read before polling: when it shows that the
    results hold no news, the lock is not even taken.
    """
    if index is not None and not poll_has_news(index, results):
        return PollFold()
    with sweep.update() as u:
        fold = fold_observations(u.index, results, now_iso())
        u.changed |= fold.changed
        _log(sweep, fold)
    return fold


def _log(sweep: Sweep, fold: PollFold) -> None:
    stamp = log_stamp()
    per_source: dict[str, list[str]] = {}
    sweep_lines = []
    for tid, name, before, after in fold.transitions:
        detail = f" ({fold.failures[tid]})" if tid in fold.failures else ""
        line = f"[{stamp}] INFO - {tid} {before} -> {after} on {name}{detail}"
        per_source.setdefault(name, []).append(line)
        if after in FINAL:
            sweep_lines.append(line)
    for name, lines in per_source.items():
        sweep.append_log(f"sources/{name}.log", lines)
    for name in fold.recovered:
        sweep_lines.append(f"[{stamp}] INFO - poll: source {name} answers again")
        sweep.append_log("health_status.log", [f"[{stamp}] INFO - Source {name} answers again"])
    for name, message in fold.unreachable.items():
        sweep_lines.append(f"[{stamp}] WARNING - poll: source {name} did not answer: {message}")
        sweep.append_log("health_status.log", [f"[{stamp}] WARNING - Health check failed for {name}: {message}"])
    sweep.append_log("sweep.log", sweep_lines)


def poll(sweep: Sweep, project: ProjectConfig) -> PollSummary:
    """One poll of every source that has unfinished tasks of this sweep."""
    index = sweep.read_index()
    return record(sweep, observe(sweep, project, index.get("sources", {}), active_refs(index)), index)
