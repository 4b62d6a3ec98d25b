"""The original HSM's commands that hsm does not have: one line naming the command to use, exit 2.

One Python process runs every case through `hsm.cli.main`, as `hsm` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.hsmproc import hsm_env

CASES = {
    "monitor performance sweep_x": "hsm monitor source NAME [SWEEP]",
    "monitor distribution sweep_x": "hsm status SWEEP",
    "monitor dashboard --sources all --live": "hsm monitor watch [SWEEP]",
    "monitor collection --verify-integrity": "hsm collect SWEEP",
    "sources validate ssh:server1 --verbose": "hsm test SOURCE",
    "sources ping --all": "hsm sources test NAME",
    "sources optimize sweep_x": "hsm sources rebalance SWEEP",
    "sources diagnose server1 --help": "hsm monitor source NAME",
    "tasks reassign task_023 --from server2 --to server1": "hsm complete SWEEP --tasks TASK_ID --sources NAME",
    "analyze bottlenecks sweep_x -h": "hsm aggregate SWEEP",
    "tasks": "hsm status SWEEP --task TASK_ID",
}

# Calls hsm.cli.main for each argv with its own stdout and stderr; prints [code, stdout, stderr] per case.
RUNNER = """
import contextlib, io, json, sys
from hsm.cli import main
results = []
for argv in json.loads(sys.stdin.read()):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def test_older_commands_name_the_command_that_does_the_job(tmp_path: Path) -> None:
    argvs = [case.split() for case in CASES]
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(argvs), cwd=tmp_path, env=hsm_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    for (case, instead), (code, out, err) in zip(CASES.items(), json.loads(done.stdout)):
        path = "hsm " + " ".join(case.split()[:2])
        assert code == 2, (case, code, err)
        assert out == "", (case, out)
        assert err.count("\n") == 1, (case, err)
        assert err.startswith(f"hsm: '{path}' is not an hsm command; use '{instead}' ("), (case, err)


def test_older_commands_are_hidden() -> None:
    from hsm.cli import cli

    for case in CASES:
        group, _, name = case.partition(" ")
        command = cli.commands[group]
        sub = command.commands.get(name.split()[0]) if name and hasattr(command, "commands") else None
        assert (sub or command).hidden, case
