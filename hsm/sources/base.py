"""The interface every compute source implements, and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm import store
from hsm.config import ProjectConfig
from hsm.core.index import PollResult, TaskRef
from hsm.core.settings import SourceConfig
from hsm.sweep import Sweep

__all__ = ["PollResult", "Record", "Revoked", "Source", "SubmitResult", "TaskRef", "read_collected", "record_collected"]

Record = Callable[[dict[str, dict[str, Any]]], None]  # called with accepted tasks' fields


@dataclass
class SubmitResult:
    """Per task, the fields to record once the source has accepted it (e.g. its job id)."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


@dataclass
class Revoked:
    """What a revoke did: attempts taken back (they never start there) and those that had started."""

    revoked: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


def record_collected(path: Path, tasks: list[TaskRef]) -> None:
    """Add task attempts brought home to a source's record (lines `TASK ATTEMPT`)."""
    store.append_lines(path, [f"{t.id} {t.attempt}" for t in tasks])


def read_collected(path: Path) -> set[tuple[str, int]]:
    """Task attempts already brought home: lines `TASK ATTEMPT` in a source's record."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    out = set()
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out.add((parts[0], int(parts[1])))
    return out


class Source:
    """A compute source: where tasks run. One instance per command invocation."""

    type = "base"

    def __init__(self, config: SourceConfig, sweep: Sweep, project: ProjectConfig) -> None:
        self.config = config
        self.name = config.name
        self.max_parallel = config.max_parallel
        self.sweep = sweep
        self.project = project

    def submit(self, tasks: list[TaskRef], record: Record | None = None) -> SubmitResult:
        """Hand the tasks to the source so they run without hsm; idempotent per attempt.

        A source that accepts tasks in parts (a scheduler's chunks) calls `record` with each
        part's fields (its job ids) before it submits the next, so a crash cannot forget them.
        """
        raise NotImplementedError

    def poll(self, tasks: list[TaskRef]) -> PollResult:
        """Observe the given task attempts with O(1) calls to the source."""
        raise NotImplementedError

    def cancel(self, tasks: list[TaskRef]) -> None:
        """Stop the given task attempts and make sure they never start."""
        raise NotImplementedError

    def stop(self, tasks: list[TaskRef]) -> None:
        """Stop exactly these attempts (and nothing else of the sweep) wherever they are."""
        self.cancel(tasks)

    def revoke(self, tasks: list[TaskRef]) -> Revoked:
        """Take back the attempts that have not started, atomically with the source starting
        them; the ones that had started are left to run. A source that cannot take work back
        leaves everything where it is."""
        return Revoked(started=[t.id for t in tasks])

    def health(self) -> dict[str, Any]:
        """Probe the source: {"status": healthy|degraded|unhealthy, "details": str, "ok": bool}."""
        raise NotImplementedError

    def collect(self, tasks: list[TaskRef], final: bool = False) -> dict[str, Any]:
        """Bring task directories home; nothing to do for a source on this machine."""
        return {"collected": 0}
