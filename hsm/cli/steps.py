"""The step commands: expand, assign, submit, poll, collect, health, aggregate.

Each reads the sweep (an argument, or standard input), does its one thing under the
sweep's lock, prints the sweep directory on standard output and exits, so they chain:

    hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:4 | hsm-submit
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hsm.cli.common import (
    echo_path,
    hsm_config_option,
    note,
    open_sweep,
    project_for,
    resolve_sources,
    shown_path,
    sweep_argument,
)
from hsm.cli.completion import complete_source_specs
from hsm.cli.render import plan_text, progress_line
from hsm.commands import aggregate as aggregate_cmd
from hsm.commands import assign as assign_cmd
from hsm.commands import expand as expand_cmd
from hsm.commands import health as health_cmd
from hsm.commands import poll as poll_cmd
from hsm.commands import submit as submit_cmd
from hsm.config import STRATEGIES, ProjectConfig
from hsm.errors import HsmError


def sources_option(required: bool = True):
    """`--sources SPEC` and `--strategy` shared by assign and run."""

    def decorate(func):
        func = click.option("--seed", type=int, default=None, help="Seed of the random strategy.")(func)
        func = click.option(
            "--strategy",
            type=click.Choice(STRATEGIES),
            default=None,
            help="How tasks are spread over sources (default: the config's, else round_robin).",
        )(func)
        func = click.option(
            "--parallel-limit",
            type=click.IntRange(min=1),
            default=None,
            help="Cap on tasks running at once over all sources.",
        )(func)
        return click.option(
            "--sources",
            "sources_spec",
            required=required,
            metavar="SPEC",
            shell_complete=complete_source_specs,
            help="Comma-separated NAME[:N] or TYPE:NAME[:N] (local, ssh, hpc); 'all' for every enabled source.",
        )(func)

    return decorate


def no_verify_sync_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--no-verify-sync`: start tasks on SSH hosts without checking their project copies."""
    return click.option(
        "--no-verify-sync", "no_verify_sync", is_flag=True,
        help="Do not check that SSH hosts' project copies match this one (they are still pushed).",
    )(func)


def with_sync_check(project: ProjectConfig, no_verify_sync: bool) -> ProjectConfig:
    """The project config for this invocation, with the SSH project check off when asked."""
    return dataclasses.replace(project, verify_sync=False) if no_verify_sync else project


@click.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--outputs", type=click.Path(file_okay=False, path_type=Path),
              help="Where sweep dirs go (default: sweeps/outputs).")
@click.option("--sweep-id", help="Name of the sweep dir; expanding the same config with it again changes nothing.")
@click.option("--count-only", is_flag=True, help="Print the number of combinations and stop.")
@click.option("--dry-run", is_flag=True, help="Print the parameter table and the plan; write nothing.")
@click.option("--max-tasks", type=int, help="Create only the first N combinations.")
@hsm_config_option
def expand(config: Path, outputs: Path | None, sweep_id: str | None, count_only: bool, dry_run: bool,
           max_tasks: int | None, hsm_config: Path | None) -> None:
    """Create a sweep directory with one task per parameter combination.

    Prints the new sweep directory.

    Example:

        hsm expand sweeps/sweep_config.yaml --max-tasks 10
    """
    project = project_for(hsm_config)
    plan = expand_cmd.plan(config, project, max_tasks)
    if count_only:
        click.echo(plan.tasks)
        return
    if dry_run:
        click.echo(plan_text(plan))
        return
    path = expand_cmd.expand(plan, project, outputs or project.outputs_dir, sweep_id)
    note(f"Expanded {plan.tasks} tasks into {shown_path(path)}")
    click.echo(str(path))


@click.command()
@sweep_argument
@sources_option()
@hsm_config_option
def assign(sweep: str | None, sources_spec: str, strategy: str | None, seed: int | None,
           parallel_limit: int | None, hsm_config: Path | None) -> None:
    """Assign pending tasks to compute sources.

    Tasks already assigned to a source that is not named now are moved too.

    Example:

        hsm assign sweep_20261122_063133 --sources local:2,ssh:server1:8 --strategy least_loaded
    """
    s, project = open_sweep(sweep, hsm_config)
    sources = assign_cmd.cap_sources(resolve_sources(project, sources_spec), parallel_limit)
    result = assign_cmd.assign(s, sources, strategy or project.strategy, seed)
    if result.total:
        note("Assigned " + ", ".join(f"{len(t)} to {n}" for n, t in result.assigned.items()))
    echo_path(s)


_JOB = r"[0-9]+(?:_[0-9]+)?(?:\[[0-9]*\])?(?:\.[A-Za-z0-9.-]+)?(?:\+[0-9]+)?"
_DEPENDENCY = re.compile(
    rf"^(?:singleton|(?:after|afterany|afterok|afternotok|aftercorr|afterburstbuffer|expand|before|beforeok"
    rf"|beforenotok|beforeany):{_JOB}(?::{_JOB})*)(?:[,?](?:singleton|[a-z]+:{_JOB}(?::{_JOB})*))*$")


