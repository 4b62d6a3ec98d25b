"""`hsm sources`: the project's compute sources, their health, and taking them out of and back into service.

A source is configured in `hsm_config.yaml` (`compute_sources`, the older
`distributed.remotes`, or the implicit `local`) and copied into each sweep's index when
the sweep is assigned to it. Disabling a source acts on both: `enabled: false` in the
config (so `--sources all` leaves it out of new sweeps; not with `--temporary`), and in
every running sweep that uses it, whose unstarted tasks go elsewhere (`commands.failover`).
Changes to the config file are made by `hsm.config_edit`, which keeps the file's layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm import store
from hsm.clock import now_iso
from hsm.commands import source_probe
from hsm.config import CONFIG_NAME, ProjectConfig, parse_config
from hsm.core.settings import HpcSettings, SourceConfig, SshSettings
from hsm.core.sourcespec import resolve
from hsm.core.states import ASSIGNED, QUEUED, RUNNING, SUBMITTED
from hsm.core.summary import all_final
from hsm.errors import BadInput, HsmError
from hsm.sweep import Sweep, list_sweeps

# --- the configured sources ------------------------------------------------------------------------


@dataclass
class SourceInfo:
    """A source as the project configures it."""

    name: str
    type: str
    max_parallel: int
    enabled: bool
    where: str  # host, partition: where its tasks run
    section: str  # compute_sources, distributed.remotes, or implicit


def where_of(source: SourceConfig) -> str:
    """Where a source's tasks run, in a few words: `this machine`, `host:port`, `slurm partition gpu`."""
    settings = source.settings
    if isinstance(settings, SshSettings):
        c = settings.connection
        return c.host + (f":{c.port}" if c.port else "")
    if isinstance(settings, HpcSettings):
        text = settings.system or "scheduler found here"
        text += f", partition {settings.queue}" if settings.queue else ""
        return text + (f", via {settings.connection.host}" if settings.connection else "")
    return "this machine"


def section_of(project: ProjectConfig, name: str) -> str:
    """Where the config file defines a source; `implicit` for the local source it does not name."""
    if name in (project.raw.get("compute_sources") or {}):
        return "compute_sources"
    if name in ((project.raw.get("distributed") or {}).get("remotes") or {}):
        return "distributed.remotes"
    return "implicit"


def configured(project: ProjectConfig) -> list[SourceInfo]:
    """The project's sources, in the order the config gives them (`local` last when implicit)."""
    return [SourceInfo(s.name, s.type, s.max_parallel, s.enabled, where_of(s), section_of(project, s.name))
            for s in project.sources.values()]


# --- sweeps that are still running -----------------------------------------------------------------


def unfinished_sweeps(project: ProjectConfig) -> list[Sweep]:
    """The project's sweeps that have a task not yet final, oldest first."""
    found = []
    for path in list_sweeps(project.outputs_dir):
        try:
            sweep = Sweep.open(path)
            if not all_final(sweep.read_index()):
                found.append(sweep)
        except HsmError:
            continue  # a damaged sweep dir is not running anything hsm can act on
    return found


def sweeps_using(name: str, sweeps: Iterable[Sweep]) -> list[Sweep]:
    """The given sweeps whose index has source `name`."""
    return [s for s in sweeps if name in s.read_index().get("sources", {})]


def split_names(values: Iterable[str]) -> list[str]:
    """`server1,server2 server3` -> [server1, server2, server3], each once, in order."""
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name:
                raise BadInput(f"source names: empty name in '{value}'")
            if name not in names:
                names.append(name)
    if not names:
        raise BadInput("no source named")
    return names


def check_known(names: list[str], known: Iterable[str], where: str = "") -> None:
    """BadInput naming the first name that is not a source."""
    known = sorted(set(known))
    for name in names:
        if name not in known:
            raise BadInput(f"{where}unknown source '{name}' (known: {', '.join(known) or 'none'})")


# --- health ----------------------------------------------------------------------------------------


@dataclass
class SourceHealth:
    """A source's health now, and what a sweep says of it."""

    name: str
    type: str
    max_parallel: int
    probe: dict[str, Any]
    checked: str
    configured_enabled: bool | None = None  # None: not in the project's config
    running: int | None = None  # with a sweep: its tasks running there
    waiting: int | None = None  # assigned, submitted or queued there
    disabled: bool = False  # in the sweep
    disabled_reason: str | None = None
    disabled_by: str | None = None
    recorded: dict[str, Any] = field(default_factory=dict)  # the sweep's last health check of it

    @property
    def status(self) -> str:
        """healthy, degraded, unhealthy, or disabled (in the sweep or in the config)."""
        if self.disabled or self.configured_enabled is False:
            return "disabled"
        return str(self.probe.get("status", "unhealthy"))


