"""The project configuration: finding `hsm_config.yaml` and reading both of its forms.

A project has one `hsm_config.yaml` in its root or its `sweeps/` directory. Sources are
read from `compute_sources:` (type local, ssh or hpc) and from the older
`distributed.remotes:` form (SSH hosts). Everything has a default, so a project with no
config file at all can still run sweeps on the local machine.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm.errors import BadInput
from hsm.store import read_yaml

CONFIG_NAME = "hsm_config.yaml"
SOURCE_TYPES = ("local", "ssh", "hpc")
STRATEGIES = ("round_robin", "least_loaded", "random", "weighted", "capability_based")

# Thresholds of the failsafe and the collection loop (seeds 000 and 004), with defaults.
COMPUTE_DEFAULTS: dict[str, Any] = {
    "health_check_interval": 300,
    "result_collection_interval": 60,
    "source_failure_threshold": 0.4,
    "min_jobs_for_failsafe": 5,
    "health_check_failure_threshold": 3,
    "auto_disable_unhealthy_sources": True,
    "enable_source_failsafe": True,
    "max_concurrent_local": 4,
    "retry_attempts": 0,
    "disk_min_free_gb": 3.0,
    "disk_floor_mb": 200,
    "disk_check_interval": 300,
}

_KNOWN_SECTIONS = {
    "project", "paths", "compute_sources", "compute", "distributed", "hpc", "ssh",
    "execution", "logging", "experiment_tracking", "result_collection",
}


@dataclass(frozen=True)
class SourceConfig:
    """One configured compute source."""

    name: str
    type: str
    max_parallel_tasks: int
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectConfig:
    """The effective project configuration."""

    path: Path | None
    root: Path
    python_interpreter: str
    training_script: str | None
    conda_env: str | None
    outputs_dir: Path
    sources: dict[str, SourceConfig]
    compute: dict[str, Any]
    strategy: str
    arg_style: str
    hydra_run_dir: bool
    raw: dict[str, Any]
    # False for one invocation given --no-verify-sync: SSH hosts' project copies are not checked.
    verify_sync: bool = True
    # The older `hpc:` section: defaults of every hpc source (its `default_queue` read as `queue`).
    hpc: dict[str, Any] = field(default_factory=dict)

    def script_path(self) -> Path | None:
        """The training script as a path on this machine, or None when not configured."""
        if not self.training_script:
            return None
        return (self.root / os.path.expanduser(self.training_script)).resolve()


def find_config(start: Path) -> Path | None:
    """`hsm_config.yaml` in `start`, its `sweeps/`, or the nearest parent that has one."""
    for directory in (start, *start.parents):
        for candidate in (directory / CONFIG_NAME, directory / "sweeps" / CONFIG_NAME):
            if candidate.is_file():
                return candidate
    return None


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInput(f"{where}: expected a positive whole number, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{where}: expected true or false, got {value!r}")
    return value


def _source(name: str, spec: Any, where: str, default_type: str | None, default_max: int) -> SourceConfig:
    spec = _mapping(spec, where)
    kind = spec.get("type", default_type or ("local" if name == "local" else None))
    if kind not in SOURCE_TYPES:
        shown = "missing" if kind is None else repr(kind)
        raise BadInput(f"{where}.type: {shown} is not a source type (expected one of {', '.join(SOURCE_TYPES)})")
    raw_max = spec.get("max_parallel_tasks", spec.get("max_parallel_jobs", spec.get("max_jobs", default_max)))
    max_key = next((k for k in ("max_parallel_tasks", "max_parallel_jobs", "max_jobs") if k in spec), "max_parallel_tasks")
    limit = _positive_int(raw_max, f"{where}.{max_key}")
    enabled = _bool(spec.get("enabled", True), f"{where}.enabled")
    if kind == "ssh" and not spec.get("host"):
        spec = {**spec, "host": name}
    options = {k: v for k, v in spec.items() if k not in {"type", "max_parallel_tasks", "max_parallel_jobs", "max_jobs", "enabled"}}
    return SourceConfig(name=name, type=kind, max_parallel_tasks=limit, enabled=enabled, options=options)


def _hpc_defaults(section: Any, where: str) -> dict[str, Any]:
    section = _mapping(section, where)
    system = section.get("system")
    if system is not None and system not in ("slurm", "pbs"):
        raise BadInput(f"{where}.system: expected slurm or pbs, got {system!r}")
    return {("queue" if k == "default_queue" else str(k)): v for k, v in section.items() if v is not None}


def parse_config(data: Any, path: Path | None, cwd: Path) -> ProjectConfig:
    """Build the effective configuration from the parsed file (None: no file)."""
    where = str(path) if path else CONFIG_NAME
    data = _mapping(data, where)
    for key in data:
        if key not in _KNOWN_SECTIONS:
            raise BadInput(f"{where}: unknown section '{key}' (known: {', '.join(sorted(_KNOWN_SECTIONS))})")
    paths = _mapping(data.get("paths"), f"{where}: paths")
    base = cwd
    if path is not None:
        base = path.parent.parent if path.parent.name == "sweeps" else path.parent
    root_value = paths.get("project_root")
    root = (base / os.path.expanduser(str(root_value))).resolve() if root_value else base.resolve()
    outputs_value = paths.get("outputs_dir", paths.get("output_dir"))
    outputs = (root / os.path.expanduser(str(outputs_value))) if outputs_value else root / "sweeps" / "outputs"

    compute = dict(COMPUTE_DEFAULTS)
    distributed = _mapping(data.get("distributed"), f"{where}: distributed")
    for section_name, section in (("distributed", distributed), ("compute", _mapping(data.get("compute"), f"{where}: compute"))):
        for key, value in section.items():
            if key in COMPUTE_DEFAULTS:
                compute[key] = value
    for key in ("source_failure_threshold",):
        value = compute[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise BadInput(f"{where}: {key}: expected a fraction between 0 and 1, got {value!r}")
    for key in ("min_jobs_for_failsafe", "health_check_failure_threshold", "max_concurrent_local"):
        _positive_int(compute[key], f"{where}: {key}")

    sources: dict[str, SourceConfig] = {}
    local_max = compute["max_concurrent_local"]
    configured = _mapping(data.get("compute_sources"), f"{where}: compute_sources")
    for name, spec in configured.items():
        sources[str(name)] = _source(str(name), spec, f"{where}: compute_sources.{name}", None, local_max)
    remotes = _mapping(distributed.get("remotes"), f"{where}: distributed.remotes")
    for name, spec in remotes.items():
        if str(name) in sources:
            raise BadInput(f"{where}: distributed.remotes.{name}: also defined under compute_sources")
        sources[str(name)] = _source(str(name), spec, f"{where}: distributed.remotes.{name}", "ssh", 1)
    if "local" not in sources:
        sources["local"] = SourceConfig(name="local", type="local", max_parallel_tasks=local_max)

    execution = _mapping(data.get("execution"), f"{where}: execution")
    strategy = execution.get("strategy", distributed.get("strategy", "round_robin"))
    if strategy not in STRATEGIES:
        raise BadInput(f"{where}: strategy: unknown strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    arg_style = execution.get("arg_style", "hydra")
    if arg_style not in ("hydra", "argparse"):
        raise BadInput(f"{where}: execution.arg_style: expected hydra or argparse, got {arg_style!r}")
    script = paths.get("training_script", paths.get("train_script"))
    return ProjectConfig(
        path=path,
        root=root,
        python_interpreter=str(paths.get("python_interpreter") or sys.executable),
        training_script=str(script) if script else None,
        conda_env=str(paths["conda_env"]) if paths.get("conda_env") else None,
        outputs_dir=outputs,
        sources=sources,
        compute=compute,
        strategy=strategy,
        arg_style=arg_style,
        hydra_run_dir=_bool(execution.get("hydra_run_dir", True), f"{where}: execution.hydra_run_dir"),
        raw=data,
        hpc=_hpc_defaults(data.get("hpc"), f"{where}: hpc"),
    )


def load_project(explicit: Path | None = None, cwd: Path | None = None) -> ProjectConfig:
    """Find and read the project configuration; `explicit` (--hsm-config) wins."""
    cwd = (cwd or Path.cwd()).resolve()
    if explicit is not None:
        path = explicit.expanduser().resolve()
        if not path.is_file():
            raise BadInput(f"--hsm-config: {explicit}: no such file")
    else:
        path = find_config(cwd)
    data = read_yaml(path) if path else None
    return parse_config(data, path, cwd)
