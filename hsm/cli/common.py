"""Options and helpers shared by the commands."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Callable

import click

from hsm.cli.completion import complete_sweep_ids
from hsm.config import ProjectConfig, load_project
from hsm.core.settings import SourceConfig
from hsm.core.sourcespec import resolve
from hsm.sources.detect import scheduler_of
from hsm.sweep import Sweep, resolve_sweep


class Seconds(click.FloatRange):
    """A finite number of seconds from `min` up (FloatRange alone takes nan and inf)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


def hsm_config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--hsm-config PATH`: use this project config instead of looking for one."""
    return click.option(
        "--hsm-config",
        "hsm_config",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Project config to use (default: hsm_config.yaml here, in sweeps/, or in a parent).",
    )(func)


def sweep_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    """SWEEP: a sweep id or directory; read from standard input when left out."""
    return click.argument("sweep", required=False, shell_complete=complete_sweep_ids)(func)


def project_for(hsm_config: Path | None) -> ProjectConfig:
    """The project config named by --hsm-config, or the one found from here; its `logging:` applied."""
    project = load_project(hsm_config)
    apply_logging(project)
    return project


def apply_logging(project: ProjectConfig) -> None:
    """Set hsm's standard-error logging from the config's `logging:` section.

    -v, -vv and HSM_LOG_LEVEL win: they were asked for on this command line.
    """
    settings = project.logging
    if not settings:
        return
    root = logging.getLogger()
    if not os.environ.get("HSM_LOG_LEVEL") and root.level == logging.WARNING:
        level = settings["level"] if settings["console_logging"] else "ERROR"
        root.setLevel(level)
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter(settings["format"]))


def resolve_sources(project: ProjectConfig, spec: str) -> list[SourceConfig]:
    """The sources a `--sources` spec names, with their settings checked."""
    return resolve(spec, project.sources, scheduler_of(project), project.source_defaults)



def open_sweep(ref: str | None, hsm_config: Path | None) -> tuple[Sweep, ProjectConfig]:
    """Resolve SWEEP and the project it belongs to.

    A sweep remembers the config it was expanded with, so a step given a sweep directory
    works from any working directory.
    """
    here = project_for(hsm_config)
    sweep = resolve_sweep(ref, here.outputs_dir)
    if hsm_config is None:
        recorded = sweep.metadata.get("hsm_config")
        if recorded and Path(recorded).is_file() and Path(recorded).resolve() != (here.path or Path()).resolve():
            return sweep, load_project(Path(recorded))
    return sweep, here


def echo_path(sweep: Sweep) -> None:
    """Print the sweep directory, the one thing a step puts on standard output."""
    click.echo(str(sweep.root))


def note(message: str) -> None:
    """A line for the user on standard error."""
    click.echo(message, err=True)


def shown_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
