"""`hsm expand`: a sweep config becomes a new sweep directory with one task per combination."""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import re
import shlex
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsm import __version__, hydra_sweeps, store
from hsm.agent.status import alive, proc_start
from hsm.clock import log_stamp, now_iso
from hsm.config import ProjectConfig
from hsm.core import command
from hsm.core.spec import SweepSpec
from hsm.core.states import PENDING
from hsm.core.sweepconfig import parse_sweep_config
from hsm.errors import BadInput
from hsm.paramtable import LineWriter
from hsm.paths import SweepPaths, id_width, task_id

_SWEEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_SWEEP_ID = 100  # a file name holds 255 bytes; the temp dir it is built in adds a few


def load_sweep_config(path: Path) -> tuple[SweepSpec, Any]:
    """Read and check a sweep-config file; the spec and the data as loaded.

    Values in Hydra's sweep syntax (`range(1,5)`) are read with Hydra's grammar.
    """
    data = store.read_yaml_strict(path)
    return parse_sweep_config(data, str(path), hydra_sweeps.parse_value), data


@dataclass(frozen=True)
class Plan:
    """What an expand would create."""

    config_path: Path | None  # None: the command-line overrides alone make the sweep
    spec: SweepSpec
    raw_text: str
    total: int
    tasks: int
    arg_style: str
    overrides: tuple[str, ...] = ()

    def describe(self) -> list[tuple[str, str]]:
        """Rows of the parameter table."""
        return self.spec.describe()

    def origin(self) -> str:
        """Where the sweep comes from: the config file, its overrides, or both."""
        words = f"overrides {shlex.join(self.overrides)}" if self.overrides else ""
        if self.config_path is None:
            return f"the command-line {words}"
        return f"{self.config_path} with {words}" if words else str(self.config_path)


def plan(config_path: Path | None, project: ProjectConfig, max_tasks: int | None, overrides: Sequence[str] = ()) -> Plan:
    """Read and check a sweep config (and command-line overrides) against the project; nothing is written.

    The overrides' parameters join the config's grid, replacing any the config gives
    (`SweepSpec.overridden`); with no config they alone make the sweep.
    """
    if max_tasks is not None and max_tasks < 1:
        raise BadInput(f"--max-tasks: expected a positive number, got {max_tasks}")
    spec, raw_text = _read(config_path, tuple(overrides))
    where = str(config_path) if config_path is not None else "the command-line overrides"
    arg_style = spec.arg_style or project.arg_style
    if arg_style == "argparse":
        for name in spec.parameter_names():
            if name.startswith(("+", "~")):
                raise BadInput(f"{where}: parameter {name!r}: +, ++ and ~ are Hydra's; this sweep passes argparse "
                               "options (arg_style: argparse)")
    uses_script = True
    if spec.command is not None:
        tokens = command.parse_template(spec.command, spec.parameter_names(), f"{where}: command")
        uses_script = any("{script}" in t for t in tokens)
    else:
        for name in spec.parameter_names():
            if arg_style == "hydra":
                command.check_hydra_name(name)
    if uses_script:
        script = project.script_path()
        if script is None:
            origin = project.path or "hsm_config.yaml"
            raise BadInput(f"{origin}: paths.training_script is not set (or give the sweep a command: template)")
        if not script.is_file():
            origin = project.path or "hsm_config.yaml"
            raise BadInput(f"{origin}: paths.training_script: {script}: no such file")
    total = spec.count()
    _check_size(total, max_tasks, int(project.compute.get("max_sweep_tasks", 1_000_000)), where)
    return Plan(config_path, spec, raw_text, total, min(total, max_tasks or total), arg_style, tuple(overrides))


