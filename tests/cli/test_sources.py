"""`hsm sources`, `hsm test`, `hsm distributed` and `hsm monitor health`, run as real processes on real files.

Sources that need no test bed: this machine (twice, as two local sources), an SSH host on a
port where nothing listens (127.0.0.1:1, refused at once), and an HPC source whose partition
does not exist (whatever scheduler this machine has, or none).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.cli.hsmproc import Project, job_command, read_index, wait_for
from tests.cli.test_bad_input import assert_bad_input

CONFIG = """\
# the project's sources
paths:
  training_script: train.py

compute_sources:
  local: {type: local, max_parallel_tasks: 1}   # this machine

  other: {type: local, max_parallel_tasks: 1}

  dead:
    type: ssh
    host: 127.0.0.1
    ssh_port: 1       # nothing listens here
    max_parallel_tasks: 2

  cluster:
    type: hpc
    system: slurm
    queue: no-such-partition
    enabled: false

# thresholds
compute:
  disk_min_free_gb: 0.05
distributed:
  remotes:
    blossom:
      host: 127.0.0.1
      ssh_port: 1
"""


@pytest.fixture
def sources_project(project: Project) -> Project:
    project.write("hsm_config.yaml", CONFIG)
    return project


def config_text(p: Project) -> str:
    return (p.root / "hsm_config.yaml").read_text(encoding="utf-8")


def ok(p: Project, *args: str) -> tuple[str, str]:
    result = p.hsm(*args)
    assert result.returncode == 0, f"hsm {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout, result.stderr


def rows(table: str) -> dict[str, list[str]]:
    """A tabulate outline table's rows by their first cell."""
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if line.startswith("│") and cells[0] not in ("Source",):
            out[cells[0]] = cells[1:]
    return out


# --- list, test, monitor health: no sweep ------------------------------------------------------------


def test_list_shows_every_configured_source(sources_project: Project) -> None:
    out, _ = ok(sources_project, "sources", "list")
    table = rows(out)
    assert table["local"] == ["local", "1", "yes", "this machine", "compute_sources"]
    assert table["dead"] == ["ssh", "2", "yes", "127.0.0.1:1", "compute_sources"]
    assert table["cluster"] == ["hpc", "4", "no", "slurm, partition no-such-partition", "compute_sources"]
    assert table["blossom"][0] == "ssh" and table["blossom"][-1] == "distributed.remotes"
    assert ok(sources_project, "distributed", "list")[0] == out


def test_source_tests_say_what_failed_and_exit_1(sources_project: Project) -> None:
    result = sources_project.hsm("sources", "test", "local", "dead,cluster")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"✓ local \(local\): Python 3\.\d+\.\d+ at ", lines[0]), lines
    assert lines[1].startswith("✗ dead (ssh): ssh 127.0.0.1:") and "refused" in lines[1], lines
    assert lines[2].startswith("✗ cluster (hpc): "), lines
    assert result.stderr.strip() == "hsm: error: 2 of 3 sources failed the test: dead, cluster"
    every = sources_project.hsm("distributed", "test", "--all")
    assert every.returncode == 1 and len(every.stdout.splitlines()) == 5, every.stdout

    out, _ = ok(sources_project, "test", "local")
    assert out.startswith("✓ local (local): Python 3.")
    assert sources_project.hsm("test", "ssh:dead").stdout.startswith("✗ dead (ssh)")


@pytest.mark.parametrize("args, needles", [
    (("test", "ssh:local"), ("local", "not ssh")),
    (("test", "hpc:nosuch"), ("nosuch",)),
    (("test", "local,other"), ("name one source",)),
    (("sources", "test"), ("--all",)),
    (("sources", "test", "local", "--all"), ("not both",)),
    (("sources", "test", "nosuch"), ("unknown source 'nosuch'",)),
    (("sources", "status", "nosuch"), ("nosuch",)),
    (("monitor", "health", "nosuch"), ("nosuch",)),
    (("sources", "disable", "nosuch"), ("unknown source 'nosuch'",)),
    (("sources", "enable", "local,,other"), ("empty name",)),
], ids=" ".join)
def test_bad_names_are_refused_in_one_line(sources_project: Project, args: tuple[str, ...],
                                           needles: tuple[str, ...]) -> None:
    before = config_text(sources_project)
    assert_bad_input(sources_project.hsm(*args), *needles)
    assert config_text(sources_project) == before


