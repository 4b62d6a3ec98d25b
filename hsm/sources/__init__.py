"""Compute sources: one module per kind behind the interface in `base`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hsm.config import ProjectConfig
from hsm.core.settings import SourceConfig, from_index
from hsm.errors import BadInput
from hsm.sources.base import Source
from hsm.sweep import Sweep


def make_source(name: str, entry: Mapping[str, Any], sweep: Sweep, project: ProjectConfig) -> Source:
    """The source object for an entry of the index's `sources` section (its settings checked again)."""
    return source_of(from_index(name, entry, project.source_defaults), sweep, project)


def source_of(config: SourceConfig, sweep: Sweep, project: ProjectConfig) -> Source:
    """The source object of a configured source."""
    if config.type == "local":
        from hsm.sources.local import LocalSource

        return LocalSource(config, sweep, project)
    if config.type == "ssh":
        from hsm.sources.ssh import SshSource

        return SshSource(config, sweep, project)
    if config.type == "hpc":
        from hsm.sources.hpc import HpcSource

        return HpcSource(config, sweep, project)
    raise BadInput(f"source '{config.name}': type '{config.type}' is not supported by this version of hsm")
