"""`hsm export`: a sweep's tasks, parameters and metrics as one table (CSV, JSON, Parquet)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hsm.cli.common import hsm_config_option, note, open_sweep, project_for, shown_path
from hsm.cli.completion import complete_sweep_ids
from hsm.commands import export as export_cmd
from hsm.errors import BadInput
from hsm.sweep import list_sweeps


def chosen_sweep(sweep: str | None, hsm_config: Path | None) -> str:
    """SWEEP as given; else the one piped in on standard input; else the project's most recent sweep."""
    if sweep:
        return sweep
    if sys.stdin is not None and not sys.stdin.isatty():
        lines = sys.stdin.read().strip().splitlines()
        if lines:
            return lines[-1].strip()
    outputs = project_for(hsm_config).outputs_dir
    found = list_sweeps(outputs)
    if not found:
        raise BadInput(f"no sweep given and no sweeps in {outputs}")
    return str(found[-1])


@click.command()
@click.argument("sweep", required=False, shell_complete=complete_sweep_ids)
@click.option("--format", "fmt", type=click.Choice(export_cmd.FORMATS), default="csv", show_default=True,
              help="csv and json need nothing more; parquet needs pyarrow (pip install 'hsm[parquet]').")
@click.option("--output", "-o", "output", metavar="FILE",
              help="Where to write (default: SWEEP/reports/results.FORMAT); '-' for standard output (csv, json).")
@hsm_config_option
def export(sweep: str | None, fmt: str, output: str | None, hsm_config: Path | None) -> None:
    """Export one row per task (parameters, outcome, metrics) as CSV, JSON or Parquet.

    The outcome columns are state, reason, exit_code, source, host, attempts, start, end and
    duration (seconds); the metrics are the task's metrics.json with nested keys flattened to
    a.b.c (`metric.` before a name that is already a column). Without SWEEP, the sweep on
    standard input, else the project's most recent one. Prints the file written.

    Example:

        hsm export sweep_20261122_063133 --format json -o - | jq '.[] | select(.state == "failed")'
    """
    to_stdout = output == "-"
    if to_stdout and fmt == "parquet":
        raise BadInput("--output -: parquet is binary and is not written to standard output; give a file name")
    export_cmd.check_format(fmt)
    s, _project = open_sweep(chosen_sweep(sweep, hsm_config), hsm_config)
    if to_stdout:
        content, count = export_cmd.table(s, fmt)
        click.echo(content, nl=False)
        note(f"Exported {count} tasks of {s.id}")
        return
    path, count = export_cmd.export(s, fmt, Path(output).absolute() if output else None)
    note(f"Exported {count} tasks of {s.id} to {shown_path(path)}")
    click.echo(str(path))


COMMANDS = (export,)
