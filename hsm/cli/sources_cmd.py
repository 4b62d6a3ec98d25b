"""`hsm sources list|status|test|enable|disable|add|remove|rebalance`, and `hsm test SOURCE`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from hsm.cli.common import hsm_config_option, note, open_sweep, project_for, shown_path
from hsm.cli.completion import complete_one_source, complete_source_names, complete_sweep_ids
from hsm.cli.render import sources_status_table, sources_table
from hsm.commands import source_changes, source_probe
from hsm.commands import sources as sources_logic
from hsm.config import ProjectConfig
from hsm.core.settings import SOURCE_TYPES, SYSTEMS
from hsm.errors import BadInput, HsmError
from hsm.sweep import Sweep

SHOWN_IDS = 10


def project_and_sweep(ref: str | None, hsm_config: Path | None) -> tuple[ProjectConfig, Sweep | None]:
    """The project, and the sweep named, else the most recent one with unfinished tasks (or none)."""
    if ref is not None:
        sweep, project = open_sweep(ref, hsm_config)
        return project, sweep
    project = project_for(hsm_config)
    return project, sources_logic.latest_unfinished(project)


def ids_text(ids: list[str]) -> str:
    """`task_001, task_002` (the first few, and how many more)."""
    more = len(ids) - SHOWN_IDS
    return ", ".join(ids[:SHOWN_IDS]) + (f" and {more} more" if more > 0 else "")


# --- shared with `hsm distributed` -----------------------------------------------------------------


def show_list(project: ProjectConfig) -> None:
    """Print the configured sources as a table."""
    click.echo(sources_table(sources_logic.configured(project)))


def report_tests(checks: list[source_probe.Check]) -> None:
    """One ✓/✗ line per source; HsmError (exit 1) when any failed."""
    for c in checks:
        click.echo(f"{'✓' if c.ok else '✗'} {c.name} ({c.type}): {c.details}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise HsmError(f"{len(failed)} of {len(checks)} sources failed the test: {', '.join(failed)}")


def run_tests(project: ProjectConfig, names: tuple[str, ...], test_all: bool, command: str) -> None:
    """Test the named sources, or all of them with --all."""
    if names and test_all:
        raise BadInput(f"{command}: give source names or --all, not both")
    if not names and not test_all:
        raise BadInput(f"{command}: name the sources to test, or give --all")
    report_tests(sources_logic.connection_checks(project, sources_logic.split_names(names) if names else None))


def add_source(project: ProjectConfig, name: str, kind: str, settings: dict[str, Any]) -> None:
    """Add a source to hsm_config.yaml and say so."""
    path = source_changes.add(project, name, kind, settings)
    note(f"✓ Added {kind} source '{name}' to {shown_path(path)} (test it: hsm sources test {name})")


def remove_source(project: ProjectConfig, name: str) -> None:
    """Remove a source from hsm_config.yaml and say which running sweeps still use it."""
    path, still = source_changes.remove(project, name)
    note(f"✓ Removed source '{name}' from {shown_path(path)}")
    for sweep in still:
        note(f"  Sweep {sweep.id} still has tasks on '{name}' (hsm sources disable {name} --temporary moves "
             "the unstarted ones)")


# --- the group -------------------------------------------------------------------------------------


@click.group("sources")
def sources() -> None:
    """The project's compute sources: list, probe, test, take out of service, add, remove.

    Example:

        hsm sources disable server2 --reason "disk failing"
    """


@sources.command("list")
@hsm_config_option
def list_sources(hsm_config: Path | None) -> None:
    """List the configured sources: type, slots, enabled, host or partition.

    Example:

        hsm sources list
    """
    show_list(project_for(hsm_config))


@sources.command("status")
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@hsm_config_option
def status(sweep: str | None, hsm_config: Path | None) -> None:
    """Probe every source now; with a sweep, also its slots in use and whether the sweep disabled it.

    Without SWEEP, the most recent sweep that has unfinished tasks, if any. One health call
    per source.

    Example:

        hsm sources status sweep_20261122_063133
    """
    project, s = project_and_sweep(sweep, hsm_config)
    rows = sources_logic.health_report(project, s)
    click.echo(f"Sources of sweep {s.id}:" if s else "Sources (no running sweep):")
    click.echo(sources_status_table(rows))


@sources.command("test")
@click.argument("names", nargs=-1, shell_complete=complete_source_names)
@click.option("--all", "test_all", is_flag=True, help="Test every configured source.")
@hsm_config_option
def test_sources(names: tuple[str, ...], test_all: bool, hsm_config: Path | None) -> None:
    """Test the connection to sources: SSH (reachable, Python, project dir), HPC (scheduler, partition), local.

    One ✓ or ✗ line per source; exits 1 when any fails.

    Example:

        hsm sources test server1 cluster
    """
    run_tests(project_for(hsm_config), names, test_all, "sources test")


@sources.command("enable")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_source_names)
@hsm_config_option
def enable(names: tuple[str, ...], hsm_config: Path | None) -> None:
    """Bring sources back: `enabled: true` in hsm_config.yaml, and enabled again in running sweeps.

    NAMES are comma-separated or separate arguments.

    Example:

        hsm sources enable server1,server2
    """
    project = project_for(hsm_config)
    change = source_changes.enable(project, sources_logic.split_names(names))
    report_change(change, enabling=True)


@sources.command("disable")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_source_names)
@click.option("--temporary", is_flag=True, help="Only in the running sweeps; hsm_config.yaml is left as it is.")
@click.option("--reason", metavar="TEXT", help="Why, kept with the sweep (default: 'disabled by the user').")
@hsm_config_option
def disable(names: tuple[str, ...], temporary: bool, reason: str | None, hsm_config: Path | None) -> None:
    """Take sources out of service; running sweeps move their unstarted tasks to the other sources.

    Without --temporary, hsm_config.yaml gets `enabled: false` for them (so `--sources all`
    leaves them out); its comments and layout are kept. Tasks that already started there
    keep running. NAMES are comma-separated or separate arguments.

    Example:

        hsm sources disable server1,server2 --temporary
    """
    project = project_for(hsm_config)
    change = source_changes.disable(project, sources_logic.split_names(names), reason, temporary)
    report_change(change, enabling=False)


@sources.command("add")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(SOURCE_TYPES), required=True, help="The kind of source.")
@click.option("--host", help="SSH: the host (default: NAME); HPC: a login host to run the scheduler on.")
@click.option("--port", type=click.IntRange(1, 65535), help="The SSH port.")
@click.option("--key", help="The SSH private key, e.g. ~/.ssh/id_ed25519.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Tasks running at once (max_parallel_tasks).")
@click.option("--partition", "--queue", "queue", help="HPC: the partition or queue.")
@click.option("--system", type=click.Choice(SYSTEMS), help="HPC: the scheduler (default: the one on PATH).")
@click.option("--project-dir", help="The project's copy on the host or cluster.")
@click.option("--python", help="The Python the tasks run with there.")
@click.option("--conda-env", help="A conda env the tasks run in.")
@click.option("--set", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other setting of that type of source (VALUE read as YAML); repeatable.")
@hsm_config_option
def add(name: str, kind: str, host: str | None, port: int | None, key: str | None, max_jobs: int | None,
        queue: str | None, system: str | None, project_dir: str | None, python: str | None, conda_env: str | None,
        extra: tuple[str, ...], hsm_config: Path | None) -> None:
    """Add a source to compute_sources in hsm_config.yaml (created when missing).

    The file keeps its comments and layout. A name already used, a setting the type does not
    have, or a value the config would refuse is refused, and nothing is written.

    Example:

    \b
        hsm sources add gpu-server --type ssh --host gpu.university.edu --key ~/.ssh/id_ed25519 --max-jobs 2
    """
    settings: dict[str, Any] = {"host": host, "max_parallel_tasks": max_jobs, "ssh_port": port, "ssh_key": key,
                                "system": system, "queue": queue, "project_dir": project_dir,
                                "python_interpreter": python, "conda_env": conda_env}
    settings.update(parse_settings(extra))
    add_source(project_for(hsm_config), name, kind, settings)


def parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set KEY=VALUE` pairs, each VALUE read as YAML (`true`, `8`, `[a, b]`)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set: '{pair}': expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise BadInput(f"--set: '{pair}': the value is not YAML") from None
    return out


@sources.command("remove")
@click.argument("name", shell_complete=complete_source_names)
@hsm_config_option
def remove(name: str, hsm_config: Path | None) -> None:
    """Remove a source from hsm_config.yaml (running sweeps keep theirs).

    Example:

        hsm sources remove gpu-server
    """
    remove_source(project_for(hsm_config), name)


@sources.command("rebalance")
@click.argument("sweep", shell_complete=complete_sweep_ids)
@hsm_config_option
def rebalance(sweep: str, hsm_config: Path | None) -> None:
    """Move waiting tasks from busy sources to idle ones; prints the sweep dir.

    Only tasks that have not started move; the next submit hands them to their new sources.

    Example:

        hsm sources rebalance sweep_20261122_063133 | hsm-submit
    """
    s, project = open_sweep(sweep, hsm_config)
    moves = source_changes.rebalance(s, project)
    if not moves:
        note(f"Nothing to rebalance in {s.id}: no source is idle while another has tasks waiting")
    for moved in moves:
        note(f"Took back {len(moved.revoked) + len(moved.abandoned)} waiting tasks from '{moved.source}'")
        report_left(moved)
    placed: dict[str, list[str]] = next((m.reassigned for m in moves if m.reassigned), {})
    if placed:
        note("Tasks reassigned: " + ", ".join(f"{n}({len(t)})" for n, t in placed.items()))
    click.echo(str(s.root))


# --- what happened --------------------------------------------------------------------------------


def report_left(moved: Any) -> None:
    """What stayed behind: tasks that had started, tasks given up without the source's word."""
    if moved.started:
        note(f"  {len(moved.started)} tasks had started on '{moved.source}' and keep running there: "
             f"{ids_text(moved.started)}")
    if moved.abandoned:
        note(f"  {len(moved.abandoned)} tasks were given up on '{moved.source}' (it did not answer): "
             f"{ids_text(moved.abandoned)}")