def test_monitor_health_shows_each_source_with_its_status(sources_project: Project) -> None:
    out, _ = ok(sources_project, "monitor", "health")
    assert out.startswith("Source Health Status:\n")
    table = rows(out)
    assert table["local"][0] in ("✅ Healthy", "⚠️ Degraded"), out  # a loaded machine is degraded
    assert "GB free" in table["local"][1] and "checked " in table["local"][1]
    assert table["dead"][0] == "❌ Unhealthy" and "refused" in table["dead"][1]
    assert table["cluster"][0] == "⛔ Disabled" and "enabled: false in hsm_config.yaml" in table["cluster"][1]

    status, _ = ok(sources_project, "sources", "status")
    assert status.startswith("Sources (no running sweep):")
    assert rows(status)["cluster"][3] == "enabled: false in hsm_config.yaml"
    assert rows(status)["dead"][1:4] == ["❌ Unhealthy", "-/2", "no"]


def test_monitor_health_watch_redraws_until_ctrl_c(sources_project: Project) -> None:
    proc = sources_project.start("distributed", "health", "local", "--watch", "--refresh", "0.2")
    seen = ""
    deadline = time.monotonic() + 60
    try:
        while seen.count("Source Health Status:") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                seen += os.read(proc.stdout.fileno(), 65536).decode()
        assert seen.count("Source Health Status:") >= 3, seen
        assert proc.poll() is None  # still watching
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "dead" not in seen  # only the source named


# --- changing hsm_config.yaml --------------------------------------------------------------------------


def test_disable_and_enable_write_enabled_and_keep_the_rest_of_the_file(sources_project: Project) -> None:
    _, err = ok(sources_project, "sources", "disable", "other,dead", "blossom")
    assert "hsm_config.yaml: other, dead, blossom disabled" in err
    text = config_text(sources_project)
    assert text == (CONFIG.replace("other: {type: local", "other: {enabled: false, type: local")
                    .replace("  dead:\n", "  dead:\n    enabled: false\n")
                    .replace("    blossom:\n", "    blossom:\n      enabled: false\n"))
    shown = yaml.safe_load(ok(sources_project, "config", "show")[0])["compute_sources"]
    assert [n for n, s in shown.items() if not s["enabled"]] == ["other", "dead", "cluster", "blossom"]

    ok(sources_project, "sources", "enable", "other", "dead,blossom", "cluster")
    shown = yaml.safe_load(ok(sources_project, "config", "show")[0])["compute_sources"]
    assert all(s["enabled"] for s in shown.values())
    assert "# nothing listens here" in config_text(sources_project)

    _, err = ok(sources_project, "sources", "disable", "dead", "--temporary")
    assert "enabled: false" not in config_text(sources_project)  # --temporary leaves the file alone
    assert err == "  No running sweep uses 'dead'\n"


def test_the_implicit_local_source_is_written_when_disabled(project: Project) -> None:
    before = config_text(project)
    assert_bad_input(project.hsm("sources", "remove", "local"), "local", "always there")
    ok(project, "sources", "disable", "local")
    after = config_text(project)
    assert after.startswith(before)
    assert yaml.safe_load(after)["compute_sources"] == {"local": {"type": "local", "enabled": False}}
    assert rows(ok(project, "sources", "list")[0])["local"][2] == "no"


