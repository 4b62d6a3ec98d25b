"""The settings of a project and of each kind of source, declared once and checked at load (pure).

`hsm.config` reads `hsm_config.yaml` and hands each section to the readers here, so a wrong
value is refused, naming the file and the key, by every command that loads the config, before
anything is written. A source's settings are its own options over the project's section for
its kind (`ssh:`, `hpc:`); the same `SourceConfig` goes from the config through `--sources`
to the source object, and the task index keeps only its plain options.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from hsm.core.gpus import check_gpu_settings, check_hpc_gpus, gpu_ids
from hsm.core.hostpaths import login_relative, resolve_remote
from hsm.core.keys import (
    Key,
    absolute_path,
    bad,
    boolean,
    canonical,
    choice,
    exit_codes,
    known_names,
    name_text,
    number,
    path_text,
    port,
    read_keys,
    resources,
    ssh_options,
    strings,
    text,
    whole,
)
from hsm.core.walltime import check_hpc_values
from hsm.errors import BadInput

SOURCE_TYPES = ("local", "ssh", "hpc")
SYSTEMS = ("slurm", "pbs")


def check_known(data: Mapping[Any, Any], known: Iterable[str], where: str) -> None:
    """Refuse a key that is none of `known`: a misspelt key would otherwise be ignored without a word.

    `where` names the section (`FILE: compute`); the message names the key below it.
    """
    names = sorted(set(known))
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]}?" if close else f"expected one of {', '.join(names)}"
            raise BadInput(f"{where}.{key}: unknown key ({hint})")

# --- the project's sections --------------------------------------------------------------------

COMPUTE_KEYS = (
    Key("health_check_interval", number(above=0), 300, "seconds between health checks of the sources"),
    Key("result_collection_interval", number(above=0), 60,
        "seconds between collections of remote results while `hsm run` drives"),
    Key("source_failure_threshold", number(above=0, maximum=1), 0.4,
        "a source whose share of failed tasks reaches this is disabled"),
    Key("min_jobs_for_failsafe", whole(1), 5, "finished tasks on a source before its failure rate counts"),
    Key("health_check_failure_threshold", whole(1), 3, "consecutive failed health checks that disable a source"),
    Key("auto_disable_unhealthy_sources", boolean, True, "disable a source after failed health checks"),
    Key("enable_source_failsafe", boolean, True, "disable a source whose failure rate is too high"),
    Key("max_concurrent_local", whole(1), 4, "parallel tasks of the implicit local source"),
    Key("retry_attempts", whole(0), 0,
        "new attempts for a task that failed in a way another attempt can cure (lost, node_fail, preempted, disk)"),
    Key("retry_delay", number(minimum=0), 60.0, "seconds before a failed task's next attempt"),
    Key("exponential_backoff", boolean, False, "double the retry delay with each retry of a task"),
    Key("retry_on_timeout", boolean, False, "retry a task that reached its walltime too"),
    Key("retry_on_exit_codes", exit_codes, [], "the training script's exit codes that mean 'try again'"),
    Key("unreachable_grace", number(minimum=0), 300.0,
        "seconds a source may not answer before its unfinished tasks are run elsewhere"),
    Key("recovery_checks", whole(1), 3, "healthy checks in a row that enable a source the policy disabled"),
    Key("disk_min_free_gb", number(minimum=0), 3.0, "a task does not start with less free disk than this"),
    Key("disk_floor_mb", number(minimum=0), 200, "a running task is stopped (failed, reason disk) below this"),
    Key("disk_check_interval", whole(0), 300, "seconds between disk checks while a task runs (0: never)"),
    Key("max_sweep_tasks", whole(1), 1_000_000,
        "the most tasks one sweep may have; a larger grid is refused before anything is written"),
)

# --- SSH ---------------------------------------------------------------------------------------

CONNECTION_KEYS = (
    Key("ssh_port", port, None, "the host's SSH port", aliases=("port",)),
    Key("ssh_key", path_text, None, "the private key to log in with"),
    Key("ssh_config", path_text, None, "an OpenSSH client config file to use"),
    Key("ssh_options", ssh_options, (), "more ssh options, each 'Name=value'"),
    Key("compression", boolean, False, "compress ssh and rsync traffic"),
)

# --- GPUs of a local or SSH source (see hsm/core/gpus.py) ----------------------------------------

GPU_KEYS = (
    Key("gpus", gpu_ids, None,
        "GPU ids shared out among the tasks, each to one running task at a time, in CUDA_VISIBLE_DEVICES: "
        "a list such as [0, 1] (or GPU-/MIG- UUIDs), or auto, what nvidia-smi -L lists where the tasks run "
        "(no GPUs without nvidia-smi)",
        kind="list of GPU ids, or auto"),
    Key("gpus_per_task", whole(1), 1,
        "GPU ids each task gets; at most len(gpus) // gpus_per_task tasks run at once",
        kind="whole number >= 1"),
)
LOCAL_KEYS = GPU_KEYS  # a local source's settings

SSH_KEYS = (
    *CONNECTION_KEYS,
    Key("project_dir", path_text, None, "the project's copy on the host (default: the same path as here)"),
    Key("sweeps_dir", path_text, None, "where the host keeps sweep dirs (default: below project_dir)"),
    Key("python_interpreter", path_text, "python3", "the Python the tasks run with on the host"),
    Key("conda_env", path_text, None, "a conda env the tasks run in"),
    Key("sync", choice("push", "verify"), "push", "push the project before a submit, or only verify the copy"),
    Key("sync_excludes", strings("rsync patterns"), (), "paths a push leaves out (rsync patterns)"),
    Key("cleanup_remote_on_success", boolean, False, "remove a completed task's dir on the host once it is home"),
    *GPU_KEYS,
)


@dataclass(frozen=True)
class Connection:
    """How ssh and rsync reach a host."""

    host: str
    port: int | None = None
    key: str | None = None
    config_file: str | None = None
    options: tuple[str, ...] = ()


def read_connection(host: str, values: Mapping[str, Any]) -> Connection:
    """The connection part of checked SSH or HPC settings."""
    options = tuple(values["ssh_options"]) + (("Compression=yes",) if values["compression"] else ())
    return Connection(host=host, port=values["ssh_port"], key=values["ssh_key"], config_file=values["ssh_config"],
                      options=options)


@dataclass(frozen=True)
class SshSettings:
    """An SSH source's settings: the project-wide `ssh:` section overlaid with the source's own."""

    name: str
    connection: Connection
    project_dir: str | None  # as configured; None means the local project root's path
    sweeps_dir: str | None
    python: str
    conda_env: str | None
    sync_mode: str
    sync_excludes: tuple[str, ...]
    cleanup_remote_on_success: bool
    gpus: str | tuple[int | str, ...] | None = None  # the ids, "auto" or None (see hsm/core/gpus.py)
    gpus_per_task: int = 1

    def needs_home(self) -> bool:
        """True when a configured path is relative to the login's home (`~/x` or `x`)."""
        paths = [self.project_dir, self.sweeps_dir, self.python if "/" in self.python else None]
        return any(p is not None and not p.startswith("/") for p in paths)

    def project_path(self, local_root: str, home: str | None = None) -> str:
        """The project dir on the host; by default the same path as the local project root."""
        return resolve_remote(self.project_dir or str(local_root), home, f"source '{self.name}': project_dir")

    def task_python(self, home: str | None) -> str:
        """The tasks' interpreter: a path made absolute (tasks start in the project dir), a bare name left to PATH."""
        if "/" in self.python:
            return resolve_remote(self.python, home, f"source '{self.name}': python_interpreter")
        return self.python

    def agent_python(self) -> str:
        """The interpreter hsm's own calls use; ssh starts them in the home dir, so `~/x` is `x`."""
        return login_relative(self.python)


