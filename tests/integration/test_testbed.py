"""Contract tests of the test bed itself: what hsm's SSH, Slurm and PBS tests rely on.

Each fault test puts the test bed back the way it found it, also when it fails.
"""

from __future__ import annotations

import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
from plumbum import local

SSH_OPTIONS = (
    "HostKeyAlias",
    "IdentityFile",
    "UserKnownHostsFile",
    "GlobalKnownHostsFile /dev/null",
    "StrictHostKeyChecking yes",
    "BatchMode yes",
    "ConnectTimeout 5",
    "ServerAliveInterval 2",
    "ServerAliveCountMax 2",
)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Polls until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(interval)


def ssh(testbed, host):
    return local["ssh"]["-F", str(testbed.ssh_config), host]


def rsync(testbed):
    return local["rsync"]["-a", "-e", f"ssh -F {testbed.ssh_config}"]


def timed(command):
    """(rc, stdout, stderr, seconds) without raising on a non-zero rc."""
    start = time.monotonic()
    rc, out, err = command.run(retcode=None, timeout=60)
    return rc, out, err, time.monotonic() - start


def ssh_ok(testbed, host) -> bool:
    return ssh(testbed, host)["true"].run(retcode=None, timeout=30)[0] == 0


def sacct_rows(job_id: str) -> dict[str, tuple[str, str]]:
    out = local["sacct"]("-n", "-X", "-P", "-j", job_id, "-o", "JobID,State,ExitCode")
    rows = {}
    for line in out.splitlines():
        if line.strip():
            jid, state, code = line.split("|")
            rows[jid] = (state, code)
    return rows


def squeue_state(job_id: str) -> str:
    return local["squeue"]("-h", "-t", "all", "-j", job_id, "-o", "%T").strip()


@pytest.mark.ssh
@pytest.mark.slurm
def test_status_and_environment(testbed):
    rc, out, _, _ = timed(local[str(Path(__file__).parents[1] / "testbed" / "testbed")]["status"])
    assert rc == 0, out
    assert testbed.hosts == ["server1", "server2"]
    assert testbed.login == "hpc"
    assert testbed.slurm_conf.is_file()
    config = testbed.ssh_config.read_text()
    for host in [*testbed.hosts, testbed.login]:
        assert f"Host {host}\n" in config
    for option in SSH_OPTIONS:
        assert config.count(option) >= 3, option


@pytest.mark.ssh
def test_command_and_rsync_to_each_host(testbed, tmp_path):
    token = uuid.uuid4().hex
    names = {host: f"hsm-testbed-{host}-{token}.txt" for host in testbed.hosts}
    try:
        for host in testbed.hosts:
            assert ssh(testbed, host)["echo", "hello", host]().strip() == f"hello {host}"
            src = tmp_path / names[host]
            src.write_text(f"{host} {token}\n")
            rsync(testbed)(str(src), f"{host}:")
            assert ssh(testbed, host)["cat", names[host]]().strip() == f"{host} {token}"

        server1, server2 = testbed.hosts
        # A file put on server1 lives in server1's home only.
        assert ssh(testbed, server2)["test", "-e", names[server1]].run(retcode=None)[0] == 1
        assert ssh(testbed, server1)["test", "-e", names[server2]].run(retcode=None)[0] == 1
        assert not (Path.home() / names[server1]).exists()

        # And comes back.
        back = tmp_path / "back"
        back.mkdir()
        rsync(testbed)(f"{server1}:{names[server1]}", f"{back}/")
        assert (back / names[server1]).read_text() == f"{server1} {token}\n"
    finally:
        for host in testbed.hosts:
            ssh(testbed, host)["rm", "-f", names[host]].run(retcode=None)


@pytest.mark.ssh
def test_hosts_have_own_hostname_and_the_same_python(testbed):
    here = socket.gethostname()
    version = ".".join(str(n) for n in sys.version_info[:3])
    seen = {}
    for host in testbed.hosts:
        out = ssh(testbed, host)["hostname; python3 -c 'import platform; print(platform.python_version())'"]()
        name, remote_version = out.split()
        seen[host] = name
        assert remote_version == version
    assert seen == {host: host for host in testbed.hosts}
    assert here not in seen.values()


@pytest.mark.ssh
@pytest.mark.slurm
def test_login_node_submits_to_slurm(testbed, tmp_path):
    out = ssh(testbed, testbed.login)["echo $SLURM_CONF; hostname"]().split()
    assert out == [str(testbed.slurm_conf), socket.gethostname()]
    job_id = ssh(testbed, testbed.login)[
        f"cd {tmp_path} && sbatch --parsable -o out.txt --wrap 'echo from-login'"
    ]().strip()
    wait_for(lambda: sacct_rows(job_id).get(job_id, ("", ""))[0] == "COMPLETED", 30, "COMPLETED in sacct")
    assert (tmp_path / "out.txt").read_text().strip() == "from-login"


@pytest.mark.slurm
def test_sbatch_array_in_squeue_then_sacct(testbed, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "sleep 1\n"
        'echo "task $SLURM_ARRAY_TASK_ID"\n'
        'if [ "$SLURM_ARRAY_TASK_ID" = 1 ]; then exit 3; fi\n'
    )
    job_id = local["sbatch"](
        "--parsable", "--array=0-2", "--chdir", str(tmp_path), "-o", "out_%a.txt", str(script)
    ).strip().split(";")[0]
    try:
        queued = local["squeue"]("-h", "-r", "-j", job_id, "-o", "%i %T")
        assert f"{job_id}_" in queued, queued

        expected = {
            f"{job_id}_0": ("COMPLETED", "0:0"),
            f"{job_id}_1": ("FAILED", "3:0"),
            f"{job_id}_2": ("COMPLETED", "0:0"),
        }
        # sacct lags squeue by up to a few seconds after a job ends.
        wait_for(lambda: sacct_rows(job_id) == expected, 45, f"sacct rows {expected}", 0.25)
        for index in range(3):
            assert (tmp_path / f"out_{index}.txt").read_text() == f"task {index}\n"
    finally:
        local["scancel"][job_id].run(retcode=None)


