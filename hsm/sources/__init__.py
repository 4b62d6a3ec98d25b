"""Compute sources: one module per kind behind the interface in `base`."""

from __future__ import annotations

from typing import Any

from hsm.config import ProjectConfig
from hsm.errors import BadInput
from hsm.sources.base import Source
from hsm.sweep import Sweep


def make_source(name: str, settings: dict[str, Any], sweep: Sweep, project: ProjectConfig) -> Source:
    """The source object for an entry of the index's `sources` section."""
    kind = settings.get("type")
    if kind == "local":
        from hsm.sources.local import LocalSource

        return LocalSource(name, settings, sweep, project)
    if kind == "ssh":
        from hsm.sources.ssh import SshSource

        return SshSource(name, settings, sweep, project)
    if kind == "hpc":
        from hsm.sources.hpc import HpcSource

        return HpcSource(name, settings, sweep, project)
    raise BadInput(f"source '{name}': type '{kind}' is not supported by this version of hsm")