def read_ssh(name: str, options: Mapping[str, Any], defaults: SourceDefaults, where: str | None = None) -> SshSettings:
    """Check an SSH source's settings; BadInput names `where` (default: the source) and the key."""
    where = where or f"source '{name}'"
    read_keys(SSH_KEYS, options, where)  # the source's own values first: a message names the key as written
    merged = {**canonical(SSH_KEYS, defaults.ssh), **canonical(SSH_KEYS, options)}
    if "cleanup_remote_on_success" not in merged and defaults.cleanup_remote_on_success is not None:
        merged["cleanup_remote_on_success"] = defaults.cleanup_remote_on_success
    host = merged.get("host") or name
    if not isinstance(host, str) or not host.strip():
        raise bad(f"{where}: host", "expected a host name", host)
    values = read_keys(SSH_KEYS, merged, where)
    check_gpu_settings(values, merged, where)
    return SshSettings(
        name=name,
        connection=read_connection(check_host(host, f"{where}: host"), values),
        project_dir=values["project_dir"],
        sweeps_dir=values["sweeps_dir"],
        python=values["python_interpreter"],
        conda_env=values["conda_env"],
        sync_mode=values["sync"],
        sync_excludes=values["sync_excludes"],
        cleanup_remote_on_success=values["cleanup_remote_on_success"],
        gpus=values["gpus"],
        gpus_per_task=values["gpus_per_task"],
    )