def _read(config_path: Path | None, overrides: tuple[str, ...]) -> tuple[SweepSpec, str]:
    """The sweep and the text kept as its sweep_config.yaml: the config as given, with the
    overrides in a comment at its end; with no config, a config written from the overrides."""
    entries = hydra_sweeps.parse_overrides(overrides) if overrides else ()
    if config_path is None:
        if not entries:
            raise BadInput("no sweep config and no overrides: give a sweep config or key=value overrides")
        grid = {name: list(values) for name, values in entries}
        header = f"# The sweep of the command-line overrides: {shlex.join(overrides)}\n"
        return SweepSpec(grid=entries), header + store.yaml_text({"grid": grid})
    spec, data = load_sweep_config(config_path)
    command.check_no_nul(data, str(config_path))
    text = config_path.read_text(encoding="utf-8")
    if not entries:
        return spec, text
    note = f"# Command-line overrides, which take precedence over the above: {shlex.join(overrides)}\n"
    return spec.overridden(entries), text + ("" if text.endswith("\n") or not text else "\n") + note


def _check_size(total: int, max_tasks: int | None, limit: int, where: str) -> None:
    """Refuse a sweep larger than `limit` tasks (unless --max-tasks takes a part of it): counted
    from the lengths of the lists, before a single task is made."""
    if min(total, max_tasks or total) > limit:
        raise BadInput(f"{where}: {total:,} combinations, more than max_sweep_tasks ({limit:,}): run a part with "
                       "--max-tasks N, or raise compute.max_sweep_tasks in hsm_config.yaml")


def check_sweep_id(sweep_id: str) -> None:
    """Raise BadInput unless `sweep_id` can name a sweep dir (and the temp dir it is built in)."""
    if not _SWEEP_ID.match(sweep_id):
        raise BadInput(f"--sweep-id: '{sweep_id[:60]}' is not a valid name (letters, digits, '.', '_', '-')")
    if len(sweep_id) > MAX_SWEEP_ID:
        raise BadInput(f"--sweep-id: '{sweep_id[:40]}...' has {len(sweep_id)} characters, more than {MAX_SWEEP_ID}")


def new_sweep_id(now: _dt.datetime | None = None) -> str:
    """`sweep_YYYYMMDD_HHMMSS`; a suffix is added at creation if that name is taken."""
    return (now or _dt.datetime.now()).strftime("sweep_%Y%m%d_%H%M%S")


def _metadata(p: Plan, project: ProjectConfig, sweep_id: str, width: int) -> dict[str, Any]:
    return {
        "sweep_id": sweep_id,
        "created": now_iso(),
        "hsm_version": __version__,
        "config_file": str(p.config_path) if p.config_path is not None else None,
        "project_root": str(project.root),
        "hsm_config": str(project.path) if project.path else None,
        "python_interpreter": project.python_interpreter,
        "training_script": project.training_script,
        "conda_env": project.conda_env,
        "arg_style": p.arg_style,
        "command": p.spec.command,
        "hydra_run_dir": project.hydra_run_dir,
        "combinations": p.total,
        "total_tasks": p.tasks,
        "id_width": width,
        "parameters": p.spec.parameter_names(),
        "metadata": p.spec.metadata,
        "defaults": p.spec.defaults,
        "compute": project.compute,
        **({"overrides": list(p.overrides)} if p.overrides else {}),
    }


def _build(tmp: Path, p: Plan, project: ProjectConfig, sweep_id: str) -> None:
    """Write the sweep's files into `tmp`: no task has a directory yet (its first submit makes it)."""
    paths = SweepPaths(tmp)
    for directory in paths.skeleton():
        directory.mkdir(parents=True, exist_ok=True)
    width = id_width(p.tasks)
    (tmp / "sweep_config.yaml").write_text(p.raw_text, encoding="utf-8")
    store.write_yaml(paths.metadata, _metadata(p, project, sweep_id, width))
    tids = _write_param_table(paths.param_table, p, width)
    # Every entry is the same object: one dict for a million pending tasks, and index_text
    # renders it once.
    pending = {"state": PENDING}
    index = {"sweep_id": sweep_id, "sources": {}, "tasks": dict.fromkeys(tids, pending)}
    (tmp / "task_mapping.yaml").write_text(store.index_text(index), encoding="utf-8")
    (tmp / "logs" / "sweep.log").write_text(
        f"[{log_stamp()}] INFO - expand: {p.tasks} tasks ({p.total} combinations) from {p.origin()}\n", encoding="utf-8"
    )


