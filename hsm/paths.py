"""Every path under a sweep directory, derived in one place.

Sources that copy a sweep dir to another host name its files by their path relative to
the sweep dir (`relative`), which is the same there and here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


def task_id(number: int, width: int) -> str:
    """The id of task `number` (1-based), zero-padded to `width` digits."""
    return f"task_{number:0{width}d}"


def safe_name(text: str) -> str:
    """`text` with only characters every scheduler and file system accepts in a name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def id_width(total: int) -> int:
    """Digits in a task number: at least three, more when the sweep needs them."""
    return max(3, len(str(total)))


@dataclass(frozen=True)
class SweepPaths:
    """The layout of one sweep directory."""

    root: Path

    @property
    def sweep_id(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "sweep_config.yaml"

    @property
    def metadata(self) -> Path:
        return self.root / "sweep_metadata.yaml"

    @property
    def mapping(self) -> Path:
        return self.root / "task_mapping.yaml"

    @property
    def param_table(self) -> Path:
        """Every task's parameters, one JSON line per task (`hsm.paramtable`)."""
        return self.root / "task_params.jsonl"

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def source_logs(self) -> Path:
        return self.root / "logs" / "sources"

    @property
    def error_logs(self) -> Path:
        return self.root / "logs" / "errors"

    @property
    def scripts(self) -> Path:
        return self.root / "scripts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def internal(self) -> Path:
        """hsm's own machinery (lock, runner queues): not part of the results."""
        return self.root / ".hsm"

    @property
    def lock(self) -> Path:
        return self.internal / "lock"

    def log(self, name: str) -> Path:
        return self.logs / name

    def runner(self, source: str) -> Path:
        """The queue and bookkeeping of the runner that serves `source`."""
        return self.internal / "runners" / source

    def hpc_state(self, source: str) -> Path:
        """hsm's own record of an HPC source's jobs (never sent to the cluster)."""
        return self.internal / "hpc" / safe_name(source)

    def wrapper(self, source: str) -> Path:
        """The task wrapper rendered for an HPC source's jobs."""
        return self.scripts / f"task_{safe_name(source)}.sh"

    @property
    def job_scripts(self) -> Path:
        return self.scripts / "job_scripts"

    def chunk(self, key: str) -> Path:
        """An HPC chunk's files without their suffix: `.sh` (the job script), `.tasks` (its task list)."""
        return self.job_scripts / f"chunk_{key}"

    @property
    def job_logs(self) -> Path:
        """Where the scheduler writes the jobs' own output."""
        return self.logs / "jobs"

    def relative(self, path: Path) -> str:
        """`path` relative to the sweep dir, as a /-separated string."""
        return path.relative_to(self.root).as_posix()

    def task(self, tid: str) -> Path:
        return self.tasks / tid

    def params(self, tid: str) -> Path:
        return self.tasks / tid / "params.yaml"

    def status(self, tid: str) -> Path:
        return self.tasks / tid / "status.yaml"

    def argv(self, tid: str) -> Path:
        """A task's argv file: written only for a project's own task wrapper made for an earlier hsm."""
        return self.tasks / tid / "argv"

    def metrics(self, tid: str) -> Path:
        """What the training script wrote of its results (`$HSM_TASK_DIR/metrics.json`)."""
        return self.tasks / tid / "metrics.json"

    def skeleton(self) -> list[Path]:
        """Directories every sweep has, created at expand."""
        return [
            self.tasks,
            self.logs,
            self.source_logs,
            self.error_logs,
            self.scripts / "job_scripts",
            self.scripts / "setup_scripts",
            self.reports,
            self.internal / "runners",
        ]
