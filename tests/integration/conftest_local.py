"""Fixtures of tests/integration/test_local.py: a real project on this machine.

Imported by the test module (not a conftest.py, so nothing else picks it up).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.hsmproc import Project, make_project


@pytest.fixture(name="project")
def local_project(tmp_path: Path) -> Iterator[Project]:
    """A project with hsm_config.yaml, train.py and job.py; its runners and tasks stop at teardown."""
    p = make_project(tmp_path / "proj")
    try:
        yield p
    finally:
        p.stop_leftovers()
