"""The driver behind `hsm run`: the same steps a cron loop would call, in a loop.

Each loop: a health round when one is due, the upkeep failover needs (work taken back from
disabled sources, given up on silent ones), work stealing when a source is idle, the
pending tasks assigned, then submit, poll and (now and then) collect. Every call to a
source runs beside the loop (`Background`), one per source and kind at a time. It ends when every
task is final, or when no enabled source is left to finish the rest (NoSourceLeft).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from hsm.clock import now_iso
from hsm.commands import failover, utilization
from hsm.commands import health as health_cmd
from hsm.commands import poll as poll_cmd
from hsm.commands import submit as submit_cmd
from hsm.commands.background import Background
from hsm.commands.collect import collect
from hsm.commands.status import all_final, summarize
from hsm.config import ProjectConfig
from hsm.core.index import Index
from hsm.core.states import ACTIVE, ASSIGNED, ORDER, PENDING, SUBMITTED
from hsm.errors import HsmError
from hsm.remote_agent import CALL_TIMEOUT
from hsm.sweep import Sweep

FIRST_WAIT = 0.05  # seconds: short tasks on this machine finish within a few polls
POLL_SLICE = 2.0  # seconds a round waits for the polls it started before it goes on without them
# The longest quiet wait while some source's status files are on this machine (local tasks,
# an HPC source without a login host): reading them costs no one anything, and a task's end
# is then seen within about a second. Sources behind ssh are asked once per poll interval,
# and a scheduler once per its scheduler_poll_interval (hsm/sources/hpc/watch.py).
LOCAL_TICK = 1.0


class NoSourceLeft(HsmError):
    """Tasks remain and no enabled source can run them (exit 1)."""


def drive(
    sweep: Sweep,
    project: ProjectConfig,
    *,
    poll_interval: float,
    sources: Sequence[str] | None = None,
    strategy: str | None = None,
    on_submit: Callable[[submit_cmd.SubmitSummary], None] = lambda r: None,
    on_poll: Callable[[poll_cmd.PollSummary], None] = lambda r: None,
    on_progress: Callable[[dict[str, Any]], None] = lambda s: None,
    on_event: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Drive the sweep until every task is final; return the final summary.

    `sources` are the sources this run uses (default: every source of the sweep). The wait
    between polls starts short and doubles while nothing changes, up to `poll_interval`.
    Polls, health rounds, upkeep and collections run beside the loop (`Background`): a
    source that stops answering delays nobody else. Failover lines (health_status.log)
    are passed to `on_event` as they are written.
    """
    compute = health_cmd.compute_of(sweep, project)
    health_every, collect_every = (float(compute.get(k, d)) for k, d in
                                   (("health_check_interval", 300), ("result_collection_interval", 60)))
    strategy, events, wait = strategy or project.strategy, LogFollower(sweep.paths.log("health_status.log")), FIRST_WAIT
    calls, index = Background(), sweep.read_index()
    last_polled: dict[str, float] = {}  # when each remote source's latest poll started
    last_collect = last_health = time.monotonic()
    last_sample, moved_lately = time.monotonic() - utilization.SAMPLE_EVERY, False
    while True:
        began = time.monotonic()
        if utilization.due(began - last_sample, moved_lately):
            utilization.sample(sweep, index)
            last_sample = began
        if began - last_health >= health_every and calls.start(("health",), _health_round, sweep, project, sources):
            last_health = began
        moved = _failover(calls, sweep, project, index, sources, strategy, compute)
        index = sweep.read_index()
        _check_sources_left(sweep, project, index, sources)
        submitted = _submit(calls, sweep, project, index, _backing_off(index, health_every))
        if submitted.delivered or submitted.errors:
            on_submit(submitted)
        not_due = _polled_lately(index, last_polled, poll_interval)
        polled = _poll(calls, sweep, project, _backing_off(index, health_every) | not_due, compute, last_polled)
        on_poll(polled)
        for line in events.new_lines():
            on_event(line)
        index = sweep.read_index()
        on_progress(_progress(index))
        if time.monotonic() - last_collect >= collect_every and _collect_beside(calls, sweep, project):
            last_collect = time.monotonic()
        if all_final(index):
            return _finish(calls, sweep, project)
        moved_lately = bool(polled.transitions or submitted.delivered or moved)
        if moved_lately:
            # Short while tasks are finishing, but never so short that the driver itself
            # takes the CPU the tasks need: a few times what one round costs.
            wait = max(FIRST_WAIT, 3 * (time.monotonic() - began))
        else:
            wait = min(wait * 2, poll_interval)
        time.sleep(min(wait, poll_interval, LOCAL_TICK if _local_files(index) else poll_interval))


def _finish(calls: Background, sweep: Sweep, project: ProjectConfig) -> dict[str, Any]:
    """Every task is final: the last collection, the last utilization sample; the final summary."""
    calls.wait([("collect",)], CALL_TIMEOUT)
    collect(sweep, project, final=True)
    utilization.sample(sweep)
    return summarize(sweep)


def _collect_beside(calls: Background, sweep: Sweep, project: ProjectConfig) -> bool:
    """Start a collection beside the loop unless one still runs; True when started."""
    calls.finished("collect")
    return calls.start(("collect",), collect, sweep, project)


def _health_round(sweep: Sweep, project: ProjectConfig, sources: Sequence[str] | None) -> None:
    """Probe the sources and apply the policy (the loop's upkeep moves the work)."""
    health_cmd.record(sweep, health_cmd.probe_sources(sweep, project, sweep.read_index(), sources))


