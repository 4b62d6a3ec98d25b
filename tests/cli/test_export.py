"""`hsm export`: a real sweep's tasks as CSV, JSON and Parquet that pandas loads with no options.

A small local sweep runs once for the module: its training script writes a metrics.json with
nested keys into $HSM_TASK_DIR, one combination fails with exit code 3 and writes none.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas
import pytest

from hsm.commands import export as export_cmd
from hsm.errors import BadInput
from hsm.sweep import Sweep
from tests.cli.hsmproc import ROOT, Project, make_project
from tests.cli.test_bad_input import assert_bad_input

# Hydra-style arguments (`lr=0.1 model.depth=2 hydra.run.dir=...`), parsed by hand.
TRAIN_METRICS_PY = """\
import json, os, sys

args = dict(a.split("=", 1) for a in sys.argv[1:])
lr, depth = float(args["lr"]), int(args["model.depth"])
if lr == 0.01 and depth == 2:
    print("diverged", file=sys.stderr)
    sys.exit(3)
metrics = {"test_accuracy": 0.5 + depth / 10, "loss": {"train": lr * 2, "val": {"mean": lr * 3}},
           "history": [1.0, 0.5], "lr": lr, "state": "converged"}
if depth == 2:
    metrics["extra"] = 7
with open(os.path.join(os.environ["HSM_TASK_DIR"], "metrics.json"), "w") as fh:
    json.dump(metrics, fh)
"""

SWEEP = """\
grid:
  lr: [0.1, 0.01]
  model:
    depth: [1, 2]
  optimizer: [{name: adam, betas: {b1: 0.9}}]
"""

PARAMS = ["lr", "model.depth", "optimizer.name", "optimizer.betas.b1"]
OUTCOME = ["state", "reason", "exit_code", "source", "host", "attempts", "start", "end", "duration"]
# `lr` and `state` are a parameter and an outcome column already: the metrics of that name are prefixed.
METRICS = ["test_accuracy", "loss.train", "loss.val.mean", "history", "metric.lr", "metric.state", "extra"]
COLUMNS = ["task_id", *PARAMS, *OUTCOME, *METRICS]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:
    """The project and its sweep of 4 tasks, run to the end (task_004 failed)."""
    project = make_project(tmp_path_factory.mktemp("export") / "proj")
    project.write("train.py", TRAIN_METRICS_PY)
    project.sweep_config(SWEEP)
    try:
        result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2")
        assert result.returncode == 1, result.stderr  # one task failed
        yield project, Path(result.stdout.strip())
    finally:
        project.stop_leftovers()


def exported(project: Project, *args: str) -> Path:
    """`hsm export ARGS`; the one line it printed on stdout, checked to be the file written."""
    result = project.hsm("export", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    path = Path(lines[0])
    assert path.is_absolute() and path.is_file(), path
    return path


def check_table(frame: pandas.DataFrame) -> None:
    """The sweep's table, however it was loaded."""
    assert list(frame.columns) == COLUMNS
    assert list(frame["task_id"]) == ["task_001", "task_002", "task_003", "task_004"]
    assert list(frame["lr"]) == [0.1, 0.1, 0.01, 0.01]
    assert list(frame["model.depth"]) == [1, 2, 1, 2]
    assert set(frame["optimizer.name"]) == {"adam"} and set(frame["optimizer.betas.b1"]) == {0.9}
    assert list(frame["state"]) == ["completed", "completed", "completed", "failed"]
    assert list(frame["exit_code"]) == [0, 0, 0, 3]
    assert frame["reason"].iloc[3] == "exit_code" and frame["reason"].iloc[:3].isna().all()
    assert list(frame["attempts"]) == [1, 1, 1, 1] and set(frame["source"]) == {"local"}
    assert (frame["duration"] >= 0).all() and frame["start"].notna().all() and frame["end"].notna().all()
    assert list(frame["test_accuracy"].iloc[:3]) == pytest.approx([0.6, 0.7, 0.6])
    assert list(frame["loss.val.mean"].iloc[:3]) == pytest.approx([0.3, 0.3, 0.03])
    assert list(frame["metric.lr"].iloc[:3]) == [0.1, 0.1, 0.01]
    assert list(frame["metric.state"].iloc[:3]) == ["converged"] * 3
    assert json.loads(frame["history"].iloc[0]) == [1.0, 0.5]
    assert frame["extra"].iloc[1] == 7 and pandas.isna(frame["extra"].iloc[0])
    # The failed task wrote no metrics: every metric cell is empty.
    assert frame.loc[3, METRICS].isna().all()


def test_csv_goes_to_the_reports_dir_and_loads_with_read_csv(finished: tuple[Project, Path]) -> None:
    project, sweep = finished
    path = exported(project, sweep.name, "--format", "csv")
    assert path == sweep / "reports" / "results.csv"
    check_table(pandas.read_csv(path))
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")], "a temporary file was left"


def test_json_is_a_list_of_rows_for_json_and_pandas(finished: tuple[Project, Path]) -> None:
    project, sweep = finished
    (project.root / "out").mkdir(exist_ok=True)
    path = exported(project, str(sweep), "--format", "json", "--output", "out/results.json")
    assert path == project.root / "out" / "results.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(rows, list) and len(rows) == 4
    assert all(list(row) == COLUMNS for row in rows)
    assert rows[3]["exit_code"] == 3 and rows[3]["test_accuracy"] is None
    assert rows[0]["loss.train"] == pytest.approx(0.2) and rows[0]["attempts"] == 1
    check_table(pandas.read_json(path))


