"""One sweep whose tasks fail in five ways, on the test bed: each way gets its category and
its suggestion, on standard error as it happens, in the error files and in the reports.

The sources take the tasks round robin (cluster, server2, local, cluster, ...), so every
third task runs here and fails as its `mode` says; the cluster's first attempts outlive
the walltime, and server2 is crashed while its tasks run.
"""

from __future__ import annotations

import html
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.test_failover import FAST_FAILOVER, finish, running_on, start_run, the_sweep
from tests.integration.test_ssh import SshProject, project, read_status, remote_base, wait_for  # noqa: F401

ERRS_PY = """\
import argparse, os, time
mode = argparse.ArgumentParser()
mode.add_argument("--mode")
mode = mode.parse_args().mode
source, attempt = os.environ["HSM_SOURCE"], os.environ["HSM_ATTEMPT"]
if source == "server2" or (source == "cluster" and attempt == "1"):
    time.sleep(600)  # killed with its host / at the walltime
elif mode == "imports":
    import torchx_is_not_installed  # noqa
elif mode == "memory":
    raise MemoryError()
elif mode == "disk":
    with open("/dev/full", "w") as fh:
        fh.write("checkpoint")
"""

MODES = ["slow1", "slow2", "imports", "slow3", "slow4", "memory", "slow5", "slow6", "disk"]
EXPECTED = {"walltime": "Walltime exceeded", "connection_lost": "Connection lost", "import": "Import error",
            "host_oom": "Host out of memory", "disk_full": "Disk full"}


def cancel_jobs_of(sweep: Path) -> None:
    jobs = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, timeout=30).stdout
    ids = [line.split()[0] for line in jobs.splitlines() if sweep.name in line]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


@pytest.mark.ssh
@pytest.mark.slurm
def test_five_ways_to_fail_give_five_categories(project: SshProject) -> None:
    # Not told before the limit (timeout_warning 0): the wrapper sees Slurm's TERM as a cancel.
    cluster = {"type": "hpc", "system": "slurm", "max_parallel_tasks": 3, "default_walltime": "00:01:00",
               "timeout_warning": 0}
    project.config({"compute": FAST_FAILOVER, "compute_sources": {"cluster": cluster}})
    project.write("errs.py", ERRS_PY)
    project.write("sweeps/sweep_config.yaml", yaml.safe_dump(
        {"grid": {"mode": MODES}, "command": "{python} errs.py --mode {mode}"}))
    run = start_run(project, "--sources", "cluster:3,ssh:server2:3,local:3", "--strategy", "round_robin",
                    "--poll-interval", "0.5")
    sweep = None
    try:
        wait_for(lambda: run.poll() is not None or (project.root / "sweeps" / "outputs").is_dir(), 60, "the sweep")
        assert run.poll() is None, finish(run, 10)
        sweep = the_sweep(project)
        wait_for(lambda: run.poll() is not None or len(running_on(project, sweep, "server2")) == 3, 90,
                 "three tasks running on server2")
        assert run.poll() is None, finish(run, 10)
        project.testbed.fault("crash-host", "server2")
        code, _, err = finish(run, 300)
    finally:
        run.kill()
        project.testbed.fault("restart-host", "server2")
        if sweep is not None:
            cancel_jobs_of(sweep)
    assert code == 1, err
    for title in EXPECTED.values():
        assert f'Error pattern detected: "{title}"' in err, err

    errors = sweep / "logs" / "errors"
    patterns = yaml.safe_load((errors / "error_patterns.yaml").read_text())["patterns"]
    found = {p["key"]: p for p in patterns}
    assert set(found) == set(EXPECTED), patterns
    assert found["walltime"]["sources"] == ["cluster"] and found["connection_lost"]["sources"] == ["server2"]
    assert found["import"]["tasks"] == ["task_003"] and found["host_oom"]["tasks"] == ["task_006"]
    assert found["disk_full"]["tasks"] == ["task_009"]
    failed = yaml.safe_load((errors / "failed_tasks.yaml").read_text())["failed"]
    assert {f["category"] for f in failed} == set(EXPECTED)
    assert "No space left on device" in (errors / "task_009_error.txt").read_text()

    # The walltime: Slurm's TERM reached the wrapper as a plain cancel (or as its command's
    # exit 143); the index and the task's own status say the same.
    index = project.index(sweep)
    for tid in ("task_001", "task_004", "task_007"):
        entry = index["tasks"][tid]
        assert (entry["state"], entry["reason"]) == ("failed", "timeout"), (tid, entry)
        status = read_status(sweep / "tasks" / tid)
        assert (status["state"], status["reason"], status["recorded_by"]) == ("failed", "timeout", "hsm"), status
        # Slurm signals every process of the job: the wrapper saw a cancel, or its command's 143 first.
        assert status["observed_state"] in ("cancelled", "failed"), status

    shown = project.ok("monitor", "errors", str(sweep)).stdout
    report = html.unescape((sweep / "reports" / "error_analysis.html").read_text())
    for key, title in EXPECTED.items():
        suggestion = found[key]["suggestion"]
        assert title in shown and suggestion in shown, shown
        assert title in report and suggestion in report


FLAKY_PY = """\
import os, sys
print(f"stderr of attempt {os.environ['HSM_ATTEMPT']}", file=sys.stderr)
print("Traceback (most recent call last):", file=sys.stderr)
print("ModuleNotFoundError: No module named 'torchx'", file=sys.stderr)
sys.exit(3)
"""


@pytest.mark.ssh
def test_a_remote_failure_comes_home_with_the_poll_and_each_attempt_keeps_its_logs(project: SshProject) -> None:
    project.config({"compute": {"disk_min_free_gb": 0.05, "retry_attempts": 1, "retry_delay": 0,
                                "retry_on_exit_codes": [3], "result_collection_interval": 3600}})
    project.write("flaky.py", FLAKY_PY)
    project.write("sweeps/sweep_config.yaml", yaml.safe_dump({"grid": {"x": [1]}, "command": "{python} flaky.py"}))
    sweep = project.new_sweep("ssh:server1:1")
    for attempt in (1, 2):
        if attempt == 2:  # the retry waits in the pool for its next assignment
            project.ok("assign", str(sweep), "--sources", "ssh:server1:1")
        project.ok("submit", str(sweep))
        project.poll_until(sweep, lambda index: index["tasks"]["task_001"]["state"] in ("pending", "failed"), 60,
                           f"attempt {attempt} to fail")
        # No collection ran: the evidence came home with the poll that saw the failure.
        text = (sweep / "logs" / "errors" / "task_001_error.txt").read_text()
        assert f"stderr of attempt {attempt}" in text and "Category: Import error" in text, text
        assert "Exit code: 3" in text
        if attempt == 1:
            kept = sweep / "tasks" / "task_001" / "attempts" / "1"
            assert "stderr of attempt 1" in (kept / "stderr_tail.log").read_text()
            assert read_status(kept)["state"] == "failed"
    project.ok("collect", str(sweep), "--final")
    assert (sweep / "tasks" / "task_001" / "stderr.log").read_text().startswith("stderr of attempt 2")
    # The host kept attempt 1's own logs too, beside attempt 2's.
    relative = project.remote_root.removeprefix("~/")
    remote = project.on_host("server1", f"cat \"$HOME/{relative}/sweeps/outputs/{sweep.name}/tasks/task_001/"
                                        "attempts/1/stderr.log\"").stdout
    assert remote.startswith("stderr of attempt 1")
