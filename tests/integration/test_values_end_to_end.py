"""Hostile parameter values go through a whole `hsm run` and arrive literally.

The sweep config, the params files, the argv file, the task wrapper and the runner all
stand between the config and the script; this checks them together, against a real
Hydra application and a real argparse script, in a project whose path has a space.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "apps"

HOSTILE = [
    "$(touch PWNED_subst)",
    "a'; echo b; touch PWNED_quote",
    "two words",
    '"double" quotes',
    "back\\slash\\",
    "${HOME}",
    "`touch PWNED_backtick`",
    "null",
    "true",
    "1e-3",
    "",
    " lead and trail ",
    "new\nline",
    "ünïcødé ✓",
    "a=b,c",
    "--looks-like-an-option",
]
TYPED = [None, True, False, 1.5, 1e-05, 7, [1, "x y", None], {"k": "v w"}]


def run_hsm(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HSM_TEST_OUT", None)
    return subprocess.run([sys.executable, "-m", "hsm", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


def make_project(tmp_path: Path, app: str, arg_style: str, values: list) -> Path:
    project = tmp_path / "my project"
    (project / "sweeps").mkdir(parents=True)
    shutil.copy(APPS / app, project / app)
    (project / "hsm_config.yaml").write_text(yaml.safe_dump({
        "paths": {"training_script": app, "python_interpreter": sys.executable},
        "execution": {"arg_style": arg_style},
        "compute": {"disk_min_free_gb": 0.01},
    }))
    (project / "sweeps" / "sweep_config.yaml").write_text(yaml.safe_dump({"grid": {"a": values, "b": ["fixed"]}}))
    return project


def received(sweep: Path, n: int) -> list[dict]:
    out = []
    for i in range(1, n + 1):
        task = sweep / "tasks" / f"task_{i:03d}"
        assert (task / "status.yaml").is_file(), f"{task} has no status"
        out.append(json.loads((task / "received.json").read_text()))
    return out


def test_hostile_values_reach_a_hydra_app(tmp_path: Path) -> None:
    pytest.importorskip("hydra", reason="hydra-core is a test dependency: pip install -e '.[test]'")
    values = HOSTILE + TYPED
    project = make_project(tmp_path, "hydra_app.py", "hydra", values)
    result = run_hsm(project, "run", "--sources", "local:2", "--poll-interval", "0.5")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip())
    got = received(sweep, len(values))
    for value, data in zip(values, got):
        assert data["values"]["a"] == value
        assert data["values"]["b"] == "fixed"
    # Hydra's own outputs went to each task's results/, not into the project.
    assert (sweep / "tasks" / "task_001" / "results" / ".hydra").is_dir()
    assert not (project / "outputs").exists()
    assert not list(project.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))


def test_hostile_values_reach_an_argparse_script(tmp_path: Path) -> None:
    values = [v for v in HOSTILE if v != ""]  # argparse cannot tell --a '' from a missing value in this app
    project = make_project(tmp_path, "argparse_app.py", "argparse", values)
    result = run_hsm(project, "run", "--sources", "local:2", "--poll-interval", "0.5")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.strip())
    for value, data in zip(values, received(sweep, len(values))):
        assert data["a"] == value
    assert not list(project.rglob("PWNED*"))
