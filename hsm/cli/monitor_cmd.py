"""`hsm monitor`: views of a running project that probe and show, and change nothing.

Each view is a command of the `monitor` group. `watch`, `recent` and `errors` only read a
sweep's files (never its lock), so they can run beside `hsm run` or a cron loop; `health`
and `source` also make one health call per source they show.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hsm.cli import monitor_render as mr
from hsm.cli.common import Seconds, hsm_config_option, note, open_sweep, project_for, shown_path
from hsm.cli.completion import complete_source_names, complete_sweep_ids
from hsm.cli.render import health_table
from hsm.commands import monitor as monitor_logic
from hsm.commands import sources as sources_logic
from hsm.config import ProjectConfig
from hsm.sweep import Sweep

DEFAULT_REFRESH = 30.0


class Days(click.FloatRange):
    """A finite number of days above 0 (FloatRange alone takes nan and inf)."""

    name = "number of days"

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of days", param, ctx)
        return number


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
    func = click.option("--refresh", "--interval", "refresh", type=Seconds(min=0.1), default=DEFAULT_REFRESH,
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
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
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


# --- watch ----------------------------------------------------------------------------------------

WATCH_REFRESH = 5.0
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


def live(draw: Callable[[int], str], refresh: float, once: bool) -> None:
    """Print `draw(columns)` once, or every `refresh` seconds until Ctrl-C: redrawn in place on a
    terminal, as frames separated by a blank line (and no escape code) anywhere else."""
    if once:
        click.echo(draw(mr.screen_size()[0]))
        return
    tty = sys.stdout.isatty()
    first = True
    try:
        if tty:
            sys.stdout.write(HIDE_CURSOR)
        while True:
            columns, lines = mr.screen_size()
            text = draw(columns)
            if tty:
                sys.stdout.write(mr.in_place(text, first, columns, lines))
                sys.stdout.flush()
            else:
                click.echo(text if first else "\n" + text)
            first = False
            time.sleep(refresh)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: not an error
    finally:
        if tty:
            sys.stdout.write(SHOW_CURSOR + "\n")
            sys.stdout.flush()


def all_unfinished_view(project: ProjectConfig, refresh: float | None) -> Callable[[int], str]:
    """Every unfinished sweep of the project, one block each; a sweep shown once stays until the watch ends."""
    seen: list[Path] = []

    def draw(width: int) -> str:
        sweeps = monitor_logic.watched_sweeps(project, seen)
        if not sweeps:
            return "No unfinished sweeps" + (f"\nLive updates every {refresh:g}s - Ctrl-C to exit" if refresh else "")
        return "\n\n".join(mr.render_watch(monitor_logic.watch_data(s), width, refresh if n == 0 else None)
                            for n, s in enumerate(sweeps))

    return draw


@monitor.command("watch")
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@click.option("--refresh", "--interval", "refresh", type=Seconds(min=0.1), default=WATCH_REFRESH,
              show_default=True, help="Seconds between two redraws.")
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@hsm_config_option
def watch(sweep: str | None, refresh: float, once: bool, hsm_config: Path | None) -> None:
    """Watch a sweep live: progress bar, ETA, each source's load and health, recent activity.

    Without SWEEP, every unfinished sweep of the project, one block each. On a terminal the
    view is redrawn in place every --refresh seconds until Ctrl-C; piped, each frame is
    printed after a blank line, as plain text. Only reads the sweep's files: no lock, no
    call to any source. The Health column is what the sweep last recorded (`hsm monitor
    health` probes now).

    Example:

        hsm monitor watch sweep_20261122_063133 --refresh 2
    """
    shown = None if once else refresh
    if sweep is not None:
        s, _ = open_sweep(sweep, hsm_config)
        live(lambda width: mr.watch_frame(s, width, shown), refresh, once)
    else:
        live(all_unfinished_view(project_for(hsm_config), shown), refresh, once)


@monitor.command("recent")
@click.option("--days", type=Days(), metavar="DAYS", default=7, show_default=True,
              help="Sweeps created in the last N days.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="At most N sweeps.")
@hsm_config_option
def recent(days: float, limit: int, hsm_config: Path | None) -> None:
    """List the project's recent sweeps, newest first: tasks, outcomes, status and sources.

    Status is Running, Finished, or Stalled (tasks left but none active and nothing recorded
    for a while, or no enabled source left). Only reads the sweeps' files.

    Example:

        hsm monitor recent --days 30 --limit 5
    """
    project = project_for(hsm_config)
    click.echo(mr.render_recent(monitor_logic.recent_sweeps(project, days, limit), days))


@monitor.command("source")
@click.argument("name", shell_complete=complete_source_names)
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@hsm_config_option
def source(name: str, sweep: str | None, hsm_config: Path | None) -> None:
    """Show one source's performance in a sweep, and its health now.

    From the sweep (default: the latest that used NAME): attempts submitted there (retried
    and moved ones too), completed, failed, success rate, mean task duration, slots in use;
    from one health probe now: CPU load, memory, the call's round trip; and the sweep's
    last recorded health check.

    Example:

        hsm monitor source server1 sweep_20261122_063133
    """
    if sweep is not None:
        s, project = open_sweep(sweep, hsm_config)
        click.echo(mr.render_source(monitor_logic.source_view(project, name, s)))
    else:
        click.echo(mr.render_source(monitor_logic.source_view(project_for(hsm_config), name)))


@monitor.command("errors")
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@click.option("--source", "source_name", metavar="NAME", shell_complete=complete_source_names,
              help="Only the failures on this source.")
@click.option("--tasks", metavar="LIST", help="Only these tasks, each in detail: task_023,task_045 or 7,9,12:15.")
@click.option("--export", "export", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the analysis to FILE: JSON when it ends in .json, else YAML.")
@hsm_config_option
def errors(sweep: str | None, source_name: str | None, tasks: str | None, export: Path | None,
           hsm_config: Path | None) -> None:
    """Analyse a sweep's failures: error categories, failed tasks by source, what to do.

    Each failed attempt is put in a category (CUDA out of memory, Import error, Walltime
    exceeded, ...) from its reason, exit code and the end of its stderr. --tasks shows each
    named task's failures in full, stderr included. Only reads the sweep's files (and
    writes FILE with --export).

    Example:

        hsm monitor errors sweep_20261122_063133 --source server1 --export errors_analysis.yaml
    """
    s, _ = open_sweep(sweep, hsm_config)
    report = monitor_logic.error_report(s, source_name, tasks)
    if export is not None:
        monitor_logic.export_report(report, export)
    click.echo(mr.render_errors(report))
    if export is not None:
        note(f"Error analysis written to {shown_path(export)}")


COMMANDS = (monitor,)
