"""`hsm init`: look at a project directory and write its first hsm_config.yaml and sweep config.

What is found here (the training script, the Python and its environment, a scheduler and its
partitions, the SSH hosts of ~/.ssh/config) becomes the defaults; `hsm.core.projectscan`
reads the script and renders the files. Nothing is written when one would be overwritten
without `force`, and nothing that would not load as every command loads it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from hsm import proc
from hsm.config import CONFIG_NAME, parse_config
from hsm.core.projectscan import (
    InitPlan,
    Param,
    ScriptScan,
    example_grid,
    hsm_config_text,
    hydra_params,
    scan_script,
    sweep_config_text,
)
from hsm.core.sweepconfig import parse_sweep_config
from hsm.errors import BadInput, HsmError, SourceError
from hsm.sources.detect import detect_scheduler
from hsm.store import atomic_write, parse_yaml

SWEEP_CONFIG = "sweeps/sweep_config.yaml"
README = "sweeps/README.md"
OUTPUTS = "sweeps/outputs"
WRITTEN = (CONFIG_NAME, SWEEP_CONFIG, README)
SINFO_TIMEOUT = 10.0
# A script bigger than this is generated code or data, not something to read for options.
_MAX_SCRIPT_BYTES = 2_000_000


@dataclass(frozen=True)
class Detected:
    """What `hsm init` found in the project directory and on this machine."""

    project_name: str
    script: str | None  # relative to the project directory
    script_kind: str | None  # hydra, argparse, plain
    python: str
    conda_env: str | None
    venv: str | None
    hpc_system: str | None  # slurm, pbs
    partitions: tuple[str, ...] = ()
    default_partition: str | None = None
    sinfo_error: str | None = None
    ssh_hosts: tuple[str, ...] = ()
    local_max: int = 4


@dataclass(frozen=True)
class Choices:
    """The values the files get: what was detected, or what the user answered."""

    project_name: str
    training_script: str | None
    python_interpreter: str
    conda_env: str | None
    hpc_system: str | None
    queue: str | None
    local_max: int

    @classmethod
    def of(cls, found: Detected) -> Choices:
        """The detected values, as they are."""
        return cls(found.project_name, found.script, found.python, found.conda_env, found.hpc_system,
                   found.default_partition, found.local_max)


def refuse_overwrite(root: Path, force: bool) -> None:
    """BadInput (one line) when a file `hsm init` writes exists and `force` is not given."""
    for name in ("sweeps", OUTPUTS):
        if (root / name).exists() and not (root / name).is_dir():
            raise BadInput(f"{root / name}: exists and is not a directory")
    # sweeps/hsm_config.yaml is not overwritten, but the new hsm_config.yaml would take its place.
    present = [name for name in (CONFIG_NAME, f"sweeps/{CONFIG_NAME}", *WRITTEN[1:]) if os.path.lexists(root / name)]
    if present and not force:
        raise BadInput(f"{', '.join(present)} already exist{'s' if len(present) == 1 else ''} in {root}: "
                       "nothing written (--force overwrites)")


def detect(root: Path) -> Detected:
    """Look at the project directory and this machine."""
    script, scan = find_script(root)
    venv = os.environ.get("VIRTUAL_ENV") or None
    conda_prefix = os.environ.get("CONDA_PREFIX") or None
    conda = os.environ.get("CONDA_DEFAULT_ENV") or (Path(conda_prefix).name if conda_prefix else None)
    system = detect_scheduler()
    found_partitions: list[str] = []
    default = error = None
    if system == "slurm":
        found_partitions, default, error = slurm_partitions()
    return Detected(
        project_name=root.name or "project",
        script=script,
        script_kind=scan.kind if scan else None,
        python=_interpreter(venv, conda_prefix),
        conda_env=conda,
        venv=venv,
        hpc_system=system,
        partitions=tuple(found_partitions),
        default_partition=default,
        sinfo_error=error,
        ssh_hosts=tuple(ssh_hosts(_read(Path(os.path.expanduser("~/.ssh/config"))) or "")),
        local_max=max(1, min(4, os.cpu_count() or 1)),
    )


def _interpreter(venv: str | None, conda_prefix: str | None) -> str:
    """The active venv's Python, else the active conda env's, else the one running hsm."""
    # The venv first: one activated inside a conda env comes first on PATH.
    for base in (venv, conda_prefix):
        for name in ("bin/python", "bin/python3"):
            if base and os.access(Path(base) / name, os.X_OK):
                return str(Path(base) / name)
    return sys.executable


def slurm_partitions() -> tuple[list[str], str | None, str | None]:
    """The partitions sinfo lists, the default one, and why there are none when sinfo failed."""
    try:
        result = proc.run(["sinfo", "-h", "-o", "%P"], timeout=SINFO_TIMEOUT)
    except SourceError as exc:
        return [], None, str(exc)
    if not result.ok:
        return [], None, result.describe()
    names, default = partitions(result.stdout)
    return names, default, None


def partitions(sinfo_text: str) -> tuple[list[str], str | None]:
    """The partitions `sinfo -h -o %P` lists, and its default (marked `*`; else the first)."""
    names: list[str] = []
    default = None
    for word in sinfo_text.split():
        name = word.rstrip("*")
        if name and name not in names:
            names.append(name)
        if word.endswith("*") and default is None:
            default = name
    return names, default or (names[0] if names else None)


def ssh_hosts(config_text: str) -> list[str]:
    """The `Host` names of an OpenSSH client config, without patterns (`*`, `?`, `!`)."""
    hosts: list[str] = []
    for line in config_text.splitlines():
        match = re.match(r"\s*host(?:\s*=\s*|\s+)(.*)", line, re.IGNORECASE)
        for name in (match.group(1).split("#")[0].split() if match else []):
            name = name.strip("\"'")
            if name and not any(c in name for c in "*?!") and name not in hosts:
                hosts.append(name)
    return hosts


def _read(path: Path) -> str | None:
    """A text file's content; None when it is missing, unreadable or too big to be a script."""
    try:
        if path.stat().st_size > _MAX_SCRIPT_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_script(path: Path) -> ScriptScan:
    """What a script's source says (a file that cannot be read is a plain script)."""
    text = _read(path)
    return scan_script(text) if text is not None else ScriptScan("plain")


