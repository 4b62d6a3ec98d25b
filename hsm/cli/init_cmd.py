"""`hsm init` (also `hsm config init`): set a project up for hsm from what is found in it."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

from hsm.cli.common import note, shown_path
from hsm.commands import init as init_cmd
from hsm.commands.init import Choices, Detected
from hsm.core.projectscan import InitPlan
from hsm.errors import BadInput

_HELP = """Set up a project: write hsm_config.yaml and an example sweeps/sweep_config.yaml.

Looks at the project directory (the working directory, or --dir) and this machine: the
training script (train.py, main.py, scripts/train*.py, else a @hydra.main or argparse
script; read, never run), the Python of the active venv or conda env, Slurm or PBS and
its partitions, and the hosts of ~/.ssh/config. Writes hsm_config.yaml (commented),
sweeps/sweep_config.yaml (a grid over two of the script's parameters), sweeps/README.md
and sweeps/outputs/, and prints the files written on standard output.

With --interactive, asks for each value (project name, training script, Python, conda env,
HPC system, its default queue when there is one, parallel local tasks), the detected one
as default; answers may come on standard input, one per line. An existing hsm_config.yaml,
sweep config or README is never overwritten without --force: exits 2, writing nothing.

Example:

    {example}
"""


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--dir, --interactive and --force, shared by `hsm init` and `hsm config init`."""
    for option in reversed((
        click.option("--dir", "directory", type=click.Path(exists=True, file_okay=False, path_type=Path),
                     default=".", show_default=True, help="The project directory."),
        click.option("--interactive", "-i", is_flag=True, help="Ask for each value, the detected one as default."),
        click.option("--force", is_flag=True, help="Overwrite hsm_config.yaml, sweeps/sweep_config.yaml and sweeps/README.md."),
    )):
        func = option(func)
    return func


def _run(directory: Path, interactive: bool, force: bool) -> None:
    """Detect, show, ask (with --interactive), write, and say what to run next."""
    root = directory.resolve()
    # Before anything is shown or asked: a refusal is one line and leaves everything as it was.
    init_cmd.refuse_overwrite(root, force)
    found = init_cmd.detect(root)
    note("Detected Project Information")
    note(detected_table(found))
    choices = Choices.of(found)
    if interactive:
        try:
            choices = _ask(root, found, choices)
        except click.Abort:
            # click says Abort for an end of input too: piped answers that ran out are bad input.
            if sys.stdin is None or sys.stdin.isatty():
                raise
            note("")
            raise BadInput("--interactive: standard input ended before every question was answered; "
                           "nothing written") from None
    plan = init_cmd.make_plan(root, found, choices)
    written = init_cmd.write(root, plan, force)
    for path in written:
        click.echo(shown_path(path) + ("/" if path.is_dir() else ""))
    _report(root, plan)


@click.command("init", help=_HELP.format(example="hsm init --interactive"))
@_options
def init(directory: Path, interactive: bool, force: bool) -> None:
    _run(directory, interactive, force)


@click.command("init", help=_HELP.format(example="hsm config init --dir ~/my_project"))
@_options
def config_init(directory: Path, interactive: bool, force: bool) -> None:
    _run(directory, interactive, force)


def detected_table(found: Detected) -> str:
    """The table of what was found: component, status, path or value."""
    if found.hpc_system == "slurm":
        hpc_value = (f"sinfo failed: {found.sinfo_error}" if found.sinfo_error else
                     "partitions: " + (", ".join(p + ("*" if p == found.default_partition else "")
                                                 for p in found.partitions) or "none listed"))
    else:
        hpc_value = "qsub on PATH" if found.hpc_system == "pbs" else "no sbatch or qsub on PATH"
    rows = [
        ("Project Name", "✓", found.project_name),
        ("Training Script", f"✓ {found.script_kind}" if found.script else "✗ not found",
         found.script or "none of train.py, main.py, scripts/train*.py, a Hydra or argparse script"),
        ("Python Interpreter", "✓", found.python),
        ("Conda Environment", "✓ active" if found.conda_env else "– not active", found.conda_env or ""),
        ("Virtual Environment", "✓ active" if found.venv else "– not active", found.venv or ""),
        ("HPC System", f"✓ {found.hpc_system}" if found.hpc_system else "– none", hpc_value),
        ("SSH Hosts", f"✓ {len(found.ssh_hosts)} found" if found.ssh_hosts else "– none",
         ", ".join(found.ssh_hosts) or "no hosts in ~/.ssh/config"),
    ]
    return tabulate(rows, headers=["Component", "Status", "Path/Value"], tablefmt="simple_outline")


def _prompt(text: str, default: Any, **kwargs: Any) -> Any:
    """click.prompt on standard error, the default shown unless it is empty."""
    answer = click.prompt(text, default=default, show_default=default not in ("", None), err=True, **kwargs)
    if sys.stdin is not None and not sys.stdin.isatty():
        note(str(answer))  # a piped answer is not echoed: say it, so the transcript reads as a dialogue
    return answer


def _ask(root: Path, found: Detected, c: Choices) -> Choices:
    """Ask for each value, the detected one as default (an empty answer takes it)."""
    name = _prompt("Project name", c.project_name)
    script = _prompt("Training script (empty: none)", c.training_script or "", value_proc=_script_in(root))
    python = _prompt("Python interpreter", c.python_interpreter, value_proc=_executable_in(root))
    conda = _prompt("Conda environment (empty: none)", c.conda_env or "")
    system = _prompt("HPC system", c.hpc_system or "none", type=click.Choice(["slurm", "pbs", "none"]))
    queue = ""
    if system != "none":
        known = f" ({', '.join(found.partitions)})" if found.partitions and system == found.hpc_system else ""
        queue = _prompt(f"Default queue/partition{known} (empty: the scheduler's)",
                        (c.queue or "") if system == found.hpc_system else "")
    local_max = _prompt("Max parallel local tasks", c.local_max, type=click.IntRange(min=1))
    conda = conda.strip()
    return Choices(project_name=name.strip() or c.project_name, training_script=script or None, python_interpreter=python,
                   conda_env=conda if conda not in ("", "none") else None,
                   hpc_system=None if system == "none" else system, queue=queue.strip() or None, local_max=local_max)


def _script_in(root: Path) -> Callable[[str], str]:
    """The check of a training script answer: a file, given relative to the project (empty: none)."""
    def check(value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        path = Path(os.path.expanduser(value))
        full = path if path.is_absolute() else root / path
        if not full.is_file():
            raise click.BadParameter(f"{value}: no such file in {root}")
        relative = os.path.relpath(os.path.abspath(full), root)
        return Path(relative).as_posix() if not relative.startswith("..") else os.path.abspath(full)
    return check


def _executable_in(root: Path) -> Callable[[str], str]:
    """The check of an interpreter answer: a program on PATH, or an executable file."""
    def check(value: str) -> str:
        value = value.strip()
        path = Path(os.path.expanduser(value))
        if os.sep not in value:
            found = shutil.which(value) is not None
        else:
            found = os.access(path if path.is_absolute() else root / path, os.X_OK)
        if not value or not found:
            raise click.BadParameter(f"{value or '(empty)'}: not found or not executable")
        return value
    return check


def _report(root: Path, plan: InitPlan) -> None:
    """What the sweep config holds, and the commands to run next."""
    if plan.grid:
        names = " × ".join(p.name for p, _ in plan.grid)
        note(f"✓ Example sweep: {names}, {plan.tasks} tasks (values from {plan.params_from})")
    else:
        where = plan.training_script or "no training script"
        note(f"⚠ No parameters found ({where}): the grid in {init_cmd.SWEEP_CONFIG} is an example, "
             "commented out; write yours before running")
    here = "" if root == Path.cwd().resolve() else f"cd {shown_path(root)} && "
    note("Next:")
    note(f"  {here}hsm config validate")
    note(f"  {here}hsm run --sources local:{plan.local_max}")
    if plan.hpc_system:
        note(f"  {here}hsm run --sources hpc    # as {plan.hpc_system} jobs")


COMMANDS = (init,)
