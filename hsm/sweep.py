"""One sweep directory: its metadata, its task index, and locked updates of them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hsm import store
from hsm.core.index import Index, TaskEntry
from hsm.errors import BadInput
from hsm.paths import SweepPaths


@dataclass
class Sweep:
    """An existing sweep directory."""

    paths: SweepPaths
    metadata: dict[str, Any]

    @property
    def id(self) -> str:
        return self.paths.sweep_id

    @property
    def root(self) -> Path:
        return self.paths.root

    @classmethod
    def open(cls, root: Path) -> Sweep:
        """Open the sweep at `root`; BadInput when it is not a sweep directory."""
        paths = SweepPaths(root.resolve())
        if not paths.metadata.is_file() or not paths.mapping.is_file():
            raise BadInput(f"{root}: not a sweep directory (no sweep_metadata.yaml or task_mapping.yaml)")
        metadata = store.check_schema(store.read_yaml(paths.metadata), str(paths.metadata))
        return cls(paths, metadata)

    def lock(self) -> store.SweepLock:
        return store.SweepLock(self.paths.lock)

    def read_index(self) -> Index:
        """The task index as it is now (no lock: files are replaced atomically)."""
        path = self.paths.mapping
        return cast(Index, store.parse_index(path.read_text(encoding="utf-8"), str(path)))

    def write_index(self, index: Index) -> None:
        """Replace the task index; call only while holding the lock."""
        store.atomic_write(self.paths.mapping, store.index_text(dict(index)))

    @contextlib.contextmanager
    def update(self) -> Iterator[IndexUpdate]:
        """Read-modify-write the index under the sweep's lock.

        The body changes `u.index` in place and sets `u.changed`; the index is written
        back only when the body returns normally and said it changed something.
        """
        with self.lock().held():
            u = IndexUpdate(self.read_index())
            yield u
            if u.changed:
                self.write_index(u.index)

    def append_log(self, name: str, lines: list[str]) -> None:
        """Append lines to a log under logs/ (callers hold the lock, so lines never interleave)."""
        store.append_lines(self.paths.log(name), lines)


@dataclass
class IndexUpdate:
    """The index being changed inside `Sweep.update()`."""

    index: Index
    changed: bool = False

    @property
    def tasks(self) -> dict[str, TaskEntry]:
        return self.index["tasks"]


def resolve_sweep(ref: str | None, outputs_dir: Path) -> Sweep:
    """A sweep given by id or path; read from standard input when `ref` is None."""
    if ref is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise BadInput("no sweep given: pass a sweep id or directory, or pipe one in")
        text = sys.stdin.read().strip()
        if not text:
            raise BadInput("no sweep given on standard input")
        ref = text.splitlines()[-1].strip()
    candidate = Path(os.path.expanduser(ref))
    if "/" in ref or candidate.is_dir() and (candidate / "sweep_metadata.yaml").exists():
        if not candidate.is_dir():
            raise BadInput(f"{ref}: no such sweep directory")
        return Sweep.open(candidate)
    by_id = outputs_dir / ref
    if by_id.is_dir():
        return Sweep.open(by_id)
    raise BadInput(f"unknown sweep '{ref}' (no directory {by_id})")


def list_sweeps(outputs_dir: Path) -> list[Path]:
    """Sweep directories under `outputs_dir`, oldest first by name."""
    if not outputs_dir.is_dir():
        return []
    return sorted(p for p in outputs_dir.iterdir() if p.is_dir() and (p / "sweep_metadata.yaml").is_file())
