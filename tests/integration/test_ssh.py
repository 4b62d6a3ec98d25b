"""The SSH source against the test bed's real sshd hosts (server1, server2): run, calls, crash, values, sync.

Each test's project lives on this machine under pytest's tmp dir, and on each host under its
own home (`~/hsm-it/<id>/`), which is that host's alone: the hosts share the rest of this
machine's filesystem. hsm runs as a real process; ssh and rsync calls are counted through
HSM_CALL_LOG.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hsm.transport import SshTarget

pytestmark = pytest.mark.ssh

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "apps"
FINAL = ("completed", "failed", "cancelled")

JOB_PY = """\
import argparse, json, os, socket, sys, time

p = argparse.ArgumentParser()
p.add_argument("--x", default="")
p.add_argument("--sleep", type=float, default=0.0)
a = p.parse_args()
out = os.environ["HSM_OUTPUT_DIR"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "result.json"), "w") as fh:
    json.dump({"x": a.x, "host": socket.gethostname(), "cwd": os.getcwd(),
               "task_dir": os.environ["HSM_TASK_DIR"], "tmpdir": os.environ.get("TMPDIR")}, fh)
print("stdout of", os.environ["HSM_TASK_ID"], "x =", a.x, flush=True)
print("stderr of", os.environ["HSM_TASK_ID"], file=sys.stderr, flush=True)
time.sleep(a.sleep)
"""


# --- helpers ------------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Call `predicate` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class SshProject:
    """A project on this machine whose SSH sources put their copies under `remote_base` on each host."""

    def __init__(self, root: Path, testbed: Any, remote_base: str, cache: Path) -> None:
        self.root = root
        self.testbed = testbed
        self.remote_base = remote_base
        self.cache = cache
        self.calls = root.parent / f"calls-{root.name.replace(' ', '_')}.jsonl"

    @property
    def remote_root(self) -> str:
        """The project dir on the hosts, as configured (below the login's home)."""
        return f"{self.remote_base}/{self.root.name}"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def config(self, extra: dict[str, Any] | None = None, ssh: dict[str, Any] | None = None) -> None:
        data: dict[str, Any] = {
            "paths": {"python_interpreter": sys.executable},
            "compute": {"disk_min_free_gb": 0.05},
            "ssh": {"ssh_config": str(self.testbed.ssh_config), "project_dir": self.remote_root, **(ssh or {})},
            **(extra or {}),
        }
        self.write("hsm_config.yaml", yaml.safe_dump(data))

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT)
        env["XDG_CACHE_HOME"] = str(self.cache)  # this machine's cache of host homes, per test
        env.pop("HSM_CALL_LOG", None)
        env.update(extra)
        return env

    def hsm(self, *args: str, count: bool = False, input: str = "", timeout: float = 180) -> subprocess.CompletedProcess:
        """Run `python -m hsm ARGS` in the project; with `count`, record its calls in a fresh log."""
        extra = {}
        if count:
            self.calls.unlink(missing_ok=True)
            extra["HSM_CALL_LOG"] = str(self.calls)
        return subprocess.run([sys.executable, "-m", "hsm", *args], cwd=self.root, env=self.env(**extra),
                              input=input, capture_output=True, text=True, timeout=timeout, check=False)

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        result = self.hsm(*args, **kwargs)
        assert result.returncode == 0, f"hsm {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def counted(self, *programs: str) -> Counter:
        """Calls of the last counted command, per program."""
        if not self.calls.exists():
            return Counter()
        names = [json.loads(line)["program"] for line in self.calls.read_text().splitlines()]
        return Counter(n for n in names if not programs or n in programs)

    def new_sweep(self, sources: str, config: str = "sweeps/sweep_config.yaml") -> Path:
        """expand and assign; the sweep dir (nothing submitted yet)."""
        sweep = Path(self.ok("expand", config).stdout.strip())
        self.ok("assign", str(sweep), "--sources", sources)
        return sweep

    def index(self, sweep: Path) -> dict[str, Any]:
        return yaml.safe_load((sweep / "task_mapping.yaml").read_text())

    def states(self, sweep: Path) -> dict[str, str]:
        return {tid: t["state"] for tid, t in self.index(sweep)["tasks"].items()}

    def poll_until(self, sweep: Path, done: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        def step() -> dict[str, Any] | None:
            self.ok("poll", str(sweep))
            index = self.index(sweep)
            return index if done(index) else None

        return wait_for(step, timeout, what, interval=0.3)

    def on_host(self, host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a shell script on a test bed host (not through hsm)."""
        result = subprocess.run([*self.testbed.ssh_args(host), script], capture_output=True, text=True, timeout=60,
                                check=False)
        if check:
            assert result.returncode == 0, f"on {host}: {script}: {result.stderr}"
        return result


def job_sweep(project: SshProject, xs: list[Any], sleep: float = 0.2) -> Path:
    values = json.dumps([str(x) for x in xs])
    return project.write("sweeps/sweep_config.yaml",
                         f"grid:\n  x: {values}\ncommand: \"{{python}} job.py --x {{x}} --sleep {sleep}\"\n")


def read_status(task_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((task_dir / "status.yaml").read_text())


@pytest.fixture
def remote_base(testbed: Any) -> Iterator[str]:
    """A fresh directory name below the hosts' homes; removed from both hosts afterwards."""
    base = f"hsm-it/{uuid.uuid4().hex[:10]}"
    yield f"~/{base}"
    for host in testbed.hosts:
        subprocess.run([*testbed.ssh_args(host), f"rm -rf ~/{base}; rmdir ~/hsm-it 2>/dev/null; true"],
                       capture_output=True, timeout=60, check=False)


@pytest.fixture
def project(tmp_path: Path, testbed: Any, remote_base: str) -> SshProject:
    """A project in a dir whose name has a space, with job.py and the argparse app."""
    root = tmp_path / "my project"
    p = SshProject(root, testbed, remote_base, tmp_path / "cache")
    p.write("job.py", JOB_PY)
    p.write("argparse_app.py", (APPS / "argparse_app.py").read_text())
    p.config()
    return p


# --- a sweep over this machine and both hosts ------------------------------------------------


def test_sweep_across_local_and_two_hosts_comes_home(project: SshProject) -> None:
    job_sweep(project, list(range(9)))
    result = project.ok("run", "--sources", "local:2,ssh:server1:2,ssh:server2:2", "--poll-interval", "0.3")
    sweep = Path(result.stdout.strip())
    assert "✓ Sweep completed successfully: 9 tasks" in result.stderr
    assert "Project copy on server1 matches" in result.stderr and "Project copy on server2 matches" in result.stderr

    index = project.index(sweep)
    home = project.on_host("server1", "pwd").stdout.strip()
    here = socket.gethostname()
    hosts = {"local": here, "server1": "server1", "server2": "server2"}
    assert len(set(hosts.values())) == 3
    per_source = Counter()
    for tid, entry in index["tasks"].items():
        task = sweep / "tasks" / tid
        status = read_status(task)
        assert entry["state"] == status["state"] == "completed", (tid, entry, status)
        assert status["host"] == hosts[entry["source"]] == entry["host"], (tid, entry, status)
        assert status["source"] == entry["source"]
        out = json.loads((task / "results" / "result.json").read_text())
        assert out["host"] == hosts[entry["source"]]
        assert (task / "stdout.log").read_text().startswith(f"stdout of {tid}")
        assert (task / "stderr.log").read_text().startswith(f"stderr of {tid}")
        # What hsm leaves in a finished task's directory, here or brought home from a host: four
        # files (the task's own results/ aside; its TMPDIR, left empty, is gone).
        assert sorted(p.name for p in task.iterdir() if p.name != "results") == \
            ["params.yaml", "status.yaml", "stderr.log", "stdout.log"], (tid, sorted(task.iterdir()))
        if entry["source"] != "local":
            # It ran in the host's copy of the project, with its TMPDIR in its own task dir there.
            assert out["cwd"] == f"{home}/{project.remote_root[2:]}"
            assert out["task_dir"].startswith(out["cwd"] + "/sweeps/outputs/")
            assert out["tmpdir"] == out["task_dir"] + "/tmp"
        per_source[entry["source"]] += 1
    assert per_source == {"local": 3, "server1": 3, "server2": 3}
    for name in ("server1", "server2"):
        log = (sweep / "logs" / "sources" / f"{name}.log").read_text()
        assert "submitted" in log and "-> completed on " + name in log
    # Nothing of hsm's host-side machinery came home.
    assert not (sweep / ".hsm" / "runners" / "server1" / "started").exists()


# --- calls: O(1) per host ---------------------------------------------------------------------------


def test_submit_and_poll_of_50_tasks_cost_a_fixed_number_of_calls(project: SshProject) -> None:
    # An absolute project dir: nothing to ask the host before the paths are known.
    home = project.on_host("server1", "pwd").stdout.strip()
    project.config(ssh={"project_dir": f"{home}/{project.remote_root[2:]}"})
    job_sweep(project, list(range(50)), sleep=0.0)
    sweep = project.new_sweep("ssh:server1:4")
    project.ok("health", str(sweep))  # copies this hsm's agent to the host if it lacks it (counted elsewhere)

    project.ok("submit", str(sweep), count=True)
    calls = project.counted("ssh", "rsync")
    assert sum(calls.values()) <= 3, calls
    assert calls["ssh"] == 1, calls
    assert all(t["state"] == "submitted" and t["job"] for t in project.index(sweep)["tasks"].values())

    # The runner does not depend on the connection that started it.
    SshTarget("server1", config_file=str(project.testbed.ssh_config)).close()

    project.ok("poll", str(sweep), count=True)
    assert project.counted("ssh", "rsync") == Counter({"ssh": 1})

    index = project.poll_until(sweep, lambda ix: all(t["state"] in FINAL for t in ix["tasks"].values()), 120,
                               "50 tasks to finish on server1")
    assert {t["state"] for t in index["tasks"].values()} == {"completed"}
    project.ok("poll", str(sweep), count=True)
    assert project.counted("ssh", "rsync") == Counter()  # nothing unfinished: nobody to ask

    project.ok("collect", str(sweep), count=True)
    assert project.counted("ssh", "rsync") == Counter({"rsync": 1})
    for i in range(1, 51):
        assert read_status(sweep / "tasks" / f"task_{i:03d}")["host"] == "server1"
    project.ok("collect", str(sweep), count=True)
    assert project.counted("ssh", "rsync") == Counter()  # everything is home already


def test_the_agent_is_copied_to_a_host_once(project: SshProject) -> None:
    # A host that has never seen this version of hsm's agent gets it on the first call: the
    # call finds it missing (runs nothing), one rsync copies it, the call runs again.
    project.on_host("server2", "rm -f ~/.cache/hsm/hsm-agent-*.pyz")
    job_sweep(project, list(range(2)), sleep=0.0)
    sweep = project.new_sweep("ssh:server2:1")
    project.ok("health", str(sweep), count=True)
    assert project.counted("ssh", "rsync") == Counter({"ssh": 2, "rsync": 1})
    listing = project.on_host("server2", "ls ~/.cache/hsm").stdout.split()
    assert len([n for n in listing if n.startswith("hsm-agent-") and n.endswith(".pyz")]) == 1, listing
    project.ok("health", str(sweep), count=True)
    assert project.counted("ssh", "rsync") == Counter({"ssh": 1})


def test_a_home_relative_project_dir_costs_one_call_once(project: SshProject) -> None:
    job_sweep(project, list(range(5)), sleep=0.0)
    first = project.new_sweep("ssh:server2:2")
    project.ok("health", str(first))  # copies this hsm's agent to the host if it lacks it (counted elsewhere)
    project.ok("submit", str(first), count=True)
    assert project.counted("ssh", "rsync") == Counter({"ssh": 2, "rsync": 2})  # the home, then as usual
    second = project.new_sweep("ssh:server2:2")
    project.ok("submit", str(second), count=True)
    assert project.counted("ssh", "rsync") == Counter({"ssh": 1, "rsync": 2})  # this machine knows it now
    for sweep in (first, second):
        project.poll_until(sweep, lambda ix: all(t["state"] == "completed" for t in ix["tasks"].values()), 60,
                           "5 tasks")
    # A project check learns it on the way, as `hsm run` does before it submits anything.
    project.cache.joinpath("hsm", "ssh-homes.json").unlink()
    project.ok("sync", "--target", "ssh:server2")
    third = project.new_sweep("ssh:server2:2")
    project.ok("submit", str(third), count=True)
    assert project.counted("ssh", "rsync") == Counter({"ssh": 1, "rsync": 2})
    project.poll_until(third, lambda ix: all(t["state"] == "completed" for t in ix["tasks"].values()), 60, "5 tasks")


@pytest.fixture
def coarse_on_server1(testbed: Any, coarse_fs: Path, coarse_dir: Path) -> Iterator[Path]:
    """A fresh directory on the one-second file system, mounted on server1 at the same path."""
    testbed.fault("share-mount", "server1", str(coarse_fs))
    try:
        yield coarse_dir
    finally:
        testbed.fault("unshare-mount", "server1", str(coarse_fs))


def test_three_hundred_quick_tasks_on_a_host_all_complete(project: SshProject, coarse_on_server1: Path) -> None:
    # Tasks of milliseconds, on a host whose file system keeps whole-second mtimes: the
    # running and final status of a task share one. Half the tasks do nothing, half take
    # long enough for polls to see them running first. Every final status must still be
    # seen, and come home.
    project.config(ssh={"project_dir": str(coarse_on_server1 / "remote project")})
    values = ", ".join(str(i) for i in range(150))
    project.write("sweeps/sweep_config.yaml",
                  f"grid:\n  i: [{values}]\n  pause: [0, 0.05]\ncommand: \"sleep {{pause}}\"\n")
    result = project.ok("run", "--sources", "ssh:server1:2", "--poll-interval", "0.5", timeout=180)
    assert "✓ Sweep completed successfully: 300 tasks" in result.stderr
    sweep = Path(result.stdout.strip())
    index = project.index(sweep)
    assert len(index["tasks"]) == 300
    remote_tasks = coarse_on_server1 / "remote project" / "sweeps" / "outputs" / sweep.name / "tasks"
    for tid, entry in index["tasks"].items():
        status = read_status(sweep / "tasks" / tid)
        assert entry["state"] == status["state"] == "completed", (tid, entry, status)
        assert status["host"] == "server1"
        assert os.stat(remote_tasks / tid / "status.yaml").st_mtime_ns % 1_000_000_000 == 0


def test_collect_fetches_each_finished_task_once_and_can_clean_up(project: SshProject) -> None:
    project.config(extra={"result_collection": {"cleanup_remote_on_success": True}})
    job_sweep(project, [1, 2, 3, 4], sleep=0.0)
    project.write("sweeps/slow.yaml", "grid:\n  x: ['slow']\ncommand: \"{python} job.py --x {x} --sleep 30\"\n")
    sweep = project.new_sweep("ssh:server2:4")
    project.ok("submit", str(sweep))
    project.poll_until(sweep, lambda ix: all(t["state"] in FINAL for t in ix["tasks"].values()), 60, "4 tasks")

    project.ok("collect", str(sweep), count=True)
    assert project.counted("ssh", "rsync") == Counter({"rsync": 1, "ssh": 1})  # fetch, then remove there
    for i in range(1, 5):
        assert json.loads((sweep / "tasks" / f"task_00{i}" / "results" / "result.json").read_text())["x"] == str(i)
    remote_tasks = f"{project.remote_root}/sweeps/outputs/{sweep.name}/tasks"
    left = project.on_host("server2", f"ls {remote_tasks.replace(' ', chr(92) + ' ')}").stdout.split()
    assert left == [], left

    # While a task runs and nothing finished, a collect fetches nothing; --final fetches it as it is.
    slow = project.new_sweep("ssh:server2:1", "sweeps/slow.yaml")
    project.ok("submit", str(slow))
    wait_for(lambda: project.ok("poll", str(slow)) and project.states(slow)["task_001"] == "running", 30, "running")
    project.ok("collect", str(slow), count=True)
    assert project.counted("ssh", "rsync") == Counter()  # nothing finished: nothing fetched
    project.ok("collect", str(slow), "--final", count=True)
    assert project.counted("ssh", "rsync") == Counter({"rsync": 1})
    assert read_status(slow / "tasks" / "task_001")["state"] == "running"
    project.ok("cancel", str(slow))


# --- a host that crashes ----------------------------------------------------------------------------


def test_a_crashed_host_strands_its_tasks_and_the_others_finish(project: SshProject) -> None:
    testbed = project.testbed
    job_sweep(project, list(range(6)), sleep=3)
    sweep = project.new_sweep("local:2,ssh:server1:2,ssh:server2:2")
    project.ok("submit", str(sweep))
    on = {tid: t["source"] for tid, t in project.index(sweep)["tasks"].items()}
    mine = sorted(t for t, s in on.items() if s == "server2")
    others = sorted(t for t, s in on.items() if s != "server2")
    assert len(mine) == 2

    try:
        project.poll_until(sweep, lambda ix: all(ix["tasks"][t]["state"] == "running" for t in mine), 60,
                           "server2's tasks to run")
        testbed.fault("crash-host", "server2")

        result = project.ok("poll", str(sweep))
        assert "source server2 did not answer" in result.stderr
        index = project.poll_until(sweep, lambda ix: all(ix["tasks"][t]["state"] in FINAL for t in others), 60,
                                   "the other hosts' tasks to finish")
        assert {index["tasks"][t]["state"] for t in others} == {"completed"}
        # Nothing was invented about server2's tasks: they are as last seen.
        assert {index["tasks"][t]["state"] for t in mine} == {"running"}
        assert index["sources"]["server2"]["unreachable_since"]
        assert "unreachable_since" not in index["sources"]["server1"]

        status = json.loads(project.ok("status", str(sweep), "--json").stdout)
        assert list(status["stranded"]) == ["server2"]
        assert status["stranded"]["server2"]["tasks"] == mine
        assert {r["id"] for r in status["tasks"] if r["stranded"]} == set(mine)
        text = project.ok("status", str(sweep)).stdout
        assert "Stranded on server2" in text and all(t in text for t in mine)
        assert "Health check failed for server2" in (sweep / "logs" / "health_status.log").read_text()

        health = project.ok("health", str(sweep))
        assert "server2: unhealthy" in health.stderr, health.stderr
        assert "server1: unhealthy" not in health.stderr, health.stderr

        # A collect brings home what the reachable hosts finished.
        project.ok("collect", str(sweep))
        for t in others:
            if on[t] == "server1":
                assert read_status(sweep / "tasks" / t)["host"] == "server1"
    finally:
        testbed.fault("restart-host", "server2")

    # Back again: the host answers, and says what became of the tasks it ran (killed in the crash).
    index = project.poll_until(sweep, lambda ix: all(ix["tasks"][t]["state"] in FINAL for t in mine), 60,
                               "server2's answer")
    assert {(index["tasks"][t]["state"], index["tasks"][t]["reason"]) for t in mine} == {("failed", "lost")}
    assert "unreachable_since" not in index["sources"]["server2"]
    assert json.loads(project.ok("status", str(sweep), "--json").stdout)["stranded"] == {}


# --- values and paths ---------------------------------------------------------------------------------


HOSTILE = [
    "$(touch PWNED_subst)",
    "a'; echo b; touch PWNED_quote",
    "two words",
    "`touch PWNED_backtick`",
    '"double" quotes',
    "back\\slash\\",
    "${HOME}",
    " lead and trail ",
    "ünïcødé ✓",
    "--looks-like-an-option",
]


def test_hostile_values_and_spaces_in_paths_survive_the_round_trip(project: SshProject) -> None:
    project.config(extra={"paths": {"training_script": "argparse_app.py", "python_interpreter": sys.executable},
                          "execution": {"arg_style": "argparse"}})
    project.write("sweeps/sweep_config.yaml", yaml.safe_dump({"grid": {"a": HOSTILE, "b": ["x y"]}}))
    result = project.ok("run", "--sources", "ssh:server1:3,ssh:server2:3", "--poll-interval", "0.3")
    sweep = Path(result.stdout.strip())
    assert " " in str(sweep)
    for i, value in enumerate(HOSTILE, start=1):
        task = sweep / "tasks" / f"task_{i:03d}"
        assert read_status(task)["host"] in ("server1", "server2")
        assert json.loads((task / "received.json").read_text()) == {"a": value, "b": "x y"}
    assert not list(project.root.rglob("PWNED*"))
    for host in project.testbed.hosts:
        found = project.on_host(host, "find ~ -name 'PWNED*' -not -path '*/.pyenv/*' 2>/dev/null; true").stdout
        assert found.strip() == "", found


# --- the project copy -----------------------------------------------------------------------------


def test_a_host_whose_copy_differs_is_refused_with_what_differs(project: SshProject) -> None:
    project.config(extra={"compute_sources": {"s1": {"type": "ssh", "host": "server1", "sync": "verify",
                                                     "max_parallel_tasks": 2}}})
    job_sweep(project, [1, 2])
    # With `sync: verify` hsm never writes the copy there unless forced: this makes one.
    plain = project.hsm("sync", "--target", "s1")
    assert plain.returncode == 1 and "missing on server1: argparse_app.py" in plain.stderr, plain.stderr
    project.ok("sync", "--target", "s1", "--force")
    remote = project.remote_root.replace(" ", "\\ ")
    project.on_host("server1", f"echo '# edited there' >> {remote}/job.py")
    project.write("new_module.py", "VALUE = 1\n")

    check = project.hsm("config", "validate", "--check-sync")
    assert check.returncode == 1
    assert "1 file differ: job.py" in check.stderr and "1 missing on server1: new_module.py" in check.stderr

    refused = project.hsm("run", "--sources", "local:1,s1", "--poll-interval", "0.3")
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith("hsm: error: source s1: server1:") and "job.py" in line and "new_module.py" in line
    assert "--no-verify-sync" in line
    assert not (project.root / "sweeps" / "outputs").exists()  # refused before anything was created

    # The step on its own refuses at the host, before the runner starts there.
    sweep = project.new_sweep("s1")
    step = project.hsm("submit", str(sweep))
    assert step.returncode == 1 and "job.py" in step.stderr, step.stderr
    assert set(project.states(sweep).values()) == {"submitted"}
    assert not any(t.get("job") for t in project.index(sweep)["tasks"].values())
    # Nothing of a task reaches the host before its runner starts it (the batch carries its argv).
    ran = project.on_host("server1", f"ls {remote}/sweeps/outputs/{sweep.name}/tasks 2>/dev/null || true").stdout.split()
    assert ran == []

    # Asked to, it runs anyway on the copy that is there.
    forced = project.ok("run", "--resume", sweep.name, "--no-verify-sync", "--poll-interval", "0.3")
    assert "✓ Sweep completed successfully: 2 tasks" in forced.stderr
    # And `hsm sync --force` makes the copies the same.
    project.ok("sync", "--target", "s1", "--force")
    assert project.ok("config", "validate", "--check-sync").returncode == 0


def test_a_checkout_at_another_commit_is_refused_by_git(project: SshProject) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    project.write(".gitignore", "sweeps/outputs/\n")
    job_sweep(project, [1])
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "here"]):
        subprocess.run(git + argv, cwd=project.root, check=True, capture_output=True)
    here = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True,
                          check=True).stdout.strip()
    project.ok("sync", "--target", "ssh:server2")
    remote = project.remote_root.replace(" ", "\\ ")
    gitc = "git -c user.name=t -c user.email=t@example.org"
    project.on_host("server2", f"cd {remote} && git init -q && git add -A && {gitc} commit -q -m there")
    there = project.on_host("server2", f"git -C {remote} rev-parse HEAD").stdout.strip()
    assert here != there
    project.write("job.py", JOB_PY + "# not committed\n")

    refused = project.hsm("run", "--sources", "ssh:server2:1", "--poll-interval", "0.3")
    assert refused.returncode == 1, refused.stderr
    assert "compared by git" in refused.stderr
    assert f"commit {here[:12]} here, {there[:12]} on server2" in refused.stderr
    # The uncommitted change was pushed with the rest, so it is the same on both sides.
    assert "uncommitted" not in refused.stderr

    # At the same commit, a file the host has and this copy has not is named. (The test bed's
    # hosts see this machine's /tmp, so the host can fetch the commit from here.)
    local_repo = project.root.as_posix().replace(" ", "\\ ")
    project.on_host("server2", f"cd {remote} && git fetch -q {local_repo} && git checkout -q -f {here} "
                    "&& echo 'X = 1' > only_there.py")
    project.write("job.py", JOB_PY)
    refused = project.hsm("run", "--sources", "ssh:server2:1", "--poll-interval", "0.3")
    assert refused.returncode == 1, refused.stderr
    assert "uncommitted changes only on server2 in only_there.py" in refused.stderr, refused.stderr
    assert f"commit {here[:12]} here" not in refused.stderr