def test_parquet_keeps_the_column_types(finished: tuple[Project, Path]) -> None:
    project, sweep = finished
    path = exported(project, str(sweep), "--format", "parquet")
    assert path == sweep / "reports" / "results.parquet"
    frame = pandas.read_parquet(path)
    check_table(frame)
    assert frame["model.depth"].dtype.kind == "i" and frame["lr"].dtype.kind == "f"


def test_output_dash_writes_the_table_to_stdout(finished: tuple[Project, Path]) -> None:
    project, sweep = finished
    as_csv = project.hsm("export", str(sweep), "--output", "-")
    assert as_csv.returncode == 0, as_csv.stderr
    check_table(pandas.read_csv(io.StringIO(as_csv.stdout)))
    as_json = project.hsm("export", str(sweep), "--format", "json", "-o", "-")
    assert as_json.returncode == 0, as_json.stderr
    assert [row["task_id"] for row in json.loads(as_json.stdout)] == ["task_001", "task_002", "task_003", "task_004"]


def test_without_sweep_the_piped_one_else_the_latest(finished: tuple[Project, Path]) -> None:
    project, sweep = finished
    latest = project.hsm("export", "--format", "json")
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout == f"{sweep / 'reports' / 'results.json'}\n"
    piped = project.shell(f"echo {sweep} | hsm export --format csv")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == f"{sweep / 'reports' / 'results.csv'}\n"


def test_bad_input_is_one_line_and_writes_nothing(finished: tuple[Project, Path]) -> None:
    project, sweep = finished
    before = sorted(p.name for p in (sweep / "reports").iterdir())
    assert_bad_input(project.hsm("export", str(sweep), "--format", "xml"), "--format", "xml")
    assert_bad_input(project.hsm("export", "no_such_sweep"), "unknown sweep", "no_such_sweep")
    assert_bad_input(project.hsm("export", str(sweep), "--format", "parquet", "-o", "-"), "parquet", "--output -")
    assert_bad_input(project.hsm("export", str(sweep), "-o", "missing/dir/x.csv"), "--output", "no such directory")
    assert_bad_input(project.hsm("export", str(sweep), "-o", str(sweep)), "--output", "is a directory")
    assert sorted(p.name for p in (sweep / "reports").iterdir()) == before


def test_parquet_without_pyarrow_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import pyarrow` raise ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(BadInput) as caught:
        export_cmd.check_format("parquet")
    assert caught.value.exit_code == 2
    assert "pip install 'hsm[parquet]'" in str(caught.value) and "\n" not in str(caught.value)
    export_cmd.check_format("csv")  # the text formats need nothing more


def test_unreadable_metrics_are_left_out_and_nan_is_null_in_json(finished: tuple[Project, Path], tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    _project, sweep = finished
    copy = Sweep.open(shutil.copytree(sweep, tmp_path / sweep.name, ignore=shutil.ignore_patterns(".hsm")))
    copy.paths.metrics("task_001").write_text("{broken", encoding="utf-8")
    copy.paths.metrics("task_002").write_text("[1, 2]", encoding="utf-8")
    copy.paths.metrics("task_003").write_text('{"score": NaN, "best": {"at": Infinity}}', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        columns, rows = export_cmd.task_rows(copy)
    assert columns == ["task_id", *PARAMS, *OUTCOME, "score", "best.at"]
    assert "task_001/metrics.json" in caplog.text and "task_002/metrics.json" in caplog.text
    assert rows[0]["score"] is None and math.isnan(rows[2]["score"]) and rows[2]["best.at"] == math.inf
    assert json.loads(export_cmd.render_json(columns, rows))[2]["best.at"] is None


def test_flatten_walks_mappings_and_keeps_the_rest_as_json_text() -> None:
    data = {"a": {"b": {"c": 1}, "d": [1, {"e": 2}]}, "f": {}, "g": None, "h": "x"}
    assert export_cmd.flatten(data) == {"a.b.c": 1, "a.d": '[1, {"e": 2}]', "f": "{}", "g": None, "h": "x"}


def test_the_example_sweep_exports_27_rows(tmp_path: Path) -> None:
    example = shutil.copytree(ROOT / "examples" / "simple_mlp", tmp_path / "simple_mlp",
                              ignore=shutil.ignore_patterns("outputs"))
    project = Project(example)
    try:
        run = project.hsm("run", "--sources", "local:4", "--poll-interval", "0.2", timeout=300)
        assert run.returncode == 0, run.stderr
        path = exported(project, "--format", "csv")
    finally:
        project.stop_leftovers()
    assert path.parent.parent == Path(run.stdout.strip())
    frame = pandas.read_csv(path)
    assert len(frame) == 27
    params = ["learning_rate", "batch_size", "hidden_dim"]
    assert list(frame.columns[1:4]) == params
    assert {"test_accuracy", "train_loss", "seconds"} <= set(frame.columns)
    assert set(frame["state"]) == {"completed"} and frame["test_accuracy"].between(0, 1).all()
    combos = set(itertools.product([0.05, 0.1, 0.3], [16, 32, 64], [4, 8, 16]))
    assert set(frame[params].itertuples(index=False, name=None)) == combos
