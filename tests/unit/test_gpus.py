"""GPU ids: the config's checks, the allocator, the runner's book of who holds which, the job scripts."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hsm.agent import gpus as agent_gpus
from hsm.agent.gpus import GpuBook, choose, free_ids, ids_text, parse_nvidia_smi, status_text
from hsm.agent.runner import Runner
from hsm.agent.started import parse_started
from hsm.agent.status import proc_start, read_status
from hsm.config import parse_config
from hsm.core.gpus import AUTO, gpu_ids, task_slots
from hsm.errors import BadInput
from hsm.sources.hpc import pbs, slurm
from hsm.sources.hpc.scheduler import JobSpec

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "/p/hsm_config.yaml"


def load(source: dict[str, Any], **sections: Any) -> Any:
    """The settings of source `gpu` in a config with `sections`."""
    data = {"compute_sources": {"gpu": source}, **sections}
    return parse_config(data, Path(CONFIG), Path("/p")).sources["gpu"].settings


# --- the config ----------------------------------------------------------------------------------


def test_a_list_of_ids_or_auto_is_taken() -> None:
    local = load({"type": "local", "gpus": [0, 1, "2", "GPU-8c2e1f4a-1b2c", "MIG-GPU-8c2e/1/0"], "gpus_per_task": 2})
    assert local.gpus == (0, 1, 2, "GPU-8c2e1f4a-1b2c", "MIG-GPU-8c2e/1/0") and local.gpus_per_task == 2
    assert load({"type": "local"}).gpus is None and load({"type": "local"}).gpus_per_task == 1
    ssh = load({"type": "ssh", "host": "h", "gpus": "auto", "gpus_per_task": 4})
    assert (ssh.gpus, ssh.gpus_per_task) == (AUTO, 4)
    # The ssh: section gives every host its default, as for any other key of an SSH source.
    assert load({"type": "ssh", "host": "h"}, ssh={"gpus": [0, 1]}).gpus == (0, 1)
    assert load({"type": "hpc", "system": "slurm", "gpus_per_task": 2}).gpus_per_task == 2
    assert load({"type": "hpc", "system": "slurm"}).gpus_per_task is None


@pytest.mark.parametrize(("source", "message"), [
    ({"type": "local", "gpus": ["a"]},
     r"compute_sources\.gpu: gpus: expected a list of GPU ids .* or auto, got \['a'\]$"),
    ({"type": "local", "gpus": [0, 0]}, r"compute_sources\.gpu: gpus: expected each GPU id once \(0 is listed twice\)"),
    ({"type": "local", "gpus": [0, "0"]}, r"compute_sources\.gpu: gpus: expected each GPU id once"),
    ({"type": "local", "gpus": [-1]}, r"compute_sources\.gpu: gpus: expected a list of GPU ids"),
    ({"type": "local", "gpus": [True]}, r"compute_sources\.gpu: gpus: expected a list of GPU ids"),
    ({"type": "local", "gpus": []}, r"compute_sources\.gpu: gpus: expected a list of GPU ids"),
    ({"type": "local", "gpus": 2}, r"compute_sources\.gpu: gpus: expected a list of GPU ids .*, got 2$"),
    ({"type": "local", "gpus": [0, 1], "gpus_per_task": 3},
     r"compute_sources\.gpu: gpus_per_task: expected at most the number of gpus listed \(2\), got 3$"),
    ({"type": "local", "gpus": [0, 1], "gpus_per_task": 0},
     r"compute_sources\.gpu: gpus_per_task: expected a whole number of at least 1, got 0$"),
    ({"type": "local", "gpus_per_task": 2}, r"compute_sources\.gpu: gpus_per_task: given without gpus"),
    ({"type": "ssh", "host": "h", "gpus": [1, 1]}, r"compute_sources\.gpu: gpus: expected each GPU id once"),
    ({"type": "ssh", "host": "h", "gpus": [0], "gpus_per_task": 2},
     r"compute_sources\.gpu: gpus_per_task: expected at most the number of gpus listed \(1\), got 2$"),
    ({"type": "hpc", "system": "slurm", "gpus": [0, 1]},
     r"compute_sources\.gpu: gpus: not for hpc sources, the scheduler assigns GPUs \(use gpus_per_task\)$"),
    ({"type": "hpc", "system": "pbs", "gpus_per_task": 2},
     r"compute_sources\.gpu: gpus_per_task: not supported on pbs sources"),
])
def test_a_wrong_gpu_setting_is_refused_in_one_line_naming_the_file_and_key(source: dict[str, Any],
                                                                         message: str) -> None:
    with pytest.raises(BadInput, match=f"^{CONFIG}: {message}") as info:
        load(source)
    assert "\n" not in str(info.value)


def write_project(tmp_path: Path, source: str) -> Path:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "hsm_config.yaml").write_text(
        f"paths:\n  training_script: train.py\ncompute_sources:\n  gpu:\n{source}", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("source", "key"), [
    ("    type: local\n    gpus: [a]\n", "gpus"),
    ("    type: local\n    gpus: [0, 0]\n", "gpus"),
    ("    type: local\n    gpus: [0, 1]\n    gpus_per_task: 3\n", "gpus_per_task"),
    ("    type: hpc\n    system: slurm\n    gpus: [0, 1]\n", "gpus"),
])
def test_config_validate_refuses_them_with_exit_2(tmp_path: Path, source: str, key: str) -> None:
    root = write_project(tmp_path, source)
    result = subprocess.run(["hsm", "config", "validate"], cwd=root, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(root / "hsm_config.yaml") in lines[0] and f"compute_sources.gpu: {key}:" in lines[0], lines[0]
    ok = subprocess.run(["hsm", "config", "validate"], cwd=write_project(tmp_path, "    type: local\n    gpus: [0, 1]\n"),
                        capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr


def test_gpu_ids_and_slots() -> None:
    assert gpu_ids("auto", "w") == AUTO
    assert gpu_ids([3, 1], "w") == (3, 1)  # their order is kept: the first free ones go first
    assert task_slots((0, 1, 2, 3), 1) == 4 and task_slots((0, 1, 2), 2) == 1
    assert task_slots(AUTO, 1) is None and task_slots(None, 1) is None


# --- the allocator -------------------------------------------------------------------------------


def test_choose_gives_the_first_free_ids_or_none() -> None:
    assert choose([0, 1, 2, 3], [], 1) == (0,)
    assert choose([0, 1, 2, 3], [(0,), (2,)], 1) == (1,)
    assert choose([0, 1, 2, 3], [(0,), (2,)], 2) == (1, 3)
    assert choose([0, 1, 2, 3], [(0, 1), (2,)], 2) is None
    assert choose([0, 1], [(0,), (1,)], 1) is None
    assert choose(["GPU-a", "GPU-b"], [("GPU-a",)], 1) == ("GPU-b",)
    assert free_ids([0, 1, 2], [(5,), (1,)]) == [0, 2]  # an id no longer listed holds nothing


def test_ids_are_written_for_cuda_for_started_and_for_status_yaml(tmp_path: Path) -> None:
    assert ids_text((0, 1)) == "0,1" and ids_text(("MIG-x/1/0",)) == "MIG-x/1/0"
    assert status_text((0, 1)) == "[0, 1]" and status_text(("GPU-a", 2)) == "['GPU-a', 2]"
    for ids in ((0,), (0, 1), ("GPU-a", 2)):
        path = tmp_path / "status.yaml"
        path.write_text(f"schema: 1\nstate: running\ngpus: {status_text(ids)}\n")
        assert yaml.safe_load(path.read_text())["gpus"] == list(ids)  # as YAML reads it
        status = read_status(path)  # and as the agent does
        assert status is not None and status["gpus"] == list(ids) and status["state"] == "running"


NVIDIA_SMI = """\
GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5f3c1d2e-aaaa-bbbb-cccc-000000000000)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-6a7b8c9d-aaaa-bbbb-cccc-111111111111)
  MIG 3g.20gb     Device  0: (UUID: MIG-2d5a5b8c-aaaa-bbbb-cccc-222222222222)
  MIG 3g.20gb     Device  1: (UUID: MIG-3e6b6c9d-aaaa-bbbb-cccc-333333333333)
