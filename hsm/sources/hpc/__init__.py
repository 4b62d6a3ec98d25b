"""The HPC source: Slurm and PBS/Torque job arrays, here or through a login host.

    source.py     HpcSource: submit, poll, cancel, health, collect
    scheduler.py  the hooks a scheduler provides (Scheduler) and the job a chunk becomes (JobSpec)
    slurm.py      Slurm's hooks
    pbs.py        PBS/Torque's hooks
    settings.py   an hpc source's settings
    naming.py     chunks and job names (how a crashed submit finds its jobs)
    outcome.py    how a task's state is decided from its status file, the queue and accounting
"""

from hsm.sources.hpc.source import HpcSource

__all__ = ["HpcSource"]