def load_of(index: Mapping[str, Any], name: str) -> tuple[int, int]:
    """A source's running tasks and those waiting for it (assigned, submitted, queued)."""
    running = waiting = 0
    for t in index["tasks"].values():
        if t.get("source") == name:
            running += t["state"] == RUNNING
            waiting += t["state"] in (ASSIGNED, SUBMITTED, QUEUED)
    return running, waiting


def _probe_in_sweep(name: str, entry: dict[str, Any], sweep: Sweep, project: ProjectConfig) -> dict[str, Any]:
    from hsm.sources import make_source

    try:
        return make_source(name, entry, sweep, project).health()
    except HsmError as exc:
        return source_probe.unhealthy(str(exc))


def health_report(project: ProjectConfig, sweep: Sweep | None = None,
                  names: list[str] | None = None) -> list[SourceHealth]:
    """Probe each source once: the project's, and the sweep's own when a sweep is given."""
    index: Mapping[str, Any] = sweep.read_index() if sweep else {"sources": {}, "tasks": {}}
    in_sweep: dict[str, Any] = index.get("sources", {})
    everyone = list(project.sources) + [n for n in in_sweep if n not in project.sources]
    if names:
        check_known(names, everyone)
        everyone = [n for n in everyone if n in names]
    report = []
    for name in everyone:
        entry = in_sweep.get(name)
        config = project.sources.get(name)
        if entry is not None and sweep is not None:
            probe = _probe_in_sweep(name, entry, sweep, project)
            kind, cap = str(entry.get("type")), int(entry.get("max_parallel", 1))
        else:
            assert config is not None
            probe = source_probe.probe(config, project)
            kind, cap = config.type, config.max_parallel
        row = SourceHealth(name, kind, cap, probe, now_iso(), config.enabled if config else None)
        if entry is not None:
            row.running, row.waiting = load_of(index, name)
            row.disabled = bool(entry.get("disabled"))
            row.disabled_reason = entry.get("disabled_reason")
            row.disabled_by = entry.get("disabled_by")
            row.recorded = dict(entry.get("health") or {})
        report.append(row)
    return report


def latest_unfinished(project: ProjectConfig) -> Sweep | None:
    """The most recent sweep that still has unfinished tasks."""
    running = unfinished_sweeps(project)
    return running[-1] if running else None


# --- connection tests ------------------------------------------------------------------------------


def connection_checks(project: ProjectConfig, names: list[str] | None) -> list[source_probe.Check]:
    """Test the named sources' connections (every configured one when `names` is None)."""
    if names is not None:
        check_known(names, project.sources)
    chosen = [s for s in project.sources.values() if names is None or s.name in names]
    return [source_probe.connection_check(s, project) for s in chosen]


def source_for_spec(project: ProjectConfig, spec: str) -> SourceConfig:
    """The one source `ssh:NAME`, `hpc:NAME` or `local` names (an unconfigured ssh:HOST is ad hoc)."""
    from hsm.sources.detect import scheduler_of

    if "," in spec or spec.strip() == "all":
        raise BadInput(f"test: '{spec}': name one source, as ssh:NAME, hpc:NAME or local")
    try:
        found = resolve(spec, project.sources, scheduler_of(project),
                        project.source_defaults)
    except BadInput as exc:
        raise BadInput("test: " + str(exc).removeprefix("--sources: ")) from None
    return found[0]


# --- changing hsm_config.yaml ----------------------------------------------------------------------


Edit = Callable[[str, str], str]  # (text, where) -> new text


def config_path(project: ProjectConfig) -> Path:
    """The project's config file: the one in use, else a new one in the project root."""
    return project.path or project.root / CONFIG_NAME


def edit_config(project: ProjectConfig, edits: list[Edit]) -> Path | None:
    """Apply the edits to hsm_config.yaml and write it when it still loads; None when nothing changed.

    The edited text is loaded as every command would load it before it replaces the file,
    so a change that would break the config is refused (BadInput) and nothing is written.
    """
    path = config_path(project)
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    new = old
    for edit in edits:
        new = edit(new, str(path))
    if new == old:
        return None
    parse_config(store.parse_yaml(new, str(path)), path, project.root)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    store.atomic_write(path, new, mode)
    return path