def test_add_and_remove_leave_the_file_as_it_was(sources_project: Project) -> None:
    _, err = ok(sources_project, "distributed", "add", "gpu-server", "gpu.university.edu",
                "--key", "~/.ssh/id_ed25519", "--max-jobs", "2", "--port", "2222")
    assert "Added ssh source 'gpu-server'" in err
    entry = yaml.safe_load(config_text(sources_project))["compute_sources"]["gpu-server"]
    assert entry == {"type": "ssh", "host": "gpu.university.edu", "max_parallel_tasks": 2, "ssh_port": 2222,
                     "ssh_key": "~/.ssh/id_ed25519"}
    ok(sources_project, "sources", "add", "gpu2", "--type", "hpc", "--partition", "gpu", "--system", "slurm",
       "--set", "module_commands=[module load cuda]", "--set", "max_array_size=500")
    shown = yaml.safe_load(ok(sources_project, "config", "show")[0])["compute_sources"]
    assert shown["gpu2"]["queue"] == "gpu" and shown["gpu2"]["module_commands"] == ["module load cuda"]
    assert rows(ok(sources_project, "sources", "list")[0])["gpu-server"][:4] == ["ssh", "2", "yes",
                                                                                "gpu.university.edu:2222"]
    ok(sources_project, "distributed", "remove", "gpu-server")
    ok(sources_project, "sources", "remove", "gpu2")
    assert config_text(sources_project) == CONFIG


@pytest.mark.parametrize("args, needles", [
    (("sources", "add", "dead", "--type", "ssh"), ("'dead' already exists",)),
    (("sources", "add", "blossom", "--type", "ssh"), ("'blossom' already exists", "distributed.remotes")),
    (("sources", "add", "x", "--type", "local", "--host", "h"), ("host", "local")),
    (("sources", "add", "x", "--type", "ssh", "--partition", "gpu"), ("queue", "ssh")),
    (("sources", "add", "x", "--type", "ssh", "--set", "ssh_port=70000"), ("ssh_port", "70000")),
    (("sources", "add", "x", "--type", "hpc", "--set", "max_array_size=big"), ("max_array_size", "big")),
    (("sources", "add", "x", "--type", "ssh", "--set", "nonsense"), ("--set", "KEY=VALUE")),
    (("sources", "add", "x", "--type", "ssh", "--max-jobs", "0"), ("--max-jobs",)),
    (("sources", "add", "x y", "--type", "ssh"), ("x y",)),
    (("sources", "add", "x", "--type", "cloud"), ("--type", "cloud")),
    (("sources", "remove", "nosuch"), ("nosuch",)),
    (("distributed", "remove", "nosuch"), ("nosuch",)),
], ids=" ".join)
def test_add_and_remove_refuse_bad_input_and_write_nothing(sources_project: Project, args: tuple[str, ...],
                                                           needles: tuple[str, ...]) -> None:
    assert_bad_input(sources_project.hsm(*args), *needles)
    assert config_text(sources_project) == CONFIG


def test_distributed_init_writes_compute_sources_once(project: Project) -> None:
    before = config_text(project)
    ok(project, "distributed", "init")
    after = config_text(project)
    assert after.startswith(before)
    assert yaml.safe_load(after)["compute_sources"] == {"local": {"type": "local", "max_parallel_tasks": 4}}
    _, err = ok(project, "distributed", "init")
    assert "nothing to do" in err and config_text(project) == after

    (project.root / "hsm_config.yaml").unlink()
    ok(project, "distributed", "init")
    assert config_text(project) == "compute_sources:\n  local:\n    type: local\n    max_parallel_tasks: 4\n"


# --- running sweeps --------------------------------------------------------------------------------------


def running_sweep(p: Project, sources: str, n: int = 6, sleep: float = 3.0) -> Path:
    """A submitted sweep of `n` tasks that each sleep, with one task running on each source."""
    p.sweep_config(f"grid:\n  x: {list(range(n))}\ncommand: \"{job_command('--sleep', str(sleep))}\"\n")
    sweep = p.expand("sweeps/sweep_config.yaml")
    ok(p, "assign", str(sweep), "--sources", sources)
    ok(p, "submit", str(sweep))
    names = [s.split(":")[0] for s in sources.split(",")]

    def one_running_each() -> bool:
        ok(p, "poll", str(sweep))
        tasks = read_index(sweep)["tasks"].values()
        return all(any(t.get("source") == n and t["state"] == "running" for t in tasks) for n in names)

    wait_for(one_running_each, 30, "a task running on each source", interval=0.2)
    return sweep


