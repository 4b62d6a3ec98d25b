"""The local source: a detached runner on this machine works through the sweep's queue.

The agent is called in process; everything else is the runner-based design shared with
SSH hosts (`hsm.sources.runner_based`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hsm.config import ProjectConfig
from hsm.core.settings import SourceConfig
from hsm.sources.base import TaskRef
from hsm.sources.runner_based import InProcessAgent, RunnerSource
from hsm.sweep import Sweep


class LocalSource(RunnerSource):
    """Tasks run as processes on this machine, at most `max_parallel` at once."""

    type = "local"

    def __init__(self, config: SourceConfig, sweep: Sweep, project: ProjectConfig) -> None:
        super().__init__(config, sweep, project)
        self.transport = InProcessAgent()

    def batch(self, tasks: list[TaskRef], starts: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The batch carries this command's environment: a runner still alive from an earlier
        command starts these attempts as the command submitting them would."""
        return {**super().batch(tasks, starts), "env": dict(os.environ)}
