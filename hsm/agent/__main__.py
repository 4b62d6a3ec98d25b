"""The agent's entry as a module (`python -m hsm.agent`) or as a file.

This machine's runner is started as a file (`python .../hsm/agent/__main__.py serve DIR`),
which finds its package by its own path: whatever PYTHONPATH the caller had, the runner runs
this very code, and its tasks get the caller's environment unchanged.
"""

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from hsm.agent.main import run
else:
    from .main import run

run()
