"""Job names and chunks: how a sweep's tasks become arrays, and how a crashed submit finds its jobs (pure)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

from hsm.core.index import TaskRef
from hsm.paths import safe_name

__all__ = ["argv_word", "chunk_key", "chunks", "group_jobs", "job_name", "job_prefix", "safe_name", "task_list_text"]


def chunks(tasks: list[TaskRef], size: int) -> list[list[TaskRef]]:
    """Tasks in id order, cut into arrays of at most `size` (indices 0..size-1 each)."""
    ordered = sorted(tasks, key=lambda t: t.id)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def chunk_key(source: str, tasks: list[TaskRef]) -> str:
    """A name for a chunk that depends only on its task attempts: the same after a crash and retry."""
    digest = hashlib.sha1(source.encode())
    for t in tasks:
        digest.update(f"\n{t.id} {t.attempt}".encode())
    return digest.hexdigest()[:10]


def job_name(sweep_id: str, source: str, key: str) -> str:
    """`hsm-SWEEP-SOURCE-KEY`: the sweep and source for people, the key for the crash check."""
    return f"{job_prefix(sweep_id, source)}{key}"


def job_prefix(sweep_id: str, source: str) -> str:
    """What every job name of one source of one sweep starts with."""
    return f"hsm-{safe_name(sweep_id)}-{safe_name(source)}-"


def task_list_text(tasks: list[TaskRef], argv: Mapping[str, Sequence[str]] | None = None) -> str:
    """One `TASK_ID ATTEMPT ARG...` line per array index (`argv_word` each ARG), or
    `TASK_ID ATTEMPT` for a task whose argv is not given here."""
    argv = argv or {}
    return "".join(" ".join([t.id, str(t.attempt), *map(argv_word, argv.get(t.id, ()))]) + "\n" for t in tasks)


def argv_word(arg: str) -> str:
    r"""`arg` as one blank-free word that bash's `printf %b` turns back into `arg`.

    The job script reads its line with `read -a` and decodes each word with `printf -v`: a
    backslash, a blank and any control character are escaped (`\\`, `\x20`), the empty string
    is `''` (and an argument that is `''` itself is escaped). No shell parses the value.
    """
    if not arg:
        return "''"
    if arg == "''":
        return "\\x27\\x27"
    return _NEEDS_ESCAPE.sub(lambda m: "\\\\" if m.group(0) == "\\" else f"\\x{ord(m.group(0)):02x}", arg)


_NEEDS_ESCAPE = re.compile(r"[\\\x00-\x20\x7f]")


def group_jobs(rows: list[tuple[str, str, str]], active: frozenset[str]) -> dict[str, tuple[str, bool]]:
    """Lookup rows (job id, name, state) -> {name: (array job id, any element live)}.

    Where elements are listed under ids of their own, the array's is the smallest.
    """
    out: dict[str, tuple[str, bool]] = {}

    def number(job: str) -> int:
        digits = re.match(r"\d+", job)
        return int(digits.group(0)) if digits else 0

    for job, name, state in rows:
        live = state in active
        if name in out:
            known, was_live = out[name]
            out[name] = (min(known, job, key=number), was_live or live)
        else:
            out[name] = (job, live)
    return out
