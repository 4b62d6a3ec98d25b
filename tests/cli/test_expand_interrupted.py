"""An expand killed part-way leaves nothing that blocks running it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.cli.hsmproc import Project, hsm_argv, hsm_env, wait_for

BIG = "grid:\n  a: [" + ", ".join(str(i) for i in range(1000)) + "]\n  b: [" + ", ".join(str(i) for i in range(500)) + "]\n"


def half_built(outputs: Path) -> list[Path]:
    """Sweep dirs being built whose parameter table is part-written (the index comes after it)."""
    return [p for p in outputs.glob(".sweep_x.*.tmp")
            if (p / "task_params.jsonl").is_file() and (p / "task_params.jsonl").stat().st_size > 0
            and not (p / "task_mapping.yaml").exists()]


def test_the_same_sweep_id_expands_again_after_a_kill(project: Project) -> None:
    project.sweep_config(BIG)
    expand = subprocess.Popen(hsm_argv("expand", "sweeps/sweep_config.yaml", "--sweep-id", "sweep_x"),
                              cwd=project.root, env=hsm_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: half_built(project.outputs) or expand.poll() is not None, 60, "the sweep half built")
        assert expand.poll() is None, "the expand of 500,000 tasks ended before it could be killed"
        os.kill(expand.pid, signal.SIGKILL)
    finally:
        expand.wait(timeout=30)
    left = sorted(p.name for p in project.outputs.iterdir())
    assert "sweep_x" in left and any(n.startswith(".sweep_x.") for n in left), left  # what the kill left

    started = time.monotonic()
    again = project.hsm("expand", "sweeps/sweep_config.yaml", "--sweep-id", "sweep_x", timeout=300)
    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.strip()).name == "sweep_x"
    assert sorted(p.name for p in project.outputs.iterdir()) == ["sweep_x"]
    # (json: the index is YAML's JSON-compatible subset, and a YAML parser in Python takes minutes on it)
    index = json.loads((project.outputs / "sweep_x" / "task_mapping.yaml").read_text(encoding="utf-8"))
    assert len(index["tasks"]) == 500_000
    assert len((project.outputs / "sweep_x" / "task_params.jsonl").read_text(encoding="utf-8").splitlines()) == 500_000
    assert time.monotonic() - started < 300
    assert not (project.outputs / "sweep_x" / ".expand_owner").exists()


def test_a_sweep_dir_follows_the_umask(project: Project) -> None:
    project.sweep_config("grid:\n  a: [1, 2]\n")
    for umask, mode in ((0o022, 0o755), (0o077, 0o700), (0o002, 0o775)):
        made = subprocess.run(["bash", "-c", f"umask {umask:03o} && exec \"$@\"", "-",
                               *hsm_argv("expand", "sweeps/sweep_config.yaml")],
                              cwd=project.root, env=hsm_env(), capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        sweep = Path(made.stdout.strip())
        assert oct(sweep.stat().st_mode & 0o777) == oct(mode), (oct(umask), oct(sweep.stat().st_mode))
        assert oct((sweep / "tasks").stat().st_mode & 0o777) == oct(mode)
