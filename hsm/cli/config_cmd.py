"""`hsm config show|validate`: the effective project configuration, and checks of it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click

from hsm.cli.common import hsm_config_option, note, project_for, shown_path
from hsm.errors import BadInput, HsmError
from hsm.store import yaml_text


@click.group()
def config() -> None:
    """Show or check the project configuration (hsm_config.yaml).

    Example:

        hsm config validate && hsm config show
    """


@config.command()
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Output format.")
@hsm_config_option
def show(fmt: str, hsm_config: Path | None) -> None:
    """Print the effective configuration, defaults filled in.

    Example:

        hsm config show --format json | jq .compute
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
            s.name: {"type": s.type, "max_parallel_tasks": s.max_parallel, "enabled": s.enabled, **s.options}
            for s in project.sources.values()
        },
        "compute": project.compute,
        "logging": dict(project.logging),
    }
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=_plain))
    else:
        click.echo(yaml_text(data), nl=False)


def _plain(value: object) -> object:
    """A tuple or other value YAML reads back as a list or a string."""
    return list(value) if isinstance(value, (tuple, set)) else str(value)


@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
@hsm_config_option
def set_command(key: str, value: str, hsm_config: Path | None) -> None:
    """Set KEY (dotted: section.key) to VALUE in hsm_config.yaml.

    VALUE is read as YAML: 120 is a number, true a boolean, [0, 1] a list, anything else a
    string. The new file is checked as every command loads it before it replaces the old one,
    so a bad value or an unknown key is refused (exit 2) and the file is left as it was. Every
    other line, comments included, stays as written.

    Example:

        hsm config set compute.health_check_interval 120
    """
    from hsm.commands.config_changes import set_key

    project = project_for(hsm_config)
    change = set_key(project, key, value)
    if change.path is None:
        note(f"{change.key} is already {value}: nothing to change")
    else:
        before = "(not set)" if change.before is None else change.before
        note(f"✓ {change.key}: {before} → {change.after} ({shown_path(change.path)})")


@config.command()
@click.option("--check-sync", is_flag=True,
              help="Also compare each enabled SSH source's project copy with this one (changes nothing).")
@hsm_config_option
def validate(check_sync: bool, hsm_config: Path | None) -> None:
    """Check the configuration: it parses, the training script and interpreter exist.

    Exits 2 and names the problem when something is wrong. With --check-sync, exits 1
    when an SSH host does not answer or holds a copy that a run would refuse.

    Example:

        hsm config validate --check-sync
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
        note(f"✓ Source {s.name}: {s.type}, up to {s.max_parallel} tasks, {state}")
    if check_sync:
        _check_sync(project)
    click.echo("valid")


def _check_sync(project) -> None:
    """Compare every enabled SSH source's project copy with this one; HsmError when a run would stop."""
    from hsm.commands import sync as sync_cmd
    from hsm.sync import describe_diff

    sources = [c for c in project.sources.values() if c.enabled and c.type == "ssh"]
    if not sources:
        note("✓ No SSH sources: no project copies to check")
        return
    problems = []
    for source in sources:
        try:
            report = sync_cmd.check(project, source, push=False)
        except HsmError as exc:
            note(f"✗ {source.name}: {exc}")
            problems.append(source.name)
            continue
        if not report.diff:
            note(f"✓ {source.name}: the project copy at {report.host}:{report.remote_dir} matches ({report.diff.mode})")
        elif report.mode == "push":
            note(f"⚠ {source.name}: {describe_diff(report.host, report.remote_dir, report.diff)} "
                 "(sync: push, so hsm pushes this copy before the next submit)")
        else:
            what = describe_diff(report.host, report.remote_dir, report.diff)
            note(f"✗ {source.name}: {what} (sync: verify: a run is refused)")
            problems.append(source.name)
    if problems:
        raise HsmError(f"project copies not usable on: {', '.join(problems)}")
