"""The `hsm` command line: parse, call `hsm.commands`, render.

Errors from the library become one line on standard error and an exit code: 2 for bad
input or usage, 1 for an operational failure. Results go to standard output (a step
prints the sweep dir and only that), everything else to standard error.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from hsm import __version__
from hsm.errors import HsmError

STEPS = ("expand", "assign", "submit", "poll", "collect", "health", "aggregate")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="hsm")
@click.option("-v", "--verbose", count=True, help="Say more on standard error (-vv for debug).")
def cli(verbose: int) -> None:
    """hsm: run hyperparameter sweeps on this machine, SSH hosts and HPC clusters.

    The steps (expand, assign, submit, poll, collect, health, aggregate) each read and
    write the state files of one sweep directory and exit, so cron or a shell pipeline
    can drive a sweep; `hsm run` drives it for you.

    Example:

        hsm run --config sweeps/sweep_config.yaml --sources local:4
    """
    _setup_logging(verbose)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    if os.environ.get("HSM_LOG_LEVEL"):
        level = getattr(logging, os.environ["HSM_LOG_LEVEL"].upper(), level)
    logging.basicConfig(level=level, format="hsm: %(message)s", stream=sys.stderr, force=True)


_group = cli
del cli  # reached through __getattr__ below, which loads every command first


# The module of each top-level command: a command line imports only the module of its command
# (and what that needs), so `hsm poll` or a completion starts in a fraction of the time that
# importing every command takes. tests/unit/test_layers.py checks this table against the modules.
COMMAND_MODULES = {
    **dict.fromkeys(STEPS, "steps"),
    "run": "run_cmd", "sweep": "run_cmd",
    "status": "porcelain", "cancel": "porcelain", "complete": "porcelain", "sync": "porcelain",
    "config": "config_cmd", "sources": "sources_cmd", "test": "sources_cmd", "monitor": "monitor_cmd",
    "distributed": "distributed_cmd", "export": "export_cmd", "init": "init_cmd",
    "tasks": "legacy", "analyze": "legacy",
}
_loaded: set[str] = set()


def _load(module_name: str) -> None:
    """Import one command module and add its commands (and what hangs off them) to the group."""
    import importlib

    if module_name in _loaded:
        return
    _loaded.add(module_name)
    if module_name == "legacy":
        from hsm.cli.legacy import register as register_legacy

        register_legacy(_group)  # hidden: the original HSM's commands hsm lacks, each naming the one to use
        return
    module = importlib.import_module(f"hsm.cli.{module_name}")
    if module_name == "config_cmd":
        from hsm.cli import init_cmd

        module.config.add_command(init_cmd.config_init, "init")
        _group.add_command(module.config)
    else:
        for command in module.COMMANDS:
            _group.add_command(command)
    if module_name in ("monitor_cmd", "sources_cmd"):
        from hsm.cli.legacy import register as register_legacy

        register_legacy(_group)


def __getattr__(name: str) -> Any:
    # `from hsm.cli import cli` (the docs, the tests) gets the group with every command loaded.
    if name == "cli":
        return register_all()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_all() -> click.Group:
    """The group with every command: for --help, completion, the docs and the tests."""
    for module_name in dict.fromkeys(COMMAND_MODULES.values()):
        _load(module_name)
    return _group


def _register_for(args: Sequence[str]) -> None:
    """Load the module of the command `args` names; every module when it names none or is a completion."""
    words = [a for a in args if not a.startswith("-")]
    wanted = COMMAND_MODULES.get(words[0]) if words else None
    if wanted is None or any(k.startswith("_HSM_COMPLETE") for k in os.environ) or {"-h", "--help"} & set(args[:1]):
        register_all()
    else:
        _load(wanted)


# Commands that run once over a sweep's index and exit run without the cyclic garbage collector:
# the index (a million small dicts, and the objects built from it) holds no cycle for it to find,
# and its passes over those objects cost seconds per command on a sweep of a million tasks.
# Reference counting still frees everything. Long-running commands (run, complete, monitor) keep it.
WITHOUT_GC = (*STEPS, "status", "cancel", "export")


def main(argv: Sequence[str] | None = None, prog: str = "hsm", step: str | None = None) -> int:
    """Run the CLI (or one step of it) and turn every error into one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command: click.Command = _group
    if step is not None:
        _setup_logging(0)
        _load(COMMAND_MODULES[step])
        command = _group.commands[step]
    else:
        _register_for(args)
    words = [a for a in args if not a.startswith("-")]
    collect = gc.isenabled()
    if (step or (words[0] if words else "")) in WITHOUT_GC:
        gc.disable()
    try:
        return _run(command, args, prog)
    finally:
        if collect:
            gc.enable()


def _run(command: click.Command, args: list[str], prog: str) -> int:
    try:
        result = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return 2
    except click.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx else f"{prog}: "
        click.echo(f"{where}error: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except HsmError as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        # A full disk, a read-only file system, a permission taken away: the state files are
        # replaced atomically, so what is on disk is as it was before this command.
        click.echo(f"{prog}: error: {os_error_text(exc)}", err=True)
        return 1
    return result if isinstance(result, int) else 0


_OS_HINTS = {errno.ENOSPC: "the disk is full: free space and run the command again",
             errno.EDQUOT: "the disk quota is used up: free space and run the command again",
             errno.EROFS: "the file system is read-only", errno.EACCES: "check the file's permissions"}


def os_error_text(exc: OSError) -> str:
    """One line: the file, what the system said, and what to do about it."""
    where = f"{exc.filename}: " if exc.filename else ""
    hint = _OS_HINTS.get(exc.errno or 0)
    return f"{where}{exc.strerror or exc}" + (f" ({hint})" if hint else "")


def _step_main(step: str) -> int:
    return main(sys.argv[1:], prog=f"hsm-{step}", step=step)


def expand_main() -> int:
    """Entry point of `hsm-expand`."""
    return _step_main("expand")


def assign_main() -> int:
    """Entry point of `hsm-assign`."""
    return _step_main("assign")


def submit_main() -> int:
    """Entry point of `hsm-submit`."""
    return _step_main("submit")


def poll_main() -> int:
    """Entry point of `hsm-poll`."""
    return _step_main("poll")


def collect_main() -> int:
    """Entry point of `hsm-collect`."""
    return _step_main("collect")


def health_main() -> int:
    """Entry point of `hsm-health`."""
    return _step_main("health")


def aggregate_main() -> int:
    """Entry point of `hsm-aggregate`."""
    return _step_main("aggregate")
