"""The SSH source: a detached runner on a remote host works through the sweep's queue.

The host needs a Python 3 and rsync, nothing of hsm. Per command and host, hsm makes a
fixed number of calls over one shared connection (hsm.transport), whatever the number
of tasks:

    submit   rsync the project (push mode), rsync the task files and the wrapper,
             one ssh call that checks the project copy, queues the batch and starts the runner
    poll     one ssh call: the runner's probe of every task on that host
    collect  one rsync of what finished since the last collect (none when nothing did)
    cancel   one ssh call: a cancel batch and a signal to every running task
    health   one ssh call: free disk, load, memory

The remote sweep dir mirrors the local one: `<project_dir>/<outputs dir>/<sweep_id>/`
with `tasks/task_NNN/` and `.hsm/runners/<source>/`. The host-side code is the agent
(`hsm.agent`), shipped once per version by `hsm.remote_agent`; the rest is the
runner-based design shared with the local source (`hsm.sources.runner_based`).
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Any

from hsm import remote_agent, store, sync
from hsm.agent import actions as agent_actions
from hsm.config import ProjectConfig
from hsm.core.hostpaths import login_relative, resolve_remote
from hsm.core.settings import SourceConfig, SshSettings
from hsm.errors import SourceError
from hsm.remote_agent import CALL_TIMEOUT
from hsm.sources.base import Record, SubmitResult, TaskRef, read_collected, record_collected
from hsm.sources.runner_based import RunnerSource
from hsm.sweep import Sweep
from hsm.transport import SshTarget

__all__ = ["SshSource", "call_host", "host_home", "remember_host_home", "resolve_remote"]

TASK_LOGS = ("status.yaml", "stdout.log", "stderr.log")
COLLECTED = "collected"  # in the local runner dir: "TASK ATTEMPT" per task brought home


def call_host(target: SshTarget, python: str, action: str, request: dict[str, Any], *,
              timeout: float = CALL_TIMEOUT, ok_codes: tuple[int, ...] = (0,)) -> tuple[int, dict[str, Any]]:
    """Run one agent action on the host (one ssh call once the agent is there); (exit code, answer)."""
    return remote_agent.call(target, python, action, request, timeout=timeout, ok_codes=ok_codes)


def _homes_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hsm" / "ssh-homes.json"


def _read_homes() -> dict[str, str]:
    try:
        data = json.loads(_homes_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _home_key(host: SshSettings) -> str:
    target = SshTarget.from_connection(host.connection)
    return f"{target.host}-{target.key_id()}"


def host_home(host: SshSettings) -> str:
    """The login's home on a host: from this machine's cache, else asked (one ssh call) and cached.

    The start of a runner checks it, so a stale entry costs a retry, never a wrong path.
    """
    known = _read_homes().get(_home_key(host))
    if isinstance(known, str):
        return known
    _, answer = call_host(SshTarget.from_connection(host.connection), host.agent_python(), "home", {})
    return remember_host_home(host, str(answer["home"]))


def remember_host_home(host: SshSettings, home: str) -> str:
    """Keep a host's home in this machine's cache (a project check learns it on the way)."""
    homes = _read_homes()
    if homes.get(_home_key(host)) != home:
        try:
            path = _homes_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            store.atomic_write(path, json.dumps({**homes, _home_key(host): home}, indent=1, sort_keys=True))
        except OSError:
            pass  # a cache only
    return home


def forget_host_home(host: SshSettings) -> None:
    """Drop a host's entry from this machine's cache of homes."""
    key = _home_key(host)
    homes = _read_homes()
    if key in homes:
        del homes[key]
        try:
            store.atomic_write(_homes_file(), json.dumps(homes, indent=1, sort_keys=True))
        except OSError:
            pass


class SshAgent:
    """The agent on an SSH host, called over the host's shared connection."""

    def __init__(self, target: SshTarget, python: str) -> None:
        self.target = target
        self.python = python
        self.where = target.host

    def call(self, action: str, request: dict[str, Any], *, timeout: float = CALL_TIMEOUT,
             ok_codes: tuple[int, ...] = (0,)) -> tuple[int, dict[str, Any]]:
        return call_host(self.target, self.python, action, request, timeout=timeout, ok_codes=ok_codes)


