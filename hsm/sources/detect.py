"""Which scheduler this machine offers, from the programs on PATH."""

from __future__ import annotations

import shutil


def detect_scheduler() -> str | None:
    """`slurm` when sbatch is on PATH, else `pbs` when qsub is, else None.

    Slurm is asked first: Slurm sites often install the PBS wrappers too.
    """
    if shutil.which("sbatch"):
        return "slurm"
    if shutil.which("qsub"):
        return "pbs"
    return None
