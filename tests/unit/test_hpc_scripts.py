"""Job scripts, directives, submit argv and chunking of the HPC source (pure, plus bash runs of the scripts)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hsm.errors import BadInput
from hsm.jobscript import Raw, template_text
from hsm.sources.base import TaskRef
from hsm.sources.hpc import pbs, slurm
from hsm.sources.hpc.naming import argv_word, chunk_key, chunks, group_jobs, job_name, task_list_text
from hsm.sources.hpc.scheduler import JobSpec, chain_dependency, render_job_script

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
# Paths that break careless quoting (after submitit's test fixtures).
HOSTILE = ["a 0", "a'; echo foo", "b\"$(touch x)"]


def job(**extra) -> JobSpec:
    values = dict(name="hsm-sweep_20260101_000000-cluster-0123456789", size=40, throttle=4,
                  log_dir="/scratch/p/sweeps/outputs/sweep_20260101_000000/logs/jobs", queue="gpu",
                  walltime="12:00:00", resources="nodes=1:ntasks=4:mem=32GB", timeout_warning=60,
                  extra=("--account=lab",))
    values.update(extra)
    return JobSpec(**values)


def rendered(hooks, spec: JobSpec, root: str = "/scratch/p/sweeps/outputs/sweep_20260101_000000",
             setup: str = "module load python/3.9\nmodule load cuda/11.8") -> str:
    scheduler = {slurm: slurm.Slurm(), pbs: pbs.Pbs()}[hooks]
    return render_job_script(scheduler, template_text(scheduler.template), spec, {
        "task_list": f"{root}/scripts/job_scripts/chunk_0123456789.tasks",
        "tasks_dir": f"{root}/tasks",
        "wrapper": f"{root}/scripts/task_cluster.sh",
        "setup": Raw(setup),
    }, scheduler.template)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HSM_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file (HSM_UPDATE_GOLDEN=1 rewrites it)"


def test_slurm_job_script_matches_the_golden_file() -> None:
    check_golden("slurm_chunk.sh", rendered(slurm, job()))


def test_pbs_job_script_matches_the_golden_file() -> None:
    spec = job(resources="select=1:ncpus=4:mem=64gb", extra=())
    check_golden("pbs_chunk.sh", rendered(pbs, spec))


def test_slurm_resources_become_options() -> None:
    assert slurm.resource_options("nodes=1:ntasks=4:mem=32GB") == ["--nodes=1", "--ntasks=4", "--mem=32GB"]
    assert slurm.resource_options("nodes=1:gres=gpu:2,mem=4G") == ["--nodes=1", "--gres=gpu:2", "--mem=4G"]
    assert slurm.resource_options("ppn=2:ncpus=3") == ["--ntasks-per-node=2", "--cpus-per-task=3"]
    assert slurm.resource_options("--gres=gpu:1 --exclusive") == ["--gres=gpu:1", "--exclusive"]
    assert slurm.resource_options(["mem=1G", "--exclusive"]) == ["--mem=1G", "--exclusive"]
    assert slurm.resource_options(None) == []


def test_slurm_directives() -> None:
    lines = slurm.directives(job())
    assert "#SBATCH --array=0-39%4" in lines
    assert "#SBATCH --no-requeue" in lines and "#SBATCH --signal=B:USR1@60" in lines
    assert "#SBATCH --partition=gpu" in lines and "#SBATCH --time=12:00:00" in lines
    assert lines[-4:] == ["#SBATCH --nodes=1", "#SBATCH --ntasks=4", "#SBATCH --mem=32GB", "#SBATCH --account=lab"]
    assert not any("signal" in line for line in slurm.directives(job(timeout_warning=0)))
    spaced = slurm.directives(job(log_dir="/x/a 0/logs"))
    assert '#SBATCH --output="/x/a 0/logs/%x_%A_%a.out"' in spaced


def test_a_short_walltime_is_warned_at_half_of_it() -> None:
    """A warning as long as the walltime would tell the task at once that its time is up."""
    assert "#SBATCH --signal=B:USR1@30" in slurm.directives(job(walltime="00:01:00"))
    assert "#SBATCH --signal=B:USR1@60" in slurm.directives(job(walltime="2-00"))
    assert "#SBATCH --signal=B:USR1@60" in slurm.directives(job(walltime=None))
    assert [slurm.time_seconds(t) for t in ("30", "1:30", "00:01:00", "2-03", "2-03:04", "1-0:0:1", "x", None)] == \
        [1800, 90, 60, 183600, 183840, 86401, 0, 0]


def test_pbs_directives() -> None:
    lines = pbs.directives(job(resources="nodes=1:ppn=2,mem=4gb", extra=()))
    assert lines == ["#PBS -N hsm-sweep_20260101_000000-cluster-0123456789", "#PBS -r n", "#PBS -q gpu",
                     "#PBS -l walltime=12:00:00", "#PBS -l nodes=1:ppn=2,mem=4gb"]


def test_a_newline_in_a_directive_is_refused() -> None:
    with pytest.raises(BadInput, match="newline"):
        rendered(slurm, job(queue="gpu\n#SBATCH --exclusive"))


def test_submit_argv() -> None:
    assert slurm.submit_argv("/s/chunk.sh", job()) == ["sbatch", "--parsable", "/s/chunk.sh"]
    deps = ("afterok:12", chain_dependency(["80", "81"]))
    assert slurm.submit_argv("/s/chunk.sh", job(dependency=deps)) == \
        ["sbatch", "--parsable", "--dependency=afterok:12,afterany:80:81", "/s/chunk.sh"]
    assert pbs.submit_argv("/s/chunk.sh", job(dependency=("afterany:7",))) == \
        ["qsub", "-t", "0-39%4", "-r", "n", "-W", "depend=afterany:7", "/s/chunk.sh"]
    assert pbs.submit_argv("/s/chunk.sh", job(size=1, throttle=None)) == ["qsub", "-t", "0-0", "-r", "n", "/s/chunk.sh"]


def refs(n: int, attempt: int = 1) -> list[TaskRef]:
    return [TaskRef(f"task_{i:03d}", attempt, "submitted") for i in range(1, n + 1)]


def test_chunks_cut_at_the_array_size_with_indices_from_zero() -> None:
    parts = chunks(list(reversed(refs(25))), 10)
    assert [len(p) for p in parts] == [10, 10, 5]
    assert parts[1][0].id == "task_011" and parts[2][-1].id == "task_025"
    assert task_list_text(parts[2]).splitlines()[0] == "task_021 1"


def test_chunk_keys_name_the_attempts() -> None:
    a, b = refs(3), refs(3, attempt=2)
    assert chunk_key("c", a) == chunk_key("c", list(a)) != chunk_key("c", b)
    assert chunk_key("c", a) != chunk_key("d", a)
    assert job_name("sweep_1", "my cluster", "k") == "hsm-sweep_1-my_cluster-k"


def test_group_jobs_takes_the_array_id_and_liveness_per_name() -> None:
    rows = [("82", "n1", "RUNNING"), ("81", "n1", "PENDING"), ("83", "n1", "COMPLETED"), ("90", "n2", "COMPLETED")]
    assert group_jobs(rows, slurm.ACTIVE) == {"n1": ("81", True), "n2": ("90", False)}


# Arguments no shell may interpret on their way from the task list to the command.
ARGV = ["/usr/bin/python3", "train.py", "lr=0.1", "name='a b'", "", "''", "tab\there", "new\nline", "back\\slash\\c",
        "$(touch x)", "`touch x`", "*", "%s %b", "-e", "héllo wörld", "\x20", "\\0101"]


@pytest.mark.parametrize("hooks, index_var", [(slurm, "SLURM_ARRAY_TASK_ID"), (pbs, "PBS_ARRAYID"),
                                              (pbs, "PBS_ARRAY_INDEX")])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_rendered_script_runs_the_task_of_its_index(tmp_path: Path, hooks, index_var: str, hostile: str) -> None:
    root = tmp_path / hostile / "sweep"
    (root / "scripts" / "job_scripts").mkdir(parents=True)
    tasks = refs(3)
    for t in tasks:
        (root / "tasks" / t.id).mkdir(parents=True)
    argv = {t.id: [*ARGV, t.id] for t in tasks}
    (root / "scripts" / "job_scripts" / "chunk_0123456789.tasks").write_text(task_list_text(tasks, argv))
    # A stand-in wrapper that says what it was given: its arguments, NUL-separated, and the job id.
    (root / "scripts" / "task_cluster.sh").write_text('printf "%s\\0" "$HSM_JOB_ID" "$@" > "$1/ran"\n')
    script = root / "chunk.sh"
    script.write_text(rendered(hooks, job(walltime=None), root=str(root), setup="export SETUP_RAN=1"))
    env = {"PATH": os.environ["PATH"], index_var: "1", "SLURM_ARRAY_JOB_ID": "71", "PBS_JOBID": "82"}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    job_id = "71_1" if hooks is slurm else "82"
    ran = (root / "tasks" / "task_002" / "ran").read_text().split("\0")[:-1]
    assert ran == [job_id, f"{root}/tasks/task_002", "1", *ARGV, "task_002"]
    assert not (tmp_path / hostile / "x").exists() and not Path("x").exists()
    assert sorted(p.name for p in (root / "tasks" / "task_002").iterdir()) == ["ran"]  # no job_id, no argv file


def test_a_task_list_line_without_argv_runs_the_wrapper_without_arguments(tmp_path: Path) -> None:
    """A task list of an earlier hsm ("TASK ATTEMPT"): the wrapper gets no command and reads the argv file."""
    (tmp_path / "scripts" / "job_scripts").mkdir(parents=True)
    (tmp_path / "tasks" / "task_001").mkdir(parents=True)
    (tmp_path / "scripts" / "job_scripts" / "chunk_0123456789.tasks").write_text("task_001 1\n")
    (tmp_path / "scripts" / "task_cluster.sh").write_text('printf "%s\\0" "$@" > "$1/ran"\n')
    script = tmp_path / "chunk.sh"
    script.write_text(rendered(slurm, job(), root=str(tmp_path), setup=""))
    env = {"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "71"}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tasks" / "task_001" / "ran").read_text().split("\0")[:-1] == [f"{tmp_path}/tasks/task_001", "1"]


def test_argv_words_hold_no_blank_and_decode_back() -> None:
    words = [argv_word(arg) for arg in ARGV]
    assert all(word and not any(ch.isspace() for ch in word) for word in words)
    assert argv_word("lr=0.1") == "lr=0.1" and argv_word("") == "''" and argv_word("a b") == "a\\x20b"


def test_a_script_without_a_task_for_its_index_fails(tmp_path: Path) -> None:
    (tmp_path / "scripts" / "job_scripts").mkdir(parents=True)
    (tmp_path / "scripts" / "job_scripts" / "chunk_0123456789.tasks").write_text("task_001 1\n")
    script = tmp_path / "chunk.sh"
    script.write_text(rendered(slurm, job(), root=str(tmp_path), setup=""))
    env = {"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_JOB_ID": "71"}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "no task for array index 5" in proc.stderr
