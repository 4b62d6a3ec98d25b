"""`hsm run`'s forms: Hydra sweep syntax in configs and on the command line, a positional config,
short options, --distributed, and `hsm sweep --mode`; each against the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.hsmproc import ROOT, Project, hsm_argv, hsm_env, read_index, read_param_table
from tests.cli.test_bad_input import assert_bad_input

pytest.importorskip("hydra")

HYDRA_APP = ROOT / "tests" / "apps" / "hydra_app.py"
APP_CONFIG = f"paths:\n  training_script: {HYDRA_APP}\ncompute:\n  disk_min_free_gb: 0.05\n"
SSH_SOURCE = "compute_sources:\n  server1: {type: ssh, host: server1.invalid}\n"


@pytest.fixture
def app(project: Project) -> Project:
    """The project with the Hydra test app as its training script."""
    project.write("hsm_config.yaml", APP_CONFIG)
    return project


def sweep_dir(result: subprocess.CompletedProcess) -> Path:
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def received(sweep: Path) -> list[dict]:
    """What the Hydra app received in each task, in task order."""
    return [json.loads((task / "received.json").read_text()) for task in sorted((sweep / "tasks").iterdir())]


def params(sweep: Path) -> list[dict]:
    return list(read_param_table(sweep).values())


def hydra_multirun(tmp_path: Path, *overrides: str) -> list[dict]:
    """What `python hydra_app.py -m OVERRIDES` gives each of its jobs, in job order."""
    out = tmp_path / "multirun"
    # chdir: each job runs in its own directory, so the relative HSM_TEST_OUT is one file per job.
    env = {**os.environ, "HSM_TEST_OUT": "received.json"}
    subprocess.run([sys.executable, str(HYDRA_APP), "-m", *overrides, f"hydra.sweep.dir={out}", "hydra.job.chdir=true"],
                   env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    jobs = sorted((p for p in out.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    return [json.loads((job / "received.json").read_text()) for job in jobs]


# --- Hydra's sweep syntax ------------------------------------------------------------------


def test_a_range_in_the_grid_gives_its_ints(app: Project) -> None:
    app.sweep_config('grid:\n  lr: "range(1,5)"\n  w: "range(0,1,0.25)"\n')
    assert app.hsm("run", "--count-only").stdout.strip() == "Total parameter combinations: 16"
    sweep = app.expand("sweeps/sweep_config.yaml")
    got = params(sweep)
    assert sorted({p["lr"] for p in got}) == [1, 2, 3, 4] and all(type(p["lr"]) is int for p in got)
    assert sorted({p["w"] for p in got}) == [0.0, 0.25, 0.5, 0.75]


def test_command_line_sweeps_reach_the_app_as_with_hydra_multirun(app: Project, tmp_path: Path) -> None:
    result = app.hsm("run", "--sources", "local:2", "--poll-interval", "0.2", "--", "a=1,2", "b=x,y")
    sweep = sweep_dir(result)
    assert len(read_index(sweep)["tasks"]) == 4
    got = received(sweep)
    assert got == hydra_multirun(tmp_path, "a=1,2", "b=x,y")
    assert [(r["repr"]["a"], r["repr"]["b"]) for r in got] == [("1", "'x'"), ("1", "'y'"), ("2", "'x'"), ("2", "'y'")]
    # The sweep keeps a config that makes it again, and its overrides.
    assert yaml.safe_load((sweep / "sweep_config.yaml").read_text()) == {"grid": {"a": [1, 2], "b": ["x", "y"]}}
    assert yaml.safe_load((sweep / "sweep_metadata.yaml").read_text())["overrides"] == ["a=1,2", "b=x,y"]


def test_fixed_added_and_deleted_keys_and_quoted_values_match_hydra_too(app: Project, tmp_path: Path) -> None:
    overrides = ("b='1','2'", "a=range(1,3)", "+extra=[1,x]", "~model", "v0=true")
    sweep = sweep_dir(app.hsm("run", "-s", "local:4", "--poll-interval", "0.2", *overrides))
    assert received(sweep) == hydra_multirun(tmp_path, *overrides)
    first = received(sweep)[0]["values"]
    assert first["b"] == "1" and first["a"] == 1 and first["extra"] == [1, "x"] and "model" not in first


# --- positional config, short options, --distributed, hsm sweep -------------------------------------


def test_positional_config_distributed_and_short_options(app: Project) -> None:
    app.sweep_config("grid:\n  a: [1, 2, 3]\n  b: [x, y]\n", name="sweeps/mine.yaml")
    dry = app.hsm("run", "-c", "sweeps/mine.yaml", "-s", "local:3", "-p", "2", "-d")
    assert dry.returncode == 0 and "Tasks to execute: 6" in dry.stdout and "local:2" in dry.stdout, dry.stderr
    assert app.output_entries() == []
    sweep = sweep_dir(app.hsm("run", "sweeps/mine.yaml", "--distributed", "-p", "1", "--poll-interval", "0.2", "b=q"))
    index = read_index(sweep)
    assert list(index["sources"]) == ["local"] and index["sources"]["local"]["max_parallel"] == 1
    # The overrides join the config's grid, and win over its b.
    assert [(r["values"]["a"], r["values"]["b"]) for r in received(sweep)] == [(1, "q"), (2, "q"), (3, "q")]
    assert (sweep / "sweep_config.yaml").read_text().endswith(
        "# Command-line overrides, which take precedence over the above: b=q\n")
    # The same set as --distributed is no conflict.
    assert app.hsm("run", "sweeps/mine.yaml", "--distributed", "-s", "local:2", "--count-only").returncode == 0
    pending = app.hsm("complete", sweep.name, "-s", "local:1", "-p", "1", "-d")
    assert pending.returncode == 0 and "0 tasks would run" in pending.stderr, pending.stderr


def test_hsm_sweep_mode_local(app: Project) -> None:
    app.sweep_config("grid:\n  a: \"range(1,3)\"\n")
    result = app.hsm("sweep", "--mode", "local", "-p", "2", "--poll-interval", "0.2")
    sweep = sweep_dir(result)
    assert [r["values"]["a"] for r in received(sweep)] == [1, 2]
    assert list(read_index(sweep)["sources"]) == ["local"]
    assert "Example:" in app.hsm("sweep", "--help").stdout


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("setup", "args", "words"), [
    ("grid:\n  lr: [range(1,5)]\n", ("run", "-s", "local:1"),
     ("sweeps/sweep_config.yaml", "grid.lr", "'range(1', '5)'", 'lr: "range(1,5)"')),
    ("grid:\n  lr: [range(1,5)]\n", ("expand", "sweeps/sweep_config.yaml"), ("grid.lr", "quote it")),
    ("grid:\n  lr: \"range(1,\"\n", ("run",), ("grid.lr", "'range(1,'")),
    ("grid:\n  a: [1]\n", ("run", "sweeps/sweep_config.yaml", "--config", "sweeps/sweep_config.yaml"),
     ("sweeps/sweep_config.yaml", "--config")),
    ("grid:\n  a: [1]\n", ("run", "a=1", "sweeps/sweep_config.yaml"), ("'sweeps/sweep_config.yaml'", "first")),
    ("grid:\n  a: [1]\n", ("run", "--", "lr"), ("'lr'", "override")),
    ("grid:\n  a: [1]\n", ("run", "lr=interval(0,1)"), ("'lr=interval(0,1)'", "interval")),
    ("grid:\n  a: [1]\n", ("run", "lr=${a}"), ("'lr=${a}'", "interpolation")),
    ("grid:\n  a: [1]\n", ("run", "--resume", "s1", "a=2"), ("--resume", "overrides")),
    ("grid:\n  a: [1]\n", ("sweep", "--mode", "ssh"), ("--mode ssh", "no enabled ssh source")),
])
def test_bad_forms_are_one_line_and_write_nothing(app: Project, setup: str, args: tuple[str, ...],
                                                  words: tuple[str, ...]) -> None:
    app.sweep_config(setup)
    assert_bad_input(app.hsm(*args), *words)
    assert app.output_entries() == []


def test_distributed_with_a_different_sources_set_is_refused(app: Project) -> None:
    app.write("hsm_config.yaml", APP_CONFIG + SSH_SOURCE)
    app.sweep_config("grid:\n  a: [1]\n")
    assert_bad_input(app.hsm("run", "--distributed", "--sources", "local"), "--distributed", "--sources", "server1")
    assert app.output_entries() == []


def test_without_hydra_core_sweep_syntax_says_how_to_install_it(app: Project, tmp_path: Path) -> None:
    stub = tmp_path / "no_hydra" / "hydra"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named hydra (a stand-in)')\n")
    app.sweep_config('grid:\n  lr: "range(1,5)"\n')
    env = hsm_env(PYTHONPATH=f"{stub.parent}{os.pathsep}{ROOT}")

    def hsm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(hsm_argv(*args), cwd=app.root, env=env, capture_output=True, text=True, timeout=60,
                              check=False, stdin=subprocess.DEVNULL)

    line = assert_bad_input(hsm("run", "sweeps/sweep_config.yaml", "-s", "local:1"))
    assert line == ("hsm: error: sweeps/sweep_config.yaml: grid.lr: 'range(1,5)' is Hydra sweep syntax; "
                    "install hydra-core to use it (pip install hydra-core)")
    assert_bad_input(hsm("run", "--", "a=1,2"), "'a=1,2'", "pip install hydra-core")
    assert app.output_entries() == []
    # A config with no sweep syntax needs no Hydra.
    app.sweep_config("grid:\n  lr: [1, 'my(range)']\n")
    assert hsm("run", "--count-only").stdout.strip() == "Total parameter combinations: 2"
