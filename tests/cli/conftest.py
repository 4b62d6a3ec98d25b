"""Fixtures of the CLI tests: a real project in a temp dir, driven by real hsm processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.hsmproc import Project, make_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A project with hsm_config.yaml, train.py and job.py; its runners stop at teardown."""
    p = make_project(tmp_path / "proj")
    try:
        yield p
    finally:
        p.stop_leftovers()
