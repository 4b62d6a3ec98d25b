"""Sources whose tasks a detached runner starts on a host: this machine, or an SSH host.

Both are one design over two transports. The agent (`hsm.agent`) runs the runner and
answers the source's calls; on this machine it is called in process, on an SSH host
through `hsm.remote_agent`. What differs is where the sweep lives on the host and how
files get there, which the SSH source adds (`hsm.sources.ssh`). Per command, whatever the
number of tasks:

    submit   stage the wrapper; one `start` call queues the batch, which carries each
             task's argv and params.yaml, and starts the runner (a second runner leaves at
             once); the runner makes a task's directory when it starts the task
    poll     one `poll` call: the runner's probe of every task; a runner that is gone
             while tasks wait is started again
    cancel   one `cancel` call: a cancel batch, and a signal to every running wrapper
    revoke   one `revoke` call: attempts not started yet are marked so the runner never starts them
    health   one `health` call: free disk, load, memory

A source with `gpus` sends them with each batch; the runner gives each task its own ids
(`hsm.agent.gpus`), and the wrapper records them in the task's status.yaml.
"""

from __future__ import annotations

import logging
import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from hsm import store
from hsm.agent import actions as agent_actions
from hsm.config import ProjectConfig
from hsm.core.gpus import task_slots
from hsm.core.health import classify_health
from hsm.core.settings import SourceConfig
from hsm.errors import SourceError
from hsm.jobscript import Raw, own_template, render, template_text
from hsm.paramtable import write_task_params
from hsm.remote_agent import CALL_TIMEOUT
from hsm.sources.base import PollResult, Record, Revoked, Source, SubmitResult, TaskRef
from hsm.sources.taskcmd import disk_watch, takes_argv, task_inputs, wrapper_values, write_argv_files
from hsm.sweep import Sweep

log = logging.getLogger(__name__)


@dataclass
class Staged:
    """What `stage` made: the files a host needs (paths below the sweep dir), and per task what
    the batch carries to start it (`TaskInputs.for_runner`; empty for a wrapper that reads
    the task's argv file, which is then among the files)."""

    files: list[str]
    starts: dict[str, dict[str, Any]]


class AgentTransport(Protocol):
    """How a source reaches the agent on its host."""

    where: str  # for messages: "this machine" or the host's name

    def call(self, action: str, request: dict[str, Any], *, timeout: float = CALL_TIMEOUT,
             ok_codes: tuple[int, ...] = (0,)) -> tuple[int, dict[str, Any]]:
        """Run one agent action; (exit code, answer). SourceError when it fails."""
        ...


class InProcessAgent:
    """The agent on this machine, called as a library."""

    where = "this machine"

    def call(self, action: str, request: dict[str, Any], *, timeout: float = CALL_TIMEOUT,
             ok_codes: tuple[int, ...] = (0,)) -> tuple[int, dict[str, Any]]:
        try:
            # A copy: the agent rewrites the request's paths (its top level and the batch's), as
            # it would on a host. Shallow: a poll's task list of 100,000 entries is not copied.
            mine = {**request, **({"batch": dict(request["batch"])} if isinstance(request.get("batch"), dict) else {})}
            answer, code = agent_actions.dispatch(action, mine)
        except Exception as exc:
            raise SourceError(f"{self.where}: {action}: {type(exc).__name__}: {exc}") from None
        if code not in ok_codes:
            raise SourceError(f"{self.where}: {action}: exit code {code}")
        return code, answer


def conda_setup(env: str | None) -> str:
    """Bash lines that activate a conda env, finding conda where installers put it."""
    if not env:
        return ""
    return (
        "if ! command -v conda >/dev/null 2>&1; then\n"
        "  for f in \"$HOME\"/miniconda3 \"$HOME\"/anaconda3 \"$HOME\"/miniforge3 \"$HOME\"/mambaforge /opt/conda; do\n"
        "    if [[ -f $f/etc/profile.d/conda.sh ]]; then . \"$f/etc/profile.d/conda.sh\"; break; fi\n"
        "  done\n"
        "fi\n"
        "if command -v conda >/dev/null 2>&1; then\n"
        "  set +u; conda activate " + shlex.quote(env) + "; set -u\n"
        "fi"
    )


