"""The porcelain over the steps: status, cancel, complete, sync, and the driver `hsm run` shares (hsm.cli.run_cmd)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hsm import sync
from hsm.cli import status_cmd
from hsm.cli.common import Seconds, hsm_config_option, note, open_sweep, project_for, resolve_sources, shown_path
from hsm.cli.completion import complete_source_specs, complete_sweep_ids
from hsm.cli.live import LiveView
from hsm.cli.render import duration_text, progress_line, summary_table
from hsm.cli.steps import (
    no_verify_sync_option,
    report_poll,
    report_submit,
    sources_option,
    with_sync_check,
)
from hsm.commands import aggregate as aggregate_cmd
from hsm.commands import assign as assign_cmd
from hsm.commands import cancel as cancel_cmd
from hsm.commands import complete as complete_cmd
from hsm.commands import failover
from hsm.commands import run as run_cmd
from hsm.commands import sync as sync_cmd
from hsm.commands.poll import PollSummary
from hsm.core.settings import SourceConfig, from_index
from hsm.errors import BadInput, HsmError
from hsm.sweep import Sweep


def _sources_for(sweep: Sweep, project, spec: str | None, parallel_limit: int | None) -> list[SourceConfig]:
    """The sources named by SPEC, else the sweep's own enabled ones, else local."""
    if spec is not None:
        return assign_cmd.cap_sources(resolve_sources(project, spec), parallel_limit)
    known = sweep.read_index().get("sources", {})
    own = [from_index(n, e, project.source_defaults) for n, e in known.items() if not e.get("disabled")]
    return assign_cmd.cap_sources(own or resolve_sources(project, "local"), parallel_limit)


def _check_sync(project, sources: list[SourceConfig], allow_degraded: bool = False) -> dict[str, str]:
    """Push and verify the SSH hosts' project copies before anything starts (unless --no-verify-sync).

    A host that does not answer stops the run, unless `allow_degraded`: then it is returned
    (name -> why) and the run starts on the others.
    """
    down: dict[str, str] = {}
    if not project.verify_sync:
        return down
    for report in sync_cmd.preflight(project, sources, down=down.__setitem__):
        note(f"✓ Project copy on {report.name} matches ({report.diff.mode}): {report.host}:{report.remote_dir}")
    for name, why in down.items():
        if not allow_degraded:
            raise HsmError(f"source '{name}' is not usable: {why}; leave it out of --sources, "
                           "or add --allow-degraded to start on the others")
        note(f"⚠ {name} is not usable: the run starts without it and takes it in if it recovers ({why})")
    return down


def _start_degraded(sweep: Sweep, project, down: dict[str, str]) -> None:
    """Sources down at the start are disabled for the sweep by the health policy: they may recover."""
    for name, why in down.items():
        if name in sweep.read_index().get("sources", {}):
            failover.disable(sweep, project, name, f"Disabling source '{name}': it did not answer at start: {why}",
                             by="health")


def _drive_and_report(sweep: Sweep, project, poll_interval: float, sources: list[SourceConfig] | None = None,
                      strategy: str | None = None, no_progress: bool = False) -> None:
    """Drive the sweep to the end with progress on stderr; exit 1 when any task failed."""
    live = LiveView(sweep) if not no_progress and sys.stderr.isatty() else None
    started = time.monotonic()
    try:
        final = run_cmd.drive(
            sweep,
            project,
            poll_interval=poll_interval,
            sources=[s.name for s in sources] if sources else None,
            strategy=strategy,
            **(_live_reporters(live) if live else _line_reporters(sweep)),
        )
        if live:
            live.draw(force=True)
    except run_cmd.NoSourceLeft:
        _write_reports(sweep)
        raise
    except KeyboardInterrupt:
        note("")
        note("Interrupted: the driver stopped; tasks already submitted keep running.")
        note(f"  Resume:  hsm run --resume {sweep.id}")
        note(f"  Cancel:  hsm cancel {sweep.id}")
        note(f"  Status:  hsm status {sweep.id}")
        raise click.exceptions.Exit(130) from None
    counts = final["counts"]
    note("")
    if counts["failed"] or counts["cancelled"]:
        note(f"✗ Sweep finished with {counts['failed']} failed and {counts['cancelled']} cancelled of {final['total']} tasks "
             f"in {duration_text(time.monotonic() - started)}")
    else:
        note(f"✓ Sweep completed successfully: {final['total']} tasks in {duration_text(time.monotonic() - started)}")
    note(summary_table(final))
    _write_reports(sweep)
    note(f"Results: {shown_path(sweep.root)}")
    click.echo(str(sweep.root))
    if counts["failed"] or counts["cancelled"]:
        raise click.exceptions.Exit(1)