# --- cancel and health -----------------------------------------------------------------------------


def test_cancel_stops_the_tasks_on_a_host(project: SshProject) -> None:
    job_sweep(project, [1, 2, 3], sleep=60)
    sweep = project.new_sweep("ssh:server1:2")
    project.ok("submit", str(sweep))
    project.poll_until(sweep, lambda ix: sum(t["state"] == "running" for t in ix["tasks"].values()) == 2, 60,
                       "two running tasks")
    result = project.ok("cancel", str(sweep), count=True, timeout=120)
    assert project.counted("ssh")["ssh"] == 2, project.counted()  # the cancel, then one poll
    assert set(project.states(sweep).values()) == {"cancelled"}
    project.ok("collect", str(sweep), "--final")
    statuses = {t.name: read_status(t)["state"] for t in (sweep / "tasks").iterdir() if (t / "status.yaml").exists()}
    assert statuses == {"task_001": "cancelled", "task_002": "cancelled"}, statuses
    time.sleep(1.0)
    remote = f"{project.remote_root}/sweeps/outputs/{sweep.name}/tasks/task_003".replace(" ", "\\ ")
    # never started: its dir is made when a task starts, so neither it nor a status file exists
    assert project.on_host("server1", f"test -e {remote}/status.yaml || echo never-started").stdout.strip() \
        == "never-started"
    assert result.stdout.strip() == str(sweep)


def test_health_of_a_host_and_of_one_that_does_not_answer(project: SshProject) -> None:
    job_sweep(project, [1])
    sweep = project.new_sweep("ssh:server1:1")
    project.ok("assign", str(sweep), "--sources", "ssh:server1:1,ssh:nosuchhost:1")
    result = project.ok("health", str(sweep), count=True)
    assert project.counted("ssh") == Counter({"ssh": 2})
    lines = {name: next(line for line in result.stderr.splitlines() if f" {name}: " in line)
             for name in ("server1", "nosuchhost")}
    assert "GB free, load" in lines["server1"] and "unhealthy" not in lines["server1"], result.stderr
    assert "nosuchhost: unhealthy" in lines["nosuchhost"], result.stderr
