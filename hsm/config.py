"""The project configuration: finding `hsm_config.yaml` and reading both of its forms.

A project has one `hsm_config.yaml` in its root or its `sweeps/` directory. Sources are
read from `compute_sources:` (type local, ssh or hpc) and from the older
`distributed.remotes:` form (SSH hosts). Everything has a default, so a project with no
config file at all can still run sweeps on the local machine.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm.core.keys import Key, known_names, mapping, read_keys
from hsm.core.projectkeys import (
    COMPUTE_LEGACY_KEYS,
    DISTRIBUTED_KEYS,
    SECTION_NAMES,
    STRATEGIES,
    section,
)
from hsm.core.settings import (
    COMPUTE_KEYS,
    HPC_KEYS,
    SOURCE_KEYS,
    SOURCE_TYPES,
    SSH_KEYS,
    SourceConfig,
    SourceDefaults,
    check_known,
    source_config,
)
from hsm.core.walltime import check_hpc_values
from hsm.errors import BadInput
from hsm.store import read_yaml_strict

CONFIG_NAME = "hsm_config.yaml"
__all__ = ["STRATEGIES", "ProjectConfig", "find_config", "load_project", "parse_config"]
COMPUTE_DEFAULTS: dict[str, Any] = {key.name: key.default for key in COMPUTE_KEYS}

_LIMIT_NAMES = ("max_parallel_tasks", "max_parallel_jobs", "max_jobs")
# Sections read only for their keys' checks (each key is refused or means what hsm does anyway).
_CHECKED_ONLY = ("project", "experiment_tracking")


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
    # The checked `logging:` section (level, format, console_logging, ...).
    logging: Mapping[str, Any] = field(default_factory=dict)

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
            defaults: SourceDefaults, needs_host: bool = True) -> SourceConfig:
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
        if needs_host:
            raise BadInput(f"{where}.host: missing (an ssh source needs the host to reach, e.g. host: gpu1.example.org)")
        spec = {**spec, "host": name}
    options = {k: v for k, v in spec.items() if k not in {"type", *_LIMIT_NAMES, "enabled"}}
    return source_config(name, kind, limit, options, defaults, enabled, where=where)


def _checked_section(data: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    """Section `name` with its keys checked against their declaration, defaults filled in."""
    written = mapping(data.get(name), f"{where}: {name}")
    keys = section(name).keys
    check_known(written, known_names(keys), f"{where}: {name}")
    return read_keys(keys, written, f"{where}: {name}", sep=".")


def _source_defaults(data: Mapping[str, Any], where: str, compute: Mapping[str, Any]) -> SourceDefaults:
    """The `ssh:`, `hpc:` and `result_collection:` sections, each checked as a source of its kind would be."""
    ssh = mapping(data.get("ssh"), f"{where}: ssh")
    hpc = mapping(data.get("hpc"), f"{where}: hpc")
    # The original HSM's `config init` writes `system: local` on a machine without a scheduler.
    no_cluster = hpc.get("system") == "local"
    if no_cluster:
        hpc = {k: v for k, v in hpc.items() if k != "system"}
    if compute.get("ssh_compression") is not None and "compression" not in ssh:
        ssh = {**ssh, "compression": compute["ssh_compression"]}
    elif compute.get("rsync_compression") is not None and "compression" not in ssh:
        ssh = {**ssh, "compression": compute["rsync_compression"]}
    collection = _checked_section(data, "result_collection", where)
    cleanup = collection["cleanup_remote_on_success"] if mapping(
        data.get("result_collection"), where).get("cleanup_remote_on_success") is not None else None
    defaults = SourceDefaults(ssh=ssh, hpc=hpc, cleanup_remote_on_success=cleanup, no_cluster=no_cluster)
    # Checked here, once, so a bad value is refused before any sweep exists, not at submit;
    # a message names the key as written (an alias too).
    check_known(ssh, known_names(SSH_KEYS), f"{where}: ssh")
    check_known(hpc, known_names(HPC_KEYS), f"{where}: hpc")
    read_keys(SSH_KEYS, ssh, f"{where}: ssh", sep=".")
    check_hpc_values(read_keys(HPC_KEYS, hpc, f"{where}: hpc", sep="."), hpc, f"{where}: hpc", sep=".")
    return defaults


def _compute(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The thresholds, from `compute:` and the older `distributed:` (which `compute:` overrides).

    The older names `distributed.collect_interval` and `max_retries` count as the keys they name.
    """
    section_keys: dict[str, tuple[Key, ...]] = {"compute": (*COMPUTE_KEYS, *COMPUTE_LEGACY_KEYS),
                                                "distributed": (*COMPUTE_KEYS, *DISTRIBUTED_KEYS)}
    older = {"collect_interval": "result_collection_interval", "max_retries": "retry_attempts"}
    given: dict[str, tuple[str, str, Any]] = {}
    for section_name in ("distributed", "compute"):
        written = mapping(data.get(section_name), f"{where}: {section_name}")
        check_known(written, known_names(section_keys[section_name]), f"{where}: {section_name}")
        for key, value in written.items():
            name = older.get(key, key) if section_name == "distributed" else key
            if value is not None and (name in COMPUTE_DEFAULTS or section_name == "compute"):
                given[name] = (section_name, key, value)
    compute: dict[str, Any] = dict(COMPUTE_DEFAULTS)
    for declared in (*COMPUTE_KEYS, *COMPUTE_LEGACY_KEYS):
        compute.setdefault(declared.name, declared.default)
        if declared.name in given:
            section_name, written_as, value = given[declared.name]
            compute[declared.name] = declared.parse(value, f"{where}: {section_name}.{written_as}")
    return compute