def report_change(change: source_changes.Change, enabling: bool) -> None:
    """Say what changed in hsm_config.yaml and in each running sweep; exit 1 when a sweep failed."""
    verb = "enabled" if enabling else "disabled"
    if change.config is not None:
        note(f"✓ {shown_path(change.config)}: {', '.join(change.in_config)} {verb}")
    elif change.in_config:
        note(f"✓ hsm_config.yaml already has {', '.join(change.in_config)} {verb}")
    for name in change.not_in_config:
        note(f"  '{name}' is not in hsm_config.yaml: only the running sweeps that use it change")
    touched = {a.name for a in change.sweeps}
    for name in change.names:
        if name not in touched:
            note(f"  No running sweep uses '{name}'")
    for action in change.sweeps:
        report_action(action, enabling)
    if change.errors:
        raise HsmError(f"{len(change.errors)} running sweeps could not be changed: "
                       + ", ".join(f"{a.sweep.id} ({a.name})" for a in change.errors))


def report_action(action: source_changes.SweepAction, enabling: bool) -> None:
    """The lines for one sweep and one source, in the words of the sweep's health log."""
    name, sweep = action.name, action.sweep.id
    if action.error:
        note(f"✗ {sweep}: {action.error}")
    elif enabling:
        note(f"Source '{name}' enabled in {sweep}" if action.was_disabled else f"Source '{name}' was not disabled in {sweep}")
    else:
        moved = action.moved
        note(f"Source '{name}' disabled in {sweep}")
        taken = len(moved.revoked) + len(moved.abandoned)
        if taken:
            note(f"Redistributing {taken} pending tasks from disabled source '{name}'")
        if moved.reassigned:
            note("Tasks reassigned: " + ", ".join(f"{n}({len(t)})" for n, t in moved.reassigned.items()))
            note(f"  The next submit of {sweep} (hsm submit, or a running hsm run) hands them over")
        report_left(moved)


# --- `hsm test` ------------------------------------------------------------------------------------


@click.command("test")
@click.argument("spec", metavar="SOURCE", shell_complete=complete_one_source)
@hsm_config_option
def test_command(spec: str, hsm_config: Path | None) -> None:
    """Test the connection to one source, named ssh:NAME, hpc:NAME or local.

    The same test as `hsm sources test`. An ssh:HOST that is not configured is tested as
    an ad-hoc host. Exits 1 when the test fails.

    Example:

        hsm test ssh:server1
    """
    project = project_for(hsm_config)
    report_tests([source_probe.connection_check(sources_logic.source_for_spec(project, spec), project)])


COMMANDS = (sources, test_command)
