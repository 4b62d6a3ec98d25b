"""Keeping an SSH host's copy of the project the same as this one.

A copy is described either by git (the commit, and the digest of every file that differs
from it) or by the sha256 of every file hsm would push. Git is used when both sides are
checkouts; otherwise, or when the host has no git, the file digests. The pure part says
what to exclude and what differs between two descriptions; the acting part describes
this machine's copy (git through `hsm.proc`) and pushes it with rsync. The host's side
is the agent's (`hsm.agent.project`), whose description code this module shares.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsm import proc
from hsm.agent.project import file_digests, git_state, walk_files
from hsm.errors import HsmError, SourceError
from hsm.transport import SshTarget

ALWAYS_EXCLUDED = (".git", "__pycache__")
SHOWN = 8  # file names listed in a message before "and N more"


class SyncMismatch(HsmError):
    """A host's copy of the project differs from this one: nothing is started there (exit 1)."""


@dataclass
class SyncDiff:
    """What differs between this machine's project copy and a host's."""

    mode: str  # "git" or "files"
    commits: tuple[str, str] | None = None  # (here, there) when the commits differ
    changed: list[str] = field(default_factory=list)  # on both sides, different content
    missing: list[str] = field(default_factory=list)  # here, not there
    extra: list[str] = field(default_factory=list)  # there, not here (uncommitted changes only)
    why: str = ""  # why files were compared rather than git

    def __bool__(self) -> bool:
        return bool(self.commits or self.changed or self.missing or self.extra)


# --- pure ------------------------------------------------------------------------------------------


def exclude_patterns(root: Path, outputs: Iterable[Path], extra: Iterable[str] = ()) -> list[str]:
    """rsync exclude patterns: .git, __pycache__, the outputs dirs below `root`, then `extra`."""
    patterns = list(ALWAYS_EXCLUDED)
    for path in outputs:
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
        except ValueError:
            continue  # outside the project: never pushed anyway
        if rel.parts:
            pattern = "/" + rel.as_posix() + "/"
            if pattern not in patterns:
                patterns.append(pattern)
    patterns += [p for p in extra if p not in patterns]
    return patterns


def rsync_exclude_args(patterns: Iterable[str]) -> list[str]:
    """The rsync options for the patterns."""
    return [f"--exclude={p}" for p in patterns]


def push_argv_options(patterns: Iterable[str]) -> list[str]:
    """rsync options of a project push: create the destination, leave the excluded paths alone."""
    return ["--mkpath", *rsync_exclude_args(patterns)]


def describe_files(root: Path, patterns: list[str]) -> dict[str, str | None]:
    """{path: sha256} of every file of the project that a push would copy."""
    return file_digests(str(root), walk_files(str(root), patterns))


def diff_states(expected: dict[str, Any], observed: dict[str, Any]) -> SyncDiff:
    """What differs between this machine's description (`expected`) and the host's (`observed`).

    Empty exactly when `hsm.agent.project.matches(expected, observed)`.
    """
    if observed.get("mode") == "git":
        here, there = expected["git"], observed["git"]
        out = SyncDiff("git")
        if here["commit"] != there["commit"]:
            out.commits = (here["commit"], there["commit"])
        a, b = here.get("dirty", {}), there.get("dirty", {})
        for path in sorted(set(a) | set(b)):
            if path not in b:
                out.missing.append(path)
            elif path not in a:
                out.extra.append(path)
            elif a[path] != b[path]:
                out.changed.append(path)
        return out
    out = SyncDiff("files", why=observed.get("why", ""))
    theirs = observed.get("files", {})
    for path, mine in sorted(expected.get("files", {}).items()):
        other = theirs.get(path)
        if other == mine:
            continue
        if other is None:
            out.missing.append(path)
        else:
            out.changed.append(path)
    return out


def _names(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def describe_diff(host: str, remote_dir: str, diff: SyncDiff) -> str:
    """One line saying what differs, e.g. `2 files differ: train.py, conf.yaml`."""
    parts: list[str] = []
    if diff.mode == "git":
        if diff.commits:
            parts.append(f"commit {diff.commits[0][:12]} here, {diff.commits[1][:12]} on {host}")
        if diff.changed:
            parts.append(f"uncommitted changes differ in {_names(diff.changed)}")
        if diff.missing:
            parts.append(f"uncommitted changes only here in {_names(diff.missing)}")
        if diff.extra:
            parts.append(f"uncommitted changes only on {host} in {_names(diff.extra)}")
        how = "compared by git"
    else:
        if diff.changed:
            parts.append(f"{len(diff.changed)} file{'s' if len(diff.changed) != 1 else ''} differ: {_names(diff.changed)}")
        if diff.missing:
            parts.append(f"{len(diff.missing)} missing on {host}: {_names(diff.missing)}")
        how = "compared by sha256" + (f"; {diff.why}" if diff.why else "")
    return f"{host}:{remote_dir} differs from this project ({how}): " + "; ".join(parts)


def mismatch_message(name: str, host: str, remote_dir: str, diff: SyncDiff) -> str:
    """The refusal: what differs, and the two ways on."""
    return (f"source {name}: {describe_diff(host, remote_dir, diff)}. "
            f"Push this copy with `hsm sync --target ssh:{name} --force`, or run with --no-verify-sync")


# --- acting ----------------------------------------------------------------------------------------


def _run_git(argv: list[str]) -> tuple[int, str]:
    try:
        result = proc.run(argv, timeout=60)
    except SourceError:
        return 127, ""  # no git on this machine
    return result.returncode, result.stdout


def local_state(root: Path, patterns: list[str]) -> dict[str, Any]:
    """This machine's project described for a host to compare with: excludes, git state, file digests."""
    return {
        "excludes": patterns,
        "git": git_state(str(root), patterns, _run_git),
        "files": describe_files(root, patterns),
    }


def push(target: SshTarget, root: Path, remote_dir: str, patterns: list[str],
         timeout: float = 1800.0) -> proc.Result:
    """Copy the project to `remote_dir` on the host (one rsync); excluded paths there are left alone."""
    return target.rsync([f"{root}/"], target.remote_path(f"{remote_dir}/"), options=push_argv_options(patterns),
                        timeout=timeout)
