"""`hsm init` (and `hsm config init`) as a user runs it: a real project, real hsm processes.

A fresh directory with a Hydra app (config dir and all) and an argparse script: `hsm init`
asks nothing and writes a config that `hsm run` completes a sweep with; `--interactive` takes
answers from standard input; a second `hsm init` refuses, changing nothing, unless --force.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli.hsmproc import Project, hsm_argv, hsm_env, read_index

HYDRA_APP = """\
import json
import os

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with open(os.path.join(os.environ["HSM_TASK_DIR"], "received.json"), "w") as out:
        json.dump(OmegaConf.to_container(cfg, resolve=True), out)


if __name__ == "__main__":
    main()
"""

HYDRA_CONFIG = """\
defaults:
  - _self_
lr: 0.01
model:
  _target_: models.MLP
  hidden_dim: 64
  activation: relu
optimizer: adam
"""

ARGPARSE_APP = """\
import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
parser.add_argument("--verbose", action="store_true")
args = parser.parse_args()
with open(os.path.join(os.environ["HSM_TASK_DIR"], "received.json"), "w") as out:
    json.dump(vars(args), out)
"""

WRITTEN = ("hsm_config.yaml", "sweeps/sweep_config.yaml", "sweeps/README.md")
APPS = Path(__file__).resolve().parents[1] / "apps"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME of the test's own: the machine's ~/.ssh/config does not leak in."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Project]:
    """A directory holding only a Hydra app (with its config dir) and an argparse script."""
    project = Project(tmp_path / "apps")
    project.write("hydra_app.py", HYDRA_APP)
    project.write("conf/config.yaml", HYDRA_CONFIG)
    project.write("argparse_app.py", ARGPARSE_APP)
    try:
        yield project
    finally:
        project.stop_leftovers()


def init(cwd: Path, home: Path, *args: str, input: str | None = None, path: str | None = None,
         **env: str) -> subprocess.CompletedProcess:
    """`hsm init ARGS` with HOME=home, no venv or conda env active, and `path` first on PATH."""
    environ = hsm_env(HOME=str(home), **env)
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV"):
        if name not in env:
            environ.pop(name, None)
    if path:
        environ["PATH"] = f"{path}{os.pathsep}{environ['PATH']}"
    return subprocess.run(hsm_argv("init", *args), cwd=cwd, env=environ, input=input or "", capture_output=True,
                          text=True, timeout=60, check=False)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below `root`, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_sweep(project: Project) -> tuple[Path, list[tuple[dict, dict]]]:
    """`hsm run --sources local:2`, which must complete every task; each task's params and what the app received."""
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2", "--no-progress", timeout=90)
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip().splitlines()[-1])
    tasks = read_index(sweep)["tasks"]
    assert tasks and all(t["state"] == "completed" for t in tasks.values()), tasks
    seen = []
    for tid in tasks:
        params = yaml.safe_load((sweep / "tasks" / tid / "params.yaml").read_text(encoding="utf-8"))
        received = json.loads((sweep / "tasks" / tid / "received.json").read_text(encoding="utf-8"))
        seen.append((params, received))
    return sweep, seen


