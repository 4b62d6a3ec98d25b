"""`hsm poll`: observe every source once and fold what it saw into the index."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from hsm.clock import later_iso, log_stamp, now_iso
from hsm.commands import attempts, errors
from hsm.commands.health import failed_call, health_lines
from hsm.config import ProjectConfig
from hsm.core.failover import RetryPolicy, cannot_start, requeue_elsewhere, schedule_retries
from hsm.core.index import Index, PollResult, SourceEntry, TaskRef
from hsm.core.states import FAILED, FINAL
from hsm.core.summary import state_counts
from hsm.core.transitions import (
    HealthFold,
    PollFold,
    delivered_unfinished,
    disable_source,
    fold_health,
    fold_observations,
    judge,
    poll_has_news,
)
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
        now = now_iso()
        fold = fold_observations(u.index, results, now)
        _log(sweep, fold)
        failed = {tid: dict(u.index["tasks"][tid]) for tid, _, _, after in fold.transitions if after == FAILED}
        _apply_policy(sweep, u.index, fold, now)
        retried = {tid for tid in failed if u.index["tasks"][tid]["state"] != FAILED}
        final = {tid: dict(u.index["tasks"][tid]) for tid, _, _, after in fold.transitions
                 if after in FINAL and tid not in retried}
        u.changed |= fold.changed
    # The state is safe in the index; now the files that tell the story (outside the lock but
    # for the one read-modify-write of the error lists: a retry's own wrapper would move the
    # attempt aside too, should it start first).
    tails = _tails(results)
    for tid in retried:
        attempts.archive(sweep, tid, failed[tid], tails.get(tid))
    for tid, entry in final.items():
        attempts.agree(sweep.paths.status(tid), entry)
    if failed:
        with sweep.lock().held():
            fold.announced = errors.record(sweep, [errors.failure(t, e, now, tails.get(t)) for t, e in failed.items()])
            stamp = log_stamp()
            sweep.append_log("sweep.log", [f"[{stamp}] WARNING - {line}" for line in fold.announced])
    return fold


def _tails(results: Mapping[str, PollResult]) -> dict[str, list[str]]:
    """The stderr tails a poll brought home with the failures it saw."""
    return {tid: obs["stderr_tail"] for r in results.values() for tid, obs in r.observations.items()
            if isinstance(obs.get("stderr_tail"), list)}


def _apply_policy(sweep: Sweep, index: Index, fold: PollFold, now: str) -> None:
    """Under the poll's lock: a source that did not answer failed a health check, a source whose
    tasks failed may pass its failure rate, and a failure another attempt can cure is retried."""
    compute = sweep.metadata.get("compute", {})
    health = fold_health(index, {n: failed_call(m) for n, m in fold.unreachable.items()}, compute, now)
    failed = [tid for tid, _, _, after in fold.transitions if after == FAILED]
    failed = _setup_errors(index, failed, health, now)
    for name in {name for _, name, _, after in fold.transitions if after == FAILED}:
        judge(index, name, compute, now, health)
    retries = schedule_retries(index["tasks"], failed, RetryPolicy.of(compute), now, later_iso)
    lines = health_lines(health)
    stamp = log_stamp()
    policy = RetryPolicy.of(compute)
    for r in retries:
        lines.append(f"[{stamp}] INFO - {r.task} failed on {r.source} (reason {r.reason}): "
                     f"retry {r.number} of {policy.attempts} in {r.wait:g} s")
    if health.disabled or retries:
        fold.changed = True
    sweep.append_log("health_status.log", [line for line in lines if "Health check" in line or "Disabling" in line])
    sweep.append_log("sweep.log", lines)
    fold.disabled = dict(health.disabled)
    fold.retried = [r.task for r in retries]


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
    sweep.append_log("sweep.log", sweep_lines)


def _setup_errors(index: Index, failed: list[str], health: HealthFold, now: str) -> list[str]:
    """A task whose command cannot start on a source (exit 126, 127) shows a setup error there:
    the source is disabled at once and the task runs again elsewhere. The other failures."""
    for name, tids in cannot_start(index["tasks"], failed).items():
        code = index["tasks"][tids[0]].get("exit_code")
        reason = (f"Disabling source '{name}': its tasks cannot start there (exit code {code}: the interpreter "
                  "or command was not found or is not executable; check python_interpreter)")
        if name in index.get("sources", {}) and not index["sources"][name].get("disabled"):
            health.disabled[name] = reason
            health.redistributed[name] = disable_source(index, name, reason, "error", now)
        requeue_elsewhere(index["tasks"], tids, now)
        failed = [t for t in failed if t not in tids]
    return failed


def poll(sweep: Sweep, project: ProjectConfig, skip: Collection[str] = ()) -> PollSummary:
    """One poll of every source that has unfinished tasks of this sweep (but those in `skip`)."""
    return poll_counted(sweep, project, skip)[0]


def poll_counted(sweep: Sweep, project: ProjectConfig, skip: Collection[str] = ()) -> tuple[PollSummary, dict[str, int]]:
    """`poll`, and how many tasks are in each state after it (a progress line's figures): from
    the index the poll read when it found nothing new, so an idle poll reads it once."""
    index = sweep.read_index()
    refs = {n: r for n, r in active_refs(index).items() if n not in skip}
    results = observe(sweep, project, index.get("sources", {}), refs)
    if not poll_has_news(index, results):
        return PollFold(), state_counts(index["tasks"])
    return record(sweep, results), state_counts(sweep.read_index()["tasks"])
