"""`hsm run` and `hsm sweep`: expand a sweep (or take up one), assign, submit, and drive it to the end.

Both call `start`; `hsm sweep --mode` only chooses the sources by kind, as the original HSM did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from hsm.cli.common import Seconds, hsm_config_option, note, open_sweep, project_for, resolve_sources, shown_path
from hsm.cli.completion import complete_sweep_ids
from hsm.cli.porcelain import (
    _check_sync,
    _drive_and_report,
    _sources_for,
    _start_degraded,
    allow_degraded_option,
    no_progress_option,
    short_names,
)
from hsm.cli.render import plan_text
from hsm.cli.steps import dependency_option, no_verify_sync_option, sources_option, with_sync_check
from hsm.commands import assign as assign_cmd
from hsm.commands import expand as expand_cmd
from hsm.config import ProjectConfig
from hsm.core.settings import SourceConfig, source_config
from hsm.errors import BadInput
from hsm.sweep import Sweep

MODES = ("local", "distributed", "hpc", "ssh")
CONFIG_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class RunRequest:
    """What `hsm run` (or `hsm sweep`) was asked to do."""

    config: Path | None = None
    overrides: tuple[str, ...] = ()
    sources_spec: str | None = None
    mode: str | None = None  # one of MODES: the sources by kind (`--distributed` is "distributed")
    strategy: str | None = None
    seed: int | None = None
    parallel_limit: int | None = None
    max_tasks: int | None = None
    count_only: bool = False
    dry_run: bool = False
    poll_interval: float = 10.0
    outputs: Path | None = None
    sweep_id: str | None = None
    resume: str | None = None
    allow_degraded: bool = False
    no_progress: bool = False
    no_verify_sync: bool = False
    dependency: str | None = None
    hsm_config: Path | None = None


def start(req: RunRequest) -> None:
    """Expand the sweep (or open the one to resume), assign it, and drive it until every task is final."""
    project = with_sync_check(project_for(req.hsm_config), req.no_verify_sync)
    if req.resume:
        if req.config is not None or req.overrides:
            what = "--config" if req.config is not None else "overrides"
            raise BadInput(f"--resume: give either {what} (a new sweep) or --resume, not both")
        sweep, project = open_sweep(req.resume, req.hsm_config)
        project = with_sync_check(project, req.no_verify_sync)
        spec = _sources_spec(project, req)
        sources = _sources_for(sweep, project, spec, req.parallel_limit)
        down = _check_sync(project, sources, req.allow_degraded)
        _using_config(project)
    else:
        made = _new_sweep(req, project)
        if made is None:
            return
        sweep, sources, down = made
    if req.dependency:
        # Kept with the hpc sources in the sweep, so every submit of this run passes it on.
        sources = [source_config(s.name, s.type, s.max_parallel, {**s.options, "dependency": req.dependency},
                                 project.source_defaults) if s.type == "hpc" else s for s in sources]
    if sources:
        assign_cmd.assign(sweep, sources, req.strategy or project.strategy, req.seed)
    _start_degraded(sweep, project, down)
    _drive_and_report(sweep, project, req.poll_interval, sources, req.strategy, req.no_progress)


def _new_sweep(req: RunRequest, project: ProjectConfig) -> tuple[Sweep, list[SourceConfig], dict[str, str]] | None:
    """Plan, check and expand a new sweep; None when only a count or a dry run was asked."""
    config = req.config
    if config is None:
        default = project.root / "sweeps" / "sweep_config.yaml"
        # With overrides and no sweeps/sweep_config.yaml, the overrides alone make the sweep.
        config = default if default.is_file() or not req.overrides else None
    plan = expand_cmd.plan(config, project, req.max_tasks, req.overrides)
    if req.sweep_id is not None:
        expand_cmd.check_sweep_id(req.sweep_id)
    if req.count_only:
        click.echo(f"Total parameter combinations: {plan.tasks}")
        return None
    sources = assign_cmd.cap_sources(_resolve(project, req), req.parallel_limit)
    if req.dry_run:
        click.echo(plan_text(plan, sources))
        return None
    outputs = req.outputs or project.outputs_dir
    assign_cmd.check_paths(outputs, sources)
    down = _check_sync(project, sources, req.allow_degraded)
    _using_config(project)
    path = expand_cmd.expand(plan, project, outputs, req.sweep_id)
    note(f"Sweep {path.name}: {plan.tasks} tasks in {shown_path(path)}")
    return Sweep.open(path), sources, down


def _using_config(project: ProjectConfig) -> None:
    # Said once the inputs are known to be good: a refusal is one line, nothing more.
    if project.path is not None:
        note(f"✓ Using HSM config: {shown_path(project.path)}")


def _resolve(project: ProjectConfig, req: RunRequest) -> list[SourceConfig]:
    """The sources of a new sweep (local when none are named); a refusal names --mode when it chose them."""
    spec = _sources_spec(project, req)
    try:
        return resolve_sources(project, "local" if spec is None else spec)
    except BadInput as exc:
        if req.mode is None or req.sources_spec is not None:
            raise
        raise BadInput(str(exc).replace("--sources: ", f"--mode {req.mode}: ", 1)) from None


def _sources_spec(project: ProjectConfig, req: RunRequest) -> str | None:
    """The --sources spec a request comes to: its own, or the one its mode stands for."""
    if req.mode is None:
        return req.sources_spec
    if req.mode == "distributed":
        if req.sources_spec is not None:
            every = [s.name for s in resolve_sources(project, "all")]
            named = [s.name for s in resolve_sources(project, req.sources_spec)]
            if sorted(named) != sorted(every):
                raise BadInput(f"--distributed runs on every enabled source ({', '.join(every)}), but --sources "
                               f"'{req.sources_spec}' names {', '.join(named)}: give one of them")
            return req.sources_spec
        return "all"
    if req.mode == "ssh":
        names = [s.name for s in project.sources.values() if s.type == "ssh" and s.enabled]
        if not names:
            raise BadInput("--mode ssh: no enabled ssh source is configured (compute_sources in hsm_config.yaml)")
        return ",".join(f"ssh:{name}" for name in names)
    return req.mode


def split_words(words: Sequence[str], config: Path | None) -> tuple[Path | None, tuple[str, ...]]:
    """The positional words of `hsm run`: a first word ending in .yaml/.yml is the sweep config,
    the others are Hydra overrides (`key=value`, `+key=value`, `~key`)."""
    rest = list(words)
    if rest and _is_config_word(rest[0]):
        if config is not None:
            raise click.UsageError(f"the sweep config is given twice, as '{rest[0]}' and with --config: give one")
        config = Path(rest.pop(0))
    for word in rest:
        if "=" not in word and not word.startswith("~"):
            if word.endswith(CONFIG_SUFFIXES):
                raise click.UsageError(f"'{word}': the sweep config goes first, before the overrides")
            raise click.UsageError(f"'{word}' is not an override (key=value, +key=value, ~key) "
                                   "nor, as the first argument, a sweep config (.yaml, .yml)")
    return config, tuple(rest)


def _is_config_word(word: str) -> bool:
    """A sweep config file name: ends in .yaml/.yml and is no override (`file=x.yaml` that is no file)."""
    return word.endswith(CONFIG_SUFFIXES) and ("=" not in word or Path(word).is_file())


def _run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options `hsm run` and `hsm sweep` share, after the sources."""
    for option in reversed((
        click.option("--max-tasks", type=int, help="Run only the first N combinations."),
        click.option("--count-only", is_flag=True, help="Print the number of combinations and stop."),
        click.option("-d", "--dry-run", is_flag=True, help="Print the parameter table and the plan; run nothing."),
        click.option("--poll-interval", type=Seconds(min=0.05), default=10.0, show_default=True,
                     help="Longest wait in seconds between two polls (shorter while tasks are finishing)."),
        click.option("--outputs", type=click.Path(file_okay=False, path_type=Path), help="Where sweep dirs go."),
        click.option("--sweep-id", help="Name of the new sweep dir."),
    )):
        func = option(func)
    return func


