"""Why a task attempt failed: a category and a suggestion, from what the attempt left behind.

`diagnose` looks at the reason hsm recorded (`timeout`, `oom`, `disk`, `lost`, ...), the
exit code (or the signal it encodes) and the last lines of the attempt's stderr. A reason
the scheduler or hsm itself established wins; otherwise stderr is read from its last line
upwards, because the last exception of a traceback is the one that ended the program; the
exit code decides when stderr says nothing recognisable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Category:
    """One kind of failure, as a person would name it, and what usually cures it."""

    key: str
    title: str
    suggestion: str


CATEGORIES = {c.key: c for c in (
    Category("cuda_oom", "CUDA out of memory",
             "Reduce the batch size or model size, or run on a GPU with more memory"),
    Category("host_oom", "Host out of memory",
             "Ask for more memory (mem in the source's resources) or hold less data in memory"),
    Category("import", "Import error",
             "Install the missing module in the environment the source runs (conda_env, python_interpreter, "
             "module_commands)"),
    Category("file_not_found", "File not found",
             "Check that the file exists on that source: relative paths start from the project directory, "
             "and `hsm sync` copies the project to remote hosts"),
    Category("permission", "Permission denied",
             "Check the permissions of the files and directories the task reads and writes on that source"),
    Category("walltime", "Walltime exceeded",
             "Raise the walltime (default_walltime, or walltime in the source's resources), or save "
             "checkpoints and resume"),
    Category("disk_full", "Disk full",
             "Free space on that source or write outputs to a larger file system (disk_min_free_gb "
             "keeps new tasks away from a full disk)"),
    Category("connection_lost", "Connection lost",
             "The host or node went away while the task ran: check it with `hsm sources test NAME`; "
             "the task runs again elsewhere when retries are left"),
    Category("segfault", "Segmentation fault",
             "A compiled library crashed: check that its build matches the host (CUDA, numpy, torch), and "
             "run the task once with `python -X faulthandler`"),
    Category("nan_loss", "NaN or inf loss",
             "Lower the learning rate, clip gradients, or check the data for bad values"),
    Category("config", "Configuration error",
             "The script rejected a parameter: check the sweep's parameter names and values against the "
             "script's options (`hsm expand --dry-run` shows each command)"),
    Category("syntax", "Syntax error",
             "Fix the syntax error in the script; every task that runs it fails the same way"),
    Category("preempted", "Preempted",
             "The scheduler took the node back; the task runs again when retries are left"),
    Category("other", "Other error",
             "Read the task's stderr (`hsm status SWEEP --task TASK_ID`) for the cause"),
)}

# Reasons established outside the task's own output: they say what happened whatever stderr says.
_BY_REASON = {
    "timeout": "walltime", "oom": "host_oom", "disk": "disk_full", "lost": "connection_lost",
    "node_fail": "connection_lost", "preempted": "preempted",
}

# Tried on each stderr line, the last line first; the first category that matches a line wins.
_LINE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cuda_oom", re.compile(r"CUDA out of memory|CUDA error: out of memory|cudaErrorMemoryAllocation|"
                            r"CUBLAS_STATUS_ALLOC_FAILED", re.I)),
    ("syntax", re.compile(r"^\s*(SyntaxError|IndentationError|TabError)\b")),
    ("import", re.compile(r"\b(ModuleNotFoundError|ImportError)\b|No module named ")),
    ("config", re.compile(r"ConfigCompositionException|Could not override|MissingMandatoryValue|"
                          r"is not in struct|Key '[^']*' not in|: error: (unrecognized arguments|argument |"
                          r"the following arguments are required|invalid )")),
    ("disk_full", re.compile(r"No space left on device|ENOSPC|Disk quota exceeded|Disk space below floor")),
    ("host_oom", re.compile(r"\bMemoryError\b|\bOut of memory\b|oom-kill|Cannot allocate memory|"
                            r"std::bad_alloc|^\s*Killed\s*$", re.I)),
    ("permission", re.compile(r"\bPermissionError\b|Permission denied")),
    ("file_not_found", re.compile(r"\bFileNotFoundError\b|No such file or directory")),
    ("segfault", re.compile(r"Segmentation fault|SIGSEGV|core dumped")),
    ("nan_loss", re.compile(r"\b(loss|grad\w*)\b[^\n]*\b(nan|inf)\b|\bNaN\b[^\n]*\bloss\b|non-finite", re.I)),
    ("connection_lost", re.compile(r"Connection (reset|refused|timed out|closed)|Broken pipe|"
                                   r"Network is unreachable", re.I)),
)

# Exit codes that name a cause by themselves (128 + signal number for a signal).
_BY_EXIT_CODE = {137: "host_oom", 139: "segfault", 126: "permission", 127: "import", 2: "config"}


class _Named:
    """The title and suggestion of a `category` key."""

    category: str

    @property
    def title(self) -> str:
        return CATEGORIES[self.category].title

    @property
    def suggestion(self) -> str:
        return CATEGORIES[self.category].suggestion


@dataclass(frozen=True)
class Diagnosis(_Named):
    """What one failed attempt shows: its category and the evidence for it."""

    category: str
    evidence: str


def signal_of(exit_code: int | None) -> int | None:
    """The signal that ended a process, from its exit code (128 + n, or -n), if any."""
    if exit_code is None:
        return None
    if exit_code < 0:
        return -exit_code
    if 128 < exit_code < 160:
        return exit_code - 128
    return None


def diagnose(reason: str | None, exit_code: int | None, stderr_tail: Sequence[str]) -> Diagnosis:
    """The category of one failed attempt."""
    if reason in _BY_REASON:
        return Diagnosis(_BY_REASON[reason], f"reason {reason}")
    for line in reversed(stderr_tail):
        for key, pattern in _LINE_PATTERNS:
            if pattern.search(line):
                return Diagnosis(key, line.strip()[:200])
    signal = signal_of(exit_code)
    code = 128 + signal if signal else exit_code
    if code in _BY_EXIT_CODE and (code != 2 or any("usage:" in line for line in stderr_tail)):
        return Diagnosis(_BY_EXIT_CODE[code], f"exit code {exit_code}")
    return Diagnosis("other", f"exit code {exit_code}" if exit_code is not None else f"reason {reason}")


@dataclass
class Pattern(_Named):
    """Every failure of one category in a sweep."""

    category: str
    tasks: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.title, "key": self.category, "count": len(self.tasks), "tasks": self.tasks,
                "sources": self.sources, "suggestion": self.suggestion}


def patterns(failures: Iterable[Mapping[str, Any]]) -> list[Pattern]:
    """Failures (each with `id`, `source`, `category`) grouped by category, the most frequent first."""
    found: dict[str, Pattern] = {}
    for failure in failures:
        pattern = found.setdefault(failure["category"], Pattern(failure["category"]))
        if failure["id"] not in pattern.tasks:  # a task that failed the same way twice counts once
            pattern.tasks.append(failure["id"])
        source = failure.get("source")
        if source and source not in pattern.sources:
            pattern.sources.append(source)
    return sorted(found.values(), key=lambda p: (-len(p.tasks), p.category))


def announcement(pattern: Pattern) -> list[str]:
    """What a person watching should read when a failure of this pattern is recorded."""
    count = len(pattern.tasks)
    return [f'Error pattern detected: "{pattern.title}" ({count} task{"s" if count != 1 else ""})',
            f"Suggestion: {pattern.suggestion}"]
