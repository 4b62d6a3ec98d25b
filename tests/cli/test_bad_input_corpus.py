"""The bad-input corpus: every case of bad_input_corpus.yaml run against the real CLI.

Each case is data: what to set up in a fresh project (hsm_config.yaml, the sweep config,
more files, an expanded sweep), the command line, and what must come of it: exit code 2,
one line on standard error holding every listed word, no traceback, nothing on standard
output, and the project exactly as it was (a fresh one: no sweep, at most an empty
outputs directory). A case hsm does not handle yet carries `xfail: REASON` and must fail.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.hsmproc import Project, make_project
from tests.cli.test_bad_input import assert_bad_input

CORPUS = Path(__file__).with_name("bad_input_corpus.yaml")

DEFAULT_SWEEP = "grid:\n  lr: [0.1, 0.2]\n"
DEFAULT_ARGS = ["run", "--sources", "local:1", "--poll-interval", "0.1"]
SWEEP_ID = "s1"  # the sweep `setup: expand` makes
FIELDS = {"name", "hsm_config", "sweep_config", "files", "remove", "setup", "args", "stdin", "exit", "words", "xfail"}
SETUPS = ("expand",)
TIMEOUT = 30  # seconds: a refusal takes well under one


def load_cases() -> list[dict[str, Any]]:
    data = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("cases"), list), f"{CORPUS.name}: expected cases: [...]"
    return data["cases"]


CASES = load_cases()


def _param(case: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(reason=str(case["xfail"]), strict=True)] if case.get("xfail") else []
    return pytest.param(case, id=str(case.get("name")), marks=marks)


def argv(case: dict[str, Any]) -> list[str]:
    """The command line of a case: a list as it is, a string split like a shell line."""
    args = case.get("args", DEFAULT_ARGS)
    return shlex.split(args) if isinstance(args, str) else [str(a) for a in args]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file and directory under `root` (lock files left out: taking a lock is no write)."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.name == "lock" and path.parent.name == ".hsm":
            continue
        out[rel] = path.read_bytes() if path.is_file() and not path.is_symlink() else b"<dir>"
    return out


def prepare(project: Project, case: dict[str, Any]) -> None:
    """Set the project up as the case says; a sweep to act on is expanded from good input first."""
    project.sweep_config(DEFAULT_SWEEP)
    if case.get("setup") == "expand":
        project.expand("sweeps/sweep_config.yaml", "--sweep-id", SWEEP_ID)
    if "hsm_config" in case:
        project.write("hsm_config.yaml", case["hsm_config"])
    if "sweep_config" in case:
        project.sweep_config(case["sweep_config"])
    for relative, text in (case.get("files") or {}).items():
        project.write(relative, text)
    for relative in case.get("remove") or ():
        (project.root / relative).unlink()


@dataclass
class Outcome:
    """What one case's command did: its result, and the project before and after."""

    project: Project
    before: dict[str, bytes]
    result: subprocess.CompletedProcess
    after: dict[str, bytes]


def run_case(root: Path, case: dict[str, Any]) -> Outcome:
    project = make_project(root)
    try:
        prepare(project, case)
        before = snapshot(project.root)
        result = project.hsm(*argv(case), input=case.get("stdin"), timeout=TIMEOUT)
        return Outcome(project, before, result, snapshot(project.root))
    finally:
        project.stop_leftovers()


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome | BaseException]:
    """Every selected case run once, on as many processes at a time as there are CPUs.

    Each case has its own project directory, so the cases cannot see each other; running them
    side by side only saves the time of the one-process-per-case CLI.
    """
    wanted = {item.callspec.id for item in request.session.items
              if getattr(item, "originalname", "") == "test_bad_input_is_refused" and hasattr(item, "callspec")}
    chosen = [c for c in CASES if c["name"] in wanted]
    base = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {c["name"]: pool.submit(run_case, base / f"case{i}" / "proj", c) for i, c in enumerate(chosen)}
        return {name: _outcome(future) for name, future in futures.items()}


def _outcome(future: Future) -> Outcome | BaseException:
    """The case's outcome, or what went wrong setting it up or running it (raised by its own test)."""
    try:
        return future.result()
    except Exception as exc:
        return exc


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_refused(outcomes: dict[str, Outcome | BaseException], case: dict[str, Any]) -> None:
    outcome = outcomes[case["name"]]
    if isinstance(outcome, BaseException):
        raise outcome
    result, before, after = outcome.result, outcome.before, outcome.after
    assert result.returncode == case["exit"], f"exit {result.returncode}, expected {case['exit']}: {result.stderr!r}"
    assert_bad_input(result, *case["words"])
    if case.get("setup") is None and after.get("sweeps/outputs") == b"<dir>" and not any(
            k.startswith("sweeps/outputs/") for k in after):
        del after["sweeps/outputs"]  # a fresh project may get an empty outputs directory
    written = sorted(set(after) - set(before)) + sorted(k for k in before if after.get(k) != before[k])
    assert not written, f"written or changed: {written[:10]}"


def test_the_corpus_is_large_and_well_formed() -> None:
    assert len(CASES) >= 150
    names = [c.get("name") for c in CASES]
    assert all(isinstance(n, str) and n.strip() for n in names)
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    for case in CASES:
        assert set(case) <= FIELDS, (case["name"], set(case) - FIELDS)
        assert case.get("exit") == 2, case["name"]
        words = case.get("words")
        assert isinstance(words, list) and words and all(isinstance(w, str) and w for w in words), case["name"]
        assert case.get("setup") in (None, *SETUPS), case["name"]


def test_every_case_tests_something_of_its_own() -> None:
    """No two cases set up the same project and run the same command line."""
    seen: dict[str, str] = {}
    for case in CASES:
        key = repr([case.get(k) for k in ("hsm_config", "sweep_config", "files", "remove", "setup", "stdin")]
                   + [argv(case)])
        assert key not in seen, f"{case['name']!r} repeats {seen[key]!r}"
        seen[key] = case["name"]
