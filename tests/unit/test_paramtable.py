"""The sweep's parameter table: one line per task, read back exactly; a sweep without one reads params.yaml."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from hsm.errors import HsmError
from hsm.paramtable import LineWriter, ParamTable, YamlWriter, write_task_params
from hsm.paths import SweepPaths

ROWS = {
    "task_001": {"lr": 0.1, "name": "a b", "model.layers": [1, 2], "opt": {"beta": 0.9}, "none": None, "flag": True},
    "task_002": {"lr": 1e-05, "name": "héllo \"quoted\" 'x'", "model.layers": [], "opt": {}, "none": None, "flag": False},
    # What JSON cannot carry exactly: a mapping with int keys, a date.
    "task_003": {"lr": 0.5, "name": "x", "model.layers": {1: "a", 2: "b"}, "opt": dt.date(2026, 1, 2), "none": None,
                 "flag": True},
}


def write_table(root: Path, rows: dict[str, dict]) -> SweepPaths:
    paths = SweepPaths(root)
    paths.tasks.mkdir(parents=True)
    writer = LineWriter()
    paths.param_table.write_text("".join(writer.line(tid, params) for tid, params in rows.items()), encoding="utf-8")
    return paths


def test_every_task_reads_back_as_written_types_and_order_included(tmp_path: Path) -> None:
    paths = write_table(tmp_path, ROWS)
    table = ParamTable(paths)
    for tid, params in ROWS.items():
        got = table.get(tid)
        assert got == params and list(got) == list(params)
        assert [type(v) for v in got.values()] == [type(v) for v in params.values()]
    assert table.get("task_004") == {} and table.get("nonsense") == {}
    lines = paths.param_table.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"task_id": "task_001", "params": ROWS["task_001"]}
    assert "params_yaml" in json.loads(lines[2])  # YAML text where JSON would change a value


def test_a_table_out_of_task_order_is_read_by_id(tmp_path: Path) -> None:
    rows = dict(reversed(list(ROWS.items())))
    assert ParamTable(write_table(tmp_path, rows)).many(["task_002", "task_001"]) == {
        "task_002": ROWS["task_002"], "task_001": ROWS["task_001"]}


def test_a_damaged_line_is_named(tmp_path: Path) -> None:
    paths = write_table(tmp_path, ROWS)
    paths.param_table.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(HsmError, match="task_params.jsonl: a line is not JSON"):
        ParamTable(paths).get("task_001")


def test_a_sweep_without_a_table_reads_its_tasks_params_yaml(tmp_path: Path) -> None:
    """The layout of an earlier hsm: params.yaml in every task dir, written at expand."""
    paths = SweepPaths(tmp_path)
    (paths.tasks / "task_001").mkdir(parents=True)
    paths.params("task_001").write_text("lr: 0.1\nname: a b\n", encoding="utf-8")
    table = ParamTable(paths)
    assert not table.present
    assert table.get("task_001") == {"lr": 0.1, "name": "a b"} and table.get("task_002") == {}
    write_task_params(paths, {"task_001": {"lr": 99}})  # its own params.yaml is the record: left alone
    assert paths.params("task_001").read_text(encoding="utf-8") == "lr: 0.1\nname: a b\n"


def test_a_first_submit_makes_the_task_dir_and_its_params_yaml(tmp_path: Path) -> None:
    paths = write_table(tmp_path, ROWS)
    write_task_params(paths, {tid: ROWS[tid] for tid in ("task_001", "task_003")})
    assert sorted(p.name for p in paths.tasks.iterdir()) == ["task_001", "task_003"]
    assert sorted(p.name for p in paths.task("task_001").iterdir()) == ["params.yaml"]
    assert yaml.safe_load(paths.params("task_003").read_text(encoding="utf-8")) == ROWS["task_003"]
    paths.params("task_001").write_text("torn", encoding="utf-8")
    write_task_params(paths, {"task_001": ROWS["task_001"]})  # again (a retry): replaced whole
    assert yaml.safe_load(paths.params("task_001").read_text(encoding="utf-8")) == ROWS["task_001"]
    assert sorted(p.name for p in paths.task("task_001").iterdir()) == ["params.yaml"]


def test_params_yaml_is_block_yaml_in_parameter_order() -> None:
    text = YamlWriter().text({"b": 1, "a": "x y", "c": [1, 2]})
    assert text == "b: 1\na: x y\nc:\n- 1\n- 2\n"
