"""`hsm sources`, `hsm test` and `hsm monitor health` against the test bed's SSH hosts and Slurm.

The SSH tests use the hosts server1 and server2 (each project under its own `~/hsm-it/<id>/`
there); the Slurm tests the test bed's cluster, here and through its login host.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_slurm import HpcProject
from tests.integration.test_ssh import FINAL, JOB_PY, SshProject, job_sweep, read_status

HOSTS = {"server1": {"type": "ssh", "host": "server1", "max_parallel_tasks": 1},
         "server2": {"type": "ssh", "host": "server2", "max_parallel_tasks": 1}}


def table_rows(text: str) -> dict[str, list[str]]:
    """A tabulate outline table's rows by their first cell."""
    out = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            out[cells[0]] = cells[1:]
    return out


@pytest.fixture
def hosts_project(tmp_path: Path, testbed: Any) -> Iterator[SshProject]:
    """A project with server1 and server2 configured, its copies under a fresh dir on each host."""
    base = f"hsm-it/{uuid.uuid4().hex[:10]}"
    p = SshProject(tmp_path / "my project", testbed, f"~/{base}", tmp_path / "cache")
    p.write("job.py", JOB_PY)
    p.config(extra={"compute_sources": HOSTS})
    yield p
    for host in testbed.hosts:
        subprocess.run([*testbed.ssh_args(host), f"rm -rf ~/{base}; rmdir ~/hsm-it 2>/dev/null; true"],
                       capture_output=True, timeout=60, check=False)


@pytest.mark.ssh
def test_a_host_test_finds_python_and_the_project_copy(hosts_project: SshProject) -> None:
    p = hosts_project
    result = p.ok("sources", "test", "server1,server2")
    for name in ("server1", "server2"):
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"✓ {name} (ssh): "))
        assert re.search(r"reachable, Python 3\.\d+", line), line
        assert "not there yet (sync: push copies it at the first submit)" in line and "GB free" in line, line
    p.ok("sync", "--target", "ssh:server1")
    line = p.ok("test", "ssh:server1").stdout
    assert f"project dir {p.remote_root} exists" in line, line

    p.config(extra={"compute_sources": HOSTS}, ssh={"sync": "verify"})
    refused = p.hsm("test", "ssh:server2")
    assert refused.returncode == 1, refused.stderr
    assert refused.stdout.startswith("✗ server2 (ssh): ") and "does not exist (sync: verify)" in refused.stdout


@pytest.mark.ssh
def test_a_cut_off_host_fails_its_test_and_shows_unhealthy(hosts_project: SshProject) -> None:
    p = hosts_project
    p.testbed.fault("partition", "server2")
    try:
        result = p.hsm("sources", "test", "--all")
        assert result.returncode == 1, result.stderr
        assert re.search(r"^✗ server2 \(ssh\): ssh server2: ", result.stdout, re.M), result.stdout
        assert re.search(r"^✓ server1 \(ssh\): ", result.stdout, re.M), result.stdout
        health = table_rows(p.ok("monitor", "health").stdout)
        assert health["server2"][0] == "❌ Unhealthy"
        assert health["server1"][0] in ("✅ Healthy", "⚠️ Degraded") and "GB free" in health["server1"][1]
    finally:
        p.testbed.fault("heal", "server2")
    assert p.ok("test", "ssh:server2").stdout.startswith("✓ server2 (ssh): ")


@pytest.mark.ssh
def test_disabling_a_host_moves_its_waiting_tasks_to_the_other(hosts_project: SshProject) -> None:
    p = hosts_project
    job_sweep(p, list(range(8)), sleep=3)
    sweep = p.new_sweep("server1,server2")
    p.ok("submit", str(sweep))
    p.poll_until(sweep, lambda ix: {t.get("source") for t in ix["tasks"].values() if t["state"] == "running"}
                 == {"server1", "server2"}, 60, "a task running on each host")
    health = table_rows(p.ok("monitor", "health", str(sweep)).stdout)
    assert health["server1"][1].startswith("1/1 tasks, 3 waiting"), health

    before = p.index(sweep)["tasks"]
    waiting = sorted(t for t, e in before.items() if e["source"] == "server2" and e["state"] in ("submitted", "queued"))
    result = p.ok("sources", "disable", "server2", "--reason", "flaky")
    moved = int(re.search(r"Redistributing (\d+) pending tasks from disabled source 'server2'", result.stderr)[1])
    assert 1 <= moved <= len(waiting) and f"Tasks reassigned: server1({moved})" in result.stderr, result.stderr
    assert yaml.safe_load((p.root / "hsm_config.yaml").read_text())["compute_sources"]["server2"]["enabled"] is False

    p.ok("submit", str(sweep))
    index = p.poll_until(sweep, lambda ix: all(t["state"] in FINAL for t in ix["tasks"].values()), 180,
                         "every task to finish")
    assert {t["state"] for t in index["tasks"].values()} == {"completed"}
    p.ok("collect", str(sweep))
    moved_ids = [t for t in waiting if index["tasks"][t]["source"] == "server1"]
    assert len(moved_ids) == moved
    for tid in moved_ids:  # taken back before they started: they ran on server1 only
        assert read_status(sweep / "tasks" / tid)["host"] == "server1"
    p.ok("sources", "enable", "server2")
    assert yaml.safe_load((p.root / "hsm_config.yaml").read_text())["compute_sources"]["server2"]["enabled"] is True


@pytest.mark.slurm
def test_an_hpc_test_checks_the_scheduler_and_the_partition(tmp_path: Path, testbed: Any) -> None:
    sources = {
        "cluster": {"type": "hpc", "system": "slurm", "queue": "debug", "max_parallel_tasks": 4},
        "wrong": {"type": "hpc", "system": "slurm", "queue": "no-such-partition"},
        "remote": {"type": "hpc", "system": "slurm", "host": testbed.login, "ssh_config": str(testbed.ssh_config)},
    }
    p = HpcProject(tmp_path / "p", sources=sources)
    line = p.hsm("test", "hpc:cluster").stdout
    assert line.startswith("✓ cluster (hpc): scheduler answers: Slurm answers: debug up;"), line
    assert line.rstrip().endswith("partition/queue debug exists"), line
    wrong = p.hsm("test", "hpc:wrong", check=False)
    assert wrong.returncode == 1 and "✗ wrong (hpc): partition no-such-partition not found" in wrong.stdout
    assert p.hsm("test", "hpc:remote").stdout.startswith(f"✓ remote (hpc): scheduler answers on {testbed.login}:")
    status = table_rows(p.hsm("sources", "status").stdout)
    assert status["cluster"][1] == "✅ Healthy" and status["wrong"][1] == "❌ Unhealthy"