def host_script(script: str, local_root: Path, host_project: str) -> str:
    """The training script as the host sees it: below its project copy, or the same absolute path."""
    if not script:
        return ""
    path = Path(script).expanduser()
    if path.is_absolute():
        try:
            return posixpath.join(host_project, path.relative_to(local_root).as_posix())
        except ValueError:
            return str(path)  # outside the project: the same path on the host
    return posixpath.join(host_project, Path(script).as_posix())


class RunnerSource(Source):
    """Tasks run on one host, at most `max_parallel` at once, by a runner that outlives hsm."""

    transport: AgentTransport

    def __init__(self, config: SourceConfig, sweep: Sweep, project: ProjectConfig) -> None:
        super().__init__(config, sweep, project)
        self.gpus = getattr(config.settings, "gpus", None)  # the ids, "auto" or None
        self.gpus_per_task = int(getattr(config.settings, "gpus_per_task", 1))
        slots = task_slots(self.gpus, self.gpus_per_task)
        if slots is not None:  # never more tasks at once than the GPU ids go round
            self.max_parallel = min(self.max_parallel, slots)

    # --- where things are ---------------------------------------------------------------------

    @property
    def runner_dir(self) -> Path:
        """The runner dir on this machine: the runner's own here, the staging copy for a host."""
        return self.sweep.paths.runner(self.name)

    @property
    def local_root(self) -> Path:
        """The project root on this machine, as the sweep recorded it."""
        return Path(self.sweep.metadata.get("project_root") or self.project.root)

    def host_sweep(self) -> str:
        """The sweep dir as the host sees it."""
        return str(self.sweep.root)

    def host_project(self) -> str:
        """The project dir as the host sees it (tasks start there)."""
        return str(self.local_root)

    def host_python(self) -> str:
        """The interpreter the tasks run with."""
        return str(self.sweep.metadata["python_interpreter"])

    def conda_env(self) -> str | None:
        """The conda env the wrapper activates, if any."""
        env = self.sweep.metadata.get("conda_env")
        return str(env) if env else None

    def host_runner(self) -> str:
        """The runner dir as the host sees it."""
        return posixpath.join(self.host_sweep(), self.sweep.paths.relative(self.runner_dir))

    def host_tasks(self) -> str:
        """The tasks dir as the host sees it."""
        return posixpath.join(self.host_sweep(), self.sweep.paths.relative(self.sweep.paths.tasks))

    def call(self, action: str, request: dict[str, Any], **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """One agent action on this source's host."""
        return self.transport.call(action, request, **kwargs)

    # --- submit -------------------------------------------------------------------------------

    def stage(self, tasks: list[TaskRef]) -> Staged:
        """Write the wrapper; the files a host needs (below the sweep dir), and what the batch
        carries for each task (its argv and params.yaml: the runner makes the task's directory
        when it starts the task, so a submit writes no file per task)."""
        project_dir = self.host_project()
        self.runner_dir.mkdir(parents=True, exist_ok=True)
        template = template_text("task.sh", self.local_root)
        wrapper = render(
            template,
            wrapper_values(self.sweep, self.name, PurePosixPath(project_dir), setup=Raw(conda_setup(self.conda_env()))),
            "templates/task.sh",
        )
        target = self.runner_dir / "task.sh"
        if not target.is_file() or target.read_text(encoding="utf-8") != wrapper:
            store.atomic_write(target, wrapper)
        script = host_script(self.sweep.metadata.get("training_script") or "", self.local_root, project_dir)
        inputs = task_inputs(self.sweep, [t.id for t in tasks], python=self.host_python(), script=script,
                             tasks_dir=self.host_tasks())
        paths = self.sweep.paths
        files = [paths.relative(p) for p in (paths.config, paths.metadata, target)]
        if takes_argv(template):
            return Staged(files, inputs.for_runner())
        # A project's own wrapper made for an earlier hsm reads the task's argv file.
        write_task_params(paths, inputs.params)
        write_argv_files(self.sweep, inputs.argv)
        tasks_dir = paths.relative(paths.tasks)  # once: pathlib per task costs seconds on 100,000
        return Staged(files + [f"{tasks_dir}/{t.id}/{name}" for t in tasks for name in ("params.yaml", "argv")], {})

    def batch(self, tasks: list[TaskRef], starts: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The queue batch that hands these attempts to the runner, each with what starting it
        takes when given (`Staged.starts`): the batch is the record of what each attempt runs."""
        starts = starts or {}
        return {
            "tasks_dir": self.host_tasks(),
            "max_parallel": self.max_parallel,
            "disk": disk_watch(self.sweep),
            "tasks": [[t.id, t.attempt, starts[t.id]] if t.id in starts else [t.id, t.attempt] for t in tasks],
            # The runner shares these out (None: tasks start without CUDA_VISIBLE_DEVICES).
            "gpus": list(self.gpus) if isinstance(self.gpus, tuple) else self.gpus,
            "gpus_per_task": self.gpus_per_task,
            **({"direct": direct} if (direct := self.direct_settings()) is not None else {}),
        }

    def direct_settings(self) -> dict[str, str] | None:
        """What the runner needs to start the tasks itself, doing what hsm's task.sh does without a
        bash per task (hsm.agent.direct); None when a wrapper must run: the project's own
        templates/task.sh, or a conda env to activate first."""
        if self.conda_env() or own_template("task.sh", self.local_root):
            return None
        return {"sweep_id": self.sweep.id, "project_dir": self.host_project(), "source": self.name}

    def note_gpus(self, answer: dict[str, Any]) -> None:
        """Say (at -v) when `gpus: auto` found no GPUs where the tasks run: they run as without `gpus`."""
        if "gpus" in answer and not answer["gpus"]:
            why = "no nvidia-smi" if not answer.get("nvidia_smi") else "nvidia-smi -L lists no GPUs"
            log.info("source '%s': gpus: auto: %s on %s; its tasks run without GPUs", self.name, why,
                     self.transport.where)

    def submit(self, tasks: list[TaskRef], record: Record | None = None) -> SubmitResult:
        staged = self.stage(tasks)
        _, answer = self.call("start", {"project_dir": self.host_project(), "runner_dir": self.host_runner(),
                                        "batch": self.batch(tasks, staged.starts)})
        self.note_gpus(answer)
        return SubmitResult(accepted={t.id: {"job": "runner"} for t in tasks})

    # --- poll, cancel, health -----------------------------------------------------------------

    def poll(self, tasks: list[TaskRef]) -> PollResult:
        request = {
            "runner_dir": self.host_runner(),
            "tasks_dir": self.host_tasks(),
            "tasks": [[t.id, t.attempt, t.state, t.seen] for t in tasks],
        }
        try:
            _, answer = self.call("poll", request)
        except SourceError as exc:
            # Nothing is known of these tasks now: none of them changes state.
            return PollResult(reachable=False, error=str(exc))
        return PollResult(reachable=True, observations=answer["tasks"])

    def cancel(self, tasks: list[TaskRef]) -> None:
        if not tasks:
            return
        self.call(
            "cancel",
            {"runner_dir": self.host_runner(), "tasks_dir": self.host_tasks(),
             "tasks": [[t.id, t.attempt] for t in tasks]},
            timeout=CALL_TIMEOUT + agent_actions.CANCEL_GRACE,
        )

    def revoke(self, tasks: list[TaskRef]) -> Revoked:
        if not tasks:
            return Revoked()
        _, answer = self.call("revoke", {"runner_dir": self.host_runner(), "tasks": [[t.id, t.attempt] for t in tasks]})
        return Revoked(revoked=[t for t, _ in answer["revoked"]], started=[t for t, _ in answer["started"]])

    def health(self) -> dict[str, Any]:
        try:
            _, info = self.call("health", {"project_dir": self.host_project()}, timeout=30)
        except SourceError as exc:
            return {"status": "unhealthy", "details": str(exc), "ok": False, "reached": False}
        compute = self.sweep.metadata.get("compute") or self.project.compute
        return classify_health(info, compute)