def _submit(calls: Background, sweep: Sweep, project: ProjectConfig, index: Index,
            skip: set[str]) -> submit_cmd.SubmitSummary:
    """Start a submit for each source with tasks to hand over, one source per call, so a push to
    a host that stopped answering holds up no other; merge the submits that have finished."""
    waiting = {t.get("source", "") for t in index["tasks"].values()
               if t["state"] == ASSIGNED or (t["state"] == SUBMITTED and not t.get("job"))}
    every = set(index.get("sources", {}))
    started = [("submit", name) for name in sorted(waiting - skip)
               if calls.start(("submit", name), submit_cmd.submit, sweep, project, None, every - {name})]
    calls.wait(started, POLL_SLICE)
    summary = submit_cmd.SubmitSummary()
    for part in calls.finished("submit").values():
        summary.delivered += part.delivered
        summary.errors.update(part.errors)
        summary.disabled.update(part.disabled)
    return summary


def _poll(calls: Background, sweep: Sweep, project: ProjectConfig, skip: set[str], compute: Any,
          last_polled: dict[str, float]) -> poll_cmd.PollSummary:
    """Start a poll of each source not polling already; fold in every poll that has finished.

    The polls started now get POLL_SLICE seconds: a source that answers as usual is folded
    in this round, one that does not is picked up in a later round.
    """
    index = sweep.read_index()
    known = index.get("sources", {})
    started = [("poll", name) for name, refs in poll_cmd.active_refs(index).items()
               if name in known and name not in skip
               and calls.start(("poll", name), poll_cmd.observe, sweep, project, {name: known[name]}, {name: refs})]
    last_polled.update({name: time.monotonic() for _, name in started})
    calls.wait(started, POLL_SLICE)
    results = {}
    for observed in calls.finished("poll").values():
        results.update(observed)
    polled = poll_cmd.record(sweep, results, index)
    if polled.disabled:  # take its queue back now, before its runner starts more of it
        calls.start(("upkeep",), failover.upkeep, sweep, project, compute)
    return polled


def _failover(calls: Background, sweep: Sweep, project: ProjectConfig, index: Index, sources: Sequence[str] | None,
              strategy: str, compute: Any) -> bool:
    """Upkeep after faults (beside the loop), stealing for idle sources, pending tasks assigned;
    True when work moved."""
    calls.finished("health")
    done = {**calls.finished("upkeep"), **calls.finished("rebalance")}
    moved = any(m.revoked or m.abandoned for moves in done.values() for m in moves)
    if failover.needs_upkeep(index):
        calls.start(("upkeep",), failover.upkeep, sweep, project, compute)
    if failover.needs_rebalance(index, sources) and calls.start(("rebalance",), failover.rebalance, sweep,
                                                                 project, sources, strategy):
        # Beside the loop too (the source work is taken from may have just gone silent), but
        # a steal that answers as usual is done in time for this round's submit.
        calls.wait([("rebalance",)], POLL_SLICE)
        moved |= any(m.revoked or m.abandoned for moves in calls.finished("rebalance").values() for m in moves)
    now = now_iso()
    # While a steal runs, the tasks it takes back are its own to place (on the idle sources).
    if not calls.busy(("rebalance",)) and any(t["state"] == PENDING and str(t.get("retry_at", "")) <= now
                                               for t in index["tasks"].values()):
        moved |= bool(failover.reassign(sweep, strategy, sources))
    return moved


def _check_sources_left(sweep: Sweep, project: ProjectConfig, index: Index, sources: Sequence[str] | None) -> None:
    """Stop when tasks remain, no enabled source can take them, and nothing is still running."""
    if failover.enabled_capacity(index, sources) or all_final(index):
        return
    if any(t["state"] in ACTIVE for t in index["tasks"].values()):
        return  # running on a disabled source, or given up on a silent one after its grace
    left = sum(1 for t in index["tasks"].values() if t["state"] in (PENDING, ASSIGNED))
    known = index.get("sources", {})
    reasons = "; ".join(f"{n}: {e.get('disabled_reason', 'disabled')}" for n, e in known.items()
                        if e.get("disabled") and (sources is None or n in sources))
    others = [n for n, c in project.sources.items() if c.enabled and not known.get(n, {}).get("disabled")]
    hint = f"hsm complete {sweep.id} --sources {','.join(others) or 'local'}"
    raise NoSourceLeft(f"no enabled source left for the {left} unfinished tasks ({reasons}); to finish the sweep: {hint}")


def _remote(entry: Mapping[str, Any]) -> bool:
    """A source whose every look costs an ssh call: an ssh host, an HPC source behind a login host."""
    return entry.get("type") == "ssh" or bool(entry.get("type") == "hpc" and (entry.get("options") or {}).get("host"))


def _polled_lately(index: Index, last_polled: dict[str, float], interval: float) -> set[str]:
    """Remote sources polled less than `interval` seconds ago: each is asked at most once per interval."""
    now = time.monotonic()
    return {n for n, e in index.get("sources", {}).items()
            if _remote(e) and n in last_polled and now - last_polled[n] < interval}


def _local_files(index: Index) -> bool:
    """True when a source with unfinished tasks keeps its status files on this machine."""
    busy = {t.get("source") for t in index["tasks"].values() if t["state"] in ACTIVE}
    return any(not _remote(e) for n, e in index.get("sources", {}).items() if n in busy)


def _backing_off(index: Index, interval: float) -> set[str]:
    """Sources that failed lately and wait before they are called again (so a dead host is not hammered)."""
    return {n for n, e in index.get("sources", {}).items() if health_cmd.backing_off(e, interval)}


def _progress(index: Index) -> dict[str, Any]:
    counts = Counter(t["state"] for t in index["tasks"].values())
    return {"counts": {s: counts.get(s, 0) for s in ORDER}, "total": len(index["tasks"])}


class LogFollower:
    """New lines of a log file since the last look (from its end when first opened)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size <= self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete.decode("utf-8", "replace").splitlines()
