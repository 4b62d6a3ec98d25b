"""A damaged or newer state file: one line naming the file and what is wrong, exit 1, nothing changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cli.hsmproc import Project
from tests.cli.test_bad_input import GOOD_SWEEP, snapshot


def _task_001(entry: Any) -> Callable[[dict], None]:
    return lambda index: index["tasks"].update(task_001=entry)


DAMAGE: dict[str, tuple[Callable[[dict], None], tuple[str, ...]]] = {
    "an entry with no state": (_task_001({}), ("'task_001'", "no state")),
    "an unknown state": (_task_001({"state": "doing"}), ("'task_001'", "unknown state 'doing'")),
    "an entry that is not a mapping": (_task_001(5), ("'task_001'", "no state")),
    "a newer schema": (lambda index: index.update(schema=99), ("schema 99", "newer", "upgrade hsm")),
    "tasks as a list": (lambda index: index.update(tasks=[{"state": "pending"}]), ("'tasks'", "not a mapping")),
}


@pytest.mark.parametrize("command", ["status", "poll", "assign --sources local:1", "monitor watch --once", "aggregate"])
@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_index_is_named_and_left_alone(project: Project, case: str, command: str) -> None:
    project.sweep_config(GOOD_SWEEP)
    sweep = project.expand("sweeps/sweep_config.yaml")
    damage, needles = DAMAGE[case]
    path = sweep / "task_mapping.yaml"
    index = json.loads(path.read_text())
    damage(index)
    path.write_text(json.dumps(index))
    before = snapshot(project.outputs)
    result = project.hsm(*command.split(), str(sweep))
    shown = f"exit {result.returncode}\nstderr: {result.stderr}"
    assert result.returncode == 1 and "Traceback" not in result.stderr, shown
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "task_mapping.yaml" in lines[0], shown
    for needle in needles:
        assert needle in lines[0], shown
    # The lock file may now exist (assign takes the lock before it reads): it is not state.
    after = {k: v for k, v in snapshot(project.outputs).items() if not k.endswith(".hsm/lock")}
    assert after == {k: v for k, v in before.items() if not k.endswith(".hsm/lock")}
