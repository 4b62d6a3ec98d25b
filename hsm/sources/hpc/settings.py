"""An HPC source's settings: its options over the project's `hpc:` section over defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from hsm.config import ProjectConfig
from hsm.errors import BadInput
from hsm.sources.hpc.outcome import DEFAULT_ACCOUNTING_GRACE
from hsm.transport import SshTarget

SYSTEMS = ("slurm", "pbs")
DEFAULT_MAX_ARRAY_SIZE = 1000  # Slurm's default MaxArraySize is 1001: indices 0..1000
DEFAULT_TIMEOUT_WARNING = 60  # seconds before the walltime the wrapper is told (USR1)
DEFAULT_LOST_GRACE = 60.0  # seconds a job may be gone before its task counts as lost
DEFAULT_COMMAND_TIMEOUT = 60.0

# Other names of source keys (`default_queue` is the older `hpc:` section's).
ALIASES = {"partition": "queue", "default_queue": "queue", "walltime": "default_walltime",
           "resources": "default_resources"}


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise BadInput(f"{where}: expected a string, got {value!r}")
    return str(value).strip()


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _number(value: Any, where: str, default: float, minimum: float = 0) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise BadInput(f"{where}: expected a number of at least {minimum:g}, got {value!r}")
    return float(value)


def _absolute(value: Any, where: str) -> str | None:
    text = _text(value, where)
    if text is not None and not text.startswith("/"):
        raise BadInput(f"{where}: expected an absolute path on the cluster, got {text!r}")
    return text


@dataclass(frozen=True)
class HpcSettings:
    """An HPC source's settings: its options over the project's `hpc:` section over defaults."""

    system: str
    target: SshTarget | None
    project_dir: str | None
    sweeps_dir: str | None
    queue: str | None
    walltime: str | None
    resources: Any
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
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any], project: ProjectConfig) -> "HpcSettings":
        """Read and check the settings; BadInput names the source and the key that is wrong."""
        where = f"source '{name}'"
        merged: dict[str, Any] = {}
        for layer in (project.hpc, options):
            for key, value in layer.items():
                if value is not None:
                    merged[ALIASES.get(key, key)] = value
        from hsm.sources.detect import detect_scheduler

        system = merged.get("system")
        if system is None and not merged.get("host"):
            system = detect_scheduler()
        if system not in SYSTEMS:
            if system is None:
                shown = "missing (needed with a login host)" if merged.get("host") else \
                    "missing (and neither sbatch nor qsub is on PATH)"
            else:
                shown = repr(system)
            raise BadInput(f"{where}: system: {shown}; expected one of {', '.join(SYSTEMS)}")
        target = None
        if merged.get("host"):
            host = _text(merged["host"], f"{where}: host")
            ssh_defaults = project.raw.get("ssh") or {}
            target = SshTarget.from_options(str(host), merged, ssh_defaults if isinstance(ssh_defaults, dict) else {},
                                            where=where)
        resources = merged.get("default_resources")
        if resources is not None and not isinstance(resources, (str, list)):
            raise BadInput(f"{where}: default_resources: expected a string or a list, got {resources!r}")
        max_array = merged.get("max_array_size", DEFAULT_MAX_ARRAY_SIZE)
        if isinstance(max_array, bool) or not isinstance(max_array, int) or max_array < 1:
            raise BadInput(f"{where}: max_array_size: expected a positive whole number, got {max_array!r}")
        warning = merged.get("timeout_warning", DEFAULT_TIMEOUT_WARNING)
        if isinstance(warning, bool) or not isinstance(warning, int) or warning < 0:
            raise BadInput(f"{where}: timeout_warning: expected whole seconds (0: none), got {warning!r}")
        return cls(
            system=system,
            target=target,
            project_dir=_absolute(merged.get("project_dir"), f"{where}: project_dir") if target else None,
            sweeps_dir=_absolute(merged.get("sweeps_dir"), f"{where}: sweeps_dir") if target else None,
            queue=_text(merged.get("queue"), f"{where}: queue"),
            walltime=_text(merged.get("default_walltime"), f"{where}: default_walltime"),
            resources=resources,
            module_commands=_strings(merged.get("module_commands"), f"{where}: module_commands"),
            conda_env=_text(merged.get("conda_env"), f"{where}: conda_env"),
            max_array_size=max_array,
            python_interpreter=_text(merged.get("python_interpreter"), f"{where}: python_interpreter"),
            dependency=_strings(merged.get("dependency"), f"{where}: dependency"),
            timeout_warning=warning,
            lost_grace=_number(merged.get("lost_grace"), f"{where}: lost_grace", DEFAULT_LOST_GRACE),
            accounting_grace=_number(merged.get("accounting_grace"), f"{where}: accounting_grace",
                                     DEFAULT_ACCOUNTING_GRACE),
            extra_directives=_strings(merged.get("extra_directives"), f"{where}: extra_directives"),
            command_timeout=_number(merged.get("command_timeout"), f"{where}: command_timeout",
                                    DEFAULT_COMMAND_TIMEOUT, minimum=1),
            options=merged,
        )
