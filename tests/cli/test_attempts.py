"""Every attempt keeps its own record, and every failure is written down as it is recorded."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.hsmproc import make_project, read_index, read_status

CONFIG = """\
paths:
  training_script: train.py
compute:
  disk_min_free_gb: 0.05
  retry_attempts: 2
  retry_delay: 0
  retry_on_exit_codes: [3]
"""

# Fails in its own way per `mode`; `flaky` fails with exit 3 (retried) on every attempt.
TRAIN = """\
import os, sys
mode = sys.argv[1].split("=", 1)[1].strip("'")
attempt = os.environ["HSM_ATTEMPT"]
print(f"out of attempt {attempt}")
if mode == "flaky":
    print(f"flaky failure on attempt {attempt}", file=sys.stderr)
    sys.exit(3)
if mode == "imports":
    print("Traceback (most recent call last):", file=sys.stderr)
    print("ModuleNotFoundError: No module named 'torchx'", file=sys.stderr)
    sys.exit(1)
if mode == "memory":
    print("MemoryError", file=sys.stderr)
    sys.exit(1)
"""


def run_sweep(tmp_path: Path) -> tuple[Path, str]:
    project = make_project(tmp_path / "proj", CONFIG)
    project.write("train.py", TRAIN)
    project.sweep_config("grid:\n  mode: [ok, flaky, imports, memory]\n")
    result = project.hsm("run", "--sources", "local:2", timeout=120)
    assert result.returncode == 1, result.stderr  # three tasks fail
    return Path(result.stdout.strip()), result.stderr


def test_a_task_retried_twice_keeps_three_attempts(tmp_path: Path) -> None:
    sweep, _ = run_sweep(tmp_path)
    task = sweep / "tasks" / "task_002"
    for n in (1, 2):
        kept = task / "attempts" / str(n)
        assert (kept / "stderr.log").read_text() == f"flaky failure on attempt {n}\n"
        assert (kept / "stdout.log").read_text() == f"out of attempt {n}\n"
        assert read_status(kept)["attempt"] == n and read_status(kept)["state"] == "failed"
    assert (task / "stderr.log").read_text() == "flaky failure on attempt 3\n"
    assert read_status(task)["attempt"] == 3
    entry = read_index(sweep)["tasks"]["task_002"]
    assert (entry["state"], entry["attempt"], [h["attempt"] for h in entry["history"]]) == ("failed", 3, [1, 2])

    shown = make_project(tmp_path / "proj", None).hsm("status", str(sweep), "--task", "task_002")
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows[1:]] == ["1", "2", "3"]
    for n in (1, 2, 3):
        assert f"flaky failure on attempt {n}" in shown.stdout
    assert "attempts/1/{status.yaml, stdout.log, stderr.log}" in shown.stdout


def test_failures_are_diagnosed_as_they_are_recorded(tmp_path: Path) -> None:
    sweep, stderr = run_sweep(tmp_path)
    assert 'Error pattern detected: "Import error" (1 task)' in stderr
    assert 'Error pattern detected: "Host out of memory" (1 task)' in stderr
    assert stderr.count('Error pattern detected: "Other error"') == 1  # the retries say nothing new
    errors = sweep / "logs" / "errors"
    text = (errors / "task_003_error.txt").read_text()
    assert "Category: Import error" in text and "No module named 'torchx'" in text and "Exit code: 1" in text
    failed = yaml.safe_load((errors / "failed_tasks.yaml").read_text())["failed"]
    assert sorted((f["id"], f["attempt"], f["category"]) for f in failed) == [
        ("task_002", 1, "other"), ("task_002", 2, "other"), ("task_002", 3, "other"),
        ("task_003", 1, "import"), ("task_004", 1, "host_oom")]
    patterns = yaml.safe_load((errors / "error_patterns.yaml").read_text())["patterns"]
    assert {p["key"]: p["count"] for p in patterns} == {"other": 1, "import": 1, "host_oom": 1}


def test_the_task_status_says_what_the_index_says(tmp_path: Path) -> None:
    sweep, _ = run_sweep(tmp_path)
    index = read_index(sweep)
    for tid, entry in index["tasks"].items():
        status = read_status(sweep / "tasks" / tid)
        assert (status["state"], status.get("reason") or None) == (entry["state"], entry.get("reason")), tid
