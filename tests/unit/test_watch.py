"""Which tasks an HPC poll leaves to their status files, and the budget of status calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm.sources.hpc.watch import claim_call, decided_by_its_file


@pytest.mark.parametrize("status, decided", [
    ({"state": "completed", "exit_code": 0}, True),
    ({"state": "failed", "exit_code": 3}, True),
    ({"state": "failed", "exit_code": 137}, False),  # killed: the scheduler may say why (oom, timeout)
    ({"state": "cancelled"}, False),
    ({"state": "running"}, False),
    (None, False),
])
def test_a_file_decides_only_an_end_not_by_a_signal(status, decided) -> None:
    assert decided_by_its_file({"status": status} if status else {}) is decided


def test_one_status_call_per_interval_however_often_asked(tmp_path: Path) -> None:
    state = tmp_path / "hpc" / "cluster"
    assert claim_call(state, 30, now=1000.0)
    assert not claim_call(state, 30, now=1000.5)
    assert not claim_call(state, 30, now=1029.9)
    assert claim_call(state, 30, now=1030.0)
    assert claim_call(state, 0, now=1030.0)  # 0: every poll may ask


def test_a_clock_that_went_back_does_not_stop_the_calls(tmp_path: Path) -> None:
    assert claim_call(tmp_path, 30, now=5000.0)
    assert claim_call(tmp_path, 30, now=100.0)


def test_a_damaged_record_counts_as_no_call(tmp_path: Path) -> None:
    (tmp_path / "scheduler_call.json").write_text("{not json")
    assert claim_call(tmp_path, 30, now=10.0)
    assert not claim_call(tmp_path, 30, now=11.0)
