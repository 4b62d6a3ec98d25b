"""The project configuration: finding `hsm_config.yaml` and reading both of its forms.

A project has one `hsm_config.yaml` in its root or its `sweeps/` directory. Sources are
read from `compute_sources:` (type local, ssh or hpc) and from the older
`distributed.remotes:` form (SSH hosts). Everything has a default, so a project with no
config file at all can still run sweeps on the local machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm.core.keys import boolean, known_names, mapping, path_text, read_keys
from hsm.core.settings import (
    COMPUTE_KEYS,
    HPC_KEYS,
    SOURCE_KEYS,
    SOURCE_TYPES,
    SSH_KEYS,
    SourceConfig,
    SourceDefaults,
    check_hpc_values,
    check_known,
    source_config,
)
from hsm.errors import BadInput
from hsm.store import read_yaml_strict

CONFIG_NAME = "hsm_config.yaml"
STRATEGIES = ("round_robin", "least_loaded", "random", "weighted", "capability_based")
COMPUTE_DEFAULTS: dict[str, Any] = {key.name: key.default for key in COMPUTE_KEYS}

_KNOWN_SECTIONS = {
    "project", "paths", "compute_sources", "compute", "distributed", "hpc", "ssh",
    "execution", "logging", "experiment_tracking", "result_collection",
}
_LIMIT_NAMES = ("max_parallel_tasks", "max_parallel_jobs", "max_jobs")
_PATH_KEYS = ("project_root", "training_script", "train_script", "python_interpreter", "conda_env",
              "outputs_dir", "output_dir")
_EXECUTION_KEYS = ("strategy", "arg_style", "hydra_run_dir")
# Keys of the original HSM's `compute:` that hsm reads without using; any other unknown key is refused.
_COMPUTE_LEGACY = ("default_timeout", "max_concurrent_remote")


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
    # What the `ssh:`, `hpc:` and `result_collection:` sections give every source of a kind.
    source_defaults: SourceDefaults = field(default_factory=SourceDefaults)

    @property
    def hpc(self) -> Mapping[str, Any]:
        """The older `hpc:` section: defaults of every hpc source (its `system` names the scheduler)."""
        return self.source_defaults.hpc

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


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInput(f"{where}: expected a positive whole number, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{where}: expected true or false, got {value!r}")
    return value


def _source(name: str, spec: Any, where: str, default_type: str | None, default_max: int,
            defaults: SourceDefaults) -> SourceConfig:
    spec = mapping(spec, where)
    kind = spec.get("type", default_type or ("local" if name == "local" else None))
    if kind not in SOURCE_TYPES:
        shown = "missing" if kind is None else repr(kind)
        raise BadInput(f"{where}.type: {shown} is not a source type (expected one of {', '.join(SOURCE_TYPES)})")
    check_known(spec, SOURCE_KEYS[kind] | {"type", "enabled", *_LIMIT_NAMES}, where)
    max_key = next((k for k in _LIMIT_NAMES if k in spec), "max_parallel_tasks")
    limit = _positive_int(spec.get(max_key, default_max), f"{where}.{max_key}")
    enabled = _bool(spec.get("enabled", True), f"{where}.enabled")
    if kind == "ssh" and not spec.get("host"):
        spec = {**spec, "host": name}
    options = {k: v for k, v in spec.items() if k not in {"type", *_LIMIT_NAMES, "enabled"}}
    return source_config(name, kind, limit, options, defaults, enabled, where=where)


def _source_defaults(data: Mapping[str, Any], where: str) -> SourceDefaults:
    """The `ssh:`, `hpc:` and `result_collection:` sections, each checked as a source of its kind would be."""
    ssh = mapping(data.get("ssh"), f"{where}: ssh")
    hpc = mapping(data.get("hpc"), f"{where}: hpc")
    collection = mapping(data.get("result_collection"), f"{where}: result_collection")
    cleanup = collection.get("cleanup_remote_on_success")
    if cleanup is not None:
        cleanup = boolean(cleanup, f"{where}: result_collection.cleanup_remote_on_success")
    defaults = SourceDefaults(ssh=ssh, hpc=hpc, cleanup_remote_on_success=cleanup)
    # Checked here, once, so a bad value is refused before any sweep exists, not at submit;
    # a message names the key as written (an alias too).
    check_known(ssh, known_names(SSH_KEYS), f"{where}: ssh")
    check_known(hpc, known_names(HPC_KEYS), f"{where}: hpc")
    check_known(collection, ("cleanup_remote_on_success",), f"{where}: result_collection")
    read_keys(SSH_KEYS, ssh, f"{where}: ssh", sep=".")
    check_hpc_values(read_keys(HPC_KEYS, hpc, f"{where}: hpc", sep="."), hpc, f"{where}: hpc", sep=".")
    return defaults


def _compute(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The thresholds, from `compute:` and the older `distributed:` (which `compute:` overrides)."""
    given: dict[str, tuple[str, Any]] = {}
    check_known(mapping(data.get("compute"), f"{where}: compute"), [*COMPUTE_DEFAULTS, *_COMPUTE_LEGACY],
                f"{where}: compute")
    for section_name in ("distributed", "compute"):
        section = mapping(data.get(section_name), f"{where}: {section_name}")
        given.update({k: (section_name, v) for k, v in section.items() if k in COMPUTE_DEFAULTS})
    compute = dict(COMPUTE_DEFAULTS)
    for key in COMPUTE_KEYS:
        if key.name in given and given[key.name][1] is not None:
            section_name, value = given[key.name]
            compute[key.name] = key.parse(value, f"{where}: {section_name}.{key.name}")
    return compute