def _sources(data: Mapping[str, Any], where: str, compute: Mapping[str, Any],
             defaults: SourceDefaults) -> dict[str, SourceConfig]:
    """The configured sources (`compute_sources:`, then the older `distributed.remotes:`), and `local`."""
    local_max = compute["max_concurrent_local"]
    remote_max = compute.get("max_concurrent_remote")
    sources: dict[str, SourceConfig] = {}
    configured = mapping(data.get("compute_sources"), f"{where}: compute_sources")
    for name, spec in configured.items():
        kind = mapping(spec, f"{where}: compute_sources.{name}").get("type")
        default_max = remote_max if kind == "ssh" and remote_max else local_max
        sources[str(name)] = _source(str(name), spec, f"{where}: compute_sources.{name}", None, default_max, defaults)
    distributed = mapping(data.get("distributed"), f"{where}: distributed")
    remotes = mapping(distributed.get("remotes"), f"{where}: distributed.remotes")
    for name, spec in remotes.items():
        if str(name) in sources:
            raise BadInput(f"{where}: distributed.remotes.{name}: also defined under compute_sources")
        source = _source(str(name), spec, f"{where}: distributed.remotes.{name}", "ssh", remote_max or 1, defaults,
                         needs_host=False)
        if distributed.get("enabled") is False:
            source = dataclasses.replace(source, enabled=False)
        sources[str(name)] = source
    if "local" not in sources:
        sources["local"] = source_config("local", "local", local_max, {}, defaults)
    return sources


def _project_root(value: str | None, base: Path, where: str) -> Path:
    """`paths.project_root` (relative to the config's directory), which must exist; else `base`."""
    if not value:
        return base.resolve()
    root = (base / os.path.expanduser(value)).resolve()
    if not root.is_dir():
        raise BadInput(f"{where}: paths.project_root: {root}: no such directory")
    return root


def _outputs_dir(paths: Mapping[str, Any], written: Mapping[str, Any], root: Path, where: str) -> Path:
    """`paths.outputs_dir` below the project root; it must be a directory when it exists."""
    outputs = root / os.path.expanduser(paths["outputs_dir"])
    if outputs.exists() and not outputs.is_dir():
        key = "output_dir" if written.get("output_dir") is not None else "outputs_dir"
        raise BadInput(f"{where}: paths.{key}: {outputs}: not a directory")
    return outputs


def _strategy(data: Mapping[str, Any], where: str) -> str:
    """The default strategy: `execution.strategy`, else the older `distributed.strategy`."""
    for name in ("execution", "distributed"):
        value = mapping(data.get(name), f"{where}: {name}").get("strategy")
        if value is not None:
            if value not in STRATEGIES:
                raise BadInput(f"{where}: {name}.strategy: unknown strategy {value!r} "
                               f"(expected one of {', '.join(STRATEGIES)})")
            return str(value)
    return "round_robin"


def parse_config(data: Any, path: Path | None, cwd: Path) -> ProjectConfig:
    """Build the effective configuration from the parsed file (None: no file)."""
    where = str(path) if path else CONFIG_NAME
    data = mapping(data, where)
    for key in data:
        if key not in SECTION_NAMES:
            raise BadInput(f"{where}: unknown section '{key}' (known: {', '.join(sorted(SECTION_NAMES))})")
    paths = _checked_section(data, "paths", where)
    base = cwd
    if path is not None:
        base = path.parent.parent if path.parent.name == "sweeps" else path.parent
    root = _project_root(paths["project_root"], base, where)
    outputs = _outputs_dir(paths, mapping(data.get("paths"), where), root, where)
    compute = _compute(data, where)
    defaults = _source_defaults(data, where, compute)
    sources = _sources(data, where, compute, defaults)
    execution = _checked_section(data, "execution", where)
    for name in _CHECKED_ONLY:
        _checked_section(data, name, where)
    return ProjectConfig(
        path=path,
        root=root,
        python_interpreter=paths["python_interpreter"] or sys.executable,
        training_script=paths["training_script"],
        conda_env=paths["conda_env"],
        outputs_dir=outputs,
        sources=sources,
        compute=compute,
        strategy=_strategy(data, where),
        arg_style=execution["arg_style"],
        hydra_run_dir=execution["hydra_run_dir"],
        raw=data,
        source_defaults=defaults,
        logging=_checked_section(data, "logging", where),
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
