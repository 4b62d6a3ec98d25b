"""What a sweep dir holds: the parameter table, task dirs made when tasks start, few files per
task; and a sweep made by the layout of an earlier hsm, still read and finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hsm.config import load_project
from hsm.core.transitions import reserve_attempts, undelivered
from hsm.sources import make_source
from hsm.sources.hpc.source import HpcSource
from hsm.sweep import Sweep
from tests.cli.hsmproc import ROOT, Project, job_command, read_index, read_param_table, task_entries

FOUR = ["params.yaml", "status.yaml", "stderr.log", "stdout.log"]


def run_steps(project: Project, sweep: Path) -> dict:
    for step in (["assign", str(sweep), "--sources", "local:2"], ["submit", str(sweep)]):
        result = project.hsm(*step)
        assert result.returncode == 0, result.stderr
    return project.poll_until_final(sweep)


def to_the_earlier_layout(sweep: Path) -> dict[str, dict]:
    """What an earlier hsm's expand made of this sweep: a params.yaml in every task's directory
    (and no parameter table); each task's parameters."""
    table = read_param_table(sweep)
    for tid, params in table.items():
        (sweep / "tasks" / tid).mkdir()
        (sweep / "tasks" / tid / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (sweep / "task_params.jsonl").unlink()
    return table


def test_a_retried_task_keeps_four_files_and_its_attempts(project: Project) -> None:
    project.write("hsm_config.yaml", "paths: {training_script: train.py}\ncompute: {disk_min_free_gb: 0.05}\n")
    project.sweep_config(f"grid:\n  x: [1, 2]\ncommand: \"{job_command('--fail-on', '2')}\"\n")
    sweep = project.expand("sweeps/sweep_config.yaml")
    run_steps(project, sweep)
    retried = project.hsm("complete", str(sweep), "--sources", "local:1", "--retry-failed", timeout=120)
    assert retried.returncode in (0, 1), retried.stderr
    index = project.poll_until_final(sweep)
    assert index["tasks"]["task_002"]["attempt"] == 2
    for tid in ("task_001", "task_002"):
        assert task_entries(sweep / "tasks" / tid) == (FOUR if tid == "task_001" else ["attempts", *FOUR])
    assert sorted(p.name for p in (sweep / "tasks" / "task_002" / "attempts" / "1").iterdir()) == \
        ["status.yaml", "stderr.log", "stdout.log"]


def test_a_sweep_of_the_earlier_layout_is_read_and_finished(project: Project) -> None:
    """Task dirs with params.yaml from expand, no table; one task submitted the earlier way (its
    argv file, a queue batch without argv) still waiting for the runner."""
    project.sweep_config(f"grid:\n  x: [1, 2, 3]\ncommand: \"{job_command()}\"\n")
    sweep = project.expand("sweeps/sweep_config.yaml")
    assert project.hsm("assign", str(sweep), "--sources", "local:2").returncode == 0
    table = to_the_earlier_layout(sweep)
    index = read_index(sweep)
    index["tasks"]["task_001"].update(state="submitted", attempt=1, job="runner", submitted_at="2026-01-01T00:00:00Z")
    (sweep / "task_mapping.yaml").write_text(json.dumps(index), encoding="utf-8")
    argv = [sys.executable, "job.py", "--x", "from the argv file"]
    (sweep / "tasks" / "task_001" / "argv").write_text("".join(a + "\x00" for a in argv), encoding="utf-8")
    queue = sweep / ".hsm" / "runners" / "local" / "queue"
    queue.mkdir(parents=True)
    batch = {"tasks_dir": str(sweep / "tasks"), "max_parallel": 2, "tasks": [["task_001", 1]]}
    (queue / "00000000000000000001-1-submit.json").write_text(json.dumps(batch), encoding="utf-8")

    status = project.hsm("status", str(sweep), "--task", "task_002", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["params"] == {"x": 2}
    index = run_steps(project, sweep)  # submits task_002 and task_003; the runner takes task_001 too
    assert {t["state"] for t in index["tasks"].values()} == {"completed"}, index["tasks"]
    assert (sweep / "tasks" / "task_001" / "stdout.log").read_text() == "stdout of task_001 x=from the argv file\n"
    for tid, params in table.items():
        assert yaml.safe_load((sweep / "tasks" / tid / "params.yaml").read_text()) == params
    exported = project.hsm("export", str(sweep), "--format", "json")
    assert exported.returncode == 0, exported.stderr
    rows = json.loads((sweep / "reports" / "results.json").read_text())
    assert [(r["task_id"], r["x"], r["state"]) for r in rows] == [
        ("task_001", 1, "completed"), ("task_002", 2, "completed"), ("task_003", 3, "completed")]


def test_a_project_wrapper_that_reads_the_argv_file_still_runs(project: Project) -> None:
    """A project's own templates/task.sh, copied from an earlier hsm, reads TASK_DIR/argv: hsm
    writes that file for it (and the task's params.yaml at submit)."""
    wrapper = (ROOT / "templates" / "task.sh").read_text(encoding="utf-8")
    earlier = wrapper.replace('if (( $# > 2 )); then\n  argv=("${@:3}")\nelif', "if false; then :\nelif")
    assert earlier != wrapper and '"${@:3}"' not in earlier
    project.write("templates/task.sh", earlier)
    project.sweep_config(f"grid:\n  x: [1, 2]\ncommand: \"{job_command()}\"\n")
    sweep = project.expand("sweeps/sweep_config.yaml")
    index = run_steps(project, sweep)
    assert {t["state"] for t in index["tasks"].values()} == {"completed"}, index["tasks"]
    for x, tid in enumerate(("task_001", "task_002"), start=1):
        assert (sweep / "tasks" / tid / "stdout.log").read_text() == f"stdout of {tid} x={x}\n"
        assert task_entries(sweep / "tasks" / tid) == sorted(["argv", *FOUR])


@pytest.mark.parametrize("system, index_var, job_var, job_id", [("slurm", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_JOB_ID", "71_{i}"),
                                                                ("pbs", "PBS_ARRAYID", "PBS_JOBID", "82[{i}]")])
def test_a_scheduler_task_run_by_its_job_script_leaves_four_files(project: Project, system: str, index_var: str,
                                                                  job_var: str, job_id: str) -> None:
    """An HPC source's staged chunk (task list with each task's argv, job script), run by bash as
    the scheduler would run each array index: the command gets its arguments as given, the
    status names the job, and the task's directory holds the four files."""
    project.write("hsm_config.yaml", "paths: {training_script: train.py}\ncompute: {disk_min_free_gb: 0.05}\n"
                  f"compute_sources:\n  cluster: {{type: hpc, system: {system}, max_parallel_tasks: 2}}\n")
    project.sweep_config(f"grid:\n  x: [1, 'a b', \"it's\", '']\ncommand: \"{job_command()}\"\n")
    sweep_dir = project.expand("sweeps/sweep_config.yaml")
    assert project.hsm("assign", str(sweep_dir), "--sources", "cluster").returncode == 0
    sweep = Sweep.open(sweep_dir)
    with sweep.update() as u:
        u.changed = bool(reserve_attempts(u.tasks, "2026-01-01T00:00:00Z"))
        refs, entry = undelivered(u.tasks)["cluster"], u.index["sources"]["cluster"]
    source = make_source("cluster", entry, sweep, load_project(cwd=project.root))
    assert isinstance(source, HpcSource)
    ((part, _, script),) = source._stage(refs)
    for i in range(len(part)):
        # Slurm names the element ARRAY_INDEX from two variables, PBS gives the element's own id.
        env = {"PATH": os.environ["PATH"], index_var: str(i), job_var: "71" if system == "slurm" else job_id.format(i=i)}
        ran = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
    for i, (x, ref) in enumerate(zip(["1", "a b", "it's", ""], part)):
        task = sweep_dir / "tasks" / ref.id
        assert task_entries(task) == FOUR
        assert (task / "stdout.log").read_text() == f"stdout of {ref.id} x={x}\n"
        status = yaml.safe_load((task / "status.yaml").read_text())
        assert status["state"] == "completed" and status["job_id"] == job_id.format(i=i)