def _last_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options both commands end with."""
    for option in reversed((allow_degraded_option, no_progress_option, no_verify_sync_option, dependency_option,
                            hsm_config_option)):
        func = option(func)
    return func


def _without_sources(func: Callable[..., Any]) -> Callable[..., Any]:
    """--strategy, --seed and --parallel-limit (-p) as `hsm run` has them, without --sources."""
    func = short_names(parallel_limit="-p")(sources_option(required=False)(func))
    func.__click_params__ = [p for p in func.__click_params__ if p.name != "sources_spec"]  # type: ignore[attr-defined]
    return func


words_argument = click.argument("words", nargs=-1, metavar="[CONFIG] [OVERRIDE]...")
config_option = click.option("-c", "--config", "config", type=click.Path(path_type=Path),
                             help="Sweep config (default: sweeps/sweep_config.yaml).")


@click.command()
@words_argument
@config_option
@short_names(sources_spec="-s", parallel_limit="-p")
@sources_option(required=False)
@click.option("--distributed", is_flag=True, help="Run on every enabled configured source (the same as --sources all).")
@_run_options
@click.option("--resume", "resume", metavar="SWEEP", shell_complete=complete_sweep_ids,
              help="Drive an existing sweep to completion instead of expanding a new one.")
@_last_options
def run(words: tuple[str, ...], config: Path | None, distributed: bool, **options: Any) -> None:
    """Run a sweep to completion: expand, assign, submit, then poll until every task is final.

    CONFIG is the sweep config (a first argument ending in .yaml or .yml; else --config, else
    sweeps/sweep_config.yaml). OVERRIDEs are Hydra overrides, swept as `python app.py -m`
    sweeps them: `lr=0.1,0.01 model=a,b` is 4 tasks, `seed=range(1,5)` 4 more each, `+key=value`
    and `~key` go to every task. They join the config's grid and win over a parameter it gives;
    with no config file at all they alone make the sweep.

    Exits 0 when every task completed, 1 when any failed. Ctrl-C stops only this driver:
    the tasks go on, and `hsm run --resume SWEEP` picks the sweep up again.

    Example:

        hsm run --config sweeps/sweep_config.yaml --sources local:4

        hsm run -s local:2 -- lr=0.1,0.01 model=a,b
    """
    config, overrides = split_words(words, config)
    start(RunRequest(config=config, overrides=overrides, mode="distributed" if distributed else None, **options))


@click.command("sweep")
@words_argument
@config_option
@click.option("--mode", type=click.Choice(MODES), default="local", show_default=True,
              help="Where to run: local (this machine), distributed (every enabled source), "
                   "hpc (the cluster's scheduler), ssh (every enabled ssh source).")
@_without_sources
@_run_options
@_last_options
def sweep_command(words: tuple[str, ...], config: Path | None, mode: str, **options: Any) -> None:
    """Run a sweep to completion on the sources a mode names, as the original HSM's `hsm sweep`.

    The same as `hsm run` with --sources local, all (distributed), hpc, or every enabled ssh
    source; CONFIG and OVERRIDEs as for `hsm run`.

    Example:

        hsm sweep sweeps/sweep_config.yaml --mode distributed
    """
    config, overrides = split_words(words, config)
    start(RunRequest(config=config, overrides=overrides, mode=mode, **options))


COMMANDS = (run, sweep_command)
