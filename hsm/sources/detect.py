"""Which scheduler this machine offers, from the programs on PATH."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hsm.config import ProjectConfig


def detect_scheduler() -> str | None:
    """`slurm` when sbatch is on PATH, else `pbs` when qsub is, else None.

    Slurm is asked first: Slurm sites often install the PBS wrappers too.
    """
    if shutil.which("sbatch"):
        return "slurm"
    if shutil.which("qsub"):
        return "pbs"
    return None


def scheduler_of(project: ProjectConfig) -> str | None:
    """The scheduler `--sources hpc` means: the config's `hpc.system`, else the one found on PATH.

    `hpc.system: local` (the original HSM's word for a machine without a cluster) means none.
    """
    if project.source_defaults.no_cluster:
        return None
    return project.hpc.get("system") or detect_scheduler()
