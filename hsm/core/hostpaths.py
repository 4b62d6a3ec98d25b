"""Paths on a remote host, as the user configures them (pure)."""

from __future__ import annotations

import posixpath

from hsm.errors import BadInput


def resolve_remote(path: str, home: str | None, where: str = "path") -> str:
    """A path on the host. `~`, `~/x` and a relative `x` are below the login's home: made
    absolute when the home is known, else written `~/x` for the host to expand."""
    if path.startswith("/"):
        return posixpath.normpath(path)
    if path.startswith("~") and path != "~" and not path.startswith("~/"):
        raise BadInput(f"{where}: {path}: only ~/ (the login's own home) is understood, not ~user")
    rest = path[1:].lstrip("/") if path.startswith("~") else path
    base = home if home is not None else "~"
    return posixpath.normpath(posixpath.join(base, rest)) if rest else base


def login_relative(path: str) -> str:
    """`~/x` as `x`, `~` as `.`: the names rsync and a command started by ssh use below the home dir."""
    if path == "~" or path == "~/":
        return "."
    if path.startswith("~/"):
        return path[2:].lstrip("/") or "."
    return path
