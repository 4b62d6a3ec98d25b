"""The local source: a detached runner on this machine works through the sweep's queue."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from hsm import runner as runner_mod
from hsm import store
from hsm.core.health import classify_health
from hsm.jobscript import Raw, render, template_text
from hsm.proc import spawn_detached
from hsm.sources.base import PollResult, Source, SubmitResult, TaskRef
from hsm.sources.taskcmd import disk_watch, wrapper_values, write_argv_files

CANCEL_GRACE = 10.0  # seconds a cancelled task gets to write its final status


class LocalSource(Source):
    """Tasks run as processes on this machine, at most `max_parallel` at once."""

    type = "local"

    @property
    def runner_dir(self) -> Path:
        return self.sweep.paths.runner(self.name)

    def _write_batch(self, kind: str, payload: dict[str, Any]) -> None:
        queue = self.runner_dir / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{kind}.json"
        store.atomic_write(queue / name, json.dumps(payload))

    def _ensure_runner(self) -> None:
        # Starting one always is safe: a second runner finds the lock taken and leaves.
        spawn_detached(
            [sys.executable, runner_mod.__file__, "serve", str(self.runner_dir)],
            self.runner_dir / "runner.log",
        )

    def submit(self, tasks: list[TaskRef]) -> SubmitResult:
        self.runner_dir.mkdir(parents=True, exist_ok=True)
        meta = self.sweep.metadata
        project_dir = Path(meta["project_root"])
        wrapper = render(
            template_text("task.sh", project_dir),
            wrapper_values(self.sweep, self.name, project_dir, setup=Raw(self._setup())),
            "templates/task.sh",
        )
        target = self.runner_dir / "task.sh"
        if not target.is_file() or target.read_text(encoding="utf-8") != wrapper:
            store.atomic_write(target, wrapper)
        script = meta.get("training_script") or ""
        script_path = str((project_dir / os.path.expanduser(script)).resolve()) if script else ""
        write_argv_files(self.sweep, [t.id for t in tasks], python=meta["python_interpreter"], script=script_path,
                         task_dir=self.sweep.paths.task)
        self._write_batch("submit", {
            "tasks_dir": str(self.sweep.paths.tasks),
            "max_parallel": self.max_parallel,
            "disk": disk_watch(self.sweep),
            "tasks": [[t.id, t.attempt] for t in tasks],
        })
        self._ensure_runner()
        return SubmitResult(accepted={t.id: {"job": "runner"} for t in tasks})

    def _setup(self) -> str:
        env = self.sweep.metadata.get("conda_env")
        if not env:
            return ""
        # Activate only when conda is there; an absolute interpreter path needs no activation.
        return (
            'if command -v conda >/dev/null 2>&1; then\n'
            '  eval "$(conda shell.bash hook)" && conda activate ' + shlex.quote(env) + '\n'
            'fi'
        )

    def ensure_running(self, tasks: list[TaskRef]) -> None:
        """Restart the runner when delivered tasks wait and it is gone (e.g. after a reboot)."""
        if tasks and not runner_mod.runner_alive(self.runner_dir):
            self._ensure_runner()

    def poll(self, tasks: list[TaskRef]) -> PollResult:
        request = {
            "runner_dir": str(self.runner_dir),
            "tasks_dir": str(self.sweep.paths.tasks),
            "tasks": [[t.id, t.attempt, t.state, t.seen] for t in tasks],
        }
        answer = runner_mod.probe(request)
        return PollResult(reachable=True, observations=answer["tasks"])

    def health(self) -> dict[str, Any]:
        compute = self.sweep.metadata.get("compute", {})
        st = os.statvfs(self.sweep.root)
        free = st.f_bavail * st.f_frsize
        mem = _meminfo()
        info = {"free_bytes": free, "load1": os.getloadavg()[0], "cpus": os.cpu_count() or 1,
                "mem_total": mem.get("MemTotal"), "mem_available": mem.get("MemAvailable")}
        return classify_health(info, compute)

    def cancel(self, tasks: list[TaskRef]) -> None:
        if not tasks:
            return
        self.runner_dir.mkdir(parents=True, exist_ok=True)
        self._write_batch("cancel", {"cancel": [[t.id, t.attempt] for t in tasks]})
        # The runner may be gone while its tasks still run: stop them directly as well.
        runner_mod.stop_attempts(str(self.sweep.paths.tasks), [(t.id, t.attempt) for t in tasks], CANCEL_GRACE)


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out