def _write_param_table(path: Path, p: Plan, width: int) -> list[str]:
    """Write the parameter table (`hsm.paramtable`), one line per task; the task ids in order."""
    writer = LineWriter()
    tids: list[str] = []
    chunk: list[str] = []
    with open(path, "w", encoding="utf-8") as fh:
        for number, params in enumerate(itertools.islice(p.spec.combinations(), p.tasks), start=1):
            tid = task_id(number, width)
            tids.append(tid)
            chunk.append(writer.line(tid, params))
            if len(chunk) >= 10_000:
                fh.write("".join(chunk))
                chunk.clear()
        fh.write("".join(chunk))
    return tids


def _same_sweep(existing: Path, p: Plan) -> bool:
    try:
        return (existing / "sweep_config.yaml").read_text(encoding="utf-8") == p.raw_text and (
            store.read_yaml(existing / "sweep_metadata.yaml").get("total_tasks") == p.tasks
        )
    except (OSError, BadInput, AttributeError):
        return False


def expand(p: Plan, project: ProjectConfig, outputs: Path, sweep_id: str | None = None) -> Path:
    """Create the sweep directory for plan `p` under `outputs` and return its path.

    The directory is built under a temporary name and renamed into place, so a failure
    leaves nothing behind. With `sweep_id` given, expanding the same config again returns
    the existing sweep unchanged. What an earlier expand, killed part-way, left is removed
    first (`remove_leftovers`).
    """
    if sweep_id is not None:
        check_sweep_id(sweep_id)
    if outputs.is_dir():
        remove_leftovers(outputs)
    if sweep_id is not None:
        existing = outputs / sweep_id
        if existing.exists():
            if _same_sweep(existing, p):
                return existing
            raise BadInput(f"--sweep-id: sweep '{sweep_id}' already exists in {outputs} with a different config")
    try:
        outputs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"outputs directory {outputs}: {exc.strerror}") from None
    base = sweep_id or new_sweep_id()
    for n in range(1, 10_000):
        name = base if n == 1 else f"{base}_{n}"
        try:
            # mkdir is the atomic claim of the name: two expands in the same second
            # get two different ids.
            os.mkdir(outputs / name)
        except FileExistsError:
            if sweep_id is not None:
                if _same_sweep(outputs / name, p):
                    return outputs / name
                raise BadInput(f"--sweep-id: sweep '{sweep_id}' already exists in {outputs}") from None
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=outputs))
        try:
            _claim(tmp)
            _build(tmp, p, project, name)
            os.unlink(tmp / OWNER)
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700: lab-mates read results as with any dir
            os.rename(tmp, outputs / name)  # replaces the empty claimed directory
        except BaseException:
            os.rmdir(outputs / name)
            raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return outputs / name
    raise BadInput(f"{outputs}: no free sweep id for {base}")


# --- what an expand cut short leaves ---------------------------------------------------------------

OWNER = ".expand_owner"  # in a sweep dir being built: "HOST PID START" of the expand building it
_BUILDING = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")
STALE_AFTER = 60.0  # seconds: a dir being built with no owner yet is that young


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _claim(tmp: Path) -> None:
    me = os.getpid()
    (tmp / OWNER).write_text(f"{socket.gethostname()} {me} {proc_start(me) or 0}\n", encoding="utf-8")


def _abandoned(building: Path) -> bool:
    """True when the expand that was building `building` is gone (killed): its owner, on this
    host, is no longer running; or it has no owner and is older than any live expand's would be."""
    try:
        host, pid, start = (building / OWNER).read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        try:
            return time.time() - building.stat().st_mtime > STALE_AFTER
        except OSError:
            return False
    return host == socket.gethostname() and not alive(int(pid), int(start))


def remove_leftovers(outputs: Path) -> list[str]:
    """Remove what expands killed part-way left in `outputs` (their half-built dirs and the names
    they had claimed), so the same --sweep-id can be expanded again; the names cleared."""
    cleared = []
    for entry in os.scandir(outputs):
        match = _BUILDING.match(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False) or not _abandoned(Path(entry.path)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        claimed = outputs / match["name"]
        try:
            claimed.rmdir()  # only when empty: a finished sweep of that name stays
        except OSError:
            pass
        cleared.append(match["name"])
    return cleared
