"""GPU ids shared out among real task processes: on this machine, and on an SSH host of the test bed.

No GPU is needed: an id reaches a task only as CUDA_VISIBLE_DEVICES. Each task records what it
got and when it ran; no two tasks whose runs overlap may have shared an id.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.hsmproc import Project, alive, hsm_argv, hsm_env, read_index, read_status, wait_for
from tests.integration.conftest_local import local_project  # noqa: F401  (the `project` fixture)
from tests.integration.test_local import use_wrapper
from tests.integration.test_ssh import SshProject, remote_base  # noqa: F401  (`remote_base`: a fixture)
from tests.integration.test_ssh import project as ssh_project  # noqa: F401  (the fixture, as `ssh_project`)

GPU_JOB = """\
import json, os, sys, time
start = time.time()
time.sleep(float(sys.argv[1]))
with open(os.path.join(os.environ["HSM_OUTPUT_DIR"], "gpu.json"), "w") as fh:
    json.dump({"cvd": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}, fh)
"""

FAKE_NVIDIA_SMI = """\
#!/bin/sh
echo "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5f3c1d2e-aaaa-bbbb-cccc-000000000000)"
echo "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-6a7b8c9d-aaaa-bbbb-cccc-111111111111)"
"""


def gpu_project(project: Project | SshProject, n: int, sleep: float) -> None:
    project.write("gpu_job.py", GPU_JOB)
    values = ", ".join(str(i) for i in range(1, n + 1))
    project.write("sweeps/sweep_config.yaml", f"grid:\n  i: [{values}]\ncommand: \"{{python}} gpu_job.py {sleep}\"\n")


def local_config(project: Project, source: str) -> None:
    project.write("hsm_config.yaml", "paths:\n  training_script: train.py\ncompute:\n  disk_min_free_gb: 0.05\n"
                                     f"compute_sources:\n  local:\n    type: local\n{source}")


def runs(sweep: Path, ends: tuple[str, ...] = ("completed",)) -> dict[str, dict[str, Any]]:
    """Per task: the ids it saw, when it ran, and what its status.yaml says (its state one of `ends`)."""
    out = {}
    for task in sorted((sweep / "tasks").glob("task_*")):
        record = json.loads((task / "results" / "gpu.json").read_text())
        status = read_status(task)
        assert status is not None and status["state"] in ends, (task.name, status)
        record["ids"] = record["cvd"].split(",") if record["cvd"] else []
        record["status_gpus"] = status.get("gpus")
        out[task.name] = record
    return out


def check_shared_out(sweep: Path, ids: set[str], per_task: int, n: int,
                     ends: tuple[str, ...] = ("completed",)) -> dict[str, dict[str, Any]]:
    """Every task got `per_task` distinct ids of `ids`, recorded in its status.yaml; no id was in two runs at once."""
    got = runs(sweep, ends)
    assert len(got) == n
    for tid, run in got.items():
        assert len(run["ids"]) == len(set(run["ids"])) == per_task and set(run["ids"]) <= ids, (tid, run)
        assert run["status_gpus"] == [int(i) if i.isdigit() else i for i in run["ids"]], (tid, run)
    for (a, ra), (b, rb) in itertools.combinations(got.items(), 2):
        if ra["start"] < rb["end"] and rb["start"] < ra["end"]:  # they ran at the same time
            assert not set(ra["ids"]) & set(rb["ids"]), (a, ra, b, rb)
    return got


def most_at_once(got: dict[str, dict[str, Any]]) -> int:
    return max(sum(1 for r in got.values() if r["start"] <= run["start"] < r["end"]) for run in got.values())


def submit(project: Project) -> Path:
    result = project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local | hsm-submit")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


# --- this machine --------------------------------------------------------------------------------


def test_two_gpu_ids_go_round_six_tasks_one_each(project: Project) -> None:
    local_config(project, "    max_parallel_tasks: 4\n    gpus: [0, 1]\n")
    gpu_project(project, 6, 0.5)
    sweep = submit(project)
    project.poll_until_final(sweep, timeout=60)  # separate `hsm poll` invocations meanwhile
    got = check_shared_out(sweep, {"0", "1"}, 1, 6)
    assert most_at_once(got) <= 2  # two ids, one each: never more than two tasks, whatever max_parallel says
    assert {tuple(r["ids"]) for r in got.values()} == {("0",), ("1",)}
    started = (sweep / ".hsm" / "runners" / "local" / "started").read_text().splitlines()
    assert sorted(line.split()[3] for line in started if line.startswith("S ")) == ["0", "0", "0", "1", "1", "1"]
    assert read_status(sweep / "tasks" / "task_001")["gpus"] in ([0], [1])


def test_two_gpus_per_task_run_one_task_at_a_time(project: Project) -> None:
    local_config(project, "    max_parallel_tasks: 4\n    gpus: [0, 1]\n    gpus_per_task: 2\n")
    gpu_project(project, 3, 0.3)
    result = project.hsm("run", "--sources", "local", "--poll-interval", "0.2", "--no-progress")
    assert result.returncode == 0, result.stderr
    got = check_shared_out(Path(result.stdout.strip()), {"0", "1"}, 2, 3)
    assert {r["cvd"] for r in got.values()} == {"0,1"}
    assert most_at_once(got) == 1


@pytest.mark.parametrize("wrapped", [True, False], ids=["task.sh", "direct"])
def test_a_restarted_runner_leaves_the_ids_of_running_tasks_alone(project: Project, wrapped: bool) -> None:
    # The runner dies while two tasks hold both ids; they run on. The poll that finds it gone
    # starts another, which must read from `started` that both ids are taken until they end.
    # (Tasks the dead runner started itself end with no one to record it: lost.)
    if wrapped:
        use_wrapper(project)
    local_config(project, "    max_parallel_tasks: 4\n    gpus: [0, 1]\n")
    gpu_project(project, 3, 1.0)
    sweep = submit(project)
    runner = sweep / ".hsm" / "runners" / "local"

    def two_running() -> bool:
        states = [read_status(t) for t in sorted((sweep / "tasks").glob("task_*"))]
        return sum(1 for s in states if s and s.get("state") == "running" and s.get("gpus") is not None) == 2

    wait_for(two_running, 30, "two tasks running with their GPU ids")
    pid, start = (int(x) for x in (runner / "runner.pid").read_text().split()[:2])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid, start), 10, "the runner to die")
    result = project.hsm("poll", str(sweep))
    assert result.returncode == 0, result.stderr
    project.poll_until_final(sweep, timeout=60)
    check_shared_out(sweep, {"0", "1"}, 1, 3, ("completed",) if wrapped else ("completed", "failed"))
    assert (runner / "runner.log").read_text().count("serving") >= 2  # another runner did start the rest


def path_without_nvidia_smi() -> str:
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "nvidia-smi").exists())


def run_with_path(project: Project, path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(hsm_argv(*args), cwd=project.root, env=hsm_env(PATH=path), capture_output=True, text=True,
                          timeout=120, check=False, stdin=subprocess.DEVNULL)


def test_auto_takes_the_ids_nvidia_smi_lists(project: Project, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(FAKE_NVIDIA_SMI)
    fake.chmod(0o755)
    local_config(project, "    max_parallel_tasks: 4\n    gpus: auto\n")
    gpu_project(project, 4, 0.3)
    result = run_with_path(project, f"{fake.parent}{os.pathsep}{path_without_nvidia_smi()}",
                           "run", "--sources", "local", "--poll-interval", "0.2", "--no-progress")
    assert result.returncode == 0, result.stderr
    got = check_shared_out(Path(result.stdout.strip()), {"0", "1"}, 1, 4)
    assert most_at_once(got) <= 2


def test_auto_without_nvidia_smi_runs_as_without_gpus_and_says_so_at_v(project: Project) -> None:
    local_config(project, "    max_parallel_tasks: 4\n    gpus: auto\n")
    gpu_project(project, 2, 0.0)
    result = run_with_path(project, path_without_nvidia_smi(),
                           "-v", "run", "--sources", "local", "--poll-interval", "0.2", "--no-progress")
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "gpus: auto" in line]
    assert said and all(line == "hsm: source 'local': gpus: auto: no nvidia-smi on this machine; its tasks run "
                        "without GPUs" for line in said), result.stderr
    sweep = Path(result.stdout.strip())
    for tid in read_index(sweep)["tasks"]:
        status = read_status(sweep / "tasks" / tid)
        assert status is not None and status["state"] == "completed" and "gpus" not in status
        assert json.loads((sweep / "tasks" / tid / "results" / "gpu.json").read_text())["cvd"] == \
            os.environ.get("CUDA_VISIBLE_DEVICES")  # the caller's, untouched
    started = (sweep / ".hsm" / "runners" / "local" / "started").read_text().splitlines()
    assert all(len(line.split()) == 3 for line in started if line.startswith("S "))


# --- an SSH host of the test bed -------------------------------------------------------------------


@pytest.mark.ssh
def test_ssh_source_shares_out_its_gpu_ids(ssh_project: SshProject) -> None:
    gpu_project(ssh_project, 6, 0.5)
    source = {"type": "ssh", "host": "server1", "max_parallel_tasks": 4, "gpus": [0, 1]}
    ssh_project.config(extra={"compute_sources": {"gpuhost": source}})
    result = ssh_project.ok("run", "--sources", "gpuhost", "--poll-interval", "0.3", "--no-progress")
    sweep = Path(result.stdout.strip())
    got = check_shared_out(sweep, {"0", "1"}, 1, 6)  # the records came home with the tasks
    assert most_at_once(got) <= 2
    assert all(yaml.safe_load((sweep / "tasks" / t / "status.yaml").read_text())["host"] == "server1" for t in got)
    # gpus: auto on a host without nvidia-smi: the host's agent finds none, and the tasks run as before.
    ssh_project.config(extra={"compute_sources": {"gpuhost": {**source, "gpus": "auto"}}})
    gpu_project(ssh_project, 2, 0.0)
    again = ssh_project.ok("-v", "run", "--sources", "gpuhost", "--poll-interval", "0.3", "--no-progress")
    assert "hsm: source 'gpuhost': gpus: auto: no nvidia-smi on server1; its tasks run without GPUs" in \
        again.stderr.splitlines(), again.stderr
