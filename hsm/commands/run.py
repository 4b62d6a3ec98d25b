"""The driver behind `hsm run`: the same steps a cron loop would call, in a loop."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable

from hsm.commands import poll as poll_cmd
from hsm.commands import submit as submit_cmd
from hsm.commands.collect import collect
from hsm.commands.status import all_final, summarize
from hsm.config import ProjectConfig
from hsm.core.index import Index
from hsm.core.states import ASSIGNED, ORDER, SUBMITTED
from hsm.sweep import Sweep

FIRST_WAIT = 0.05  # seconds: short tasks on this machine finish within a few polls
SUBMIT_EVERY = 30.0  # seconds between submits when nothing is waiting to be submitted


def drive(
    sweep: Sweep,
    project: ProjectConfig,
    *,
    poll_interval: float,
    on_submit: Callable[[submit_cmd.SubmitSummary], None] = lambda r: None,
    on_poll: Callable[[poll_cmd.PollSummary], None] = lambda r: None,
    on_progress: Callable[[dict[str, Any]], None] = lambda s: None,
) -> dict[str, Any]:
    """Submit, poll and collect until every task is final; return the final summary.

    The wait between polls starts short and doubles while nothing changes, up to
    `poll_interval`, so a sweep of quick local tasks is not held up by the interval and
    a long one is not polled needlessly.
    """
    wait = FIRST_WAIT
    collect_every = float(project.compute.get("result_collection_interval", 60))
    last_collect = last_submit = time.monotonic()
    index = sweep.read_index()
    while True:
        began = time.monotonic()
        # Submit only when something waits for it; now and then anyway, so a runner that
        # died while tasks still wait in its queue is started again.
        if _needs_submit(index) or began - last_submit >= SUBMIT_EVERY:
            submitted = submit_cmd.submit(sweep, project)
            last_submit = began
            if submitted.delivered or submitted.errors:
                on_submit(submitted)
        else:
            submitted = submit_cmd.SubmitSummary()
        polled = poll_cmd.poll(sweep, project)
        on_poll(polled)
        index = sweep.read_index()
        counts = Counter(t["state"] for t in index["tasks"].values())
        on_progress({"counts": {s: counts.get(s, 0) for s in ORDER}, "total": len(index["tasks"])})
        if time.monotonic() - last_collect >= collect_every:
            collect(sweep, project)
            last_collect = time.monotonic()
        if all_final(index):
            collect(sweep, project, final=True)
            return summarize(sweep)
        if polled.transitions or submitted.delivered:
            # Short while tasks are finishing, but never so short that the driver itself
            # takes the CPU the tasks need: a few times what one round costs.
            wait = max(FIRST_WAIT, 3 * (time.monotonic() - began))
        else:
            wait = min(wait * 2, poll_interval)
        time.sleep(min(wait, poll_interval))


def _needs_submit(index: Index) -> bool:
    return any(t["state"] == ASSIGNED or (t["state"] == SUBMITTED and not t.get("job")) for t in index["tasks"].values())
