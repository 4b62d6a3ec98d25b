"""`hsm sources enable|disable|add|remove|rebalance` and `hsm distributed init`: changing the sources.

The config file is changed first, in one write that is refused whole when the result would
not load; then each running sweep that uses a source is told (`commands.failover`), each
on its own, so one sweep's trouble does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm import config_edit
from hsm.commands.sources import Edit, check_known, edit_config, section_of, sweeps_using, unfinished_sweeps
from hsm.config import ProjectConfig
from hsm.core.keys import known_names
from hsm.core.settings import HPC_KEYS, LOCAL_KEYS, SOURCE_TYPES, SSH_KEYS
from hsm.errors import BadInput, HsmError
from hsm.sweep import Sweep

DEFAULT_REASON = "disabled by the user"


@dataclass
class SweepAction:
    """What one running sweep did about one source."""

    sweep: Sweep
    name: str
    moved: Any = None  # commands.failover.Moved, for a disable
    was_disabled: bool | None = None  # for an enable
    error: str | None = None


@dataclass
class Change:
    """What enabling or disabling sources did to the config and the running sweeps."""

    names: list[str] = field(default_factory=list)  # the sources asked for
    config: Path | None = None  # the config file, when it was written
    in_config: list[str] = field(default_factory=list)  # sources whose `enabled` the config now holds
    not_in_config: list[str] = field(default_factory=list)  # sources only running sweeps know
    sweeps: list[SweepAction] = field(default_factory=list)

    @property
    def errors(self) -> list[SweepAction]:
        return [a for a in self.sweeps if a.error]


def _enabled_edit(name: str, value: bool, implicit: bool) -> Edit:
    if implicit:
        # The local source the file does not name gets an entry that says it.
        return lambda text, where: config_edit.add_source(text, name, {"type": "local", "enabled": value}, where)
    return lambda text, where: config_edit.set_enabled(text, name, value, where)


def _set_in_config(project: ProjectConfig, names: list[str], value: bool, change: Change) -> None:
    edits = []
    for name in names:
        if name not in project.sources:
            change.not_in_config.append(name)
            continue
        change.in_config.append(name)
        implicit = section_of(project, name) == "implicit"
        if not (implicit and value):  # the implicit local source is enabled: nothing to write
            edits.append(_enabled_edit(name, value, implicit))
    change.config = edit_config(project, edits)


def disable(project: ProjectConfig, names: list[str], reason: str | None = None, temporary: bool = False) -> Change:
    """Disable sources: in hsm_config.yaml (unless `temporary`) and in every running sweep that uses them."""
    from hsm.commands import failover

    running = unfinished_sweeps(project)
    check_known(names, [*project.sources, *(n for s in running for n in s.read_index().get("sources", {}))])
    change = Change(names)
    if not temporary:
        _set_in_config(project, names, False, change)
    for name in names:
        for sweep in sweeps_using(name, running):
            action = SweepAction(sweep, name)
            try:
                action.moved = failover.disable(sweep, project, name, reason or DEFAULT_REASON, by="user")
            except HsmError as exc:
                action.error = str(exc)
            change.sweeps.append(action)
    return change


def enable(project: ProjectConfig, names: list[str]) -> Change:
    """Enable sources again: in hsm_config.yaml and in every running sweep that uses them."""
    from hsm.commands import failover

    running = unfinished_sweeps(project)
    check_known(names, [*project.sources, *(n for s in running for n in s.read_index().get("sources", {}))])
    change = Change(names)
    _set_in_config(project, names, True, change)
    for name in names:
        for sweep in sweeps_using(name, running):
            action = SweepAction(sweep, name)
            try:
                action.was_disabled = failover.enable(sweep, project, name)
            except HsmError as exc:
                action.error = str(exc)
            change.sweeps.append(action)
    return change


def rebalance(sweep: Sweep, project: ProjectConfig) -> list[Any]:
    """Idle sources of the sweep take waiting work from busy ones (commands.failover.Moved each)."""
    from hsm.commands import failover

    return list(failover.rebalance(sweep, project))


# --- adding and removing ---------------------------------------------------------------------------

ALLOWED = {
    "local": known_names(LOCAL_KEYS),
    "ssh": known_names(SSH_KEYS) | {"host"},
    "hpc": known_names(HPC_KEYS),
}


def new_source(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A source entry: `type` first, then the settings, each known to that type of source."""
    if kind not in SOURCE_TYPES:
        raise BadInput(f"--type: '{kind}' is not a source type (expected one of {', '.join(SOURCE_TYPES)})")
    entry: dict[str, Any] = {"type": kind}
    for key, value in settings.items():
        if value is None:
            continue
        if key not in ALLOWED[kind] | {"max_parallel_tasks", "enabled"}:
            known = ", ".join(sorted(ALLOWED[kind])) or "none but max_parallel_tasks"
            raise BadInput(f"{key}: not a setting of a {kind} source (its settings: {known})")
        entry[key] = value
    return entry


def add(project: ProjectConfig, name: str, kind: str, settings: dict[str, Any]) -> Path:
    """Add a source to `compute_sources` in hsm_config.yaml (made when missing).

    An ssh source added without a host is reached by its name (`host:` is written out, as the
    config requires it).
    """
    if kind == "ssh" and not settings.get("host"):
        settings = {**settings, "host": name}
    entry = new_source(kind, settings)
    written = edit_config(project, [lambda text, where: config_edit.add_source(text, name, entry, where)])
    assert written is not None  # a new entry always changes the text
    return written


def remove(project: ProjectConfig, name: str) -> tuple[Path, list[Sweep]]:
    """Remove a source from hsm_config.yaml; also the running sweeps that still use it (they keep it)."""
    if name in project.sources and section_of(project, name) == "implicit":
        raise BadInput(f"source '{name}' is not in hsm_config.yaml: the local source is always there "
                       f"(hsm sources disable {name} takes it out of service)")
    written = edit_config(project, [lambda text, where: config_edit.remove_source(text, name, where)])
    assert written is not None
    return written, sweeps_using(name, unfinished_sweeps(project))


def init(project: ProjectConfig) -> Path | None:
    """Give hsm_config.yaml a `compute_sources` section with `local` when it has none; None when it had one."""
    if project.raw.get("compute_sources") or "local" in ((project.raw.get("distributed") or {}).get("remotes") or {}):
        return None
    local = {"type": "local", "max_parallel_tasks": project.sources["local"].max_parallel}
    return edit_config(project, [lambda text, where: config_edit.add_source(text, "local", local, where)])
