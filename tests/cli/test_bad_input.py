"""Bad input: one line on stderr naming the problem, exit code 2, no traceback, nothing written.

Every case runs the real CLI (`python -m hsm`) in a real project directory and compares the
sweep outputs directory before and after: a refused command leaves it exactly as it was (for
a project without sweeps: empty or absent).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hsm.cli import cli
from tests.cli.hsmproc import BIN, Project, job_command

GOOD_SWEEP = f"grid:\n  x: [1, 2]\ncommand: \"{job_command()}\"\n"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones included) with its bytes; directories as None."""
    if not root.exists():
        return {}
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = path.read_bytes() if path.is_file() else b"<dir>"
    return out


def assert_bad_input(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, exactly one line on stderr holding every needle, no traceback, no stdout."""
    shown = f"exit {result.returncode}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    assert result.returncode == 2, shown
    assert "Traceback" not in result.stderr, shown
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr\n{shown}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not named in the error\n{shown}"
    assert result.stdout == "", f"nothing may go to stdout on bad input\n{shown}"
    return lines[0]


def _sweep(text: str) -> Callable[[Project], None]:
    def setup(p: Project) -> None:
        p.sweep_config(text)

    return setup


def _hsm_config(text: str) -> Callable[[Project], None]:
    def setup(p: Project) -> None:
        p.write("hsm_config.yaml", text)
        p.sweep_config(GOOD_SWEEP)

    return setup


def _no_script(p: Project) -> None:
    (p.root / "train.py").unlink()
    p.sweep_config("grid:\n  lr: [0.1, 0.2]\n")


CONFIG_CASES = {
    "malformed YAML": (_sweep("grid:\n  x: [1, 2\n  y: 3\n"), ("sweep_config.yaml", "line ")),
    "empty grid list": (_sweep("grid:\n  lr: []\n  bs: [1, 2]\n"), ("sweep_config.yaml", "grid.lr", "empty")),
    "unequal paired lengths": (
        _sweep("sweep:\n  paired:\n    - a: [1, 2, 3]\n      b: [1, 2]\n"),
        ("sweep_config.yaml", "sweep.paired[0]", "equal length"),
    ),
    "unknown top-level key": (_sweep("grid:\n  lr: [1]\ngrdi:\n  bs: [2]\n"), ("sweep_config.yaml", "grdi")),
    "missing training script": (_no_script, ("hsm_config.yaml", "training_script", "train.py")),
    "a grid of 1e20 combinations": (
        _sweep("grid:\n" + "".join(f"  p{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" for i in range(20))),
        ("sweep_config.yaml", "100,000,000,000,000,000,000 combinations", "max_sweep_tasks", "--max-tasks"),
    ),
    # It would reach the script as two arguments: the task's argv file separates them with NUL.
    "a value holding NUL": (_sweep('grid:\n  x: ["a\\0--injected", "b"]\n'),
                            ("sweep_config.yaml", "grid.x[0]", "NUL")),
    "unknown section in hsm_config.yaml": (
        _hsm_config("paths:\n  training_script: train.py\nbogus_section:\n  a: 1\n"),
        ("hsm_config.yaml", "bogus_section"),
    ),
    "malformed hsm_config.yaml": (
        _hsm_config("paths: [train.py\ncompute:\n  disk_min_free_gb: 0.05\n"),
        ("hsm_config.yaml", "line "),
    ),
}

# Settings are checked when the config is loaded: by every command, before anything is written.
SETTING_CASES = {
    "max_array_size: -1": ("compute_sources: {c: {type: hpc, system: slurm, max_array_size: -1}}",
                           ("hsm_config.yaml", "compute_sources.c", "max_array_size", "-1")),
    "max_array_size: big (hpc section)": ("hpc: {system: slurm, max_array_size: big}",
                                          ("hsm_config.yaml", "hpc.max_array_size", "big")),
    "lost_grace: soon": ("compute_sources: {c: {type: hpc, system: slurm, lost_grace: soon}}",
                         ("hsm_config.yaml", "lost_grace", "soon")),
    "module_commands: 5": ("compute_sources: {c: {type: hpc, system: slurm, module_commands: 5}}",
                           ("hsm_config.yaml", "module_commands", "5")),
    "sync: sometimes": ("compute_sources: {s: {type: ssh, host: h, sync: sometimes}}",
                        ("hsm_config.yaml", "compute_sources.s", "sync", "sometimes")),
    "ssh_port: x": ("ssh: {ssh_port: x}", ("hsm_config.yaml", "ssh.ssh_port", "'x'")),
    "ssh_port: 70000": ("distributed: {remotes: {s: {host: h, ssh_port: 70000}}}",
                        ("hsm_config.yaml", "distributed.remotes.s", "ssh_port", "70000")),
    "host read as an option": ("compute_sources: {s: {type: ssh, host: '-oProxyCommand=touch /tmp/x'}}",
                               ("hsm_config.yaml", "host", "-oProxyCommand")),
    "disk_min_free_gb: abc": ("compute: {disk_min_free_gb: abc}", ("hsm_config.yaml", "compute.disk_min_free_gb", "abc")),
    "disk_check_interval: x": ("compute: {disk_check_interval: x}", ("hsm_config.yaml", "disk_check_interval")),
    "result_collection_interval: x": ("compute: {result_collection_interval: x}",
                                      ("hsm_config.yaml", "result_collection_interval")),
    "resources: --mem=lots": ("compute_sources: {c: {type: hpc, system: slurm, resources: '--mem=lots'}}",
                              ("hsm_config.yaml", "compute_sources.c", "mem='lots'", "amount of memory")),
    "max_sweep_tasks: 0": ("compute: {max_sweep_tasks: 0}", ("hsm_config.yaml", "compute.max_sweep_tasks", "0")),
    "disk_floor_mb: -5": ("compute: {disk_floor_mb: -5}", ("hsm_config.yaml", "disk_floor_mb", "-5")),
    "auto_disable_unhealthy_sources: 'no'": ("distributed: {auto_disable_unhealthy_sources: 'no'}",
                                             ("hsm_config.yaml", "auto_disable_unhealthy_sources", "'no'")),
}
for _name, (_text, _needles) in SETTING_CASES.items():
    CONFIG_CASES[_name] = (_hsm_config(f"paths:\n  training_script: train.py\n{_text}\n"), _needles)

COMMANDS = {
    "expand": ("expand", "sweeps/sweep_config.yaml"),
    "run": ("run", "--sources", "local:1", "--poll-interval", "0.1"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_is_refused_before_anything_is_written(project: Project, case: str, command: str) -> None:
    setup, needles = CONFIG_CASES[case]
    setup(project)
    result = project.hsm(*COMMANDS[command])
    assert_bad_input(result, *needles)
    assert project.output_entries() == []


@pytest.mark.parametrize("case", list(SETTING_CASES))
def test_config_validate_refuses_a_bad_setting(project: Project, case: str) -> None:
    text, needles = SETTING_CASES[case]
    project.write("hsm_config.yaml", f"paths:\n  training_script: train.py\n{text}\n")
    assert_bad_input(project.hsm("config", "validate"), *needles)


def test_run_with_an_unknown_strategy(project: Project) -> None:
    project.sweep_config(GOOD_SWEEP)
    result = project.hsm("run", "--sources", "local:1", "--strategy", "nope")
    assert_bad_input(result, "--strategy", "nope")
    assert project.output_entries() == []


def test_assign_with_an_unknown_strategy_changes_nothing(project: Project) -> None:
    project.sweep_config(GOOD_SWEEP)
    sweep = project.expand("sweeps/sweep_config.yaml")
    before = snapshot(project.outputs)
    result = project.hsm("assign", sweep.name, "--sources", "local:1", "--strategy", "nope")
    assert_bad_input(result, "--strategy", "nope")
    assert snapshot(project.outputs) == before


BAD_SPECS = {
    "local:0": ("--sources", "local:0"),
    "ssh": ("--sources", "ssh"),
    "bogus:type:x:y": ("--sources", "bogus"),
    "nosuchname": ("--sources", "nosuchname"),
    "local:²": ("--sources", "²"),
    "local:1e23": ("--sources", "1e23"),
    "an empty spec": ("--sources", "empty"),
}


@pytest.mark.parametrize("spec", list(BAD_SPECS))
def test_run_with_a_malformed_source_spec(project: Project, spec: str) -> None:
    project.sweep_config(GOOD_SWEEP)
    result = project.hsm("run", "--sources", "" if spec == "an empty spec" else spec, "--poll-interval", "0.1")
    assert_bad_input(result, *BAD_SPECS[spec])
    assert project.output_entries() == []


@pytest.mark.parametrize("spec", list(BAD_SPECS))
def test_assign_with_a_malformed_source_spec_changes_nothing(project: Project, spec: str) -> None:
    project.sweep_config(GOOD_SWEEP)
    sweep = project.expand("sweeps/sweep_config.yaml")
    before = snapshot(project.outputs)
    result = project.hsm("assign", str(sweep), "--sources", "" if spec == "an empty spec" else spec)
    assert_bad_input(result, *BAD_SPECS[spec])
    assert snapshot(project.outputs) == before


RUN_OPTIONS = {
    "--sweep-id of 300 characters": (("--sweep-id", "a" * 300), ("--sweep-id", "300 characters")),
    "--sweep-id with a slash": (("--sweep-id", "a/b"), ("--sweep-id", "a/b")),
    "--poll-interval nan": (("--poll-interval", "nan"), ("--poll-interval", "finite")),
    "--poll-interval inf": (("--poll-interval", "inf"), ("--poll-interval", "finite")),
    "--poll-interval 0": (("--poll-interval", "0"), ("--poll-interval",)),
    "--dependency bogus": (("--dependency", "bogus"), ("--dependency", "'bogus'", "TYPE:JOB_ID")),
    "--dependency afterok:": (("--dependency", "afterok:"), ("--dependency", "'afterok:'")),
}


@pytest.mark.parametrize("case", list(RUN_OPTIONS))
def test_run_with_a_bad_option_writes_nothing(project: Project, case: str) -> None:
    project.sweep_config(GOOD_SWEEP)
    args, needles = RUN_OPTIONS[case]
    assert_bad_input(project.hsm("run", "--sources", "local:1", *args), *needles)
    assert project.output_entries() == []


@pytest.mark.parametrize("command", [("status", "nope"), ("poll", "nope"), ("cancel", "nope"),
                                     ("submit", "nope"), ("assign", "nope", "--sources", "local:1"),
                                     ("run", "--resume", "nope")], ids=" ".join)
def test_unknown_sweep_id(project: Project, command: tuple[str, ...]) -> None:
    result = project.hsm(*command)
    assert_bad_input(result, "nope")
    assert project.output_entries() == []


def test_unknown_sweep_id_next_to_an_existing_sweep(project: Project) -> None:
    project.sweep_config(GOOD_SWEEP)
    project.expand("sweeps/sweep_config.yaml")
    before = snapshot(project.outputs)
    for command in (("status", "nope"), ("poll", "nope")):
        assert_bad_input(project.hsm(*command), "nope")
    assert snapshot(project.outputs) == before


def test_step_wrapper_with_a_missing_config(project: Project) -> None:
    result = project.shell("hsm-expand sweeps/absent.yaml")
    line = assert_bad_input(result, "absent.yaml")
    assert line.startswith("hsm-expand")
    assert project.output_entries() == []


def test_pipeline_stops_at_the_step_that_got_bad_input(project: Project) -> None:
    project.sweep_config("grid:\n  lr: []\n")
    result = project.shell("hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:1 | hsm-submit")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "grid.lr" in result.stderr
    assert result.stdout == ""
    assert project.output_entries() == []


def test_step_without_a_sweep_on_empty_stdin(project: Project) -> None:
    result = project.hsm("poll", input="")
    assert_bad_input(result, "sweep")


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue  # the original HSM's commands: they answer with the one that does the job
        if isinstance(command, click.Group):
            out += _commands(command, (*path, name))
        else:
            out.append((*path, name))
    return out


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(("hsm", *p)))
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"hsm {' '.join(path)} --help has no example:\n{result.output}"


@pytest.mark.parametrize("wrapper", sorted(p.name for p in BIN.glob("hsm-*")))
def test_every_step_wrapper_has_help_with_an_example(project: Project, wrapper: str) -> None:
    result = project.shell(f"{wrapper} --help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout
    assert result.stdout.startswith(f"Usage: {wrapper}"), result.stdout[:200]


def test_a_path_a_job_script_cannot_name_is_refused_before_anything(tmp_path: Path) -> None:
    """A double quote in the project's path: a #SBATCH line could not name its log files."""
    from tests.cli.hsmproc import make_project

    p = make_project(tmp_path / 'my"project', "paths:\n  training_script: train.py\ncompute_sources:\n"
                     "  cluster: {type: hpc, system: slurm, max_parallel_tasks: 2}\n")
    p.sweep_config(GOOD_SWEEP)
    assert_bad_input(p.hsm("run", "--sources", "cluster"), 'my"project', "double quote")
    assert p.output_entries() == []
    sweep = p.expand("sweeps/sweep_config.yaml")
    before = snapshot(p.outputs)
    assert_bad_input(p.hsm("assign", str(sweep), "--sources", "cluster"), "double quote")
    assert snapshot(p.outputs) == before


def test_a_config_the_user_cannot_read_is_named(project: Project) -> None:
    """An unreadable hsm_config.yaml (here a directory in its place: root reads any file) is one line."""
    project.sweep_config(GOOD_SWEEP)
    (project.root / "hsm_config.yaml").unlink()
    (project.root / "hsm_config.yaml").mkdir()
    assert_bad_input(project.hsm("run", "--sources", "local:1", "--hsm-config", "hsm_config.yaml"), "hsm_config.yaml")
    assert project.output_entries() == []
