"""Slurm: the scheduler hooks of the HPC source, as small pure functions over argv and text.

    submit   sbatch --parsable SCRIPT             (the array and throttle are in the script)
    poll     squeue -h -r -t all -j IDS -o FMT     one call for every array of the sweep
             sacct -n -X -P -j IDS -o ...         at most one, for jobs squeue no longer shows
    cancel   scancel IDS
    revoke   scontrol hold ELEMENTS               then one squeue, then scancel of the held ones
    health   sinfo -h -o FMT
    lookup   squeue -h -t all --me -o FMT          before a submit: a job of the same name?

A task's job is recorded as `ARRAY_INDEX` (e.g. `71_3`), as squeue and sacct print it.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any

from hsm.sources.hpc.scheduler import JobSpec, Scheduler, array_spec

if TYPE_CHECKING:
    from hsm.proc import Result

SQUEUE_FORMAT = "%i|%T|%r"
LOOKUP_FORMAT = "%F|%j|%T"
SACCT_FIELDS = "JobID,State,ExitCode"

# Scheduler states in which a job may still run (or wait to).
ACTIVE = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT",
})
# Final scheduler states and what they make of a task that wrote no final status itself.
FINAL = {
    "COMPLETED": ("completed", None),
    "FAILED": ("failed", "exit_code"),
    "CANCELLED": ("cancelled", "cancelled"),
    "TIMEOUT": ("failed", "timeout"),
    "DEADLINE": ("failed", "timeout"),
    "OUT_OF_MEMORY": ("failed", "oom"),
    "NODE_FAIL": ("failed", "node_fail"),
    "BOOT_FAIL": ("failed", "node_fail"),
    "PREEMPTED": ("failed", "preempted"),
    "REVOKED": ("cancelled", "cancelled"),
}

# Short keys of `default_resources` and what sbatch calls them.
RESOURCE_NAMES = {"ppn": "ntasks-per-node", "ncpus": "cpus-per-task", "walltime": "time", "select": "nodes"}


def resource_options(resources: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """sbatch options from `default_resources`: "nodes=1:ntasks=4:mem=32GB" -> --nodes=1 --ntasks=4 --mem=32GB.

    A part without `=` belongs to the one before it ("gres=gpu:1"); a string starting
    with `-` is taken as sbatch options as they are.
    """
    if not resources:
        return []
    if isinstance(resources, (list, tuple)):
        return [opt for item in resources for opt in resource_options(str(item))]
    text = resources.strip()
    if text.startswith("-"):
        return shlex.split(text)
    pairs: list[list[str]] = []
    for part in re.split(r"[:,]", text):
        if not part:
            continue
        if "=" in part or not pairs:
            key, _, value = part.partition("=")
            pairs.append([key.strip(), value.strip()])
        else:
            pairs[-1][1] += ":" + part
    out = []
    for key, value in pairs:
        name = RESOURCE_NAMES.get(key, key)
        out.append(f"--{name}={value}" if value else f"--{name}")
    return out


def _directive(option: str) -> str:
    # sbatch reads `#SBATCH` lines with its own word splitting: quote values with blanks.
    if "\n" in option or '"' in option:
        raise ValueError(f"a job script directive may not contain a newline or a double quote: {option!r}")
    if " " in option and "=" in option:
        key, _, value = option.partition("=")
        option = f'{key}="{value}"'
    return f"#SBATCH {option}"


_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$")


def time_seconds(text: str | None) -> int:
    """A Slurm `--time` in seconds (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS); 0 when unknown."""
    match = _TIME.match(str(text or "").strip())
    if not match:
        return 0
    a, b, c = (int(match[k] or 0) for k in ("a", "b", "c"))
    if match["days"] is not None:  # D-HH[:MM[:SS]]
        return int(match["days"]) * 86400 + a * 3600 + b * 60 + c
    if match["c"] is not None:  # HH:MM:SS
        return a * 3600 + b * 60 + c
    return a * 60 + b  # MM[:SS]


def warning_seconds(warning: int, walltime: str | None) -> int:
    """When before the limit the task is told: at most half the walltime, so a short walltime is
    not over the moment the job starts."""
    limit = time_seconds(walltime)
    return min(warning, limit // 2) if limit else warning


def directives(job: JobSpec) -> list[str]:
    """The `#SBATCH` lines of one chunk's job script."""
    opts = [
        f"--job-name={job.name}",
        f"--array={array_spec(job.size, job.throttle)}",
        f"--output={job.log_dir}/%x_%A_%a.out",  # stderr too: the task's own logs are in its dir
        "--no-requeue",
    ]
    warning = warning_seconds(job.timeout_warning, job.walltime)
    if warning > 0:
        # To the batch shell only: that is the task wrapper, which records `timeout`.
        opts.append(f"--signal=B:USR1@{warning}")
    if job.queue:
        opts.append(f"--partition={job.queue}")
    if job.walltime:
        opts.append(f"--time={job.walltime}")
    opts += resource_options(job.resources)
    opts += job.extra
    opts += gpu_options(job.gpus_per_task, opts)
    return [_directive(o) for o in opts]


