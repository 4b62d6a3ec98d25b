"""`hsm run` on a terminal draws the live view of `hsm monitor watch`; piped, it prints lines."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

from tests.cli.hsmproc import ROOT, Project, job_command, wait_for
from tests.cli.test_monitor import completed_on_screen, tmux  # noqa: F401


def sweep_of_short_tasks(project: Project, n: int = 10) -> None:
    project.sweep_config(f'command: "{job_command("--sleep 0.6")}"\nsweep:\n  grid:\n    x: {list(range(1, n + 1))}\n')


def test_run_on_a_terminal_shows_the_live_view(project: Project, tmux: list[str]) -> None:
    sweep_of_short_tasks(project)
    run = shlex.join(["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "hsm", "run", "--sources", "local:2",
                      "--poll-interval", "0.5"])
    started = subprocess.run([*tmux, "new-session", "-d", "-s", "run", "-x", "120", "-y", "60", "-c",
                              str(project.root), f"{run} > /dev/null; echo RUN EXITED $?; sleep 60"],
                             capture_output=True, text=True, timeout=30, check=False)
    assert started.returncode == 0, started.stderr

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "run"], capture_output=True, text=True,
                              timeout=30, check=True).stdout

    during = wait_for(lambda: (lambda s: s if "Overall Progress:" in s and completed_on_screen(s) is not None
                               else None)(screen()), 60, "the live view while the sweep runs")
    assert re.search(r"[█░]{24} \d+/10 \(\d+%\)", during), during
    assert "Source Utilization:" in during and "│ local" in during
    after = wait_for(lambda: (lambda s: s if "RUN EXITED" in s else None)(screen()), 120, "the run to end")
    assert "RUN EXITED 0" in after and "Sweep completed successfully: 10 tasks" in after, after
    assert completed_on_screen(after) == 10, after  # the last frame stays above the summary
    assert after.count("Overall Progress:") == 1, after  # redrawn in place, never one frame below another


def test_run_piped_prints_plain_lines(project: Project) -> None:
    sweep_of_short_tasks(project, 3)
    result = project.hsm("run", "--sources", "local:2", "--poll-interval", "0.5")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr and "Overall Progress" not in result.stderr
    assert "Progress: 3/3 (100.0%)" in result.stderr
