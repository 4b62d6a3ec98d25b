"""pytest wiring for the hsm test bed (tests/testbed/testbed).

Register with ``pytest_plugins = ["tests.testbed.plugin"]`` or ``-p tests.testbed.plugin``.

Tests marked ``ssh``, ``slurm`` or ``pbs`` (and tests asking for the ``testbed`` fixture) need the
test bed. When it is not up they fail with one line saying how to start it: a missing test bed
must never turn into a green run of skipped tests.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().with_name("testbed")

MARKERS = {
    "ssh": "needs the test bed's SSH hosts (tests/testbed/testbed up)",
    "slurm": "needs the test bed's Slurm (tests/testbed/testbed up)",
    "pbs": "needs the test bed's PBS commands on Slurm (tests/testbed/testbed up)",
}

REQUIRED_VARIABLES = (
    "SLURM_CONF",
    "HSM_TESTBED_DIR",
    "HSM_TESTBED_SSH_CONFIG",
    "HSM_TESTBED_HOSTS",
    "HSM_TESTBED_LOGIN",
)

START_HINT = "start it with: tests/testbed/testbed up  (as root; see docs/testing.md)"


@dataclass
class Testbed:
    """What a test needs to reach the test bed."""

    __test__ = False  # not a test class, despite its name

    dir: Path
    ssh_config: Path
    hosts: list[str]
    login: str
    slurm_conf: Path
    env: dict[str, str] = field(default_factory=dict)

    def ssh_args(self, host: str) -> list[str]:
        """argv prefix for ssh to one of the test bed's hosts."""
        return ["ssh", "-F", str(self.ssh_config), host]

    def fault(self, verb: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs a test bed verb (crash-host H, partition H, node-down, ...); raises on failure."""
        proc = subprocess.run(
            [str(SCRIPT), verb, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"testbed {verb} {' '.join(args)} failed (rc {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()}"
            )
        return proc


def parse_env(text: str) -> dict[str, str]:
    """Reads the ``export NAME=value`` lines that ``testbed env`` prints."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            env[name] = value
    return env


def _script_env() -> dict[str, str]:
    env = dict(os.environ)
    # The script finds the same state dir as the shell that started the test bed.
    env.setdefault("HSM_TESTBED_DIR", "/var/tmp/hsm-testbed")
    return env


def _plumbum_env():
    """plumbum's local environment: a copy of os.environ taken at import, so it needs the update too."""
    try:
        from plumbum import local
    except ImportError:
        return None
    return local.env


class NotUp(Exception):
    """The test bed cannot be used; the message says why."""


class Unavailable:
    """The ``testbed`` fixture's value when the test bed is not up.

    The test then fails before its body runs; a fixture built on this one fails on first use.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason

    @property
    def message(self) -> str:
        return f"hsm test bed is not up ({self.reason}); {START_HINT}"

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        pytest.fail(self.message, pytrace=False)

    def __repr__(self) -> str:
        return f"Unavailable({self.reason!r})"


def _probe() -> dict[str, str]:
    """Checks that the test bed is up and returns the variables of ``testbed env``."""
    if not os.access(SCRIPT, os.X_OK):
        raise NotUp(f"{SCRIPT} is missing or not executable")
    env = _script_env()
    try:
        status = subprocess.run(
            [str(SCRIPT), "status"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotUp(f"testbed status: {exc}") from None
    if status.returncode != 0:
        down = [
            " ".join(line.split()[:1] + line.split()[2:])
            for line in status.stdout.splitlines()
            if len(line.split()) >= 2 and line.split()[1] == "down"
        ]
        raise NotUp("; ".join(down) or status.stderr.strip() or f"testbed status rc {status.returncode}")
    out = subprocess.run([str(SCRIPT), "env"], env=env, capture_output=True, text=True, timeout=30, check=False)
    if out.returncode != 0:
        raise NotUp(out.stderr.strip() or "testbed env failed")
    variables = parse_env(out.stdout)
    missing = [name for name in REQUIRED_VARIABLES if not variables.get(name)]
    if missing:
        raise NotUp(f"testbed env lacks {', '.join(missing)}")
    return variables


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A marked test gets the fixture even when it does not ask for it, so that it fails with the
    # start hint instead of some unrelated "connection refused".
    for item in items:
        if any(item.get_closest_marker(name) for name in MARKERS):
            names = getattr(item, "fixturenames", None)
            if names is not None and "testbed" not in names:
                names.append("testbed")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # Failing here rather than in the fixture makes the test FAILED instead of a setup ERROR.
    bed = getattr(item, "funcargs", {}).get("testbed")
    if isinstance(bed, Unavailable):
        pytest.fail(bed.message, pytrace=False)


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed | Unavailable]:
    """The running test bed; its variables (SLURM_CONF, HSM_TESTBED_*) are exported for the session.

    When the test bed is not up the value is an Unavailable, and the test fails before its body runs.
    """
    try:
        variables = _probe()
    except NotUp as exc:
        yield Unavailable(str(exc))
        return

    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    plumbum_env = _plumbum_env()
    plumbum_saved = {name: plumbum_env.get(name) for name in variables} if plumbum_env is not None else {}
    if plumbum_env is not None:
        plumbum_env.update(**variables)
    try:
        yield Testbed(
            dir=Path(variables["HSM_TESTBED_DIR"]),
            ssh_config=Path(variables["HSM_TESTBED_SSH_CONFIG"]),
            hosts=variables["HSM_TESTBED_HOSTS"].split(),
            login=variables["HSM_TESTBED_LOGIN"],
            slurm_conf=Path(variables["SLURM_CONF"]),
            env=variables,
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for name, value in plumbum_saved.items():
            if value is None:
                plumbum_env.pop(name, None)
            else:
                plumbum_env[name] = value