def gpu_options(per_task: int | None, given: list[str]) -> list[str]:
    """`--gpus-per-task=N`, with the task count sbatch then wants (one: an array element is one
    task), unless the other options give one."""
    if not per_task:
        return []
    counted = any(o.startswith(("--ntasks=", "--gpus=", "-n")) for o in given)
    return [f"--gpus-per-task={per_task}", *([] if counted else ["--ntasks=1"])]


def submit_argv(script: str, job: JobSpec) -> list[str]:
    """sbatch of one chunk's script; dependencies are the only per-call option."""
    argv = ["sbatch", "--parsable"]
    if job.dependency:
        argv.append("--dependency=" + ",".join(job.dependency))
    return argv + [script]


_JOB_ID = re.compile(r"^(\d+)(?:;\S+)?$")


def parse_job_id(stdout: str) -> str:
    """The job id sbatch --parsable printed ("71", or "71;cluster"); ValueError otherwise."""
    lines = [line.strip() for line in stdout.strip().splitlines() if line.strip()]
    match = _JOB_ID.match(lines[-1]) if lines else None
    if not match:
        raise ValueError(f"no job id in sbatch output {stdout.strip()!r}")
    return match.group(1)


def element(array_id: str, index: int) -> str:
    """How a task's job is recorded: `ARRAY_INDEX`."""
    return f"{array_id}_{index}"


def array_of(job: str) -> str:
    """The array job id of a recorded task job."""
    return job.split("_", 1)[0]


def status_argv(array_ids: list[str]) -> list[str]:
    """One squeue for every array: each element on its own line, finished ones included."""
    return ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(array_ids), "-o", SQUEUE_FORMAT]


def status_error(result: Result) -> str | None:
    """None when squeue answered; a single id squeue has forgotten is an answer too."""
    if result.returncode == 0 or "Invalid job id specified" in result.stderr:
        return None
    return result.describe()