def qstat_lines(job_ids: list[str]) -> dict[str, str]:
    """qstat's state letter per job id (tasks of an array appear under their own ids)."""
    rc, out, _ = local["qstat"].run(retcode=None)
    states = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 6 and words[0] in job_ids:
            states[words[0]] = words[4]
    return states


@pytest.mark.pbs
def test_qsub_array_in_qstat_removed_by_qdel(testbed, tmp_path):
    script = tmp_path / "pbs.sh"
    script.write_text('#!/bin/bash\necho "$PBS_JOBID $PBS_ARRAY_INDEX" > "$PBS_O_WORKDIR/started.$PBS_ARRAY_INDEX"\nsleep 120\n')
    with local.cwd(tmp_path):
        job_id = local["qsub"]("-t", "0-3", "-N", "tbq", str(script)).strip()
    assert job_id.isdigit(), job_id
    try:
        # The spank plugin gives each task its PBS variables; once all four started, all run.
        wait_for(lambda: len(list(tmp_path.glob("started.*"))) == 4, 30, "four started tasks")
        indexes = sorted(int(p.suffix[1:]) for p in tmp_path.glob("started.*"))
        assert indexes == [0, 1, 2, 3]
        task_ids = sorted({p.read_text().split()[0] for p in tmp_path.glob("started.*")}, key=int)
        assert job_id in task_ids
        assert set(qstat_lines(task_ids).values()) == {"R"}

        local["qdel"](job_id)
        wait_for(lambda: set(qstat_lines(task_ids).values()) == {"C"}, 30, "qstat C for every task")
        # qstat says C while Slurm may still be COMPLETING an element for a moment.
        wait_for(
            lambda: sorted(local["squeue"]("-h", "-r", "-t", "all", "-j", job_id, "-o", "%T").split()) == ["CANCELLED"] * 4,
            30,
            "squeue CANCELLED for every element",
        )
    finally:
        local["scancel"][job_id].run(retcode=None)


@pytest.mark.ssh
def test_crash_host_refuses_then_restart_keeps_files(testbed):
    host = testbed.hosts[1]
    token = uuid.uuid4().hex
    out = ssh(testbed, host)[
        f"echo {token} > crash-test.txt; sleep 300 </dev/null >/dev/null 2>&1 & echo $!"
    ]()
    remote_pid = int(out.strip())
    try:
        testbed.fault("crash-host", host)
        rc, _, err, seconds = timed(ssh(testbed, host)["true"])
        assert rc == 255 and "refused" in err, err
        assert seconds < 2
        # Remote processes are gone with the host (its pids are this machine's pids).
        stat = Path(f"/proc/{remote_pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        testbed.fault("restart-host", host)
    wait_for(lambda: ssh_ok(testbed, host), 15, f"ssh to {host} after restart")
    assert ssh(testbed, host)["cat", "crash-test.txt"]().strip() == token
    assert ssh(testbed, host)["hostname"]().strip() == host
    ssh(testbed, host)["rm", "-f", "crash-test.txt"]()


@pytest.mark.ssh
def test_partition_fails_ssh_to_one_host_and_heal_restores(testbed):
    cut, other = testbed.hosts
    try:
        testbed.fault("partition", cut)
        rc, _, err, seconds = timed(ssh(testbed, cut)["true"])
        assert rc == 255, err
        assert seconds < 10
        assert ssh_ok(testbed, other)
    finally:
        testbed.fault("heal", cut)
    wait_for(lambda: ssh_ok(testbed, cut), 15, f"ssh to {cut} after heal")


@pytest.mark.ssh
def test_freeze_times_out_ssh_and_thaw_restores(testbed):
    host = testbed.hosts[1]
    try:
        testbed.fault("freeze", host)
        rc, _, err, seconds = timed(ssh(testbed, host)["true"])
        assert rc == 255, err
        # ConnectTimeout 5 covers the banner exchange that the stopped sshd never answers.
        assert 4 <= seconds < 10, seconds
    finally:
        testbed.fault("thaw", host)
    wait_for(lambda: ssh_ok(testbed, host), 15, f"ssh to {host} after thaw")


def node_state() -> str:
    return local["sinfo"]("-h", "-n", "node1", "-o", "%T").strip()


@pytest.mark.slurm
def test_node_down_fails_running_job_and_node_up_restores(testbed):
    job_id = local["sbatch"]("--parsable", "--no-requeue", "-o", "/dev/null", "--wrap", "sleep 120").strip()
    try:
        wait_for(lambda: squeue_state(job_id) == "RUNNING", 30, "RUNNING job")
        testbed.fault("node-down")
        wait_for(lambda: squeue_state(job_id) == "NODE_FAIL", 30, "NODE_FAIL in squeue")
        wait_for(lambda: sacct_rows(job_id).get(job_id, ("",))[0] == "NODE_FAIL", 30, "NODE_FAIL in sacct", 0.25)
    finally:
        testbed.fault("node-up")
        local["scancel"][job_id].run(retcode=None)
    wait_for(lambda: node_state() == "idle", 30, "node1 idle after node-up")
