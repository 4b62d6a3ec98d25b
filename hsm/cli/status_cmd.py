"""`hsm status`: a sweep's tasks per state and per source, every sweep, or one task's attempts."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hsm.cli.common import hsm_config_option, note, open_sweep, project_for, shown_path
from hsm.cli.completion import complete_sweep_ids
from hsm.cli.render import duration_text, progress_line, summary_table
from hsm.cli.task_view import task_data, task_text
from hsm.commands.status import failed_rows, summarize
from hsm.errors import BadInput
from hsm.sweep import Sweep, list_sweeps


def _json_summary(summary: dict) -> str:
    """The summary as indented JSON with one compact line per task.

    json's C encoder is not used with `indent`: on 100,000 tasks an indented dump takes
    four times as long, and one line per task is easier to grep anyway.
    """
    head = json.dumps({k: v for k, v in summary.items() if k != "tasks"}, indent=2)
    rows = ",\n".join("    " + json.dumps(task, ensure_ascii=False) for task in summary["tasks"])
    return head[:-2] + ',\n  "tasks": [\n' + rows + ("\n" if rows else "") + "  ]\n}"


def _show_all(project, as_json: bool) -> None:
    """`hsm status --all`: one line per sweep of the project."""
    summaries = [summarize(Sweep.open(p), rows=False) for p in list_sweeps(project.outputs_dir)]
    if as_json:
        click.echo(json.dumps([{k: v for k, v in s.items() if k != "tasks"} for s in summaries], indent=2))
        return
    if not summaries:
        note(f"No sweeps in {shown_path(project.outputs_dir)}")
        return
    from tabulate import tabulate

    rows = [[s["sweep_id"], s["created"], s["total"], s["counts"]["completed"], s["counts"]["failed"],
             s["counts"]["running"], s["total"] - s["finished"]] for s in summaries]
    click.echo(tabulate(rows, headers=["Sweep", "Created", "Tasks", "Completed", "Failed", "Running", "Unfinished"],
                        tablefmt="simple_outline"))


@click.command()
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@click.option("--all", "show_all", is_flag=True, help="One line per sweep in the outputs directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--task", "task_id", metavar="TASK_ID", help="One task: its parameters and every attempt, with its logs.")
@hsm_config_option
def status(sweep: str | None, show_all: bool, as_json: bool, task_id: str | None, hsm_config: Path | None) -> None:
    """Show a sweep's tasks per state and per source, its timing and its path.

    Without SWEEP, the most recent sweep of the project. With --task, one task's attempts:
    where each ran, how it ended, and its status and logs (tasks/TASK_ID/attempts/N/ for
    the earlier ones).

    Example:

        hsm status sweep_20261122_063133 --json | jq .counts

        hsm status sweep_20261122_063133 --task task_007
    """
    project = project_for(hsm_config)
    if show_all:
        _show_all(project, as_json)
        return
    if sweep is None:
        found = list_sweeps(project.outputs_dir)
        if not found:
            raise BadInput(f"no sweeps in {project.outputs_dir}")
        sweep = str(found[-1])
    s, _ = open_sweep(sweep, hsm_config)
    if task_id is not None:
        data = task_data(s, task_id)
        click.echo(json.dumps(data, indent=2, default=str) if as_json else task_text(data))
        return
    index = s.read_index()
    summary = summarize(s, index, rows=as_json)  # the text lists failed tasks only: no row per task
    if as_json:
        click.echo(_json_summary(summary))
        return
    timing = summary["timing"]
    click.echo(f"Sweep Status: {summary['sweep_id']}")
    click.echo(f"Path: {summary['path']}")
    click.echo(f"Created: {summary['created']}")
    click.echo(progress_line(summary["counts"], summary["total"]))
    click.echo(summary_table(summary))
    click.echo(f"Mean task duration: {duration_text(timing['mean_task_seconds'])}"
               + (f", wall time: {duration_text(timing['elapsed_seconds'])}" if timing["elapsed_seconds"] is not None else ""))
    for name, info in summary["stranded"].items():
        tids = info["tasks"]
        shown = ", ".join(tids[:20]) + (f" and {len(tids) - 20} more" if len(tids) > 20 else "")
        click.echo(f"Stranded on {name} (no answer since {info['since']}): {len(tids)} tasks: {shown}")
    failed = failed_rows(index)
    if failed:
        click.echo("Failed tasks:")
        for t in failed[:20]:
            click.echo(f"  {t['id']} on {t['source']}: reason {t['reason']}, exit code {t['exit_code']}")
        if len(failed) > 20:
            click.echo(f"  ... and {len(failed) - 20} more (hsm status --json)")
