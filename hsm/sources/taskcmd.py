"""What every source needs to start a task: its argv and the task wrapper's settings."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any, Callable

from hsm import store
from hsm.core import command
from hsm.sweep import Sweep


def task_params(sweep: Sweep, tid: str) -> dict[str, Any]:
    """The parameters of task `tid` as written at expand."""
    data = store.read_yaml(sweep.paths.params(tid))
    return data if isinstance(data, dict) else {}


def task_argv(sweep: Sweep, tid: str, *, python: str, script: str, task_dir: PurePath) -> list[str]:
    """The argv of task `tid`, for a host where its directory is `task_dir`."""
    meta = sweep.metadata
    params = task_params(sweep, tid)
    template = None
    if meta.get("command"):
        template = _template_tokens(meta["command"], tuple(params))
    extra: list[str] = []
    if meta.get("arg_style", "hydra") == "hydra" and meta.get("hydra_run_dir", True) and template is None:
        # Each task's Hydra outputs go to its own results/, not to a shared timestamped dir.
        extra.append(command.hydra_override("hydra.run.dir", str(task_dir / "results")))
    context = {
        "task_id": tid,
        "task_dir": str(task_dir),
        "output_dir": str(task_dir / "results"),
        "sweep_id": sweep.id,
    }
    return command.build_argv(
        params,
        python=python,
        script=script,
        arg_style=meta.get("arg_style", "hydra"),
        template=template,
        context=context,
        extra_overrides=extra,
    )


@functools.lru_cache(maxsize=8)
def _template_tokens(template: str, names: tuple[str, ...]) -> tuple[str, ...]:
    # Split once per submit, not once per task.
    return tuple(command.parse_template(template, list(names), "sweep_config.yaml: command"))


def write_argv_files(sweep: Sweep, tasks: Iterable[str], *, python: str, script: str,
                     task_dir: Callable[[str], PurePath]) -> None:
    """Write each task's `argv` (NUL-separated) for a host where its dir is `task_dir(id)`."""
    store.write_inputs({
        sweep.paths.argv(tid): "".join(a + "\0" for a in task_argv(sweep, tid, python=python, script=script,
                                                                  task_dir=task_dir(tid)))
        for tid in tasks
    })


def wrapper_values(sweep: Sweep, source: str, project_dir: PurePath, setup: str) -> dict[str, object]:
    """The values templates/task.sh is rendered with."""
    compute = sweep.metadata.get("compute", {})
    return {
        "sweep_id": sweep.id,
        "project_dir": str(project_dir),
        "source": source,
        "min_free_kb": int(float(compute.get("disk_min_free_gb", 3.0)) * 1024 * 1024),
        "floor_kb": int(float(compute.get("disk_floor_mb", 200)) * 1024),
        "check_interval": int(compute.get("disk_check_interval", 300)),
        "setup": setup,
    }


def disk_watch(sweep: Sweep) -> dict[str, int]:
    """The disk thresholds a runner applies to its tasks (part of every queue batch)."""
    values = wrapper_values(sweep, "", PurePath("."), setup="")
    return {"min_free_kb": int(str(values["min_free_kb"])), "floor_kb": int(str(values["floor_kb"])),
            "interval": int(str(values["check_interval"]))}
