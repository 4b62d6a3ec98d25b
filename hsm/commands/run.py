"""The driver behind `hsm run`: the same steps a cron loop would call, in a loop."""

from __future__ import annotations

import time
from typing import Any, Callable

from hsm.commands import poll as poll_cmd
from hsm.commands import submit as submit_cmd
from hsm.commands.collect import collect
from hsm.commands.status import all_final, summarize
from hsm.config import ProjectConfig
from hsm.sweep import Sweep

FIRST_WAIT = 0.05  # seconds: short tasks on this machine finish within a few polls


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
    last_collect = time.monotonic()
    while True:
        submitted = submit_cmd.submit(sweep, project)
        if submitted.delivered or submitted.errors:
            on_submit(submitted)
        polled = poll_cmd.poll(sweep, project)
        on_poll(polled)
        index = sweep.read_index()
        on_progress(summarize(sweep, index))
        if time.monotonic() - last_collect >= collect_every:
            collect(sweep, project)
            last_collect = time.monotonic()
        if all_final(index):
            collect(sweep, project, final=True)
            return summarize(sweep)
        wait = FIRST_WAIT if polled.transitions or submitted.delivered else min(wait * 2, poll_interval)
        time.sleep(wait)