def _line_reporters(sweep: Sweep) -> dict[str, Callable[[Any], None]]:
    """`hsm run`'s callbacks when it prints lines: each delivery, failure and event, progress on change."""
    last: list[tuple[int, ...]] = [()]

    def progress(summary: dict) -> None:
        counts = summary["counts"]
        key = (counts["completed"], counts["failed"], counts["cancelled"])
        if key != last[0]:
            note(progress_line(counts, summary["total"]))
            last[0] = key

    return {"on_submit": lambda r: report_submit(sweep, r), "on_poll": report_poll, "on_progress": progress,
            "on_event": _show_event}


def _live_reporters(live: LiveView) -> dict[str, Callable[[Any], None]]:
    """`hsm run`'s callbacks on a terminal: the live view, with failover events and error patterns under it."""
    def polled(result: PollSummary) -> None:
        for line in result.announced:
            live.note(line)
        live.draw()

    def event(line: str) -> None:
        if "Health check passed" not in line:
            live.note(line)

    return {"on_submit": lambda r: live.draw(), "on_poll": polled, "on_progress": lambda s: live.draw(),
            "on_event": event}


def _write_reports(sweep: Sweep) -> None:
    """The aggregated log and the reports, at the end of every run (a failure here fails no run)."""
    try:
        written = aggregate_cmd.aggregate(sweep)
    except (HsmError, OSError) as exc:
        note(f"⚠ Reports not written: {exc}")
        return
    note(f"📋 Aggregated sweep logs written to: {shown_path(sweep.paths.log('sweep_aggregated.log'))}")
    html = [p.name for p in written if p.suffix == ".html"]
    if html:
        note(f"📊 Reports: {shown_path(sweep.paths.reports)}/ ({', '.join(html)})")


def _show_event(line: str) -> None:
    """Failover lines of health_status.log, as they are written (not the passed checks)."""
    if "Health check passed" not in line:
        note(line)


no_progress_option = click.option(
    "--no-progress", is_flag=True,
    help="Plain progress lines on a terminal too (the live view of `hsm monitor watch` is the default there).")

allow_degraded_option = click.option(
    "--allow-degraded", is_flag=True,
    help="Start even when a source does not answer: run on the others, take it in if it recovers.")


def short_names(**shorts: str) -> Callable[[Any], Any]:
    """Give options declared elsewhere a short name, as the original HSM had them:
    `@short_names(sources_spec="-s")` above `@sources_option()` makes `-s, --sources`."""

    def decorate(func: Any) -> Any:
        for param in getattr(func, "__click_params__", []):
            if param.name in shorts and shorts[param.name] not in param.opts:
                param.opts.insert(0, shorts[param.name])
        return func

    return decorate


@click.command()
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@hsm_config_option
def cancel(sweep: str | None, hsm_config: Path | None) -> None:
    """Stop every task of a sweep on every source; unstarted tasks never start.

    Example:

        hsm cancel sweep_20261122_063133
    """
    s, project = open_sweep(sweep, hsm_config)
    result = cancel_cmd.cancel(s, project)
    note(f"Cancelled {len(result.cancelled)} tasks of {s.id}")
    for name, message in result.errors.items():
        note(f"✗ cancel on {name} failed: {message}")
    click.echo(str(s.root))
    if result.errors:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@short_names(sources_spec="-s", parallel_limit="-p")