def check_host(host: str, where: str) -> str:
    """A host name that ssh and rsync cannot take for an option."""
    if host.startswith("-") or any(c.isspace() for c in host):
        raise bad(where, "expected a host name", host)
    return host


# --- HPC -----------------------------------------------------------------------------------------

HPC_KEYS = (
    Key("system", choice(*SYSTEMS), None, "the scheduler: slurm or pbs (default: the one found on PATH)"),
    Key("host", text, None, "a login host: the scheduler commands run there over SSH"),
    *CONNECTION_KEYS,
    Key("project_dir", absolute_path, None, "the project on the cluster (login host only)"),
    Key("sweeps_dir", absolute_path, None, "where sweep dirs go on the cluster (login host only)"),
    Key("queue", name_text, None, "the partition or queue", aliases=("partition", "default_queue")),
    Key("default_walltime", text, None, "the jobs' time limit", aliases=("walltime",)),
    Key("default_resources", resources, None, "resources of each job, e.g. nodes=1:ntasks=4:mem=8GB",
        aliases=("resources",)),
    Key("module_commands", strings(), (), "lines run in the job script before the task starts"),
    Key("conda_env", text, None, "a conda env activated in the job script"),
    Key("max_array_size", whole(1), 1000, "the most tasks in one array; a bigger sweep is several arrays"),
    Key("python_interpreter", text, None, "the Python the tasks run with on the cluster"),
    Key("dependency", strings(), (), "a scheduler dependency of every array, e.g. afterok:12345"),
    Key("timeout_warning", whole(0), 60, "seconds before the walltime the task is told (0: not told)"),
    Key("lost_grace", number(minimum=0), 60.0,
        "seconds a job may be gone from the queue, with no word of its task, before the task counts as lost"),
    Key("accounting_grace", number(minimum=0), 60.0,
        "seconds a finished job's exit code is awaited from accounting that does not list it yet"),
    Key("extra_directives", strings(), (), "more scheduler options, one per item, as directives"),
    Key("command_timeout", number(minimum=1), 60.0, "seconds a scheduler command may take"),
    Key("scheduler_poll_interval", number(minimum=0), 30.0,
        "the least seconds between two status calls (squeue/qstat, sacct) of a sweep's polls, however often "
        "hsm polls; task ends are seen from their status files in between (0: every poll may ask)"),
    Key("gpus_per_task", whole(1), None,
        "GPUs each task's job asks the scheduler for: --gpus-per-task on Slurm (pbs: ask in default_resources)",
        kind="whole number >= 1"),
)


@dataclass(frozen=True)
class HpcSettings:
    """An HPC source's settings: its options over the project's `hpc:` section over defaults."""

    system: str | None  # None: the scheduler found on this machine, decided when it is used
    connection: Connection | None  # a login host
    project_dir: str | None
    sweeps_dir: str | None
    queue: str | None
    walltime: str | None
    resources: str | tuple[str, ...] | None
    module_commands: tuple[str, ...]
    conda_env: str | None
    max_array_size: int
    python_interpreter: str | None
    dependency: tuple[str, ...]
    timeout_warning: int
    lost_grace: float
    accounting_grace: float
    extra_directives: tuple[str, ...]
    command_timeout: float
    scheduler_poll_interval: float = 30.0
    gpus_per_task: int | None = None


