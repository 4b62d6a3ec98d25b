"""`hsm export`: one row per task (parameters, outcome, metrics) as CSV, JSON or Parquet.

`task_rows` builds the table the reports share: `task_id`, the parameters, the outcome the
index records, then the metrics the training script wrote to `$HSM_TASK_DIR/metrics.json`,
nested keys flattened to `a.b.c`. A metric named like a parameter or an outcome column is
prefixed `metric.` (a parameter named like an outcome column, `param.`), so no column is
given twice. Remote tasks' metrics are read where `hsm collect` put them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hsm import store
from hsm.core.index import Index, TaskEntry
from hsm.errors import BadInput
from hsm.paramtable import ParamTable
from hsm.sweep import Sweep

FORMATS = ("csv", "json", "parquet")
# What the index says of each task, in the columns after its parameters.
OUTCOME_COLUMNS = ("state", "reason", "exit_code", "source", "host", "attempts", "start", "end", "duration")
FIXED_COLUMNS = ("task_id", *OUTCOME_COLUMNS)
PARQUET_INSTALL = "pip install 'hsm[parquet]'"

log = logging.getLogger(__name__)


def flatten(data: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """`data` as one flat mapping: nested mappings become `a.b.c` keys, each value a `cell`.

    An empty mapping has no key to flatten into and stays one cell (`{}`).
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = cell(value)
    return out


def cell(value: Any) -> Any:
    """A value as one table cell: lists and mappings as JSON text, scalars as they are."""
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def params_of(table: ParamTable, tid: str) -> dict[str, Any]:
    """Task `tid`'s parameters from the sweep's parameter table, flattened; {} when it has none."""
    return flatten(table.get(tid))


def metrics_of(sweep: Sweep, tid: str) -> dict[str, Any]:
    """Task `tid`'s metrics.json, flattened; {} when it wrote none (or none readable, with a warning)."""
    path = sweep.paths.metrics(tid)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        log.warning("%s: left out, not readable as JSON: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("%s: left out, not a JSON object", path)
        return {}
    return flatten(data)


def outcome_of(entry: TaskEntry) -> dict[str, Any]:
    """The outcome columns of one task's index entry (`attempts` 0 when it never ran)."""
    row: dict[str, Any] = {name: entry.get(name) for name in OUTCOME_COLUMNS}
    row["attempts"] = entry.get("attempt") or 0
    return row


def union(mappings: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every key of `mappings`, in the order first seen."""
    return list(dict.fromkeys(key for m in mappings for key in m))


def column_names(names: Iterable[str], taken: set[str], prefix: str) -> dict[str, str]:
    """Each name's column: the name itself, else `prefix` before it until it is free.

    The chosen columns are added to `taken`.
    """
    out: dict[str, str] = {}
    for name in names:
        column = name
        while column in taken:
            column = prefix + column
        taken.add(column)
        out[name] = column
    return out


def task_rows(sweep: Sweep, index: Index | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """The sweep's table: its columns, and one row per task in task order.

    Columns: `task_id`, every parameter, the outcome columns, every metric; the union over
    tasks, so each row holds every column, None where a task has no value.
    """
    tasks = (sweep.read_index() if index is None else index)["tasks"]
    table = ParamTable(sweep.paths)
    params = {tid: params_of(table, tid) for tid in tasks}
    metrics = {tid: metrics_of(sweep, tid) for tid in tasks}
    taken = set(FIXED_COLUMNS)
    param_columns = column_names(union(params.values()), taken, "param.")
    metric_columns = column_names(union(metrics.values()), taken, "metric.")
    columns = ["task_id", *param_columns.values(), *OUTCOME_COLUMNS, *metric_columns.values()]
    rows = []
    for tid, entry in tasks.items():
        row: dict[str, Any] = dict.fromkeys(columns)
        row["task_id"] = tid
        row.update((param_columns[name], value) for name, value in params[tid].items())
        row.update(outcome_of(entry))
        row.update((metric_columns[name], value) for name, value in metrics[tid].items())
        rows.append(row)
    return columns, rows


def render_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """The table as CSV with a header line; None is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in rows)
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    # Strict JSON has no NaN or infinity.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def render_json(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """The table as a JSON array of row objects, one per line; NaN and infinities are null."""
    lines = [
        json.dumps({c: _json_value(row[c]) for c in columns}, ensure_ascii=False, allow_nan=False, default=str)
        for row in rows
    ]
    return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"


def parquet_modules() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet; BadInput saying how to install them when they are missing."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise BadInput(f"--format parquet needs pyarrow, which is not installed: {PARQUET_INSTALL}") from None
    return pyarrow, pyarrow.parquet


def _arrow_column(pa: Any, values: list[Any]) -> Any:
    """One column as an Arrow array: of its values' own type when they share one, else as text."""
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def render_parquet(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    """The table as a Parquet file."""
    pa, pq = parquet_modules()
    table = pa.table({c: _arrow_column(pa, [row[c] for row in rows]) for c in columns})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def render(fmt: str, columns: list[str], rows: list[dict[str, Any]]) -> str | bytes:
    """The table in `fmt` (csv, json: text; parquet: bytes)."""
    if fmt == "csv":
        return render_csv(columns, rows)
    if fmt == "json":
        return render_json(columns, rows)
    if fmt == "parquet":
        return render_parquet(columns, rows)
    raise BadInput(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")


def default_output(sweep: Sweep, fmt: str) -> Path:
    """Where an export goes unless told: `reports/results.<fmt>` in the sweep dir."""
    return sweep.paths.reports / f"results.{fmt}"


def check_output(path: Path) -> None:
    """Refuse an output path that is a directory or lies in a directory that does not exist."""
    if path.is_dir():
        raise BadInput(f"--output: {path}: is a directory, expected a file name")
    if not path.parent.is_dir():
        raise BadInput(f"--output: {path}: no such directory {path.parent}")


def check_format(fmt: str) -> None:
    """Refuse an unknown format, and parquet when pyarrow is missing, before any work."""
    if fmt not in FORMATS:
        raise BadInput(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        parquet_modules()


def table(sweep: Sweep, fmt: str) -> tuple[str | bytes, int]:
    """The sweep's table rendered in `fmt`, and its number of rows."""
    check_format(fmt)
    columns, rows = task_rows(sweep)
    return render(fmt, columns, rows), len(rows)


def export(sweep: Sweep, fmt: str, output: Path | None = None) -> tuple[Path, int]:
    """Write the sweep's table in `fmt` to `output` (default `reports/results.<fmt>`) atomically.

    Returns the path written and the number of rows. Bad input is refused before anything is written.
    """
    check_format(fmt)
    path = output if output is not None else default_output(sweep, fmt)
    if output is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    check_output(path)
    content, count = table(sweep, fmt)
    store.atomic_write_bytes(path, content.encode("utf-8") if isinstance(content, str) else content)
    return path, count