def test_init_then_run_completes_a_sweep_of_the_hydra_app(apps: Project, home: Path) -> None:
    result = init(apps.root, home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [*WRITTEN, "sweeps/outputs/"]
    assert "Detected Project Information" in result.stderr
    for row in ("Project Name", "Training Script", "Python Interpreter", "HPC System", "SSH Hosts"):
        assert row in result.stderr
    assert "hsm run --sources local:" in result.stderr
    config = yaml.safe_load((apps.root / "hsm_config.yaml").read_text(encoding="utf-8"))
    assert config["paths"]["training_script"] == "hydra_app.py"
    assert config["paths"]["python_interpreter"] == sys.executable
    assert config["execution"]["arg_style"] == "hydra" and config["project"]["name"] == "apps"
    assert "# " in (apps.root / "hsm_config.yaml").read_text(encoding="utf-8").splitlines()[0]
    sweep_config = yaml.safe_load((apps.root / "sweeps/sweep_config.yaml").read_text(encoding="utf-8"))
    assert sweep_config["arg_style"] == "hydra"
    assert sweep_config["grid"] == {"lr": [0.01, 0.001], "model.hidden_dim": [64, 128]}
    assert (apps.root / "sweeps/outputs").is_dir() and "hsm status" in (apps.root / "sweeps/README.md").read_text()
    assert apps.hsm("config", "validate").returncode == 0

    _, seen = run_sweep(apps)
    assert all((p["lr"], p["model.hidden_dim"]) == (r["lr"], r["model"]["hidden_dim"]) for p, r in seen), seen
    received = sorted((r["lr"], r["model"]["hidden_dim"]) for _, r in seen)
    assert received == [(0.001, 64), (0.001, 128), (0.01, 64), (0.01, 128)]
    assert all(r["optimizer"] == "adam" and r["model"]["activation"] == "relu" for _, r in seen)


def test_interactive_takes_the_answers_given_on_stdin(apps: Project, home: Path) -> None:
    # A script that does not exist is asked again; an empty answer takes the default (the Python).
    answers = "demo\nmissing.py\nargparse_app.py\n\n\npbs\nworkq\n3\n"
    result = init(apps.root, home, "--interactive", input=answers)
    assert result.returncode == 0, result.stderr
    assert "missing.py: no such file" in result.stderr
    config = yaml.safe_load((apps.root / "hsm_config.yaml").read_text(encoding="utf-8"))
    assert config["project"]["name"] == "demo"
    assert config["paths"]["training_script"] == "argparse_app.py" and "conda_env" not in config["paths"]
    assert config["paths"]["python_interpreter"] == sys.executable
    assert config["execution"]["arg_style"] == "argparse"
    assert config["hpc"] == {"system": "pbs", "queue": "workq"}
    assert config["compute_sources"]["local"]["max_parallel_tasks"] == 3
    sweep_config = yaml.safe_load((apps.root / "sweeps/sweep_config.yaml").read_text(encoding="utf-8"))
    assert sweep_config["arg_style"] == "argparse"
    assert sweep_config["grid"] == {"lr": [0.1, 0.01], "epochs": [3, 6]}
    assert "# Sweeps of demo" in (apps.root / "sweeps/README.md").read_text(encoding="utf-8")

    _, seen = run_sweep(apps)
    assert all((p["lr"], p["epochs"]) == (r["lr"], r["epochs"]) for p, r in seen), seen
    assert sorted((r["lr"], r["epochs"]) for _, r in seen) == [(0.01, 3), (0.01, 6), (0.1, 3), (0.1, 6)]


def test_interactive_answers_for_the_environment_and_input_that_runs_out(apps: Project, home: Path) -> None:
    result = init(apps.root, home, "-i", input="\n\n\nml\nnone\n2\n")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((apps.root / "hsm_config.yaml").read_text(encoding="utf-8"))
    assert config["paths"]["conda_env"] == "ml" and "hpc" not in config
    assert config["project"]["name"] == "apps" and config["paths"]["training_script"] == "hydra_app.py"

    before = snapshot(apps.root)
    result = init(apps.root, home, "--interactive", "--force", input="other\n")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("hsm: error: --interactive: standard input ended")
    assert snapshot(apps.root) == before


def test_a_second_init_refuses_without_force_and_changes_nothing(apps: Project, home: Path) -> None:
    assert init(apps.root, home).returncode == 0
    (apps.root / "sweeps/outputs/keep.txt").write_text("mine", encoding="utf-8")
    before = snapshot(apps.root)
    for args in ((), ("--interactive",)):
        result = init(apps.root, home, *args, input="x\n")
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and all(name in lines[0] for name in WRITTEN), result.stderr
        assert "--force" in lines[0]
        assert snapshot(apps.root) == before

    (apps.root / "hsm_config.yaml").write_text("compute: {}\n", encoding="utf-8")
    result = init(apps.root, home, "--force")
    assert result.returncode == 0, result.stderr
    assert snapshot(apps.root)["hsm_config.yaml"] == before["hsm_config.yaml"]
    assert snapshot(apps.root)["sweeps/outputs/keep.txt"] == b"mine"


def test_one_existing_file_is_enough_to_refuse_and_nothing_else_is_written(apps: Project, home: Path) -> None:
    apps.write("sweeps/README.md", "my notes\n")
    before = snapshot(apps.root)
    result = init(apps.root, home)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"hsm: error: sweeps/README.md already exists in {apps.root}: "
                                     "nothing written (--force overwrites)")
    assert snapshot(apps.root) == before and not (apps.root / "sweeps/outputs").exists()