def read_hpc(name: str, options: Mapping[str, Any], defaults: SourceDefaults, where: str | None = None) -> HpcSettings:
    """Check an HPC source's settings; BadInput names `where` (default: the source) and the key."""
    where = where or f"source '{name}'"
    read_keys(HPC_KEYS, options, where)  # the source's own values first: a message names the key as written
    merged = {**canonical(HPC_KEYS, defaults.hpc), **canonical(HPC_KEYS, options)}
    values = read_keys(HPC_KEYS, merged, where)
    check_hpc_values(values, options, where)
    check_hpc_gpus(values["system"], values["gpus_per_task"], options, where)
    connection = None
    if values["host"]:
        if values["system"] is None:
            raise BadInput(f"{where}: system: missing (needed with a login host); expected one of {', '.join(SYSTEMS)}")
        ssh = canonical(CONNECTION_KEYS, defaults.ssh)
        conn_values = read_keys(CONNECTION_KEYS, {**{k: v for k, v in ssh.items() if k in known_names(CONNECTION_KEYS)},
                                                  **merged}, where)
        connection = read_connection(check_host(values["host"], f"{where}: host"), conn_values)
    return HpcSettings(
        system=values["system"], connection=connection,
        project_dir=values["project_dir"] if connection else None,
        sweeps_dir=values["sweeps_dir"] if connection else None,
        queue=values["queue"], walltime=values["default_walltime"], resources=values["default_resources"],
        module_commands=values["module_commands"], conda_env=values["conda_env"],
        max_array_size=values["max_array_size"], python_interpreter=values["python_interpreter"],
        dependency=values["dependency"], timeout_warning=values["timeout_warning"],
        lost_grace=values["lost_grace"], accounting_grace=values["accounting_grace"],
        extra_directives=values["extra_directives"], command_timeout=values["command_timeout"],
        scheduler_poll_interval=values["scheduler_poll_interval"],
        gpus_per_task=values["gpus_per_task"],
    )


# --- a source, from the config through --sources to the source object ---------------------------

# The settings each type of source has, beside type, enabled and its cap on parallel tasks.
SOURCE_KEYS: dict[str, frozenset[str]] = {
    "local": frozenset(known_names(LOCAL_KEYS)),
    "ssh": frozenset(known_names(SSH_KEYS) | {"host"}),
    "hpc": frozenset(known_names(HPC_KEYS) | {"gpus"}),  # gpus: refused by read_hpc, saying why
}


@dataclass(frozen=True)
class LocalSettings:
    """A local source's settings beside its cap on parallel tasks (max_parallel): its GPUs."""

    gpus: str | tuple[int | str, ...] | None = None  # the ids, "auto" or None (see hsm/core/gpus.py)
    gpus_per_task: int = 1


def read_local(options: Mapping[str, Any], where: str) -> LocalSettings:
    """Check a local source's settings; BadInput names `where` and the key."""
    values = read_keys(LOCAL_KEYS, options, where)
    check_gpu_settings(values, options, where)
    return LocalSettings(gpus=values["gpus"], gpus_per_task=values["gpus_per_task"])


Settings = Union[LocalSettings, SshSettings, HpcSettings]


@dataclass(frozen=True)
class SourceDefaults:
    """What the project's sections give every source of a kind."""

    ssh: Mapping[str, Any] = field(default_factory=dict)
    hpc: Mapping[str, Any] = field(default_factory=dict)
    cleanup_remote_on_success: bool | None = None  # from `result_collection:`
    no_cluster: bool = False  # `hpc.system: local`: the project says it has no cluster


@dataclass(frozen=True)
class SourceConfig:
    """A compute source: its name, kind, cap on parallel tasks, checked settings and options as written."""

    name: str
    type: str
    max_parallel: int
    settings: Settings
    options: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the task index."""
        return {"type": self.type, "max_parallel": self.max_parallel, "options": dict(self.options)}


def read_settings(name: str, kind: str, options: Mapping[str, Any], defaults: SourceDefaults,
                  where: str | None = None) -> Settings:
    """The checked settings of a source of `kind`; `where` names it in messages (default: the source)."""
    if kind == "ssh":
        return read_ssh(name, options, defaults, where)
    if kind == "hpc":
        return read_hpc(name, options, defaults, where)
    if kind == "local":
        return read_local(options, where or f"source '{name}'")
    raise BadInput(f"source '{name}': type {kind!r} is not a source type (expected one of {', '.join(SOURCE_TYPES)})")


def source_config(name: str, kind: str, max_parallel: int, options: Mapping[str, Any], defaults: SourceDefaults,
                  enabled: bool = True, where: str | None = None) -> SourceConfig:
    """A source with its settings checked; `where` names it in messages (default: the source)."""
    settings = read_settings(name, kind, options, defaults, where)
    gpus = getattr(settings, "gpus", None)
    if isinstance(gpus, tuple):  # a list of ids: no more tasks at once than there are GPU slots
        max_parallel = max(1, min(max_parallel, len(gpus) // getattr(settings, "gpus_per_task", 1)))
    return SourceConfig(name, kind, max_parallel, settings, dict(options), enabled)


def from_index(name: str, entry: Mapping[str, Any], defaults: SourceDefaults) -> SourceConfig:
    """A source as the task index keeps it (type, max_parallel, options), its settings checked again."""
    return source_config(name, str(entry.get("type")), int(entry.get("max_parallel", 1)),
                         entry.get("options") or {}, defaults)
