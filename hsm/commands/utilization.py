"""`logs/source_utilization.log`: how busy each source was, sampled while the sweep runs.

`hsm run` samples every SAMPLE_EVERY seconds, every SAMPLE_BUSY while tasks start and
end, and once at the end; a cron loop samples
with each `hsm health`. The source utilization report charts these lines.
"""

from __future__ import annotations

from hsm.clock import log_stamp
from hsm.core.index import Index
from hsm.core.utilization import utilization, utilization_lines
from hsm.sweep import Sweep

SAMPLE_EVERY = 10.0  # seconds between two samples while nothing moves
SAMPLE_BUSY = 1.0  # ... and while tasks start and end, so a short sweep has a picture too
LOG = "source_utilization.log"


def due(since_last: float, moving: bool) -> bool:
    """True when the next sample is due, `since_last` seconds after the last one."""
    return since_last >= (SAMPLE_BUSY if moving else SAMPLE_EVERY)


def sample(sweep: Sweep, index: Index | None = None) -> list[str]:
    """Append one line per source of the sweep to the utilization log; the lines."""
    lines = utilization_lines(utilization(index if index is not None else sweep.read_index()), log_stamp())
    with sweep.lock().held():
        sweep.append_log(LOG, lines)
    return lines