def test_a_project_with_nothing_to_detect_still_gets_a_valid_config(tmp_path: Path, home: Path) -> None:
    empty = Project(tmp_path / "empty")
    empty.root.mkdir()
    result = init(empty.root, home)
    assert result.returncode == 0, result.stderr
    assert "not found" in result.stderr and "No parameters found" in result.stderr
    config = yaml.safe_load((empty.root / "hsm_config.yaml").read_text(encoding="utf-8"))
    assert "training_script" not in config["paths"]
    # the scheduler is this machine's (the test bed's Slurm, when it is up), not the project's
    assert ("hpc" in config) == bool(shutil.which("sbatch") or shutil.which("qsub")), config
    text = (empty.root / "sweeps/sweep_config.yaml").read_text(encoding="utf-8")
    assert "# grid:" in text and "grid" not in (yaml.safe_load(text) or {})
    validate = empty.hsm("config", "validate")
    assert validate.returncode == 0 and validate.stdout.strip() == "valid", validate.stderr


def test_slurm_partitions_and_ssh_hosts_are_detected(tmp_path: Path, home: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sbatch", "exit 0"), ("sinfo", "printf 'debug\\ngpu*\\nlong\\n'")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    (home / ".ssh").mkdir()
    (home / ".ssh/config").write_text("Host server1 server2\n  HostName 10.0.0.1\nHost *\n  User me\n", encoding="utf-8")
    project = Project(tmp_path / "proj")
    project.write("train.py", "print('train')\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    os.symlink(sys.executable, venv / "bin" / "python")

    result = init(project.root, home, path=str(bin_dir), VIRTUAL_ENV=str(venv))
    assert result.returncode == 0, result.stderr
    assert "debug, gpu*, long" in result.stderr and "server1, server2" in result.stderr
    text = (project.root / "hsm_config.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert config["hpc"] == {"system": "slurm", "queue": "gpu"}
    assert config["paths"]["python_interpreter"] == str(venv / "bin" / "python")
    assert list(config["compute_sources"]) == ["local"] and "  # server2:" in text
    assert config["execution"]["arg_style"] == "hydra"
    assert project.hsm("config", "validate").returncode == 0

    # sinfo failing is shown, not fatal: the hpc section is written without a queue.
    (bin_dir / "sinfo").write_text("#!/bin/sh\necho 'slurm_load_partitions: Unable to contact' >&2\nexit 1\n")
    result = init(project.root, home, "--force", path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert "sinfo failed" in result.stderr and "Unable to contact" in result.stderr
    assert yaml.safe_load((project.root / "hsm_config.yaml").read_text(encoding="utf-8"))["hpc"] == {"system": "slurm"}


def test_config_init_is_the_same_command_and_dir_names_the_project(apps: Project, home: Path, tmp_path: Path) -> None:
    environ = hsm_env(HOME=str(home))
    result = subprocess.run(hsm_argv("config", "init", "--dir", str(apps.root)), cwd=tmp_path, env=environ,
                            input="", capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert [(tmp_path / line).resolve() for line in result.stdout.split()][0] == apps.root / "hsm_config.yaml"
    assert f"cd {apps.root.relative_to(tmp_path)} && hsm run" in result.stderr
    assert (apps.root / "sweeps/sweep_config.yaml").is_file() and not (tmp_path / "hsm_config.yaml").exists()
    again = subprocess.run(hsm_argv("init", "--dir", str(apps.root)), cwd=tmp_path, env=environ, input="",
                           capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 2 and "already exist" in again.stderr


def test_the_test_suites_own_apps_as_they_are_get_a_sweep_they_take(tmp_path: Path, home: Path) -> None:
    """tests/apps: a Hydra app whose config is a ConfigStore node, an argparse script whose options a loop makes."""
    project = Project(tmp_path / "as_is")
    for name in ("hydra_app.py", "argparse_app.py"):
        project.write(name, (APPS / name).read_text(encoding="utf-8"))
    try:
        result = init(project.root, home)
        assert result.returncode == 0, result.stderr
        grid = yaml.safe_load((project.root / "sweeps/sweep_config.yaml").read_text(encoding="utf-8"))["grid"]
        assert grid == {"a": [1, 2], "b": [1, 2]}
        run = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.2", "--max-tasks", "2", timeout=90)
        assert run.returncode == 0, run.stderr
        sweep = Path(run.stdout.strip().splitlines()[-1])
        received = [json.loads((sweep / "tasks" / tid / "received.json").read_text(encoding="utf-8"))["values"]
                    for tid in read_index(sweep)["tasks"]]
        assert sorted((r["a"], r["b"]) for r in received) == [(1, 1), (1, 2)]
    finally:
        project.stop_leftovers()


def test_a_config_in_sweeps_is_not_shadowed_without_force(apps: Project, home: Path) -> None:
    apps.write("sweeps/hsm_config.yaml", "compute: {}\n")
    result = init(apps.root, home)
    assert result.returncode == 2 and "sweeps/hsm_config.yaml already exists" in result.stderr
    assert not (apps.root / "hsm_config.yaml").exists()
