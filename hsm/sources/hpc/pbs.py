"""PBS/Torque: the scheduler hooks of the HPC source, as small pure functions over argv and text.

    submit   qsub -t 0-N%K -r n SCRIPT       (run in the sweep's logs/jobs/: the scheduler's own
                                            per-element output files land there)
    poll     qstat                          one call; PBS keeps no exit status, so outcomes come
                                            from the tasks' own status files
    cancel   qdel IDS
    health   qstat -q
    lookup   qstat -f                       before a submit: a job of the same name?

Job ids look like `81` (the PBS commands of Slurm), `81.server` or `81[].server` (Torque,
PBS Pro). A task's job is recorded as `81[3]` or `81[3].server`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hsm.sources.hpc.scheduler import JobSpec, Scheduler, array_spec

if TYPE_CHECKING:
    from hsm.proc import Result

# qstat's one-letter states as the Slurm-style names the HPC source decides with.
# C (completed), F (finished) and X (expired) carry no outcome: they count as gone.
LETTERS = {
    "Q": "PENDING", "H": "PENDING", "W": "PENDING", "T": "PENDING", "S": "PENDING", "U": "PENDING",
    "R": "RUNNING", "E": "RUNNING", "B": "RUNNING",
}
ACTIVE = frozenset({"PENDING", "RUNNING"})
FINAL: dict[str, tuple[str, str | None]] = {}


def directives(job: JobSpec) -> list[str]:
    """The `#PBS` lines of one chunk's job script (the array range goes on the command line)."""
    if job.gpus_per_task:  # (a pbs source's config refuses it; this is one whose scheduler was found on PATH)
        raise ValueError("gpus_per_task: not supported on pbs sources (ask for GPUs in default_resources, "
                         "e.g. select=1:ncpus=4:ngpus=2)")
    lines = [f"-N {job.name}", "-r n"]
    if job.queue:
        lines.append(f"-q {job.queue}")
    if job.walltime:
        lines.append(f"-l walltime={job.walltime}")
    resources = job.resources
    if isinstance(resources, str) and resources.strip():
        resources = [resources]
    for item in resources or []:
        text = str(item).strip()
        lines.append(text if text.startswith("-") else f"-l {text}")
    lines += job.extra
    for line in lines:
        if "\n" in line:
            raise ValueError(f"a job script directive may not contain a newline: {line!r}")
    return [f"#PBS {line}" for line in lines]


def submit_argv(script: str, job: JobSpec) -> list[str]:
    """qsub of one chunk: the array and no-rerun on the command line, where every qsub reads them."""
    argv = ["qsub", "-t", array_spec(job.size, job.throttle), "-r", "n"]
    if job.dependency:
        argv += ["-W", "depend=" + ",".join(job.dependency)]
    return argv + [script]


_ID = re.compile(r"^(\d+)(?:\[(\d*)\])?((?:\.[\w.-]+)?)$")


def parse_job_id(stdout: str) -> str:
    """The job id qsub printed: `7`, `7.server` or `7[].server`; ValueError otherwise."""
    lines = [line.strip() for line in stdout.strip().splitlines() if line.strip()]
    token = lines[-1].split()[-1] if lines else ""
    if not _ID.match(token):
        raise ValueError(f"no job id in qsub output {stdout.strip()!r}")
    return token


def _split(job: str) -> tuple[str, str | None, str]:
    match = _ID.match(job.strip())
    if not match:
        return job.strip(), None, ""
    return match.group(1), match.group(2), match.group(3)


def normalize(job: str) -> str:
    """A job id without its server: `81[3].server` -> `81[3]`, `81.server` -> `81`."""
    base, index, _ = _split(job)
    return base if index is None else f"{base}[{index}]"


def element(array_id: str, index: int) -> str:
    """How a task's job is recorded: `81[3]`, with the server when qsub printed one."""
    base, _, server = _split(array_id)
    return f"{base}[{index}]{server}"


def array_of(job: str) -> str:
    """The id to cancel a task's whole array with: `81`, or `81[].server` where qsub printed a server."""
    base, _, server = _split(job)
    return f"{base}[]{server}" if server else base


def status_argv(array_ids: list[str]) -> list[str]:
    """One plain qstat: array elements are listed under ids of their own, so no ids are given."""
    return ["qstat"]


def status_error(result: Result) -> str | None:
    """None when qstat answered; 153 with nothing on stderr means "no such jobs"."""
    if result.returncode == 0 or (result.returncode == 153 and not result.stderr.strip()):
        return None
    return result.describe()