def on(sweep: Path, source: str, *states: str) -> list[str]:
    return sorted(tid for tid, t in read_index(sweep)["tasks"].items()
                  if t.get("source") == source and t["state"] in states)


def test_disable_moves_a_running_sweeps_unstarted_tasks_and_enable_brings_the_source_back(
        sources_project: Project) -> None:
    p = sources_project
    sweep = running_sweep(p, "local:1,other:1")
    waiting = on(sweep, "other", "assigned", "submitted", "queued")
    assert waiting

    _, err = ok(p, "sources", "disable", "other", "--reason", "disk failing")
    assert f"Source 'other' disabled in {sweep.name}" in err
    moved = int(re.search(r"Redistributing (\d+) pending tasks from disabled source 'other'", err).group(1))
    assert moved == len(waiting)
    assert f"Tasks reassigned: local({moved})" in err
    entry = read_index(sweep)["sources"]["other"]
    assert (entry["disabled"], entry["disabled_reason"], entry["disabled_by"]) == (True, "disk failing", "user")
    assert on(sweep, "other", "assigned", "submitted", "queued") == []
    assert set(waiting) <= set(on(sweep, "local", "assigned", "submitted", "queued", "running"))
    assert yaml.safe_load(config_text(p))["compute_sources"]["other"]["enabled"] is False

    summary = p.status(sweep)["sources"]["other"]
    assert (summary["disabled"], summary["disabled_by"], summary["disabled_reason"]) == (True, "user", "disk failing")
    assert "⛔ disabled by user: disk failing" in ok(p, "status", str(sweep))[0]
    health = rows(ok(p, "monitor", "health", str(sweep))[0])
    assert health["other"][0] == "⛔ Disabled" and "disabled by user: disk failing" in health["other"][1]
    assert re.match(r"1/1 tasks", health["other"][1]) and re.match(r"\d/1 tasks", health["local"][1])
    status = rows(ok(p, "sources", "status")[0])  # the most recent running sweep
    assert status["other"][2:4] == ["1/1 tasks", "by user: disk failing"]

    _, err = ok(p, "sources", "enable", "other")
    assert f"Source 'other' enabled in {sweep.name}" in err
    assert not read_index(sweep)["sources"]["other"].get("disabled")
    assert yaml.safe_load(config_text(p))["compute_sources"]["other"]["enabled"] is True


def test_a_temporary_disable_changes_only_the_running_sweeps(sources_project: Project) -> None:
    p = sources_project
    sweep = running_sweep(p, "local:1,other:1")
    _, err = ok(p, "sources", "disable", "local,other", "--temporary")
    assert config_text(p) == CONFIG
    index = read_index(sweep)
    assert index["sources"]["local"]["disabled"] and index["sources"]["other"]["disabled"]
    assert index["sources"]["local"]["disabled_reason"] == "disabled by the user"
    assert "No running sweep uses" not in err


def test_rebalance_gives_an_idle_source_waiting_work(sources_project: Project) -> None:
    p = sources_project
    sweep = running_sweep(p, "local:1", n=4)
    ok(p, "assign", str(sweep), "--sources", "local:1,other:1")  # nothing pending: other joins, idle
    assert on(sweep, "other", "assigned", "submitted", "queued", "running") == []
    out, err = ok(p, "sources", "rebalance", sweep.name)
    assert out.strip() == str(sweep)
    assert "Took back 1 waiting tasks from 'local'" in err and "Tasks reassigned: other(1)" in err, err
    assert len(on(sweep, "other", "assigned")) == 1
    json.dumps(read_index(sweep))  # still plain data
