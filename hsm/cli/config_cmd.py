"""`hsm config show|validate`: the effective project configuration, and checks of it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from hsm.cli.common import hsm_config_option, note, project_for, shown_path
from hsm.errors import BadInput
from hsm.store import yaml_text


@click.group()
def config() -> None:
    """Show or check the project configuration (hsm_config.yaml)."""


@config.command()
@hsm_config_option
def show(hsm_config: Path | None) -> None:
    """Print the effective configuration, defaults filled in.

    Example:

        hsm config show
    """
    project = project_for(hsm_config)
    data = {
        "config_file": str(project.path) if project.path else None,
        "paths": {
            "project_root": str(project.root),
            "python_interpreter": project.python_interpreter,
            "training_script": project.training_script,
            "conda_env": project.conda_env,
            "outputs_dir": str(project.outputs_dir),
        },
        "execution": {"strategy": project.strategy, "arg_style": project.arg_style, "hydra_run_dir": project.hydra_run_dir},
        "compute_sources": {
            s.name: {"type": s.type, "max_parallel_tasks": s.max_parallel_tasks, "enabled": s.enabled, **s.options}
            for s in project.sources.values()
        },
        "compute": project.compute,
    }
    click.echo(yaml_text(data), nl=False)


@config.command()
@hsm_config_option
def validate(hsm_config: Path | None) -> None:
    """Check the configuration: it parses, the training script and interpreter exist.

    Exits 2 and names the problem when something is wrong.

    Example:

        hsm config validate
    """
    project = project_for(hsm_config)
    where = shown_path(project.path) if project.path else "(no hsm_config.yaml: defaults)"
    note(f"✓ Config parses: {where}")
    script = project.script_path()
    if script is None:
        note("⚠ paths.training_script is not set: sweeps need a command: template")
    elif not script.is_file():
        raise BadInput(f"{where}: paths.training_script: {script}: no such file")
    else:
        note(f"✓ Training script: {shown_path(script)}")
    python = project.python_interpreter
    found = shutil.which(python) if os.sep not in python else (python if os.access(python, os.X_OK) else None)
    if not found:
        raise BadInput(f"{where}: paths.python_interpreter: {python}: not found or not executable")
    note(f"✓ Python interpreter: {found}")
    for s in project.sources.values():
        state = "enabled" if s.enabled else "disabled"
        note(f"✓ Source {s.name}: {s.type}, up to {s.max_parallel_tasks} tasks, {state}")
    click.echo("valid")