def _check_dependency(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A dependency as Slurm and PBS write them (TYPE:JOB[:JOB...], joined by ',' or '?'), checked
    before anything is reserved: sbatch refused a bad one only after the tasks were."""
    if value is not None and not _DEPENDENCY.match(value):
        raise click.BadParameter(f"'{value}' is not TYPE:JOB_ID[:JOB_ID...] (e.g. afterok:12345, "
                                 "afterany:12345:12346, singleton)", ctx, param)
    return value


def dependency_option(func):
    """`--dependency afterok:ID`: Slurm/PBS jobs of hpc sources start only when it holds."""
    return click.option(
        "--dependency",
        metavar="TYPE:ID",
        default=None,
        callback=_check_dependency,
        help="Scheduler dependency of the hpc sources' jobs, e.g. afterok:12345.",
    )(func)


@click.command()
@sweep_argument
@no_verify_sync_option
@dependency_option
@hsm_config_option
def submit(sweep: str | None, no_verify_sync: bool, dependency: str | None, hsm_config: Path | None) -> None:
    """Hand assigned tasks to their sources; a task is never submitted twice.

    An SSH host gets the project pushed and checked first: a copy that differs from this
    one is refused, with what differs.

    Example:

        hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:2 | hsm-submit
    """
    s, project = open_sweep(sweep, hsm_config)
    project = with_sync_check(project, no_verify_sync)
    result = submit_cmd.submit(s, project, dependency=dependency)
    report_submit(s, result)
    echo_path(s)
    if result.errors and not result.delivered:
        raise HsmError("; ".join(f"{n}: {m}" for n, m in result.errors.items()))


def report_submit(s, result: submit_cmd.SubmitSummary) -> None:
    """`[i/N] Job SWEEP_TASK submitted to SOURCE` per delivered task, errors after."""
    total = len(result.delivered)
    for i, (tid, source) in enumerate(result.delivered, start=1):
        note(f"[{i}/{total}] Job {s.id}_{tid} submitted to {source}")
    for name, message in result.errors.items():
        note(f"✗ submit to {name} failed: {message}")


@click.command()
@sweep_argument
@hsm_config_option
def poll(sweep: str | None, hsm_config: Path | None) -> None:
    """Observe every source once and record what changed.

    Example:

        hsm poll sweep_20261122_063133
    """
    s, project = open_sweep(sweep, hsm_config)
    result, counts = poll_cmd.poll_counted(s, project)
    report_poll(result)
    note(progress_line(counts, sum(counts.values())))
    echo_path(s)


def report_poll(result: poll_cmd.PollSummary) -> None:
    """One line per failed task and per source that did not answer, and the error patterns the
    failures show; completions are counted."""
    for tid, source, _before, after in result.transitions:
        if after == "failed":
            note(f"✗ {tid} failed on {source} ({result.failures.get(tid, '')})")
    for name, message in result.unreachable.items():
        note(f"⚠ source {name} did not answer: {message}")
    for line in result.announced:
        note(line)


@click.command()
@sweep_argument
@click.option("--final", is_flag=True, help="Collect everything, running tasks' logs included.")
@hsm_config_option
def collect(sweep: str | None, final: bool, hsm_config: Path | None) -> None:
    """Bring task directories home from remote sources (incremental).

    Tasks that ran on this machine are already in place.

    Example:

        hsm collect sweep_20261122_063133 --final
    """
    s, project = open_sweep(sweep, hsm_config)
    from hsm.commands import collect as collect_cmd

    result = collect_cmd.collect(s, project, final=final)
    for name, count in result.collected.items():
        note(f"✓ Results collected from {name}: {count} tasks")
    for name, message in result.errors.items():
        note(f"✗ collect from {name} failed: {message}")
    echo_path(s)


@click.command()
@sweep_argument
@hsm_config_option
def health(sweep: str | None, hsm_config: Path | None) -> None:
    """Probe the sweep's sources and apply the failsafe policy.

    Example:

        hsm health sweep_20261122_063133
    """
    s, project = open_sweep(sweep, hsm_config)
    report = health_cmd.health(s, project)
    for name, info in report.items():
        mark = {"healthy": "✅", "degraded": "⚠️", "unhealthy": "❌", "disabled": "❌"}.get(info["status"], "?")
        note(f"{mark} {name}: {info['status']} - {info['details']}")
    echo_path(s)


@click.command()
@sweep_argument
@click.option("--metric", metavar="NAME", default=None,
              help="Metric of the tasks' metrics.json that ranks them in the completion report "
                   "(default: the first numeric one).")
@click.option("--mode", type=click.Choice(("max", "min")), default=None,
              help="Whether the best task has the highest or the lowest metric (default: min for a name with "
                   "loss, error, mse, mae or perplexity in it, else max).")
@hsm_config_option
def aggregate(sweep: str | None, metric: str | None, mode: str | None, hsm_config: Path | None) -> None:
    """Write the aggregated log, the metrics table, the error analysis and reports.

    reports/ gets metrics.csv, performance_analysis.yaml and three self-contained HTML pages:
    completion_report.html (best tasks, the metric against each parameter, every task),
    source_utilization.html (a timeline of every attempt per source slot) and
    error_analysis.html (failures by category and source, with their stderr).

    Example:

        hsm aggregate sweep_20261122_063133 --metric test_accuracy --mode max
    """
    s, _project = open_sweep(sweep, hsm_config)
    written = aggregate_cmd.aggregate(s, metric=metric, mode=mode)
    for path in written:
        note(f"wrote {shown_path(path)}")
    echo_path(s)


COMMANDS = (expand, assign, submit, poll, collect, health, aggregate)
