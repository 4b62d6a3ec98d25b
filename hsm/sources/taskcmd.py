"""What every source needs to start a task: its directory, its argv and the task wrapper's settings."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from hsm import paramtable, store
from hsm.core import command
from hsm.paramtable import ParamTable
from hsm.sweep import Sweep


def task_argv(sweep: Sweep, tid: str, params: Mapping[str, Any], *, python: str, script: str,
              task_dir: str) -> list[str]:
    """The argv of task `tid` (parameters `params`), for a host where its directory is `task_dir`."""
    meta = sweep.metadata
    template = None
    if meta.get("command"):
        template = _template_tokens(meta["command"], tuple(params))
    extra: list[str] = []
    if meta.get("arg_style", "hydra") == "hydra" and meta.get("hydra_run_dir", True) and template is None:
        # Each task's Hydra outputs go to its own results/, not to a shared timestamped dir.
        extra.append(command.hydra_override("hydra.run.dir", f"{task_dir}/results"))
    context = {
        "task_id": tid,
        "task_dir": task_dir,
        "output_dir": f"{task_dir}/results",
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


@dataclass
class TaskInputs:
    """What starting each task takes: its parameters (from the table) and its argv."""

    params: dict[str, dict[str, Any]]
    argv: dict[str, list[str]]

    def for_runner(self) -> dict[str, dict[str, Any]]:
        """Per task, what a runner's batch carries for it: its argv, and the params.yaml the
        runner writes into the task's directory when it starts the task (which makes the directory)."""
        writer = paramtable.YamlWriter()
        return {tid: {"argv": args, "params_yaml": writer.text(self.params[tid])} for tid, args in self.argv.items()}


def task_inputs(sweep: Sweep, tasks: Iterable[str], *, python: str, script: str, tasks_dir: str) -> TaskInputs:
    """Each task's parameters and argv, for a host where the sweep's tasks dir is `tasks_dir` (a POSIX path)."""
    params = ParamTable(sweep.paths).many(tasks)
    base = tasks_dir.rstrip("/")
    return TaskInputs(params, {tid: task_argv(sweep, tid, values, python=python, script=script, task_dir=f"{base}/{tid}")
                               for tid, values in params.items()})


def prepare_tasks(sweep: Sweep, tasks: Iterable[str], *, python: str, script: str,
                  tasks_dir: str) -> dict[str, list[str]]:
    """Each task's argv (as `task_inputs`); on the way, each task's directory is created here with
    its params.yaml (for jobs that find their directories in place: a scheduler's)."""
    inputs = task_inputs(sweep, tasks, python=python, script=script, tasks_dir=tasks_dir)
    paramtable.write_task_params(sweep.paths, inputs.params)
    return inputs.argv


def takes_argv(*templates: str) -> bool:
    """True when the task wrapper takes the command as its arguments after TASK_DIR ATTEMPT (hsm's
    own does) and every job script passes it on; False for a project's own copy made for an
    earlier hsm, which reads it from the task's `argv` file (`write_argv_files`)."""
    wrapper, *job_scripts = templates
    return '"${@:3}"' in wrapper and all('"${argv[@]}"' in text for text in job_scripts)


def write_argv_files(sweep: Sweep, argv: Mapping[str, Sequence[str]]) -> None:
    """Write each task's `argv` file (NUL-separated): only for a wrapper that reads it (`takes_argv`)."""
    store.write_inputs({sweep.paths.argv(tid): "".join(a + "\0" for a in args) for tid, args in argv.items()})


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
