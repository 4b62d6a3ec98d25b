"""Walltimes as Slurm and PBS take them (pure): checked when the config is loaded, not at submit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hsm.core.keys import bad

_SLURM_TIME = re.compile(r"^(\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+)$", re.ASCII)
_PBS_TIME = re.compile(r"^\d+(:\d+){0,2}$", re.ASCII)
_SLURM_FORMS = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED"
_PBS_FORMS = "HH:MM:SS or seconds"


def check_walltime(value: str, system: str | None, where: str) -> str:
    """A time limit the scheduler takes: Slurm's forms for slurm, PBS's for pbs, either when not known yet."""
    slurm = bool(_SLURM_TIME.match(value)) or value.lower() in ("unlimited", "infinite")
    pbs = bool(_PBS_TIME.match(value))
    ok = {"slurm": slurm, "pbs": pbs}.get(system or "", slurm or pbs)
    if not ok:
        forms = {"slurm": _SLURM_FORMS, "pbs": _PBS_FORMS}.get(system or "", f"{_SLURM_FORMS} (Slurm), {_PBS_FORMS} (PBS)")
        raise bad(where, f"expected a walltime: {forms}", value)
    return value


def check_hpc_values(values: Mapping[str, Any], written: Mapping[str, Any], where: str, sep: str = ": ") -> None:
    """What one key alone cannot tell: the walltime is in the form of the source's scheduler."""
    walltime = values.get("default_walltime")
    if walltime is not None:
        name = next((n for n in ("default_walltime", "walltime") if written.get(n) is not None), "default_walltime")
        check_walltime(walltime, values.get("system"), f"{where}{sep}{name}")