@sources_option(required=False)
@click.option("--retry-failed", is_flag=True, help="Run failed tasks again too (as new attempts).")
@click.option("--tasks", "tasks", metavar="RANGE", help="Only these tasks: task_050:task_100, or 7,9,12:15.")
@click.option("-d", "--dry-run", is_flag=True, help="List the tasks that would run; change nothing.")
@click.option("--poll-interval", type=Seconds(min=0.05), default=10.0, show_default=True,
              help="Longest wait in seconds between two polls.")
@allow_degraded_option
@no_progress_option
@no_verify_sync_option
@hsm_config_option
def complete(sweep: str | None, sources_spec: str | None, strategy: str | None, seed: int | None,
             parallel_limit: int | None, retry_failed: bool, tasks: str | None, dry_run: bool,
             poll_interval: float, allow_degraded: bool, no_progress: bool, no_verify_sync: bool,
             hsm_config: Path | None) -> None:
    """Finish a sweep: run its missing tasks (and failed ones with --retry-failed), on any sources.

    Missing tasks are those not completed and not running: pending, assigned or cancelled.
    They may go to other sources than the ones the sweep started on.

    Example:

        hsm complete sweep_20261122_063133 --sources "local,ssh:server2" --retry-failed
    """
    s, project = open_sweep(sweep, hsm_config)
    if dry_run:
        index = s.read_index()
        chosen = complete_cmd.select_tasks(tasks, list(index["tasks"]))
        missing = complete_cmd.missing_tasks(index, retry_failed, chosen)
        note(f"{len(missing)} tasks would run: " + (", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")))
        return
    project = with_sync_check(project, no_verify_sync)
    sources = _sources_for(s, project, sources_spec, parallel_limit)
    down = _check_sync(project, sources, allow_degraded)
    reopened = complete_cmd.reopen(s, retry_failed, tasks)
    note(f"Completing {s.id}: {len(reopened)} tasks to run on {', '.join(x.name for x in sources)}")
    assign_cmd.assign(s, sources, strategy or project.strategy, seed)
    _start_degraded(s, project, down)
    _drive_and_report(s, project, poll_interval, sources, strategy, no_progress)


@click.command("sync")
@click.option("--target", "target", required=True, metavar="SPEC", shell_complete=complete_source_specs,
              help="The SSH source(s): ssh:NAME, NAME, a comma-separated list, or 'all'.")
@click.option("--force", is_flag=True, help="Push even to a source with `sync: verify`, and do not fail on what still differs.")
@hsm_config_option
def sync_command(target: str, force: bool, hsm_config: Path | None) -> None:
    """Push the project to SSH hosts and check their copies.

    A source with `sync: push` (the default) gets the project copied with rsync; one with
    `sync: verify` is only checked unless --force. Exits 1 when a copy still differs,
    saying what differs.

    Example:

        hsm sync --target ssh:server1
    """
    project = project_for(hsm_config)
    chosen = resolve_sources(project, target)
    others = [s.name for s in chosen if s.type != "ssh"]
    if others and target.strip() != "all":
        raise BadInput(f"--target: {', '.join(others)}: not an SSH source (only SSH hosts hold a project copy)")
    if not sync_cmd.ssh_sources(chosen):
        raise BadInput(f"--target: '{target}' names no SSH source")
    differ = []
    for report in sync_cmd.sync_sources(project, chosen, force):
        verb = "pushed to" if report.pushed else "checked at"
        if report.diff:
            what = sync.describe_diff(report.host, report.remote_dir, report.diff)
            note(f"✗ {report.name}: {verb} {report.host}:{report.remote_dir}; {what}")
            differ.append(report)
        else:
            note(f"✓ {report.name}: {verb} {report.host}:{report.remote_dir}; the copy matches ({report.diff.mode})")
    if differ and not force:
        raise HsmError(f"{len(differ)} of the project copies differ: " + ", ".join(r.name for r in differ))


COMMANDS = (status_cmd.status, cancel, complete, sync_command)
