"""Describing a copy of a project: its git state, or the sha256 of its files.

Standard library only (see the package docstring). A host describes its copy with these
functions, and hsm describes this machine's copy with the same ones (`hsm.sync`), so both
sides speak of a project in the same terms.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
from typing import Any, Callable


def excluded(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    """True when `rel` (a /-separated path below the project root) or a directory above it matches.

    rsync's rules, simplified: a pattern ending in `/` matches directories only; one
    starting with `/` is anchored at the root; one with a `/` inside is matched against
    the end of the path; any other against the last name. `*` may cross a `/`.
    """
    parts = rel.split("/")
    for n in range(1, len(parts) + 1):
        for pattern in patterns:
            if _rule_matches(parts[:n], n < len(parts) or is_dir, pattern):
                return True
    return False


def _rule_matches(parts: list[str], is_dir: bool, pattern: str) -> bool:
    if pattern.endswith("/"):
        if not is_dir:
            return False
        pattern = pattern.rstrip("/")
    if not pattern:
        return False
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase("/".join(parts), pattern.lstrip("/"))
    if "/" in pattern:
        k = pattern.count("/") + 1
        return len(parts) >= k and fnmatch.fnmatchcase("/".join(parts[-k:]), pattern)
    return fnmatch.fnmatchcase(parts[-1], pattern)


def walk_files(root: str, patterns: list[str]) -> list[str]:
    """Every file and symlink below `root` not excluded, as sorted /-separated paths."""
    out: list[str] = []
    for directory, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        keep = []
        for name in sorted(dirs):
            full = os.path.join(directory, name)
            if os.path.islink(full):
                files.append(name)  # a symlinked directory is copied as a link, not followed
            elif not excluded(prefix + name, True, patterns):
                keep.append(name)
        dirs[:] = keep
        for name in files:
            if not excluded(prefix + name, False, patterns):
                out.append(prefix + name)
    return sorted(out)


def digest(path: str) -> str | None:
    """sha256 of a file's bytes (of its target text for a symlink); None when it is missing."""
    try:
        if os.path.islink(path):
            return "link:" + hashlib.sha256(os.readlink(path).encode("utf-8", "surrogateescape")).hexdigest()
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def file_digests(root: str, files: list[str]) -> dict[str, str | None]:
    """{path: sha256 or None} for the given /-separated paths below `root`."""
    return {rel: digest(os.path.join(root, *rel.split("/"))) for rel in files}


def parse_git_status(text: str, prefix: str, patterns: list[str]) -> list[str]:
    """Paths below the project that differ from HEAD, from `git status --porcelain=v1 -z`.

    Paths in that output are relative to the repository's top; `prefix` is the project's
    place in it (`git rev-parse --show-prefix`). Untracked files count; excluded ones do not.
    """
    fields = text.split("\0")
    out: set[str] = set()
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        paths = [path]
        if "R" in code or "C" in code:
            paths.append(fields[i])  # the rename's or copy's origin
            i += 1
        for p in paths:
            if p.startswith(prefix):
                rel = p[len(prefix):]
                if rel and not excluded(rel, False, patterns):
                    out.add(rel)
    return sorted(out)


def git_state(root: str, patterns: list[str], run: Callable[[list[str]], tuple[int, str]]) -> dict[str, Any] | None:
    """{"commit", "dirty": {path: sha256 or None}} of the checkout at `root`; None when it is not one.

    `run(argv)` returns (exit code, stdout); a missing git counts as no checkout.
    """
    rc, out = run(["git", "-C", root, "rev-parse", "HEAD", "--show-prefix"])
    if rc != 0:
        return None
    lines = out.split("\n")
    commit = lines[0].strip()
    prefix = lines[1] if len(lines) > 1 else ""
    if not commit:
        return None
    rc, status = run(["git", "-C", root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "."])
    if rc != 0:
        return None
    dirty = parse_git_status(status, prefix, patterns)
    return {"commit": commit, "dirty": file_digests(root, dirty)}


def matches(expected: dict[str, Any], observed: dict[str, Any]) -> bool:
    """True when the observed project copy is the expected one (git state, else files)."""
    if observed.get("mode") == "git":
        return observed.get("git") == expected.get("git")
    return observed.get("files") == expected.get("files")


def _run_here(argv: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 127, ""
    return proc.returncode, proc.stdout.decode("utf-8", "surrogateescape")


def project_state(root: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The project copy at `root`, described the way `expected` (this machine's) is.

    Git state when both sides are checkouts, else the digests of the expected files.
    """
    patterns = list(expected.get("excludes") or [])
    if expected.get("git") is not None:
        git = git_state(root, patterns, _run_here)
        if git is not None:
            return {"mode": "git", "git": git}
    why = "no git checkout here" if expected.get("git") is None else "no git checkout on the host"
    return {"mode": "files", "files": file_digests(root, list(expected.get("files") or {})), "why": why}
