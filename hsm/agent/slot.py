"""A task attempt a runner has started and not yet seen end, and how it is stopped.

Standard library only (see the package docstring).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable

from .direct import DirectTask

KILL_WAIT = 10.0  # seconds to wait for a task's end after SIGKILL to its process group


class Slot:
    """A task attempt the runner started and has not seen end: its process (the wrapper, or the
    command itself when `direct` is set)."""

    __slots__ = ("proc", "task", "attempt", "task_dir", "direct")

    def __init__(self, proc: subprocess.Popen[bytes], task: str, attempt: int, task_dir: str,
                 direct: DirectTask | None) -> None:
        self.proc, self.task, self.attempt, self.task_dir, self.direct = proc, task, attempt, task_dir, direct

    def stop(self, reason: str) -> None:
        """Ask the task to end: TERM to the wrapper, whose trap records `reason` and stops the
        command (a signal to the whole group could cut its final status short); for a direct
        task, `reason` noted here and TERM to the command."""
        if self.direct is not None:
            self.direct.stop_reason = self.direct.stop_reason or reason
            sig = signal.SIGTERM
        else:
            sig = signal.SIGUSR2 if reason == "disk" else signal.SIGTERM
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def end_by(self, deadline: float, log: Callable[[str], None]) -> None:
        """Wait for the task to end until `deadline` (time.monotonic()), then kill its process
        group and wait a little more: bounded, whatever the task does with TERM."""
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            log(f"{self.task} attempt {self.attempt} still running when its stop was due: killed")
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # each task leads its own process group
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=KILL_WAIT)
        except subprocess.TimeoutExpired:  # unkillable (D state): a poll finds it lost once it ends
            log(f"{self.task} attempt {self.attempt} did not die within {KILL_WAIT:g} s of SIGKILL")
