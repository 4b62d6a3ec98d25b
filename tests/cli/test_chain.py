"""The steps chain through standard input and output, and each step is safe to run again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from tests.cli.hsmproc import (
    FINAL,
    Project,
    job_command,
    read_index,
    read_param_table,
    read_status,
    started_lines,
    wait_for,
)

SEED_002 = """\
# sweeps/sweep_config.yaml
grid:
  learning_rate: [0.001, 0.01, 0.1]
  batch_size: [32, 64, 128]
  hidden_dim: [64, 128, 256]

metadata:
  description: "Hyperparameter search for my model"
  tags: ["baseline", "grid_search"]
"""


def quick_sweep(project: Project, n: int = 4, sleep: float = 0.2) -> Path:
    values = ", ".join(str(i) for i in range(1, n + 1))
    return project.sweep_config(f"grid:\n  x: [{values}]\ncommand: \"{job_command(f'--sleep {sleep}')}\"\n")


def test_pipeline_then_poll_completes_every_task(project: Project) -> None:
    quick_sweep(project, n=5)
    result = project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:2 | hsm-submit")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    sweep = Path(lines[0])
    assert sweep.parent == project.outputs.resolve() and (sweep / "task_mapping.yaml").is_file()

    def poll_done() -> bool:
        polled = project.shell(f"hsm-poll {sweep}")
        assert polled.returncode == 0, polled.stderr
        assert polled.stdout == f"{sweep}\n"
        return all(t["state"] in FINAL for t in read_index(sweep)["tasks"].values())

    wait_for(poll_done, 60, "the chained sweep to finish", interval=0.1)
    index = read_index(sweep)
    assert {tid: t["state"] for tid, t in index["tasks"].items()} == {f"task_00{i}": "completed" for i in range(1, 6)}
    for tid in index["tasks"]:
        assert (sweep / "tasks" / tid / "stdout.log").read_text().startswith(f"stdout of {tid}")


def test_running_each_step_again_changes_nothing(project: Project) -> None:
    quick_sweep(project, n=4, sleep=0.5)
    result = project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:2 | hsm-submit")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip())

    # Again while the tasks are queued and running: nothing is delivered a second time.
    again = project.shell(f"hsm-assign {sweep} --sources local:2 | hsm-submit && hsm-submit {sweep}")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{sweep}\n{sweep}\n"
    assert "submitted to" not in again.stderr

    project.poll_until_final(sweep)
    mapping = (sweep / "task_mapping.yaml").read_bytes()
    for script in (f"hsm-assign {sweep} --sources local:2", f"hsm-submit {sweep}",
                   f"echo {sweep} | hsm-assign --sources local:2 | hsm-submit", f"hsm-poll {sweep}"):
        rerun = project.shell(script)
        assert rerun.returncode == 0, rerun.stderr
        assert rerun.stdout == f"{sweep}\n"
        assert (sweep / "task_mapping.yaml").read_bytes() == mapping, f"{script} changed task_mapping.yaml"

    time.sleep(1.0)  # a runner that was handed a task again would have started it by now
    tasks = sorted(read_index(sweep)["tasks"])
    assert sorted(started_lines(sweep)) == [f"S {tid} 1" for tid in tasks]
    for tid in tasks:
        status = read_status(sweep / "tasks" / tid)
        assert status is not None and status["attempt"] == 1 and status["state"] == "completed", status
    assert all(t["attempt"] == 1 for t in read_index(sweep)["tasks"].values())


def test_expand_with_a_sweep_id_is_idempotent(project: Project) -> None:
    quick_sweep(project)
    first = project.shell("hsm-expand sweeps/sweep_config.yaml --sweep-id mysweep")
    assert first.returncode == 0, first.stderr
    sweep = Path(first.stdout.strip())
    assert sweep.name == "mysweep"
    before = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
    second = project.shell("hsm-expand sweeps/sweep_config.yaml --sweep-id mysweep")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == before
    assert project.output_entries() == ["mysweep"]


def test_expands_started_together_get_different_sweep_ids(project: Project) -> None:
    quick_sweep(project)
    procs = [project.start("expand", "sweeps/sweep_config.yaml") for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
    dirs = [Path(out.strip()) for out, _ in outs]
    assert len({d.name for d in dirs}) == 4, dirs
    assert sorted(project.output_entries()) == sorted(d.name for d in dirs)
    for d in dirs:
        assert sorted(read_index(d)["tasks"]) == ["task_001", "task_002", "task_003", "task_004"]

    # And one after the other, well within the same second.
    a, b = project.expand("sweeps/sweep_config.yaml"), project.expand("sweeps/sweep_config.yaml")
    assert a != b and a.is_dir() and b.is_dir()


def test_seed_002_grid_expands_in_grid_order(project: Project) -> None:
    project.sweep_config(SEED_002)
    sweep = project.expand("sweeps/sweep_config.yaml")
    table = read_param_table(sweep)
    tasks = list(table)
    assert tasks == [f"task_{i:03d}" for i in range(1, 28)]
    assert list(read_index(sweep)["tasks"]) == tasks
    # No task has a directory before its first submit: the table holds the parameters.
    assert not any((sweep / "tasks").iterdir())
    expected = [
        {"learning_rate": 0.001, "batch_size": 32, "hidden_dim": 64},
        {"learning_rate": 0.001, "batch_size": 32, "hidden_dim": 128},
        {"learning_rate": 0.001, "batch_size": 32, "hidden_dim": 256},
        {"learning_rate": 0.001, "batch_size": 64, "hidden_dim": 64},
    ]
    for tid, params in zip(tasks, expected):
        assert table[tid] == params
        assert list(table[tid]) == ["learning_rate", "batch_size", "hidden_dim"]
    assert table["task_027"] == {"learning_rate": 0.1, "batch_size": 128, "hidden_dim": 256}
    meta = yaml.safe_load((sweep / "sweep_metadata.yaml").read_text())
    assert meta["metadata"] == {"description": "Hyperparameter search for my model", "tags": ["baseline", "grid_search"]}
    assert (sweep / "sweep_config.yaml").read_text() == SEED_002


def test_params_yaml_maps_dotted_names_in_order(project: Project) -> None:
    project.sweep_config(
        "grid:\n"
        "  optimizer:\n    lr: [0.1, 0.01]\n"
        "  model:\n    hidden_dim: [8]\n    layers:\n      depth: [2, 3]\n"
        "  seed: [7]\n"
    )
    sweep = project.expand("sweeps/sweep_config.yaml")
    table = read_param_table(sweep)
    assert list(table["task_001"]) == ["optimizer.lr", "model.hidden_dim", "model.layers.depth", "seed"]
    # Each task's params.yaml is written into its directory by its first submit.
    for step in (["assign", str(sweep), "--sources", "local:2"], ["submit", str(sweep)]):
        assert project.hsm(*step).returncode == 0
    project.poll_until_final(sweep)
    text = (sweep / "tasks" / "task_001" / "params.yaml").read_text()
    loaded = yaml.safe_load(text)
    assert list(loaded) == ["optimizer.lr", "model.hidden_dim", "model.layers.depth", "seed"]
    assert loaded == {"optimizer.lr": 0.1, "model.hidden_dim": 8, "model.layers.depth": 2, "seed": 7}
    assert yaml.safe_load((sweep / "tasks" / "task_002" / "params.yaml").read_text())["model.layers.depth"] == 3
    assert yaml.safe_load((sweep / "tasks" / "task_003" / "params.yaml").read_text())["optimizer.lr"] == 0.01
    assert all(yaml.safe_load((sweep / "tasks" / tid / "params.yaml").read_text()) == params
               for tid, params in table.items())


def test_count_only_prints_only_the_number(project: Project) -> None:
    project.sweep_config(SEED_002)
    result = project.shell("hsm-expand sweeps/sweep_config.yaml --count-only")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "27\n"
    assert project.output_entries() == []
    limited = project.hsm("expand", "sweeps/sweep_config.yaml", "--count-only", "--max-tasks", "5")
    assert limited.returncode == 0 and limited.stdout == "5\n", limited
    run = project.hsm("run", "--config", "sweeps/sweep_config.yaml", "--count-only")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Total parameter combinations: 27\n"
    assert project.output_entries() == []


def test_dry_run_writes_nothing(project: Project) -> None:
    project.sweep_config(SEED_002)
    for args in (("expand", "sweeps/sweep_config.yaml", "--dry-run"),
                 ("run", "--config", "sweeps/sweep_config.yaml", "--dry-run", "--sources", "local:2")):
        result = project.hsm(*args)
        assert result.returncode == 0, result.stderr
        assert "27" in result.stdout
        for name in ("learning_rate", "batch_size", "hidden_dim"):
            assert name in result.stdout
        assert project.output_entries() == []
        assert not project.outputs.exists()


def test_status_json(project: Project) -> None:
    project.sweep_config(f"grid:\n  x: [1, 2, 3]\ncommand: \"{job_command('--fail-on 2 --code 5')}\"\n")
    result = project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:2 | hsm-submit")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip())

    fresh = project.status(sweep.name)
    assert fresh["sweep_id"] == sweep.name and fresh["total"] == 3
    assert sum(fresh["counts"].values()) == 3

    project.poll_until_final(sweep)
    status = project.status(sweep)
    assert status["sweep_id"] == sweep.name
    assert status["total"] == 3
    assert status["counts"]["completed"] == 2 and status["counts"]["failed"] == 1
    assert sum(status["counts"].values()) == 3
    rows = {t["id"]: t for t in status["tasks"]}
    assert set(rows) == {"task_001", "task_002", "task_003"}
    for row in rows.values():
        assert {"id", "state", "source", "exit_code"} <= set(row)
        assert row["source"] == "local"
    assert (rows["task_001"]["state"], rows["task_001"]["exit_code"]) == ("completed", 0)
    assert (rows["task_002"]["state"], rows["task_002"]["exit_code"]) == ("failed", 5)
    assert (rows["task_003"]["state"], rows["task_003"]["exit_code"]) == ("completed", 0)
    # The most recent sweep is the default.
    latest = project.hsm("status", "--json")
    assert latest.returncode == 0 and json.loads(latest.stdout)["sweep_id"] == sweep.name
