"""The HPC source: a sweep's tasks as throttled job arrays on Slurm or PBS/Torque.

What differs between schedulers is the few pure hooks of `scheduler.Scheduler`, bound in
`slurm.py` and `pbs.py` (argv to build, text to parse); this module does the rest, the
same for both, on this machine or through a login host over SSH:

    submit   per chunk of at most `max_array_size` tasks: a task list (one "TASK ATTEMPT"
             per line, array index i -> line i+1) and a job script from templates/, then one
             submit call whose job id is recorded before the next chunk goes. Chunks wait for
             each other (`afterany`), so `max_parallel_tasks` (the array's `%` throttle) holds
             for the whole source. A job is named after the sweep, the source and a hash of
             its task attempts: a crash between the submit call and the record leaves a named
             job that the next submit finds (one lookup call) instead of submitting again.
    poll     one status call (squeue / qstat) for all the sweep's arrays, one read of the
             tasks' status files (here, or one ssh call on the login host), and at most one
             accounting call (sacct) for jobs the queue no longer shows.
    cancel   one call cancelling every array.
    health   one call (sinfo / qstat -q).
    collect  with a login host, one rsync bringing finished task dirs home.

How an outcome is decided is `outcome.decide`; job names and chunks are `naming.py`; the
settings are `settings.py`.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

from filelock import FileLock

from hsm import proc, remote_agent, store
from hsm.agent.probe import probe_statuses
from hsm.config import ProjectConfig
from hsm.core.settings import HpcSettings, SourceConfig
from hsm.core.states import FINAL, SUBMITTED
from hsm.errors import BadInput, SourceError
from hsm.jobscript import Raw, render, template_text
from hsm.sources.base import PollResult, Source, SubmitResult, TaskRef, read_collected
from hsm.sources.hpc.naming import chunk_key, chunks, group_jobs, job_name, job_prefix, safe_name, task_list_text
from hsm.sources.hpc.outcome import decide
from hsm.sources.hpc.scheduler import JobSpec, Scheduler, scheduler
from hsm.sources.detect import detect_scheduler
from hsm.sources.taskcmd import wrapper_values, write_argv_files
from hsm.sweep import Sweep
from hsm.transport import SshTarget

LOGIN_PYTHON = "python3"  # runs the agent on a login host

Record = Callable[[dict[str, dict[str, Any]]], None]


class HpcSource(Source):
    """Tasks run as job arrays of a Slurm or PBS scheduler, here or behind a login host."""

    type = "hpc"

    def __init__(self, config: SourceConfig, sweep: Sweep, project: ProjectConfig) -> None:
        super().__init__(config, sweep, project)
        assert isinstance(config.settings, HpcSettings)
        self.cfg = config.settings
        system = self.cfg.system or detect_scheduler()
        if system is None:
            raise BadInput(f"source '{self.name}': system: missing (and neither sbatch nor qsub is on PATH); "
                           "expected one of slurm, pbs")
        self.hooks = scheduler(system)
        self.target = SshTarget.from_connection(self.cfg.connection) if self.cfg.connection else None

    # paths: local ones are this machine's copy, cluster ones where the jobs see the sweep

    @property
    def local_root(self) -> Path:
        """The sweep dir on this machine."""
        return self.sweep.root

    @property
    def state_dir(self) -> Path:
        """hsm's own bookkeeping for this source (never sent to the cluster)."""
        return self.sweep.paths.internal / "hpc" / safe_name(self.name)

    def cluster_root(self) -> PurePosixPath:
        """The sweep dir as the jobs see it: the same path, or below `sweeps_dir` / `project_dir` on a login host."""
        local = PurePosixPath(self.local_root.as_posix())
        if self.target is None:
            return local
        if self.cfg.sweeps_dir:
            return PurePosixPath(self.cfg.sweeps_dir) / self.sweep.id
        if self.cfg.project_dir:
            try:
                return PurePosixPath(self.cfg.project_dir) / local.relative_to(self.local_project().as_posix())
            except ValueError:
                return local
        return local

    def local_project(self) -> Path:
        """The project root on this machine."""
        return Path(self.sweep.metadata.get("project_root") or self.project.root)

    def cluster_project(self) -> PurePosixPath:
        """The project root as the jobs see it."""
        if self.target is not None and self.cfg.project_dir:
            return PurePosixPath(self.cfg.project_dir)
        return PurePosixPath(self.local_project().as_posix())

    def cluster(self, relative: str) -> str:
        """A path below the sweep dir as the jobs see it."""
        return str(self.cluster_root() / relative)

    @property
    def wrapper_name(self) -> str:
        """The rendered task wrapper, relative to the sweep dir."""
        return f"scripts/task_{safe_name(self.name)}.sh"

    # calls

    def _call(self, argv: list[str], *, cwd: str | None = None, input: str | None = None,
              timeout: float | None = None) -> proc.Result:
        """Run a scheduler command here or on the login host; only ssh's own failure raises."""
        timeout = timeout or self.cfg.command_timeout
        if self.target is None:
            return proc.run(argv, cwd=Path(cwd) if cwd else None, input=input, timeout=timeout)
        remote = list(argv) if cwd is None else ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd, *argv]
        return self.target.run(remote, input=input, timeout=timeout, check=False)

    # submit

    def submit(self, tasks: list[TaskRef]) -> SubmitResult:
        """Submit the tasks as job arrays; the caller records the job ids from the result."""
        return self.submit_recording(tasks, lambda fields: None)

    def submit_recording(self, tasks: list[TaskRef], record: Record) -> SubmitResult:
        """Submit chunk by chunk, calling `record` with each chunk's job ids before the next goes."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Two submits of one sweep at once would both see these tasks unsubmitted.
        with FileLock(str(self.state_dir / "submit.lock")):
            tasks = self._unrecorded(tasks)
            if not tasks:
                return SubmitResult()
            staged = self._stage(tasks)
            if self.target is not None:
                self._push(staged, tasks)
            known = self._lookup()
            prefix = job_prefix(self.sweep.id, self.name)
            ours = {job.name for _, job, _ in staged}
            previous = sorted(a for n, (a, live) in known.items() if live and n.startswith(prefix) and n not in ours)
            result = SubmitResult()
            for n, (part, job, script) in enumerate(staged):
                if job.name in known:
                    array_id = known[job.name][0]  # submitted before a crash: adopt it
                else:
                    deps = self.cfg.dependency + ((self.hooks.chain_dependency(previous),) if previous else ())
                    argv = self.hooks.submit_argv(script, replace(job, dependency=deps))
                    try:
                        answer = self._call(argv, cwd=self.cluster("logs/jobs"))
                        if not answer.ok:
                            raise SourceError(answer.describe())
                        array_id = self.hooks.parse_job_id(answer.stdout)
                    except (SourceError, ValueError) as exc:
                        # This chunk and the ones after it stay reserved: the next submit retries them.
                        for later, _, _ in staged[n:]:
                            result.refused.update({t.id: str(exc) for t in later})
                        break
                fields = {t.id: {"job": self.hooks.element(array_id, i), "attempt": t.attempt}
                          for i, t in enumerate(part)}
                record(fields)
                result.accepted.update(fields)
                previous = [array_id]
            return result

    def _unrecorded(self, tasks: list[TaskRef]) -> list[TaskRef]:
        """The given attempts still reserved without a job (another submit may have done them)."""
        entries = self.sweep.read_index()["tasks"]
        keep = []
        for t in tasks:
            entry = entries.get(t.id, {})
            if entry.get("state") == SUBMITTED and entry.get("attempt") == t.attempt and not entry.get("job") \
                    and entry.get("source") == self.name:
                keep.append(t)
        return keep

    def _setup(self) -> str:
        lines = list(self.cfg.module_commands)
        env = self.cfg.conda_env or self.sweep.metadata.get("conda_env")
        if env:
            lines.append('if command -v conda >/dev/null 2>&1; then eval "$(conda shell.bash hook)" && conda activate '
                         + shlex.quote(env) + "; fi")
        return "\n".join(lines)

    def _script_path(self) -> str:
        script = self.sweep.metadata.get("training_script") or ""
        if not script:
            return ""
        local_project = self.local_project()
        local_script = (local_project / os.path.expanduser(script)).resolve()
        if self.target is None:
            return str(local_script)
        try:
            return str(self.cluster_project() / local_script.relative_to(local_project.resolve()).as_posix())
        except ValueError:
            return str(local_script)

    def _stage(self, tasks: list[TaskRef]) -> list[tuple[list[TaskRef], JobSpec, str]]:
        """Write the wrapper, the tasks' argv files, and each chunk's task list and job script."""
        paths = self.sweep.paths
        for d in (paths.scripts / "job_scripts", paths.logs / "jobs"):
            d.mkdir(parents=True, exist_ok=True)
        project_dir = self.cluster_project()
        wrapper = render(
            template_text("task.sh", self.local_project()),
            wrapper_values(self.sweep, self.name, project_dir, setup=Raw("")),
            "templates/task.sh",
        )
        _write_if_changed(self.local_root / self.wrapper_name, wrapper)
        python = self.cfg.python_interpreter or self.sweep.metadata["python_interpreter"]
        script = self._script_path()
        tasks_dir = self.cluster_root() / "tasks"
        write_argv_files(self.sweep, [t.id for t in tasks], python=python, script=script,
                         task_dir=lambda tid: tasks_dir / tid)
        template = template_text(self.hooks.template, self.local_project())
        staged = []
        for part in chunks(tasks, self.cfg.max_array_size):
            key = chunk_key(self.name, part)
            job = JobSpec(
                name=job_name(self.sweep.id, self.name, key),
                size=len(part),
                throttle=self.max_parallel,
                log_dir=self.cluster("logs/jobs"),
                queue=self.cfg.queue,
                walltime=self.cfg.walltime,
                resources=self.cfg.resources,
                timeout_warning=self.cfg.timeout_warning,
                extra=self.cfg.extra_directives,
            )
            base = f"scripts/job_scripts/chunk_{key}"
            store.atomic_write(self.local_root / f"{base}.tasks", task_list_text(part))
            text = render_job_script(self.hooks, template, job, {
                "task_list": self.cluster(f"{base}.tasks"),
                "tasks_dir": str(tasks_dir),
                "wrapper": self.cluster(self.wrapper_name),
                "setup": Raw(self._setup()),
            }, f"templates/{self.hooks.template}")
            store.atomic_write(self.local_root / f"{base}.sh", text)
            staged.append((part, job, self.cluster(f"{base}.sh")))
        return staged

    def _push(self, staged: list[tuple[list[TaskRef], JobSpec, str]], tasks: list[TaskRef]) -> None:
        """One rsync of exactly the files the jobs need (never a running task's status)."""
        assert self.target is not None
        files = ["sweep_config.yaml", "sweep_metadata.yaml", self.wrapper_name, "logs/jobs"]
        for t in tasks:
            files += [f"tasks/{t.id}/argv", f"tasks/{t.id}/params.yaml"]
        for part, job, script in staged:
            base = PurePosixPath(script).relative_to(self.cluster_root()).with_suffix("")
            files += [f"{base}.sh", f"{base}.tasks"]
        listing = self.state_dir / "push.list"
        store.atomic_write(listing, "".join(f + "\n" for f in files if (self.local_root / f).exists()))
        root = str(self.cluster_root())
        self.target.rsync(
            [str(self.local_root) + "/"],
            self.target.remote_path(root + "/"),
            options=["--files-from", str(listing), f"--rsync-path=mkdir -p {shlex.quote(root)} && rsync"],
            timeout=max(self.cfg.command_timeout, 300.0),
        )

    def _lookup(self) -> dict[str, tuple[str, bool]]:
        """This user's jobs by name (one call): what a crashed submit left, and the live arrays."""
        try:
            answer = self._call(self.hooks.lookup_argv())
        except SourceError as exc:
            raise SourceError(f"cannot list jobs before submitting: {exc}") from None
        if self.hooks.status_error(answer):
            raise SourceError(f"cannot list jobs before submitting: {answer.describe()}")
        return group_jobs(self.hooks.parse_lookup(answer.stdout), self.hooks.active)

    # poll

    def poll(self, tasks: list[TaskRef]) -> PollResult:
        """One status call, one status-file probe, at most one accounting call."""
        refs = [t for t in tasks if t.job]
        if not refs:
            return PollResult(reachable=True)
        arrays = sorted({self.hooks.array_of(t.job) for t in refs})
        try:
            answer = self._call(self.hooks.status_argv(arrays))
            error = self.hooks.status_error(answer)
            if error:
                return PollResult(reachable=False, error=error)
            table = self.hooks.parse_status(answer.stdout)
            files = self._probe(refs)
        except SourceError as exc:
            return PollResult(reachable=False, error=str(exc))
        sched = {t.id: self.hooks.task_state(t.job, files.get(t.id, {}).get("job_id"), table) for t in refs}
        acct: dict[str, tuple[str, int | None]] | None = None
        asking = [t for t in refs if self._needs_accounting(files.get(t.id, {}), sched[t.id], t)]
        if asking:
            acct = self._accounting(sorted({self.hooks.array_of(t.job) for t in asking}))
        gone = self._load_gone()
        now = time.time()
        observations: dict[str, dict[str, Any]] = {}
        still_gone: dict[str, list[Any]] = {}
        for t in refs:
            previous = gone.get(t.id)
            since = previous[1] if previous and previous[0] == t.attempt else None
            obs, since = decide(t, files.get(t.id, {}), sched[t.id], (acct or {}).get(t.job),
                                active=self.hooks.active, final=self.hooks.final, since=since, now=now,
                                grace=self.cfg.lost_grace, accounting=acct is not None,
                                accounting_grace=self.cfg.accounting_grace)
            if obs is not None:
                observations[t.id] = obs
            if since is not None and not (obs and obs.get("state") in FINAL):
                still_gone[t.id] = [t.attempt, since]
        if still_gone != gone:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            store.atomic_write(self.state_dir / "gone.json", json.dumps(still_gone))
        return PollResult(reachable=True, observations=observations)

    def _needs_accounting(self, probe: Mapping[str, Any], sched: str | None, ref: TaskRef) -> bool:
        status = probe.get("status")
        if status and status.get("state") in FINAL:
            return False
        return sched is None or self.hooks.final.get(sched, ("", "x"))[1] in (None, "exit_code")

    def _probe(self, refs: list[TaskRef]) -> dict[str, Any]:
        request = {
            "tasks_dir": str(self.cluster_root() / "tasks"),
            "job_ids": self.hooks.writes_job_id_file,
            "tasks": [[t.id, t.attempt, t.seen] for t in refs],
        }
        if self.target is None:
            return probe_statuses(request)
        _, answer = remote_agent.call(self.target, LOGIN_PYTHON, "statuses", request,
                                      timeout=max(self.cfg.command_timeout, 120.0))
        return answer

    def _accounting(self, arrays: list[str]) -> dict[str, tuple[str, int | None]] | None:
        """Accounting's word on the arrays; None when it fails or is switched off."""
        argv = self.hooks.accounting_argv(arrays)
        if not argv:
            return None
        try:
            answer = self._call(argv)
        except SourceError:
            return None
        return self.hooks.parse_accounting(answer.stdout) if answer.ok else None

    def _load_gone(self) -> dict[str, list[Any]]:
        try:
            data = json.loads((self.state_dir / "gone.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # cancel, health, collect

    def cancel(self, tasks: list[TaskRef]) -> None:
        """One cancel call for every array the tasks belong to."""
        arrays = sorted({self.hooks.array_of(t.job) for t in tasks if t.job})
        if not arrays:
            return
        answer = self._call(self.hooks.cancel_argv(arrays))
        error = self.hooks.cancel_error(answer)
        if error:
            raise SourceError(error)

    def health(self) -> dict[str, Any]:
        """One call: is the scheduler answering, and are its nodes or queues usable."""
        try:
            answer = self._call(self.hooks.health_argv(), timeout=min(self.cfg.command_timeout, 30.0))
        except SourceError as exc:
            return {"status": "unhealthy", "details": str(exc), "ok": False}
        return self.hooks.health_of(answer, self.cfg.queue)

    def collect(self, tasks: list[TaskRef], final: bool = False) -> dict[str, Any]:
        """With a login host: one rsync of the finished tasks' dirs (all of them with `final`)."""
        if self.target is None:
            return {"collected": 0}
        done = self._collected()
        wanted = [t for t in tasks if (final or t.state in FINAL) and (t.id, t.attempt) not in done]
        if not wanted:
            return {"collected": 0}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        listing = self.state_dir / "collect.list"
        store.atomic_write(listing, "".join(f"tasks/{t.id}/\n" for t in wanted) + "logs/jobs/\n")
        root = str(self.cluster_root())
        self.target.rsync(
            [self.target.remote_path(root + "/")],
            str(self.local_root) + "/",
            # A task reserved but never sent (its submit failed) has no dir there yet.
            # A task's TMPDIR holds scratch files, not results.
            options=["-r", "--ignore-missing-args", "--exclude=/tasks/*/tmp/", "--files-from", str(listing)],
            timeout=max(self.cfg.command_timeout, 600.0),
        )
        finished = [f"{t.id} {t.attempt}\n" for t in wanted if t.state in FINAL]
        if finished:
            with open(self.state_dir / "collected", "a", encoding="utf-8") as fh:
                fh.write("".join(finished))
        return {"collected": len(wanted)}

    def _collected(self) -> set[tuple[str, int]]:
        return read_collected(self.state_dir / "collected")


def render_job_script(hooks: Scheduler, template: str, job: JobSpec, values: dict[str, object], name: str) -> str:
    """One chunk's job script: the scheduler's directives and the given paths in the template."""
    try:
        lines = hooks.directives(job)
    except ValueError as exc:
        raise BadInput(f"{name}: {exc}") from None
    try:
        walltime = hooks.walltime_seconds(job.walltime)
    except ValueError as exc:
        raise BadInput(f"default_walltime: {exc}") from None
    return render(template, {
        **values,
        "directives": Raw("\n".join(lines)),
        "job_name": job.name,
        "walltime_seconds": walltime,
        "timeout_warning": job.timeout_warning,
    }, name)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.atomic_write(path, text)
