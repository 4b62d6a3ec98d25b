"""GPU ids of a source, as the config gives them, and how many tasks they let run (pure).

A local or SSH source may list the GPU ids its tasks share (`gpus: [0, 1, 2, 3]`: whole
numbers as nvidia-smi numbers the GPUs, or the UUIDs of GPUs and MIG instances), or say
`gpus: auto` (the ids `nvidia-smi -L` lists on the machine that runs the tasks, read there
by the agent), and how many ids each task gets (`gpus_per_task`, default 1). The runner
that starts the tasks shares the ids out (`hsm/agent/gpus.py`): a task starts with
CUDA_VISIBLE_DEVICES set to its ids, and no id is given to two running tasks at once.

An hpc source lists no ids (the scheduler assigns GPUs); its `gpus_per_task` becomes a
directive of the job script, on Slurm only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Union

from hsm.core.keys import bad
from hsm.errors import BadInput

AUTO = "auto"
GpuId = Union[int, str]
Gpus = Union[str, tuple[GpuId, ...], None]  # AUTO, the ids, or None (no GPUs)

# A GPU's or MIG instance's UUID as nvidia-smi -L prints it (GPU-8c2e..., MIG-GPU-.../1/0, MIG-...).
_UUID = re.compile(r"^(GPU|MIG)-[A-Za-z0-9][A-Za-z0-9._:/-]*$", re.ASCII)
IDS_EXPECTED = "expected a list of GPU ids (whole numbers from 0, or GPU-/MIG- UUIDs) or auto"


def gpu_id(item: Any) -> GpuId | None:
    """One id as hsm uses it (a digit string is its number); None when it is not one."""
    if isinstance(item, int) and not isinstance(item, bool):
        return item if item >= 0 else None
    if isinstance(item, str):
        text = item.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        if _UUID.match(text):
            return text
    return None


def gpu_ids(value: Any, where: str) -> str | tuple[GpuId, ...]:
    """`auto`, or a list of distinct GPU ids, as a tuple."""
    if value == AUTO:
        return AUTO
    if not isinstance(value, list) or not value:
        raise bad(where, IDS_EXPECTED, value)
    ids = []
    for item in value:
        parsed = gpu_id(item)
        if parsed is None:
            raise bad(where, IDS_EXPECTED, value)
        if parsed in ids:
            raise bad(where, f"expected each GPU id once ({parsed!r} is listed twice)", value)
        ids.append(parsed)
    return tuple(ids)


def task_slots(gpus: Gpus, per_task: int) -> int | None:
    """How many tasks the listed ids let run at once; None when they do not limit it (auto, no GPUs)."""
    if not isinstance(gpus, tuple):
        return None
    return len(gpus) // per_task


def check_gpu_settings(values: Mapping[str, Any], written: Mapping[str, Any], where: str) -> None:
    """What the two keys say together: `gpus_per_task` needs `gpus`, and at most as many as it lists.

    `values` are the parsed settings, `written` the mapping they were read from (to tell a
    `gpus_per_task` given from its default).
    """
    gpus, per_task = values.get("gpus"), values.get("gpus_per_task", 1)
    if gpus is None:
        if written.get("gpus_per_task") is not None:
            raise BadInput(f"{where}: gpus_per_task: given without gpus (a list of GPU ids, or auto)")
        return
    if isinstance(gpus, tuple) and per_task > len(gpus):
        raise bad(f"{where}: gpus_per_task", f"expected at most the number of gpus listed ({len(gpus)})", per_task)


def check_hpc_gpus(system: str | None, per_task: int | None, written: Mapping[str, Any], where: str) -> None:
    """An hpc source takes no `gpus` list, and `gpus_per_task` only on Slurm (or a scheduler found later)."""
    if written.get("gpus") is not None:
        raise BadInput(f"{where}: gpus: not for hpc sources, the scheduler assigns GPUs (use gpus_per_task)")
    if per_task is not None and system == "pbs":
        raise BadInput(f"{where}: gpus_per_task: not supported on pbs sources "
                       "(ask for GPUs in default_resources, e.g. select=1:ncpus=4:ngpus=2)")