def find_script(root: Path) -> tuple[str | None, ScriptScan | None]:
    """The training script: train.py, main.py, scripts/train*.py, else a Hydra app, else an argparse script."""
    for path in (root / "train.py", root / "main.py", *sorted((root / "scripts").glob("train*.py"))):
        if path.is_file():
            return path.relative_to(root).as_posix(), read_script(path)
    scans = [(p, read_script(p)) for p in sorted(root.glob("*.py"))
             if p.is_file() and p.name not in ("setup.py", "conftest.py")]
    for kind in ("hydra", "argparse"):
        for path, scan in scans:
            if scan.kind == kind:
                return path.name, scan
    return None, None


def script_params(root: Path, script: str, scan: ScriptScan) -> tuple[list[Param], str]:
    """The parameters a script takes, and where they were read."""
    if scan.kind == "argparse":
        return list(scan.params), f"the options of {script}"
    if scan.kind != "hydra" or not scan.config_name:
        return [], ""
    name = scan.config_name.removesuffix(".yaml").removesuffix(".yml")
    if scan.config_path and not scan.config_path.startswith("pkg://"):
        base = (root / script).parent / scan.config_path
        for path in (base / f"{name}.yaml", base / f"{name}.yml"):
            text = _read(path) if path.is_file() else None
            try:
                data = yaml.safe_load(text) if text is not None else None
            except yaml.YAMLError:
                data = None
            if isinstance(data, Mapping):
                return hydra_params(data), os.path.relpath(path, root)
    node = (scan.stores or {}).get(name)
    if node is not None:
        return hydra_params(node), f"the config {name} that {script} stores"
    return [], ""


def make_plan(root: Path, found: Detected, choices: Choices) -> InitPlan:
    """The files' content: the choices, and an example grid over the chosen script's parameters."""
    script = choices.training_script
    scan = read_script(root / script) if script else None
    params, params_from = script_params(root, script, scan) if script and scan else ([], "")
    grid = example_grid(params)
    in_grid = {p.name for p, _ in grid}
    same_system = choices.hpc_system == found.hpc_system
    return InitPlan(
        project_name=choices.project_name,
        training_script=script,
        script_kind=scan.kind if scan else "none",
        python_interpreter=choices.python_interpreter,
        conda_env=choices.conda_env,
        hpc_system=choices.hpc_system,
        queue=choices.queue if choices.hpc_system else None,
        partitions=found.partitions if same_system else (),
        local_max=choices.local_max,
        ssh_hosts=found.ssh_hosts,
        grid=tuple((p, tuple(values)) for p, values in grid),
        others=tuple(p for p in params if p.name not in in_grid),
        positionals=scan.positionals if scan else (),
        params_from=params_from,
    )


def write(root: Path, plan: InitPlan, force: bool) -> list[Path]:
    """Write the files (checked first: each loads as hsm reads it); the paths written."""
    texts = {root / CONFIG_NAME: hsm_config_text(plan), root / SWEEP_CONFIG: sweep_config_text(plan),
             root / README: readme_text(plan)}
    parse_config(parse_yaml(texts[root / CONFIG_NAME], CONFIG_NAME), root / CONFIG_NAME, root)
    sweep = parse_yaml(texts[root / SWEEP_CONFIG], SWEEP_CONFIG)
    if plan.grid:
        parse_sweep_config(sweep, SWEEP_CONFIG)
    # Again: a file may have appeared while the questions were answered.
    refuse_overwrite(root, force)
    outputs = root / OUTPUTS
    try:
        outputs.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise HsmError(f"{outputs}: exists and is not a directory") from None
    for path, text in texts.items():
        atomic_write(path, text)
    return [*texts, outputs]


def readme_text(plan: InitPlan) -> str:
    """sweeps/README.md: how to run a sweep, check on it, and where its results go."""
    hpc = f"    hsm run --sources hpc                # as {plan.hpc_system} jobs\n" if plan.hpc_system else ""
    return f"""# Sweeps of {plan.project_name}

Written by `hsm init`. Run these from the project directory (where `hsm_config.yaml` is).

- `sweep_config.yaml`: what to sweep, a grid of parameter values (see hsm's docs/sweep_config.md).
- `outputs/`: one directory per sweep, `outputs/<sweep_id>/`.

## Run a sweep

    hsm run --dry-run                    # the tasks it would run, and where
    hsm run --sources local:{plan.local_max:<13}# run them here, {plan.local_max} at a time
{hpc}
## Check on it

    hsm status                           # tasks per state and per source
    hsm monitor watch                    # the live view, from another terminal
    hsm run --resume <sweep_id>          # drive it again after Ctrl-C

## Results

`outputs/<sweep_id>/tasks/task_NNN/` holds each task's `params.yaml`, `status.yaml`,
`stdout.log`, `stderr.log` and `results/`; a task that writes `$HSM_TASK_DIR/metrics.json`
gets its metrics into `outputs/<sweep_id>/reports/metrics.csv` and the HTML reports there.

    hsm aggregate <sweep_id> --metric accuracy --mode max   # rank the tasks by a metric
    hsm export <sweep_id> --format csv                      # one row per task
"""