def parse_qstat(text: str) -> dict[str, str]:
    """Plain qstat lines -> {normalized job id: state letter}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or line.startswith(("Job id", "Job ID", "---")) or set(parts[0]) <= {"-"}:
            continue
        if not _ID.match(parts[0]):
            continue
        out[normalize(parts[0])] = parts[-2]
    return out


def task_state(job: str, job_file: str | None, table: dict[str, str]) -> str | None:
    """PENDING / RUNNING while the task's job may run, None when qstat shows it gone (or finished).

    `job_file` is the element's own id, written by the job script when it started. Where
    qstat lists elements (the PBS commands of Slurm, `qstat -t`) that decides; where it
    lists only the array, a live array counts as a live element.
    """
    if job_file:
        key = normalize(job_file)
        if key in table:
            return LETTERS.get(table[key])
    base, _, _ = _split(job)
    states = [LETTERS.get(table[k]) for k in (base, f"{base}[]") if k in table]
    live = [s for s in states if s]
    if not live:
        return None
    return "RUNNING" if job_file or "RUNNING" in live and "PENDING" not in live else "PENDING"


def lookup_argv() -> list[str]:
    """Every job in full: the only qstat form that shows whole job names."""
    return ["qstat", "-f"]


def parse_qstat_full(text: str) -> list[tuple[str, str, str]]:
    """`qstat -f` blocks -> [(job id, Job_Name, job_state letter), ...]."""
    out = []
    job = name = state = None
    for line in text.splitlines() + ["Job Id: END"]:
        stripped = line.strip()
        if stripped.startswith("Job Id:"):
            if job and name is not None:
                out.append((job, name, state or ""))
            job, name, state = stripped.split(":", 1)[1].strip(), None, None
        elif stripped.startswith("Job_Name ="):
            name = stripped.split("=", 1)[1].strip()
        elif stripped.startswith("job_state ="):
            state = stripped.split("=", 1)[1].strip()
    return out


def parse_lookup(text: str) -> list[tuple[str, str, str]]:
    """[(array job id, name, Slurm-style state)]; an array's elements are listed each with its own id."""
    return [(array_of(job) if "[" in job else job, name, LETTERS.get(state, "COMPLETED"))
            for job, name, state in parse_qstat_full(text)]


def cancel_argv(array_ids: list[str]) -> list[str]:
    """qdel of whole arrays."""
    return ["qdel", *array_ids]


def cancel_error(result: Result) -> str | None:
    """None when qdel did its work; it exits 1 without a word for jobs that already ended."""
    if result.returncode == 0 or (result.returncode == 1 and not result.stderr.strip()):
        return None
    return result.describe()


def health_argv() -> list[str]:
    """One `qstat -q`: the queues and their limits."""
    return ["qstat", "-q"]


def health_of(result: Result, queue: str | None) -> dict[str, Any]:
    """healthy when qstat lists the queues (and the configured one among them)."""
    if result.returncode not in (0, 153) or "Queue" not in result.stdout or result.stderr.strip():
        return {"status": "unhealthy", "details": f"qstat -q failed: {result.describe()}", "ok": False}
    queues = [line.split()[0] for line in result.stdout.splitlines()
              if line.split() and not line.startswith(("Queue", "---", "server", " ")) and not set(line.split()[0]) <= {"-"}]
    if queue and queue not in queues:
        return {"status": "unhealthy", "details": f"queue {queue} not found (queues: {', '.join(queues) or 'none'})", "ok": False}
    return {"status": "healthy", "details": f"PBS answers: queues {', '.join(queues) or 'none'}", "ok": True}


def walltime_seconds(text: str | None) -> int:
    """PBS walltime `HH:MM:SS` (or `MM:SS`, or seconds) in seconds; 0 when not given."""
    if not text:
        return 0
    parts = str(text).strip().split(":")
    if not all(p.isascii() and p.isdigit() for p in parts) or len(parts) > 3:
        raise ValueError(f"walltime {text!r}: expected HH:MM:SS")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds


class Pbs(Scheduler):
    """PBS/Torque: qsub arrays and qstat; no accounting, so outcomes come from the status files."""

    system = "pbs"
    template = "pbs.sh"
    active = ACTIVE
    final = FINAL
    # qstat lists array elements under ids of their own: the job script records which one ran.
    writes_job_id_file = True
    directives = staticmethod(directives)
    submit_argv = staticmethod(submit_argv)
    parse_job_id = staticmethod(parse_job_id)
    element = staticmethod(element)
    array_of = staticmethod(array_of)
    status_argv = staticmethod(status_argv)
    status_error = staticmethod(status_error)
    parse_status = staticmethod(parse_qstat)
    task_state = staticmethod(task_state)
    lookup_argv = staticmethod(lookup_argv)
    parse_lookup = staticmethod(parse_lookup)
    cancel_argv = staticmethod(cancel_argv)
    cancel_error = staticmethod(cancel_error)
    health_argv = staticmethod(health_argv)
    health_of = staticmethod(health_of)
    walltime_seconds = staticmethod(walltime_seconds)
