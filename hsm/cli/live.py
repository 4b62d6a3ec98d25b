"""`hsm run`'s view on a terminal: the live view of `hsm monitor watch`, redrawn in place.

Used when standard error is a terminal (and not `--no-progress`); piped, `hsm run` prints
plain progress lines instead. What would have been a line of its own (a failover event, an
error pattern) is kept under the view, so a redraw does not wipe it.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import TextIO

from hsm.cli.monitor_render import in_place, screen_size, watch_frame
from hsm.sweep import Sweep

REDRAW = 1.0  # seconds between two frames at least
NOTES = 6  # lines kept under the view


class LiveView:
    """The monitor's frame of one sweep on a terminal, redrawn at most every REDRAW seconds."""

    def __init__(self, sweep: Sweep, stream: TextIO | None = None) -> None:
        self.sweep = sweep
        self.stream = stream or sys.stderr
        self.notes: deque[str] = deque(maxlen=NOTES)
        self.first = True
        self.last = 0.0
        self.cost = 0.0

    def note(self, line: str) -> None:
        """A line worth keeping in sight: shown under the view from the next frame on."""
        self.notes.append(line)

    def draw(self, force: bool = False) -> None:
        """Redraw the view, unless one was drawn lately (a frame of a big sweep takes a while: never
        more than a third of the time goes to drawing)."""
        began = time.monotonic()
        if not force and began - self.last < max(REDRAW, 3 * self.cost):
            return
        columns, lines = screen_size(self.stream)
        text = watch_frame(self.sweep, columns)
        if self.notes:
            text += "\n\nLately:\n" + "\n".join(self.notes)
        self.stream.write(in_place(text, self.first, columns, lines))
        self.stream.flush()
        self.first = False
        self.last = time.monotonic()
        self.cost = self.last - began
