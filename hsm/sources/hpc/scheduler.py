"""What the HPC source needs from a scheduler: a few pure hooks over argv and text.

A scheduler module (`slurm.py`, `pbs.py`) writes its hooks as plain functions, tested on
captured real output, and binds them in a `Scheduler` subclass. The HPC source calls only
what is declared here; everything that runs a command or reads a file is the source's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hsm.errors import BadInput
from hsm.jobscript import Raw, render

if TYPE_CHECKING:
    from hsm.proc import Result


@dataclass(frozen=True)
class JobSpec:
    """One chunk's job as the scheduler hooks render and submit it."""

    name: str
    size: int
    throttle: int | None
    log_dir: str
    queue: str | None = None
    walltime: str | None = None
    resources: Any = None
    timeout_warning: int = 0
    extra: tuple[str, ...] = ()
    dependency: tuple[str, ...] = ()
    gpus_per_task: int | None = None  # GPUs each array element asks for (`gpus_per_task`)


def array_spec(size: int, throttle: int | None) -> str:
    """`0-N%K`: indices 0..size-1, at most K running at once (Slurm's and Torque's form)."""
    spec = f"0-{size - 1}"
    return f"{spec}%{throttle}" if throttle else spec


def chain_dependency(job_ids: list[str]) -> str:
    """A dependency that waits until every listed job has ended, however it ended."""
    return "afterany:" + ":".join(job_ids)


class Scheduler:
    """The hooks of one scheduler. Subclasses set the class attributes and bind the functions."""

    system: ClassVar[str]
    template: ClassVar[str]  # the job script in templates/
    active: ClassVar[frozenset[str]]  # states in which a job may still run (or wait to)
    # Final states and what they make of a task that wrote no final status: (state, reason).
    final: ClassVar[Mapping[str, tuple[str, str | None]]]
    # Whether a job script writes which array element ran an attempt (`tasks/T/job_id`): a
    # status call that lists array elements under ids of their own needs it.
    writes_job_id_file: ClassVar[bool] = False

    def directives(self, job: JobSpec) -> list[str]:
        """The directive lines of one chunk's job script; ValueError for what cannot be written."""
        raise NotImplementedError

    def submit_argv(self, script: str, job: JobSpec) -> list[str]:
        """The submit command of one chunk."""
        raise NotImplementedError

    def parse_job_id(self, stdout: str) -> str:
        """The job id the submit command printed; ValueError when there is none."""
        raise NotImplementedError

    def chain_dependency(self, job_ids: list[str]) -> str:
        """A dependency on the end of every listed job (so one source's arrays share its throttle)."""
        return chain_dependency(job_ids)

    def element(self, array_id: str, index: int) -> str:
        """How a task's job is recorded: the array's id and the task's index in it."""
        raise NotImplementedError

    def array_of(self, job: str) -> str:
        """The array id of a recorded task job (what status and cancel calls name)."""
        raise NotImplementedError

    def status_argv(self, array_ids: list[str]) -> list[str]:
        """One status call for every array of the sweep."""
        raise NotImplementedError

    def status_error(self, result: Result) -> str | None:
        """None when the status call answered; else why not."""
        raise NotImplementedError

    def parse_status(self, text: str) -> dict[str, str]:
        """The status call's table: job -> state."""
        raise NotImplementedError

    def task_state(self, job: str, job_file: str | None, table: dict[str, str]) -> str | None:
        """The state of a task's job in that table (None: not listed); `job_file` as the job script wrote it."""
        return table.get(job)

    def accounting_argv(self, array_ids: list[str]) -> list[str] | None:
        """One accounting call for the arrays; None where the scheduler keeps no accounting hsm can use."""
        return None

    def parse_accounting(self, text: str) -> dict[str, tuple[str, int | None]]:
        """The accounting call's table: job -> (state, exit code)."""
        return {}

    def lookup_argv(self) -> list[str]:
        """This user's jobs with their names: what a crashed submit left behind."""
        raise NotImplementedError

    def parse_lookup(self, text: str) -> list[tuple[str, str, str]]:
        """The lookup's rows: (array job id, job name, state)."""
        raise NotImplementedError

    def cancel_argv(self, array_ids: list[str]) -> list[str]:
        """One cancel call for whole arrays."""
        raise NotImplementedError

    def cancel_error(self, result: Result) -> str | None:
        """None when the cancel did its work (a job that already ended is no error)."""
        raise NotImplementedError

    def hold_argv(self, jobs: list[str]) -> list[str] | None:
        """One call holding these array elements if they have not started (the scheduler decides,
        atomically; a running one is left as it is); None where the scheduler cannot hold one element."""
        return None

    def held(self, text: str) -> set[str]:
        """The jobs a status call's output shows waiting on a hold."""
        return set()

    def health_argv(self) -> list[str]:
        """One call that says whether the scheduler answers and its queues are usable."""
        raise NotImplementedError

    def health_of(self, result: Result, queue: str | None) -> dict[str, Any]:
        """{"status": healthy|degraded|unhealthy, "details", "ok"} from the health call."""
        raise NotImplementedError

    def walltime_seconds(self, text: str | None) -> int:
        """The walltime in seconds, for a job script that warns the task itself (0: the scheduler does)."""
        return 0


def render_job_script(hooks: Scheduler, template: str, job: JobSpec, values: dict[str, object], name: str) -> str:
    """One chunk's job script: the scheduler's directives and the given paths in the template."""
    try:
        lines = hooks.directives(job)
    except ValueError as exc:
        raise BadInput(f"{name}: {exc}") from None
    try:
        walltime = hooks.walltime_seconds(job.walltime)
    except ValueError as exc:
        raise BadInput(f"default_walltime: {exc}") from None
    return render(template, {
        **values,
        "directives": Raw("\n".join(lines)),
        "job_name": job.name,
        "walltime_seconds": walltime,
        "timeout_warning": job.timeout_warning,
    }, name)


def scheduler(system: str) -> Scheduler:
    """The hooks of `system` (slurm or pbs)."""
    from hsm.sources.hpc import pbs, slurm

    known: dict[str, type[Scheduler]] = {"slurm": slurm.Slurm, "pbs": pbs.Pbs}
    if system not in known:
        raise BadInput(f"hpc system {system!r}: expected one of {', '.join(known)}")
    return known[system]()
