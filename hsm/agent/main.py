"""The agent's command line. Standard library only (see the package docstring).

    AGENT serve RUNNER_DIR    work through a runner directory's queue (runner.py)
    AGENT ACTION              one action (actions.py): a JSON request on standard input,
                              the JSON answer on standard output, the exit code the action's

AGENT is `python3 hsm-agent-HASH.pyz` on a host, `python3 -m hsm.agent` on this machine.
A failing action prints one line on standard error, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .actions import ACTIONS, dispatch
from .runner import Runner

USAGE = "usage: AGENT serve RUNNER_DIR | AGENT ACTION < REQUEST   (actions: " + ", ".join(ACTIONS) + ")\n"


def main(argv: list[str] | None = None) -> int:
    """Run `serve` or one action; return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    sys.dont_write_bytecode = True  # leave no __pycache__ behind on a host
    if len(args) == 2 and args[0] == "serve":
        return Runner(Path(args[1])).serve()
    if len(args) != 1 or args[0] not in ACTIONS:
        sys.stderr.write(USAGE)
        return 2
    try:
        request = json.load(sys.stdin)
        answer, code = dispatch(args[0], request)
    except Exception as exc:
        sys.stderr.write(f"hsm agent on {os.uname().nodename}: {args[0]}: {type(exc).__name__}: {exc}\n")
        return 1
    json.dump(answer, sys.stdout)
    return code


def run() -> None:
    """Entry point of the zip application and of `python -m hsm.agent`."""
    sys.exit(main())
