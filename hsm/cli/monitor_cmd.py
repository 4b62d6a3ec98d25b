"""`hsm monitor`: views of a running project that probe and show, and change nothing.

Each view is a command of the `monitor` group; `watch` redraws one until Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from hsm.cli.common import hsm_config_option, open_sweep, project_for
from hsm.cli.render import health_table
from hsm.commands import sources as sources_logic
from hsm.config import ProjectConfig
from hsm.sweep import Sweep

DEFAULT_REFRESH = 30.0


def keep_drawing(draw: Callable[[], str], refresh: float) -> None:
    """Print `draw()` every `refresh` seconds until Ctrl-C (on a terminal, in place of the last one)."""
    try:
        while True:
            text = draw()
            if sys.stdout.isatty():
                click.clear()
            else:
                click.echo("")
            click.echo(text)
            click.echo(f"Every {refresh:g}s; Ctrl-C to stop.", err=True)
            time.sleep(refresh)
    except KeyboardInterrupt:
        click.echo("", err=True)  # Ctrl-C is how a watch ends: not an error


def watch_options(func: Callable[..., object]) -> Callable[..., object]:
    """`--watch`, `--refresh S` and `--once`, shared by the monitor's views."""
    func = click.option("--once", is_flag=True, help="Show it once and exit (the default without --watch).")(func)
    func = click.option("--refresh", "--interval", "refresh", type=click.FloatRange(min=0.1), default=DEFAULT_REFRESH,
                        show_default=True, help="Seconds between two redraws with --watch.")(func)
    return click.option("--watch", is_flag=True, help="Redraw every --refresh seconds until Ctrl-C.")(func)


def show(draw: Callable[[], str], watching: bool, once: bool, refresh: float) -> None:
    """Draw once, or keep redrawing with --watch (--once wins)."""
    if watching and not once:
        keep_drawing(draw, refresh)
    else:
        click.echo(draw())


def health_view(project: ProjectConfig, sweep: Sweep | None, names: list[str] | None = None) -> Callable[[], str]:
    """A drawing of every source's health; without a given sweep, the latest running one at each draw."""
    def draw() -> str:
        current = sweep or sources_logic.latest_unfinished(project)
        rows = sources_logic.health_report(project, current, names)
        head = f"Sweep {current.id}\n" if current else ""
        return head + health_table(rows)

    return draw


@click.group("monitor")
def monitor() -> None:
    """Watch a project's sources and sweeps.

    Example:

        hsm monitor health --watch --refresh 60
    """


@monitor.command("health")
@click.argument("sweep", required=False)
@watch_options
@hsm_config_option
def health(sweep: str | None, watch: bool, refresh: float, once: bool, hsm_config: Path | None) -> None:
    """Probe every source and show its health: Healthy, Degraded, Unhealthy or Disabled.

    With a sweep (default: the most recent one with unfinished tasks) the details show the
    slots it uses on each source (`2/4 tasks`) and why a source is disabled. One health call
    per source and draw; nothing is recorded (`hsm health SWEEP` records and acts).

    Example:

        hsm monitor health --watch --refresh 30
    """
    if sweep is not None:
        s, project = open_sweep(sweep, hsm_config)
        draw = health_view(project, s)
    else:
        draw = health_view(project_for(hsm_config), None)
    show(draw, watch, once, refresh)


COMMANDS = (monitor,)
