"""Shell completion through click's own mechanism, asked of the real `hsm` as the shells ask it.

`_HSM_COMPLETE=bash_complete COMP_WORDS='hsm status ' COMP_CWORD=2 hsm` is what the bash script
that `_HSM_COMPLETE=bash_source hsm` prints runs on a Tab press; each answer line is TYPE,VALUE.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.hsmproc import BIN, hsm_env

CONFIG = """\
paths:
  training_script: train.py
compute_sources:
  local: {type: local, max_parallel_tasks: 2}
  server1: {type: ssh, host: 127.0.0.1, ssh_port: 1, max_parallel_tasks: 2}
  cluster: {type: hpc, system: slurm, queue: q, enabled: false}
"""

SWEEPS = ("sweep_20261122_063133", "sweep_20261123_101010")


@pytest.fixture
def tmp_project(tmp_path: Path) -> Path:
    """A project with hsm_config.yaml, two sweep dirs and a directory that is not a sweep."""
    root = tmp_path / "proj"
    outputs = root / "sweeps" / "outputs"
    for name in SWEEPS:
        (outputs / name).mkdir(parents=True)
        (outputs / name / "sweep_metadata.yaml").write_text("sweep_id: " + name + "\n", encoding="utf-8")
        (outputs / name / "task_mapping.yaml").write_text("tasks: {}\n", encoding="utf-8")
    (outputs / "not_a_sweep").mkdir()
    (root / "hsm_config.yaml").write_text(CONFIG, encoding="utf-8")
    return root


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "hsm"), *args], cwd=cwd, env=hsm_env(**env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)


def complete(cwd: Path, words: str) -> list[str]:
    """The values bash would be offered for the last word of `words`."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    done = run(cwd, {"_HSM_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [line.partition(",")[2] for line in done.stdout.splitlines() if line]


def test_sweep_ids_complete(tmp_project: Path) -> None:
    assert complete(tmp_project, "hsm status ") == list(SWEEPS)
    assert complete(tmp_project, "hsm monitor watch sweep_2026112") == list(SWEEPS)
    assert complete(tmp_project, "hsm poll sweep_20261123") == [SWEEPS[1]]
    assert complete(tmp_project, "hsm sources rebalance ") == list(SWEEPS)
    assert complete(tmp_project.parent, f"hsm export --hsm-config {tmp_project}/hsm_config.yaml ") == list(SWEEPS)


def test_completion_prints_nothing_and_gives_nothing_on_a_broken_project(tmp_path: Path) -> None:
    (tmp_path / "hsm_config.yaml").write_text("compute_sources: [\n", encoding="utf-8")
    assert complete(tmp_path, "hsm status ") == []
    assert complete(tmp_path, "hsm assign --sources ") == []


def test_sources_values_complete_the_last_item(tmp_project: Path) -> None:
    every = complete(tmp_project, "hsm assign --sources ")
    assert {"local", "server1", "cluster", "ssh:server1", "hpc:cluster", "ssh:", "hpc:", "all"} == set(every)
    assert complete(tmp_project, "hsm assign --sources local:2,ser") == ["local:2,server1"]
    assert "local:2,ssh:server1" in complete(tmp_project, "hsm assign --sources local:2,s")
    assert "local:2,local" not in complete(tmp_project, "hsm assign --sources local:2,")
    assert complete(tmp_project, "hsm sources disable local,") == ["local,server1", "local,cluster"]
    assert complete(tmp_project, "hsm sources enable server1 ") == ["local", "cluster"]
    assert set(complete(tmp_project, "hsm test ")) >= {"local", "ssh:server1", "hpc:cluster", "ssh:"}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_of_each_shell(tmp_path: Path, shell: str) -> None:
    done = run(tmp_path, {"_HSM_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and "_HSM_COMPLETE" in done.stdout and "hsm" in done.stdout
