"""The failure classifier: each category from the evidence a failed attempt leaves."""

from __future__ import annotations

import pytest

from hsm.core.diagnosis import CATEGORIES, announcement, diagnose, patterns, signal_of
from hsm.core.utilization import load_of, utilization, utilization_lines

TRACEBACK = ["Traceback (most recent call last):", '  File "train.py", line 3, in <module>']


@pytest.mark.parametrize(("reason", "code", "stderr", "category"), [
    ("exit_code", 1, [*TRACEBACK, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"], "cuda_oom"),
    ("exit_code", 1, [*TRACEBACK, "MemoryError"], "host_oom"),
    ("exit_code", 137, [], "host_oom"),
    ("oom", 0, ["whatever the script said"], "host_oom"),
    ("exit_code", 1, [*TRACEBACK, "ModuleNotFoundError: No module named 'torchvision'"], "import"),
    ("exit_code", 127, ["bash: python9: command not found"], "import"),
    ("exit_code", 1, [*TRACEBACK, "FileNotFoundError: [Errno 2] No such file or directory: 'data/train.csv'"],
     "file_not_found"),
    ("exit_code", 1, [*TRACEBACK, "PermissionError: [Errno 13] Permission denied: '/data'"], "permission"),
    ("timeout", 143, ["slurmstepd: error: *** JOB 12 ON n1 CANCELLED DUE TO TIME LIMIT ***"], "walltime"),
    ("disk", 1, [], "disk_full"),
    ("exit_code", 1, [*TRACEBACK, "OSError: [Errno 28] No space left on device"], "disk_full"),
    ("lost", None, [], "connection_lost"),
    ("node_fail", None, [], "connection_lost"),
    ("exit_code", 139, [], "segfault"),
    ("exit_code", -11, [], "segfault"),
    ("exit_code", 1, ["epoch 4: loss nan", *TRACEBACK, "ValueError: bad"], "nan_loss"),
    ("exit_code", 1, ["Could not override 'lrr'.", "Key 'lrr' is not in struct"], "config"),
    ("exit_code", 2, ["usage: train.py [-h] [--lr LR]", "train.py: error: unrecognized arguments: --lrr=1"], "config"),
    ("exit_code", 1, ['  File "train.py", line 2', "    def f(", "SyntaxError: '(' was never closed"], "syntax"),
    ("exit_code", 1, ["something else went wrong"], "other"),
    ("exit_code", 2, ["no usage line here"], "other"),
    (None, None, [], "other"),
])
def test_each_failure_gets_its_category(reason, code, stderr, category) -> None:
    found = diagnose(reason, code, stderr)
    assert found.category == category
    assert found.suggestion == CATEGORIES[category].suggestion and found.suggestion


def test_the_last_exception_decides() -> None:
    """A traceback raised while handling another: the one that ended the program counts."""
    stderr = [*TRACEBACK, "FileNotFoundError: cache.pt", "During handling of the above exception, another "
              "exception occurred:", *TRACEBACK, "ModuleNotFoundError: No module named 'h5py'"]
    assert diagnose("exit_code", 1, stderr).category == "import"
    assert "h5py" in diagnose("exit_code", 1, stderr).evidence


def test_a_reason_established_outside_the_task_wins_over_stderr() -> None:
    assert diagnose("timeout", 1, ["ModuleNotFoundError: x"]).category == "walltime"


def test_signals_from_exit_codes() -> None:
    assert (signal_of(137), signal_of(-9), signal_of(1), signal_of(None), signal_of(128)) == (9, 9, None, None, None)


def test_patterns_count_tasks_once_and_say_what_to_do() -> None:
    failures = [{"id": "task_001", "source": "a", "category": "import"},
                {"id": "task_001", "source": "a", "category": "import"},  # its retry
                {"id": "task_002", "source": "b", "category": "import"},
                {"id": "task_003", "source": "b", "category": "walltime"}]
    found = patterns(failures)
    assert [(p.category, p.tasks, p.sources) for p in found] == [
        ("import", ["task_001", "task_002"], ["a", "b"]), ("walltime", ["task_003"], ["b"])]
    assert announcement(found[0]) == ['Error pattern detected: "Import error" (2 tasks)',
                                      f"Suggestion: {CATEGORIES['import'].suggestion}"]
    assert found[1].as_dict()["count"] == 1


def test_utilization_counts_running_and_queued_per_source() -> None:
    index = {"tasks": {"t1": {"state": "running", "source": "a"}, "t2": {"state": "queued", "source": "a"},
                       "t3": {"state": "completed", "source": "a"}, "t4": {"state": "pending"}},
             "sources": {"a": {"max_parallel": 4, "health": {"details": "79.0GB free, load 0.64 on 2 CPUs"}},
                         "b": {"max_parallel": 2, "disabled": True}}}
    rows = utilization(index)
    assert rows[0] == {"source": "a", "active": 1, "slots": 4, "queued": 1, "load": 0.64, "disabled": False}
    assert utilization_lines(rows, "2026-12-02 10:00:00") == [
        "[2026-12-02 10:00:00] source=a active=1 slots=4 queued=1 load=0.64",
        "[2026-12-02 10:00:00] source=b active=0 slots=2 queued=0 load=- disabled"]
    assert load_of("no numbers") is None
