"""GPU ids shared out by a runner: which are free, which a task gets, what nvidia-smi lists.

Standard library only (see the package docstring); hsm.core.gpus checks the config side.

A batch of a source with GPUs carries `gpus` (the ids, or "auto", which `start` turns into
the ids `nvidia-smi -L` lists on this machine) and `gpus_per_task`. The runner gives each
task it starts that many free ids, in CUDA_VISIBLE_DEVICES, and writes them on the task's
`S` line in `started` (`S TASK ATTEMPT 0,1`), which it appends under its lock before the
start. What is free is decided from that file alone: an id is taken while the wrapper of an
attempt that got it is alive (its `P` line's pid and start time). So the bookkeeping holds
across hsm invocations and across a runner that crashed and was started again, and is
never out of date: an attempt that ended, however it ended, holds nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple, Union

from .status import alive

GpuId = Union[int, str]
Key = Tuple[str, int]
SMI_TIMEOUT = 30.0  # seconds nvidia-smi -L may take

_GPU_LINE = re.compile(r"^GPU (\d+):.*\(UUID: (GPU-[^)\s]+)\)")
_MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (MIG-[^)\s]+)\)")


# --- pure ----------------------------------------------------------------------------------------


def free_ids(gpus: Sequence[GpuId], held: Iterable[Iterable[GpuId]]) -> List[GpuId]:
    """The ids of `gpus` no holder has, in their order."""
    busy = {g for ids in held for g in ids}
    return [g for g in gpus if g not in busy]


def choose(gpus: Sequence[GpuId], held: Iterable[Iterable[GpuId]], per_task: int) -> Tuple[GpuId, ...] | None:
    """The ids a new task gets: the first `per_task` free ones; None when fewer are free."""
    free = free_ids(gpus, held)
    return tuple(free[:per_task]) if per_task >= 1 and len(free) >= per_task else None


def id_of(text: str) -> GpuId:
    """An id as written on an `S` line or by nvidia-smi: a number, or a UUID."""
    return int(text) if text.isdigit() else text


def ids_text(ids: Sequence[GpuId]) -> str:
    """`0,1`: CUDA_VISIBLE_DEVICES, and the ids on an `S` line."""
    return ",".join(str(g) for g in ids)


def status_text(ids: Sequence[GpuId]) -> str:
    """`[0, 1]`: the ids as status.yaml records them (a YAML list, UUIDs quoted)."""
    return "[" + ", ".join(str(g) if isinstance(g, int) else "'" + g + "'" for g in ids) + "]"


def parse_nvidia_smi(text: str) -> List[GpuId]:
    """The ids `nvidia-smi -L` lists: each GPU's index, or the UUIDs of its MIG instances when it has some."""
    out: List[GpuId] = []
    migs: List[GpuId] = []
    index: int | None = None

    def flush() -> None:
        if index is not None:
            out.extend(migs if migs else [index])

    for line in text.splitlines():
        gpu = _GPU_LINE.match(line)
        mig = _MIG_LINE.match(line)
        if gpu:
            flush()
            index, migs = int(gpu.group(1)), []
        elif mig and index is not None:
            migs.append(mig.group(1))
    flush()
    return out


# --- this machine ----------------------------------------------------------------------------------


def detect() -> List[GpuId] | None:
    """The ids `nvidia-smi -L` lists here; None when there is no nvidia-smi, [] when it lists none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, "-L"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=SMI_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"gpus: auto: nvidia-smi -L: {exc}") from None
    text = done.stdout.decode("utf-8", errors="replace")
    if done.returncode != 0:
        if "No devices were found" in text:
            return []
        first = (text.strip().splitlines() or [""])[0]
        raise RuntimeError(f"gpus: auto: nvidia-smi -L exited {done.returncode}: {first}")
    return parse_nvidia_smi(text)


def resolve(batch: Dict[str, Any]) -> Dict[str, Any]:
    """Turn a batch's `gpus: auto` into this machine's ids (in place); what `start` answers about GPUs."""
    if batch.get("gpus") != "auto":
        return {}
    found = detect()
    batch["gpus"] = found or []
    per_task = int(batch.get("gpus_per_task") or 1)
    if found and per_task > len(found):
        raise RuntimeError(f"gpus: auto: nvidia-smi -L lists {len(found)} GPU id(s) on {os.uname().nodename}, "
                           f"fewer than gpus_per_task ({per_task})")
    return {"gpus": batch["gpus"], "nvidia_smi": found is not None}


# --- a runner's book -----------------------------------------------------------------------------


class GpuBook:
    """The ids a runner shares out, and which attempts hold which (folded from `started`)."""

    def __init__(self) -> None:
        self.gpus: Tuple[GpuId, ...] = ()  # none: tasks start without CUDA_VISIBLE_DEVICES
        self.per_task = 1
        self.holders: Dict[Key, Tuple[GpuId, ...]] = {}  # attempts given ids, until seen ended
        self.mine: Set[Key] = set()  # attempts this runner gave ids (started by it, or about to be)

    def configure(self, batch: Dict[str, Any]) -> None:
        """Take the GPU settings of a queue batch that has them (the latest batch wins)."""
        if "gpus" not in batch:
            return
        gpus = batch.get("gpus")
        self.gpus = tuple(id_of(str(g)) for g in gpus) if isinstance(gpus, list) else ()
        self.per_task = max(1, int(batch.get("gpus_per_task") or 1))

    def note(self, key: Key, field: str) -> None:
        """An `S` line's ids (`0,1`)."""
        self.holders[key] = tuple(id_of(g) for g in field.split(",") if g)

    def held(self, started: Dict[Key, Tuple[int, ...] | None]) -> List[Tuple[GpuId, ...]]:
        """The ids of attempts whose process (wrapper, or command started directly) is alive now;
        the others are forgotten.

        An attempt of another runner with an `S` line and no `P` line never will have one:
        that runner died before the start (or in the instant after it, before writing `P`).
        """
        out = []
        for key, ids in list(self.holders.items()):
            proc = started.get(key)
            running = alive(proc[0], proc[1]) if proc is not None else key in self.mine  # (mine: being started now)
            if running:
                out.append(ids)
            else:
                del self.holders[key]
                self.mine.discard(key)
        return out

    def take(self, key: Key, held: List[Tuple[GpuId, ...]]) -> Tuple[GpuId, ...] | None:
        """Ids for attempt `key` (added to `held` and to the book); None when too few are free."""
        ids = choose(self.gpus, held, self.per_task)
        if ids is not None:
            held.append(ids)
            self.holders[key] = ids
            self.mine.add(key)
        return ids

    def release(self, key: Key) -> None:
        """Attempt `key` did not start after all."""
        self.holders.pop(key, None)
        self.mine.discard(key)

    def environment(self, key: Key, env: Dict[str, str]) -> None:
        """The task's environment: its ids when it has some, else nothing of hsm's GPU variables."""
        ids = self.holders.get(key)
        env.pop("HSM_GPUS", None)
        if ids:
            env["CUDA_VISIBLE_DEVICES"] = ids_text(ids)
            env["HSM_GPUS"] = status_text(ids)  # the wrapper records it in status.yaml
            # Integer ids are nvidia-smi's numbers, which CUDA follows only in PCI order.
            env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
