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
    poll     one read of the tasks' status files (here, or one ssh call on the login host);
             the queue (squeue / qstat) and accounting (sacct) only about jobs the files
             cannot decide, at most once per scheduler_poll_interval (`watch.py`).
    cancel   one call cancelling every array.
    revoke   one call holding the given elements if still pending, one status call, one cancel.
    health   one call (sinfo / qstat -q).
    collect  with a login host, one rsync bringing finished task dirs home.

How an outcome is decided is `outcome.decide`; job names and chunks are `naming.py`; the
settings are `settings.py`.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from filelock import FileLock

from hsm import proc, remote_agent, store
from hsm.agent.probe import probe_statuses
from hsm.config import ProjectConfig
from hsm.core.settings import HpcSettings, SourceConfig
from hsm.core.states import FINAL, SUBMITTED
from hsm.errors import BadInput, SourceError
from hsm.jobscript import Raw, render, template_text
from hsm.sources.base import PollResult, Record, Revoked, Source, SubmitResult, TaskRef, read_collected, record_collected
from hsm.sources.detect import detect_scheduler
from hsm.sources.hpc import watch
from hsm.sources.hpc.layout import ClusterLayout
from hsm.sources.hpc.naming import chunk_key, chunks, group_jobs, job_name, job_prefix, task_list_text
from hsm.sources.hpc.scheduler import JobSpec, render_job_script, scheduler
from hsm.sources.taskcmd import prepare_tasks, takes_argv, wrapper_values, write_argv_files
from hsm.sweep import Sweep
from hsm.transport import SshTarget