GPU 2: Tesla V100-SXM2-16GB (UUID: GPU-7c8d9e0f-aaaa-bbbb-cccc-444444444444)
"""


def test_nvidia_smi_lists_indices_and_mig_instances() -> None:
    assert parse_nvidia_smi(NVIDIA_SMI) == [0, "MIG-2d5a5b8c-aaaa-bbbb-cccc-222222222222",
                                            "MIG-3e6b6c9d-aaaa-bbbb-cccc-333333333333", 2]
    assert parse_nvidia_smi("") == []


def fake_nvidia_smi(directory: Path, output: str, code: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "nvidia-smi"
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_auto_reads_nvidia_smi_where_the_agent_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    batch: dict[str, Any] = {"gpus": "auto", "gpus_per_task": 1}
    assert agent_gpus.resolve(batch) == {"gpus": [], "nvidia_smi": False} and batch["gpus"] == []
    fake_nvidia_smi(tmp_path / "bin", NVIDIA_SMI)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.defpath}")  # the fake first; `cat` from the system
    batch = {"gpus": "auto", "gpus_per_task": 2}
    assert agent_gpus.resolve(batch)["gpus"] == batch["gpus"] == parse_nvidia_smi(NVIDIA_SMI)
    assert agent_gpus.resolve({"gpus": [0, 1]}) == {}  # a list is taken as it is
    with pytest.raises(RuntimeError, match=r"lists 4 GPU id\(s\) .*fewer than gpus_per_task \(5\)"):
        agent_gpus.resolve({"gpus": "auto", "gpus_per_task": 5})
    fake_nvidia_smi(tmp_path / "bin", "No devices were found\n", code=6)
    assert agent_gpus.resolve({"gpus": "auto"}) == {"gpus": [], "nvidia_smi": True}
    fake_nvidia_smi(tmp_path / "bin", "NVIDIA-SMI has failed because it couldn't communicate with the driver\n",
                    code=9)
    with pytest.raises(RuntimeError, match="nvidia-smi -L exited 9: NVIDIA-SMI has failed"):
        agent_gpus.resolve({"gpus": "auto"})


# --- the runner's book: free ids come from `started` and the liveness of its wrappers ---------------


def dead_pid() -> tuple[int, int]:
    """A pid and start time of a process that has ended."""
    proc = subprocess.Popen(["true"])
    start = proc_start(proc.pid) or 1
    proc.wait()
    return proc.pid, start


def test_the_book_frees_the_ids_of_attempts_that_ended_or_never_started() -> None:
    me, start = os.getpid(), proc_start(os.getpid())
    gone, gone_start = dead_pid()
    lines = [
        "S task_001 1 0", f"P task_001 1 {me} {start}",  # running: holds 0
        "S task_002 1 1", f"P task_002 1 {gone} {gone_start}",  # ended: 1 is free
        "S task_003 1 2",  # its runner died before it started: 2 is free
        "S task_004 1", f"P task_004 1 {me} {start}",  # started without GPUs
        "S task_005 1 3", "R task_006 1",
    ]
    book, started, revoked = GpuBook(), {}, set()
    book.configure({"gpus": [0, 1, 2, 3], "gpus_per_task": 1})
    parse_started(lines, started, revoked, book)
    started[("task_005", 1)] = (me, start)  # its P line came later
    held = book.held(started)
    assert sorted(held) == [(0,), (3,)]
    assert set(book.holders) == {("task_001", 1), ("task_005", 1)}
    assert book.take(("task_007", 1), held) == (1,)
    assert book.take(("task_008", 1), held) == (2,)
    assert book.take(("task_009", 1), held) is None
    book.release(("task_008", 1))
    assert ("task_008", 1) not in book.holders


def test_the_environment_of_a_task_with_and_without_ids() -> None:
    book = GpuBook()
    book.configure({"gpus": [2, 3], "gpus_per_task": 2})
    assert book.take(("t", 1), []) == (2, 3)
    env = {"CUDA_VISIBLE_DEVICES": "7", "HSM_GPUS": "[7]"}
    book.environment(("t", 1), env)
    assert env == {"CUDA_VISIBLE_DEVICES": "2,3", "HSM_GPUS": "[2, 3]", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    other = {"CUDA_VISIBLE_DEVICES": "7", "HSM_GPUS": "[7]"}
    book.environment(("u", 1), other)  # no ids: the caller's CUDA_VISIBLE_DEVICES is left as it was
    assert other == {"CUDA_VISIBLE_DEVICES": "7"}
    book.configure({"tasks": []})  # a batch without GPU settings changes nothing
    assert book.gpus == (2, 3)
    book.configure({"gpus": None})
    assert book.gpus == ()


def test_a_restarted_runner_keeps_off_the_ids_of_tasks_still_running(tmp_path: Path) -> None:
    # The runner before it died started task_001 on GPU 0; its wrapper (this process) still runs.
    me, start = os.getpid(), proc_start(os.getpid())
    runner_dir, tasks_dir = tmp_path / "runner", tmp_path / "tasks"
    (runner_dir / "queue").mkdir(parents=True)
    (runner_dir / "started").write_text(f"S task_001 1 0\nP task_001 1 {me} {start}\n")
    batch = {"tasks_dir": str(tasks_dir), "max_parallel": 4, "gpus": [0, 1], "gpus_per_task": 1,
             "tasks": [["task_002", 1], ["task_003", 1]]}
    (runner_dir / "queue" / "0001-submit.json").write_text(json.dumps(batch))
    runner = Runner(runner_dir)
    runner.scan()
    chosen = runner.claim_next()
    assert [c[0] for c in chosen] == ["task_002"]  # GPU 1 only: task_003 waits for GPU 0
    assert [p[0] for p in runner.pending] == ["task_003"]
    assert (runner_dir / "started").read_text().splitlines()[-1] == "S task_002 1 1"
    assert runner.claim_next() == []  # nothing started task_002, but it is claimed: still nothing free


# --- job scripts ---------------------------------------------------------------------------------


def job(**extra: Any) -> JobSpec:
    values: dict[str, Any] = dict(name="hsm-s-c-k", size=4, throttle=2, log_dir="/l", queue="gpu",
                                  walltime="01:00:00")
    values.update(extra)
    return JobSpec(**values)


def test_slurm_gpus_per_task_becomes_a_directive_with_a_task_count() -> None:
    lines = slurm.directives(job(gpus_per_task=2))
    assert "#SBATCH --gpus-per-task=2" in lines and "#SBATCH --ntasks=1" in lines
    given = slurm.directives(job(gpus_per_task=2, resources="ntasks=1:cpus-per-task=8"))
    assert "#SBATCH --gpus-per-task=2" in given and given.count("#SBATCH --ntasks=1") == 1
    assert not any("gpus" in line for line in slurm.directives(job()))


def test_pbs_refuses_gpus_per_task() -> None:
    with pytest.raises(ValueError, match="gpus_per_task: not supported on pbs sources"):
        pbs.directives(job(gpus_per_task=1))
    assert pbs.directives(job())[:2] == ["#PBS -N hsm-s-c-k", "#PBS -r n"]