def _expand(key: str) -> list[str]:
    """`71_[2-5%2]` (a pending remainder printed without -r) -> 71_2 ... 71_5."""
    match = re.match(r"^(\d+)_\[([^\]]*)\]$", key)
    if not match:
        return [key]
    out = []
    for part in match.group(2).split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out += [f"{match.group(1)}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return out


def parse_squeue(text: str) -> dict[str, str]:
    """`%i|%T|%r` lines -> {"71_3": "RUNNING", ...}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0]:
            continue
        for key in _expand(parts[0].strip()):
            out[key] = parts[1].strip().split()[0] if parts[1].strip() else ""
    return out


def accounting_argv(array_ids: list[str]) -> list[str]:
    """One sacct for the given arrays: allocations only, parsable."""
    return ["sacct", "-n", "-X", "-P", "-j", ",".join(array_ids), "-o", SACCT_FIELDS]


def parse_exit_code(text: str) -> int | None:
    """sacct's `3:0` -> 3; `0:15` (killed by a signal) -> 128 + 15."""
    code, _, signal = text.strip().partition(":")
    if not code.isdigit():
        return None
    if int(code) == 0 and signal.isdigit() and int(signal) > 0:
        return 128 + int(signal)
    return int(code)


def parse_sacct(text: str) -> dict[str, tuple[str, int | None]]:
    """`JobID|State|ExitCode` lines -> {"71_4": ("FAILED", 3), ...}; "CANCELLED by 0" -> CANCELLED."""
    out: dict[str, tuple[str, int | None]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or not parts[0]:
            continue
        state = parts[1].strip().split()[0] if parts[1].strip() else ""
        for key in _expand(parts[0].strip()):
            out[key] = (state, parse_exit_code(parts[2]))
    return out


def lookup_argv() -> list[str]:
    """This user's jobs with their names, finished ones included (for as long as squeue keeps them)."""
    return ["squeue", "-h", "-t", "all", "--me", "-o", LOOKUP_FORMAT]


def parse_lookup(text: str) -> list[tuple[str, str, str]]:
    """`%F|%j|%T` lines -> [(array job id, name, state), ...]."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0].strip().isdigit():
            out.append((parts[0].strip(), parts[1].strip(), parts[2].strip().split()[0] if parts[2].strip() else ""))
    return out


def cancel_argv(array_ids: list[str]) -> list[str]:
    """scancel of whole arrays: running elements get SIGTERM, pending ones never start."""
    return ["scancel", *array_ids]


def cancel_error(result: Result) -> str | None:
    """None when scancel did its work (a job that already ended is not an error)."""
    if result.returncode == 0 or "Invalid job id" in result.stderr or "already completing" in result.stderr:
        return None
    return result.describe()


def hold_argv(jobs: list[str]) -> list[str]:
    """scontrol hold of array elements: a pending one is held, a running one is not touched.

    (`scancel --state=PENDING 71_5` would cancel every pending element of array 71.)
    """
    return ["scontrol", "hold", *jobs]


def held(text: str) -> set[str]:
    """Jobs of a `%i|%T|%r` squeue that are pending on a hold (JobHeldUser, JobHeldAdmin)."""
    out = set()
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[1] == "PENDING" and parts[2].startswith("JobHeld"):
            out.update(_expand(parts[0]))
    return out


def health_argv() -> list[str]:
    """One sinfo: partitions, availability, nodes, node states."""
    return ["sinfo", "-h", "-o", "%P|%a|%D|%t"]


def parse_sinfo(text: str) -> list[tuple[str, str, int, str]]:
    """`%P|%a|%D|%t` lines -> [(partition, availability, nodes, node state)]; the default partition loses its `*`."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 4 and parts[2].strip().isdigit():
            out.append((parts[0].strip().rstrip("*"), parts[1].strip(), int(parts[2]), parts[3].strip()))
    return out


def health_of(result: Result, queue: str | None) -> dict[str, Any]:
    """healthy when sinfo answers and the partition is up with usable nodes."""
    if result.returncode != 0:
        return {"status": "unhealthy", "details": f"sinfo failed: {result.describe()}", "ok": False}
    rows = parse_sinfo(result.stdout)
    if queue:
        rows = [r for r in rows if r[0] == queue]
        if not rows:
            return {"status": "unhealthy", "details": f"partition {queue} not found", "ok": False}
    usable = sum(n for _, avail, n, state in rows if avail == "up" and not state.rstrip("*~#!%$@^-").startswith(
        ("down", "drain", "fail", "inval", "unk", "futr", "maint", "boot", "powered_down", "no_resp")))
    nodes = sum(r[2] for r in rows)
    shown = ", ".join(sorted({f"{p} {a}" for p, a, _, _ in rows}))
    details = f"Slurm answers: {shown}; {usable} of {nodes} nodes usable"
    if usable == 0:
        return {"status": "degraded", "details": details, "ok": True}
    return {"status": "healthy", "details": details, "ok": True}


class Slurm(Scheduler):
    """Slurm: sbatch arrays, squeue, sacct."""

    system = "slurm"
    template = "slurm.sh"
    active = ACTIVE
    final = FINAL
    directives = staticmethod(directives)
    submit_argv = staticmethod(submit_argv)
    parse_job_id = staticmethod(parse_job_id)
    element = staticmethod(element)
    array_of = staticmethod(array_of)
    status_argv = staticmethod(status_argv)
    status_error = staticmethod(status_error)
    parse_status = staticmethod(parse_squeue)
    accounting_argv = staticmethod(accounting_argv)
    parse_accounting = staticmethod(parse_sacct)
    lookup_argv = staticmethod(lookup_argv)
    parse_lookup = staticmethod(parse_lookup)
    cancel_argv = staticmethod(cancel_argv)
    cancel_error = staticmethod(cancel_error)
    hold_argv = staticmethod(hold_argv)
    held = staticmethod(held)
    health_argv = staticmethod(health_argv)
    health_of = staticmethod(health_of)