def _sources(data: Mapping[str, Any], where: str, local_max: int, defaults: SourceDefaults) -> dict[str, SourceConfig]:
    """The configured sources (`compute_sources:`, then the older `distributed.remotes:`), and `local`."""
    sources: dict[str, SourceConfig] = {}
    configured = mapping(data.get("compute_sources"), f"{where}: compute_sources")
    for name, spec in configured.items():
        sources[str(name)] = _source(str(name), spec, f"{where}: compute_sources.{name}", None, local_max, defaults)
    remotes = mapping(mapping(data.get("distributed"), f"{where}: distributed").get("remotes"),
                      f"{where}: distributed.remotes")
    for name, spec in remotes.items():
        if str(name) in sources:
            raise BadInput(f"{where}: distributed.remotes.{name}: also defined under compute_sources")
        sources[str(name)] = _source(str(name), spec, f"{where}: distributed.remotes.{name}", "ssh", 1, defaults)
    if "local" not in sources:
        sources["local"] = source_config("local", "local", local_max, {}, defaults)
    return sources


def _paths(section: Mapping[str, Any], where: str) -> dict[str, str]:
    """The `paths:` section: each key a path or a name (an empty entry is not given)."""
    check_known(section, _PATH_KEYS, where)
    return {key: path_text(value, f"{where}.{key}") for key, value in section.items() if value not in (None, "")}


def _project_root(value: str | None, base: Path, where: str) -> Path:
    """`paths.project_root` (relative to the config's directory), which must exist; else `base`."""
    if not value:
        return base.resolve()
    root = (base / os.path.expanduser(value)).resolve()
    if not root.is_dir():
        raise BadInput(f"{where}: paths.project_root: {root}: no such directory")
    return root


def _strategy(execution: Mapping[str, Any], distributed: Mapping[str, Any], where: str) -> str:
    """The default strategy: `execution.strategy`, else the older `distributed.strategy`."""
    section = "execution" if "strategy" in execution else "distributed"
    strategy = (execution if section == "execution" else distributed).get("strategy", "round_robin")
    if strategy not in STRATEGIES:
        raise BadInput(f"{where}: {section}.strategy: unknown strategy {strategy!r} "
                       f"(expected one of {', '.join(STRATEGIES)})")
    return str(strategy)


def parse_config(data: Any, path: Path | None, cwd: Path) -> ProjectConfig:
    """Build the effective configuration from the parsed file (None: no file)."""
    where = str(path) if path else CONFIG_NAME
    data = mapping(data, where)
    for key in data:
        if key not in _KNOWN_SECTIONS:
            raise BadInput(f"{where}: unknown section '{key}' (known: {', '.join(sorted(_KNOWN_SECTIONS))})")
    paths = _paths(mapping(data.get("paths"), f"{where}: paths"), f"{where}: paths")
    base = cwd
    if path is not None:
        base = path.parent.parent if path.parent.name == "sweeps" else path.parent
    root = _project_root(paths.get("project_root"), base, where)
    outputs_value = paths.get("outputs_dir", paths.get("output_dir"))
    outputs = (root / os.path.expanduser(outputs_value)) if outputs_value else root / "sweeps" / "outputs"
    if outputs.exists() and not outputs.is_dir():
        key = "outputs_dir" if "outputs_dir" in paths else "output_dir"
        raise BadInput(f"{where}: paths.{key}: {outputs}: not a directory")

    compute = _compute(data, where)
    defaults = _source_defaults(data, where)
    sources = _sources(data, where, compute["max_concurrent_local"], defaults)
    execution = mapping(data.get("execution"), f"{where}: execution")
    check_known(execution, _EXECUTION_KEYS, f"{where}: execution")
    strategy = _strategy(execution, mapping(data.get("distributed"), f"{where}: distributed"), where)
    arg_style = execution.get("arg_style", "hydra")
    if arg_style not in ("hydra", "argparse"):
        raise BadInput(f"{where}: execution.arg_style: expected hydra or argparse, got {arg_style!r}")
    script = paths.get("training_script", paths.get("train_script"))
    return ProjectConfig(
        path=path,
        root=root,
        python_interpreter=paths.get("python_interpreter") or sys.executable,
        training_script=script,
        conda_env=paths.get("conda_env"),
        outputs_dir=outputs,
        sources=sources,
        compute=compute,
        strategy=strategy,
        arg_style=arg_style,
        hydra_run_dir=_bool(execution.get("hydra_run_dir", True), f"{where}: execution.hydra_run_dir"),
        raw=data,
        source_defaults=defaults,
    )


def load_project(explicit: Path | None = None, cwd: Path | None = None) -> ProjectConfig:
    """Find and read the project configuration; `explicit` (--hsm-config) wins."""
    cwd = (cwd or Path.cwd()).resolve()
    path: Path | None
    if explicit is not None:
        path = explicit.expanduser().resolve()
        if not path.is_file():
            raise BadInput(f"--hsm-config: {explicit}: no such file")
    else:
        path = find_config(cwd)
    # Strict: a section or key written twice would otherwise lose the first one without a word.
    data = read_yaml_strict(path) if path else None
    return parse_config(data, path, cwd)