LOGIN_PYTHON = "python3"  # runs the agent on a login host


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
        local_project = Path(sweep.metadata.get("project_root") or project.root)
        self.layout = ClusterLayout(sweep.paths, local_project, self.cfg)
        self.local_root = sweep.root

    @property
    def state_dir(self) -> Path:
        """hsm's own bookkeeping for this source (never sent to the cluster)."""
        return self.sweep.paths.hpc_state(self.name)

    @property
    def wrapper(self) -> Path:
        """The task wrapper rendered for this source's jobs."""
        return self.sweep.paths.wrapper(self.name)

    # calls

    def call(self, argv: list[str], *, cwd: str | None = None, input: str | None = None,
              timeout: float | None = None) -> proc.Result:
        """Run a scheduler command here or on the login host; only ssh's own failure raises."""
        timeout = timeout or self.cfg.command_timeout
        if self.target is None:
            return proc.run(argv, cwd=Path(cwd) if cwd else None, input=input, timeout=timeout)
        remote = list(argv) if cwd is None else ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd, *argv]
        return self.target.run(remote, input=input, timeout=timeout, check=False)

    # submit

    def submit(self, tasks: list[TaskRef], record: Record | None = None) -> SubmitResult:
        """Submit chunk by chunk, calling `record` with each chunk's job ids before the next goes."""
        record = record or (lambda fields: None)
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
                    argv = self.hooks.submit_argv(self.layout.of(script), replace(job, dependency=deps))
                    try:
                        answer = self.call(argv, cwd=self.layout.of(self.sweep.paths.job_logs))
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

    def _stage(self, tasks: list[TaskRef]) -> list[tuple[list[TaskRef], JobSpec, Path]]:
        """Write the wrapper, the tasks' dirs (params.yaml), and each chunk's task list (with each
        task's argv) and job script."""
        paths = self.sweep.paths
        for d in (paths.job_scripts, paths.job_logs):
            d.mkdir(parents=True, exist_ok=True)
        project_dir = self.layout.project()
        wrapper_template = template_text("task.sh", self.layout.local_project)
        wrapper = render(
            wrapper_template,
            wrapper_values(self.sweep, self.name, project_dir, setup=Raw("")),
            "templates/task.sh",
        )
        _write_if_changed(self.wrapper, wrapper)
        python = self.cfg.python_interpreter or self.sweep.metadata["python_interpreter"]
        script = self.layout.script(self.sweep.metadata.get("training_script") or "")
        tasks_dir = self.layout.root() / "tasks"
        argv = prepare_tasks(self.sweep, [t.id for t in tasks], python=python, script=script, tasks_dir=str(tasks_dir))
        template = template_text(self.hooks.template, self.layout.local_project)
        if not takes_argv(wrapper_template, template):
            write_argv_files(self.sweep, argv)  # a project's own template made for an earlier hsm
        staged: list[tuple[list[TaskRef], JobSpec, Path]] = []
        for part in chunks(tasks, self.cfg.max_array_size):
            key = chunk_key(self.name, part)
            job = JobSpec(
                name=job_name(self.sweep.id, self.name, key),
                size=len(part),
                throttle=self.max_parallel,
                log_dir=self.layout.of(self.sweep.paths.job_logs),
                queue=self.cfg.queue,
                walltime=self.cfg.walltime,
                resources=self.cfg.resources,
                timeout_warning=self.cfg.timeout_warning,
                extra=self.cfg.extra_directives,
                gpus_per_task=self.cfg.gpus_per_task,
            )
            base = self.sweep.paths.chunk(key)
            task_list, job_script = Path(f"{base}.tasks"), Path(f"{base}.sh")
            store.atomic_write(task_list, task_list_text(part, argv))
            text = render_job_script(self.hooks, template, job, {
                "task_list": self.layout.of(task_list),
                "tasks_dir": str(tasks_dir),
                "wrapper": self.layout.of(self.wrapper),
                "setup": Raw(self._setup()),
            }, f"templates/{self.hooks.template}")
            store.atomic_write(job_script, text)
            staged.append((part, job, job_script))
        return staged

    def _push(self, staged: list[tuple[list[TaskRef], JobSpec, Path]], tasks: list[TaskRef]) -> None:
        """One rsync of exactly the files the jobs need (never a running task's status)."""
        assert self.target is not None
        paths = self.sweep.paths
        files = [paths.config, paths.metadata, self.wrapper, paths.job_logs]
        for t in tasks:
            files += [paths.argv(t.id), paths.params(t.id)]
        for _, _, script in staged:
            files += [script, script.with_suffix(".tasks")]
        listing = self.state_dir / "push.list"
        store.atomic_write(listing, "".join(paths.relative(f) + "\n" for f in files if f.exists()))
        root = str(self.layout.root())
        self.target.rsync(
            [str(self.local_root) + "/"],
            self.target.remote_path(root + "/"),
            options=["--files-from", str(listing), f"--rsync-path=mkdir -p {shlex.quote(root)} && rsync"],
            timeout=max(self.cfg.command_timeout, 300.0),
        )

    def _lookup(self) -> dict[str, tuple[str, bool]]:
        """This user's jobs by name (one call): what a crashed submit left, and the live arrays."""
        try:
            answer = self.call(self.hooks.lookup_argv())
        except SourceError as exc:
            raise SourceError(f"cannot list jobs before submitting: {exc}") from None
        if self.hooks.status_error(answer):
            raise SourceError(f"cannot list jobs before submitting: {answer.describe()}")
        return group_jobs(self.hooks.parse_lookup(answer.stdout), self.hooks.active)

    # poll

    def poll(self, tasks: list[TaskRef]) -> PollResult:
        """The tasks' status files, and the scheduler when they cannot decide and a call is due (`watch`)."""
        return watch.poll(self, tasks)

    def probe(self, refs: list[TaskRef]) -> dict[str, Any]:
        """Every task's status file (and job-id file), here or in one ssh call to the login host."""
        request = {
            "tasks_dir": str(self.layout.root() / "tasks"),
            "job_ids": self.hooks.writes_job_id_file,
            "tasks": [[t.id, t.attempt, t.seen] for t in refs],
        }
        if self.target is None:
            return probe_statuses(request)
        _, answer = remote_agent.call(self.target, LOGIN_PYTHON, "statuses", request,
                                      timeout=max(self.cfg.command_timeout, 120.0))
        return answer

    # cancel, health, collect

    def cancel(self, tasks: list[TaskRef]) -> None:
        """One cancel call for every array the tasks belong to."""
        arrays = sorted({self.hooks.array_of(t.job) for t in tasks if t.job})
        if not arrays:
            return
        answer = self.call(self.hooks.cancel_argv(arrays))
        error = self.hooks.cancel_error(answer)
        if error:
            raise SourceError(error)

    def stop(self, tasks: list[TaskRef]) -> None:
        """One cancel call naming the attempts' own array elements (never a whole array)."""
        jobs = sorted({str(t.job) for t in tasks if t.job})
        if not jobs:
            return
        error = self.hooks.cancel_error(self.call(self.hooks.cancel_argv(jobs)))
        if error:
            raise SourceError(error)

    def revoke(self, tasks: list[TaskRef]) -> Revoked:
        """Hold the elements that have not started (the scheduler decides, atomically), see which
        it held (one status call), cancel those: they were taken back; the others had started."""
        sent = [t for t in tasks if t.job]
        result = Revoked(revoked=[t.id for t in tasks if not t.job])  # never sent: nothing runs
        argv = self.hooks.hold_argv([str(t.job) for t in sent]) if sent else None
        if argv is None:
            result.started += [t.id for t in sent]
            return result
        self.call(argv)  # a refusal for an element that runs already is expected: the status says
        answer = self.call(self.hooks.status_argv(sorted({self.hooks.array_of(str(t.job)) for t in sent})))
        error = self.hooks.status_error(answer)
        if error:
            raise SourceError(error)
        held = self.hooks.held(answer.stdout)
        taken = [t for t in sent if str(t.job) in held]
        if taken:
            error = self.hooks.cancel_error(self.call(self.hooks.cancel_argv([str(t.job) for t in taken])))
            if error:
                raise SourceError(error)  # still held, so still not started: the next revoke cancels them
        result.revoked += [t.id for t in taken]
        result.started += [t.id for t in sent if t not in taken]
        return result

    def health(self) -> dict[str, Any]:
        """One call: is the scheduler answering, and are its nodes or queues usable."""
        try:
            answer = self.call(self.hooks.health_argv(), timeout=min(self.cfg.command_timeout, 30.0))
        except SourceError as exc:
            return {"status": "unhealthy", "details": str(exc), "ok": False, "reached": False}
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
        paths = self.sweep.paths
        entries = [paths.relative(paths.task(t.id)) for t in wanted] + [paths.relative(paths.job_logs)]
        store.atomic_write(listing, "".join(f"{e}/\n" for e in entries))
        root = str(self.layout.root())
        self.target.rsync(
            [self.target.remote_path(root + "/")],
            str(self.local_root) + "/",
            # A task reserved but never sent (its submit failed) has no dir there yet.
            # A task's TMPDIR holds scratch files, not results.
            options=["-r", "--ignore-missing-args", "--exclude=/tasks/*/tmp/", "--files-from", str(listing)],
            timeout=max(self.cfg.command_timeout, 600.0),
        )
        record_collected(self.state_dir / "collected", [t for t in wanted if t.state in FINAL])
        return {"collected": len(wanted)}

    def _collected(self) -> set[tuple[str, int]]:
        return read_collected(self.state_dir / "collected")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.atomic_write(path, text)
