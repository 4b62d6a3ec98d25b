"""Commands of the original HSM's documentation that hsm does not have, each answered with the one
that does the job.

`hsm sources ping --all` prints, on standard error,

    hsm: 'hsm sources ping' is not an hsm command; use 'hsm sources test NAME' (...)

and exits 2, whatever arguments follow. The commands are hidden: they are in no --help and not
in docs/commands.md. `register` adds them to the command tree.
"""

from __future__ import annotations

import click

# (group, command) -> (what to use instead, what it does).
MOVED: dict[tuple[str, str], tuple[str, str]] = {
    ("monitor", "performance"): ("hsm monitor source NAME [SWEEP]",
                                 "one source's tasks, success rate, mean duration, slots and load in a sweep"),
    ("monitor", "distribution"): ("hsm status SWEEP", "the sweep's tasks per state and per source"),
    ("monitor", "dashboard"): ("hsm monitor watch [SWEEP]",
                               "the live view: progress, ETA, each source's slots and health, recent activity"),
    ("monitor", "collection"): ("hsm collect SWEEP", "brings the tasks' directories home from remote sources"),
    ("sources", "validate"): ("hsm test SOURCE",
                              "tests the connection, Python and project dir of one source such as ssh:server1; "
                              "'hsm config validate' checks the config"),
    ("sources", "ping"): ("hsm sources test NAME", "tests the connection to a source; --all for every one"),
    ("sources", "optimize"): ("hsm sources rebalance SWEEP", "moves waiting tasks from busy sources to idle ones"),
    ("sources", "diagnose"): ("hsm monitor source NAME",
                              "the source's failures in its latest sweep and its health now: load, memory, latency"),
    ("tasks", "reassign"): ("hsm complete SWEEP --tasks TASK_ID --sources NAME",
                            "runs those tasks, if not completed or running, on the sources named"),
    ("analyze", "bottlenecks"): ("hsm aggregate SWEEP",
                                 "writes reports/performance_analysis.yaml and source_utilization.html: "
                                 "durations, retries and a timeline per source"),
}

# Top-level names of the original HSM that are not hsm groups, and what to use for anything under them.
GROUPS: dict[str, tuple[str, str]] = {
    "tasks": ("hsm status SWEEP --task TASK_ID", "one task's parameters and every attempt, with its logs"),
    "analyze": ("hsm aggregate SWEEP", "the aggregated log, metrics, error analysis and reports"),
}

EXIT_CODE = 2
_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "allow_interspersed_args": False}


def answer(path: str, instead: str, what: str) -> None:
    """The one line, and exit 2."""
    click.echo(f"hsm: '{path}' is not an hsm command; use '{instead}' ({what})", err=True)
    raise click.exceptions.Exit(EXIT_CODE)


def moved_command(group: str, name: str) -> click.Command:
    """A hidden `hsm GROUP NAME` that takes any arguments and answers with its replacement."""
    instead, what = MOVED[(group, name)]

    def callback(args: tuple[str, ...]) -> None:
        answer(f"hsm {group} {name}", instead, what)

    return click.Command(name, callback=callback, hidden=True, add_help_option=False, context_settings=_SETTINGS,
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         help=f"Not an hsm command: use '{instead}'.")


def moved_group(group: str) -> click.Command:
    """A hidden top-level `hsm GROUP ...`: its known subcommands answer with theirs, anything else with the group's."""
    def callback(args: tuple[str, ...]) -> None:
        first = args[0] if args else ""
        if (group, first) in MOVED:
            answer(f"hsm {group} {first}", *MOVED[(group, first)])
        answer(f"hsm {group}", *GROUPS[group])

    return click.Command(group, callback=callback, hidden=True, add_help_option=False, context_settings=_SETTINGS,
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         help=f"Not an hsm command: use '{GROUPS[group][0]}'.")


def register(cli: click.Group) -> None:
    """Add the hidden commands: to the existing groups (monitor, sources), and the groups hsm lacks."""
    for group, name in MOVED:
        parent = cli.commands.get(group)
        if group not in GROUPS and isinstance(parent, click.Group) and name not in parent.commands:
            parent.add_command(moved_command(group, name))
    for group in GROUPS:
        if group not in cli.commands:
            cli.add_command(moved_group(group))
