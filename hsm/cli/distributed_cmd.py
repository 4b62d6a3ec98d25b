"""`hsm distributed init|add|list|test|health|remove`: the older names of `hsm sources` and `hsm monitor health`.

Each is a thin alias: what it writes and shows is what the newer command does.
"""

from __future__ import annotations

from pathlib import Path

import click

from hsm.cli.common import hsm_config_option, note, project_for, shown_path
from hsm.cli.completion import complete_source_names
from hsm.cli.monitor_cmd import health_view, show, watch_options
from hsm.cli.sources_cmd import add_source, remove_source, run_tests, show_list
from hsm.commands import source_changes
from hsm.commands import sources as sources_logic


@click.group("distributed")
def distributed() -> None:
    """Set up and check the sources a sweep is spread over (older names of `hsm sources`).

    Example:

        hsm distributed add gpu-server gpu.university.edu --max-jobs 2
    """


@distributed.command("init")
@hsm_config_option
def init(hsm_config: Path | None) -> None:
    """Give hsm_config.yaml a compute_sources section with the local source, if it has none.

    Example:

        hsm distributed init
    """
    project = project_for(hsm_config)
    path = source_changes.init(project)
    if path is None:
        note(f"✓ {shown_path(sources_logic.config_path(project))} already has its sources: nothing to do")
    else:
        note(f"✓ {shown_path(path)}: compute_sources with local "
             f"({project.sources['local'].max_parallel} tasks at once); add hosts with hsm distributed add")


@distributed.command("add")
@click.argument("name")
@click.argument("host")
@click.option("--key", help="The SSH private key, e.g. ~/.ssh/id_ed25519.")
@click.option("--port", type=click.IntRange(1, 65535), help="The SSH port.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Tasks running at once on the host.")
@click.option("--project-dir", help="The project's copy on the host (default: the same path as here).")
@click.option("--python", help="The Python the tasks run with on the host (default: python3).")
@hsm_config_option
def add(name: str, host: str, key: str | None, port: int | None, max_jobs: int | None, project_dir: str | None,
        python: str | None, hsm_config: Path | None) -> None:
    """Add an SSH host as a source (as `hsm sources add NAME --type ssh --host HOST`).

    Example:

    \b
        hsm distributed add gpu-server gpu.university.edu --key ~/.ssh/id_ed25519 --max-jobs 2
    """
    settings = {"host": host, "max_parallel_tasks": max_jobs, "ssh_port": port, "ssh_key": key,
                "project_dir": project_dir, "python_interpreter": python}
    add_source(project_for(hsm_config), name, "ssh", settings)


@distributed.command("list")
@hsm_config_option
def list_sources(hsm_config: Path | None) -> None:
    """List the configured sources (as `hsm sources list`).

    Example:

        hsm distributed list
    """
    show_list(project_for(hsm_config))


@distributed.command("test")
@click.argument("names", nargs=-1, shell_complete=complete_source_names)
@click.option("--all", "test_all", is_flag=True, help="Test every configured source.")
@hsm_config_option
def test(names: tuple[str, ...], test_all: bool, hsm_config: Path | None) -> None:
    """Test the connection to sources (as `hsm sources test`); exits 1 when any fails.

    Example:

        hsm distributed test local blossom gpu-server
    """
    run_tests(project_for(hsm_config), names, test_all, "distributed test")


@distributed.command("health")
@click.argument("names", nargs=-1, shell_complete=complete_source_names)
@click.option("--all", "every", is_flag=True, help="Every source (the default when none is named).")
@watch_options
@hsm_config_option
def health(names: tuple[str, ...], every: bool, watch: bool, refresh: float, once: bool,
           hsm_config: Path | None) -> None:
    """Show the sources' health (as `hsm monitor health`), for the latest running sweep.

    Example:

        hsm distributed health --all --watch --refresh 30
    """
    project = project_for(hsm_config)
    chosen = sources_logic.split_names(names) if names and not every else None
    show(health_view(project, None, chosen), watch, once, refresh)


@distributed.command("remove")
@click.argument("name", shell_complete=complete_source_names)
@hsm_config_option
def remove(name: str, hsm_config: Path | None) -> None:
    """Remove a source from hsm_config.yaml (as `hsm sources remove`).

    Example:

        hsm distributed remove gpu-server
    """
    remove_source(project_for(hsm_config), name)


COMMANDS = (distributed,)
