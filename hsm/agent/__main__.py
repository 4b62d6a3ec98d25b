"""`python -m hsm.agent`: the agent on this machine (see main.py)."""

from .main import run

run()