class SshSource(RunnerSource):
    """Tasks run on one SSH host, at most `max_parallel` at once, by a runner that outlives hsm."""

    type = "ssh"

    def __init__(self, config: SourceConfig, sweep: Sweep, project: ProjectConfig) -> None:
        super().__init__(config, sweep, project)
        assert isinstance(config.settings, SshSettings)
        self.host = config.settings
        self.target = SshTarget.from_connection(self.host.connection)
        self.transport = SshAgent(self.target, self.host.agent_python())
        self._home: str | None = None

    # --- where things are on the host -------------------------------------------------------

    def home(self, ask: bool = False) -> str | None:
        """The login's home on the host, when a configured path needs it; None when not known yet.

        A sweep keeps the home it was first submitted with (its remote paths must not
        move). Submit (`ask`) takes it from this machine's cache of hosts, or asks the
        host; before that, paths are sent as `~/x` and the host expands them.
        """
        if self._home is not None or not self.host.needs_home():
            return self._home
        cache = self.runner_dir / "host.json"
        try:
            self._home = str(json.loads(cache.read_text(encoding="utf-8"))["home"])
            return self._home
        except (OSError, ValueError, KeyError):
            pass
        if not ask:
            return None
        self._home = host_home(self.host)
        self.runner_dir.mkdir(parents=True, exist_ok=True)
        store.atomic_write(cache, json.dumps({"home": self._home}))
        return self._home

    def _forget_home(self) -> None:
        forget_host_home(self.host)
        (self.runner_dir / "host.json").unlink(missing_ok=True)
        self._home = None

    def host_project(self) -> str:
        """The project dir on the host."""
        return self.host.project_path(str(self.local_root), self.home())

    def host_sweep(self) -> str:
        """`<project_dir>/<outputs dir relative to the project>/<sweep_id>`, or below `sweeps_dir`."""
        if self.host.sweeps_dir:
            base = resolve_remote(self.host.sweeps_dir, self.home(), f"source '{self.name}': sweeps_dir")
            return posixpath.join(base, self.sweep.id)
        try:
            rel = self.sweep.root.parent.relative_to(self.local_root)
        except ValueError:
            rel = Path("sweeps", "outputs")  # the sweep lives outside the project here
        return posixpath.join(self.host_project(), *rel.parts, self.sweep.id)

    def host_python(self) -> str:
        return self.host.task_python(self.home())

    def conda_env(self) -> str | None:
        return self.host.conda_env

    def excludes(self) -> list[str]:
        """What a push leaves out: .git, __pycache__, the outputs dirs, `sync_excludes`."""
        outputs = [self.project.outputs_dir, self.sweep.root.parent]
        return sync.exclude_patterns(self.local_root, outputs, self.host.sync_excludes)

    # --- submit -------------------------------------------------------------------------------

    def submit(self, tasks: list[TaskRef], record: Record | None = None) -> SubmitResult:
        self.home(ask=True)  # every path written for the host is absolute
        staged = self.stage(tasks)
        excludes = self.excludes()
        project_dir = self.host_project()
        if self.host.sync_mode == "push":
            sync.push(self.target, self.local_root, project_dir, excludes)
        expected = sync.local_state(self.local_root, excludes) if self.project.verify_sync else None
        self.target.rsync(
            [f"{self.sweep.root}/"], self.target.remote_path(f"{self.host_sweep()}/"),
            options=["-r", "--mkpath", "--from0", "--files-from=-"], input="".join(f + "\0" for f in staged.files),
        )
        code, answer = self.call(
            "start",
            {"project_dir": project_dir, "runner_dir": self.host_runner(), "expected": expected,
             "batch": self.batch(tasks, staged.starts), "home": self.home()},
            ok_codes=(0, agent_actions.MISMATCH, agent_actions.HOME_CHANGED),
        )
        if code == agent_actions.HOME_CHANGED:
            # The paths were built with a home the host no longer has: build them again next time.
            old = self.home()
            self._forget_home()
            raise SourceError(f"{self.target.host}: the home dir is {answer['home']}, not {old} as remembered; "
                              "nothing was started, the next submit uses the new one")
        if code == agent_actions.MISMATCH:
            diff = sync.diff_states(expected or {}, answer["observed"])
            raise sync.SyncMismatch(sync.mismatch_message(self.name, self.target.host, project_dir, diff))
        self.note_gpus(answer)
        return SubmitResult(accepted={t.id: {"job": "runner"} for t in tasks})

    # --- collect ----------------------------------------------------------------------------

    def _collected(self) -> set[tuple[str, int]]:
        return read_collected(self.runner_dir / COLLECTED)

    def collect(self, tasks: list[TaskRef], final: bool = False) -> dict[str, Any]:
        """Bring home what finished since the last collect, with the logs of running tasks.

        A task that is home is not fetched again; nothing new means no rsync at all,
        unless `final`, which also fetches every unfinished task's whole directory.
        """
        home = self._collected()
        # Only attempts this source was handed (they have a job): others have nothing there.
        handed = [t for t in tasks if t.job]
        finished = [t for t in handed if t.state in ("completed", "failed", "cancelled") and (t.id, t.attempt) not in home]
        active = [t for t in handed if t.state in ("submitted", "queued", "running")]
        if not finished and not final:
            return {"collected": 0}
        if not finished and not active:
            return {"collected": 0}
        paths = self.sweep.paths
        entries = [paths.relative(paths.task(t.id)) + "/" for t in finished]
        if final:
            entries += [paths.relative(paths.task(t.id)) + "/" for t in active]
        else:
            entries += [paths.relative(paths.task(t.id) / name) for t in active for name in TASK_LOGS]
        # --ignore-times: rsync's quick check (same size and mtime) would skip a log fetched
        # while the task ran and rewritten within the same timestamp tick since. Only those few
        # logs are here already; everything else comes for the first time anyway. A task's
        # TMPDIR holds scratch files, not results (the runner removes it when it is empty).
        self.target.rsync(
            [self.target.remote_path(f"{self.host_sweep()}/")], f"{self.sweep.root}/",
            options=["-r", "--ignore-times", "--from0", "--files-from=-", "--ignore-missing-args",
                     "--exclude=/tasks/*/tmp/"],
            input="".join(e + "\0" for e in entries),
        )
        record_collected(self.runner_dir / COLLECTED, finished)
        done = [t for t in finished if t.state == "completed"]
        if done and self.host.cleanup_remote_on_success:
            dirs = [login_relative(posixpath.join(self.host_tasks(), t.id)) for t in done]
            self.target.run(["rm", "-rf", "--", *dirs], timeout=CALL_TIMEOUT)
        return {"collected": len(finished), "tasks": [t.id for t in finished]}
