"""The `--sources` grammar, parsed and resolved against the configuration (pure).

Entries are comma-separated: `NAME[:N]` or `TYPE:NAME[:N]` with TYPE one of local, ssh,
hpc (also slurm, pbs); N caps parallel tasks on that source; `all` means every enabled
configured source; `ssh:HOST` with HOST not configured is an ad-hoc SSH host; `hpc`
alone is the scheduler found on this machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from hsm.core.settings import SourceConfig, SourceDefaults, source_config
from hsm.errors import BadInput

TYPES = ("local", "ssh", "hpc", "slurm", "pbs")


@dataclass(frozen=True)
class Entry:
    """One parsed entry of a source spec, before it is matched to the configuration."""

    type: str | None
    name: str | None
    limit: int | None


def _is_number(text: str) -> bool:
    """Plain ASCII digits (str.isdigit also takes '²' and other digits int() refuses)."""
    return text.isascii() and text.isdigit()


# A field meant as a number that is not a positive whole one: `-1`, `+2`, `1.5`, `.5` (not a
# dotted host address such as 10.0.0.5, which has more than one dot).
_NUMBER_LIKE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")


def _limit(text: str, entry: str) -> int:
    if not _is_number(text) or int(text) < 1:
        raise BadInput(f"--sources: '{entry}': '{text}' is not a positive number of parallel tasks")
    return int(text)


def parse_spec(spec: str) -> list[Entry]:
    """Parse the text of `--sources` into entries (no configuration needed)."""
    if not spec or not spec.strip():
        raise BadInput("--sources: empty source spec")
    entries: list[Entry] = []
    for raw in spec.split(","):
        text = raw.strip()
        if not text:
            raise BadInput(f"--sources: empty entry in '{spec}'")
        parts = text.split(":")
        if any(not p for p in parts):
            raise BadInput(f"--sources: '{text}': empty field (expected NAME[:N] or TYPE:NAME[:N])")
        if parts[0] in TYPES:
            kind, rest = parts[0], parts[1:]
            if not rest:
                entries.append(Entry(kind, None, None))
            elif len(rest) == 1 and (_is_number(rest[0]) or _NUMBER_LIKE.match(rest[0])):
                entries.append(Entry(kind, None, _limit(rest[0], text)))
            elif len(rest) == 1:
                entries.append(Entry(kind, rest[0], None))
            elif len(rest) == 2:
                entries.append(Entry(kind, rest[0], _limit(rest[1], text)))
            else:
                raise BadInput(f"--sources: '{text}': too many ':' fields (expected TYPE:NAME[:N])")
        elif len(parts) == 1:
            entries.append(Entry(None, parts[0], None))
        elif len(parts) == 2:
            entries.append(Entry(None, parts[0], _limit(parts[1], text)))
        else:
            raise BadInput(f"--sources: '{text}': unknown source type '{parts[0]}' (expected one of {', '.join(TYPES)})")
    return entries


def _from_config(cfg: SourceConfig, limit: int | None) -> SourceConfig:
    return replace(cfg, max_parallel=limit or cfg.max_parallel)


def resolve(spec: str, configured: dict[str, SourceConfig], detected_scheduler: str | None = None,
            defaults: SourceDefaults | None = None) -> list[SourceConfig]:
    """Match a source spec against the configured sources; ad-hoc SSH hosts are allowed."""
    defaults = defaults or SourceDefaults()
    chosen: dict[str, SourceConfig] = {}
    for entry in parse_spec(spec):
        if entry.type is None and entry.name == "all":
            found = [_from_config(c, entry.limit) for c in configured.values() if c.enabled and c.name not in chosen]
        else:
            found = [_resolve_entry(entry, configured, detected_scheduler, defaults)]
        for source in found:
            if source.name in chosen:
                raise BadInput(f"--sources: source '{source.name}' is named twice")
            chosen[source.name] = source
    if not chosen:
        raise BadInput(f"--sources: '{spec}' names no enabled source")
    return list(chosen.values())


def _resolve_entry(entry: Entry, configured: dict[str, SourceConfig], detected_scheduler: str | None,
                   defaults: SourceDefaults) -> SourceConfig:
    """The one source an entry other than `all` names."""
    kind = {"slurm": "hpc", "pbs": "hpc"}.get(entry.type or "", entry.type)
    if entry.type is None:
        named = configured.get(entry.name or "")
        if named is None:
            known = ", ".join(sorted(configured)) or "none"
            raise BadInput(f"--sources: unknown source '{entry.name}' "
                           f"(configured: {known}; ad-hoc hosts are written ssh:HOST)")
        return _from_config(named, entry.limit)
    if kind == "local":
        local = configured.get(entry.name or "local")
        if entry.name and (local is None or local.type != "local"):
            raise BadInput(f"--sources: '{entry.name}' is not a configured local source")
        return _from_config(local, entry.limit) if local else source_config("local", "local", entry.limit or 4, {}, defaults)
    if kind == "ssh":
        if entry.name is None:
            raise BadInput("--sources: 'ssh' needs a host: ssh:HOST[:N]")
        host = configured.get(entry.name)
        if host is not None and host.type != "ssh":
            raise BadInput(f"--sources: '{entry.name}' is configured as a {host.type} source, not ssh")
        if host is None:
            # An ad-hoc host: the name is what `ssh` resolves (~/.ssh/config aliases included).
            return source_config(entry.name, "ssh", entry.limit or 1, {"host": entry.name}, defaults)
        return _from_config(host, entry.limit)
    return _resolve_hpc(entry, configured, detected_scheduler, defaults)


def _resolve_hpc(entry: Entry, configured: dict[str, SourceConfig], detected_scheduler: str | None,
                 defaults: SourceDefaults) -> SourceConfig:
    """`hpc`, `slurm` or `pbs`, with or without a name: a configured hpc source, or the scheduler found here."""
    wanted_system = entry.type if entry.type in ("slurm", "pbs") else None
    if entry.name is not None:
        cluster = configured.get(entry.name)
        if cluster is None or cluster.type != "hpc":
            raise BadInput(f"--sources: '{entry.name}' is not a configured hpc source")
        source = _from_config(cluster, entry.limit)
    else:
        hpc = [c for c in configured.values() if c.type == "hpc" and c.enabled]
        if len(hpc) > 1:
            names = ", ".join(c.name for c in hpc)
            raise BadInput(f"--sources: '{entry.type}' is ambiguous: several hpc sources are configured ({names})")
        if hpc:
            source = _from_config(hpc[0], entry.limit)
        else:
            system = wanted_system or detected_scheduler
            if system is None and defaults.no_cluster:
                raise BadInput(f"--sources: '{entry.type}': no hpc source is configured "
                               "and the project config says it has no cluster (hpc.system: local)")
            if system is None:
                raise BadInput(f"--sources: '{entry.type}': no hpc source is configured "
                               "and neither sbatch nor qsub is on PATH")
            source = source_config(system, "hpc", entry.limit or 32, {"system": system}, defaults)
    if wanted_system:
        source = source_config(source.name, "hpc", source.max_parallel, {**source.options, "system": wanted_system},
                               defaults)
    return source
