"""A host that cannot be reached says why, in the same words, whichever command met it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm.transport import cause_of
from tests.integration.test_ssh import SshProject, job_sweep, project, remote_base  # noqa: F401

RSYNC_AFTER_HOST_KEY = """\
Host key verification failed.\r
rsync: connection unexpectedly closed (0 bytes received so far) [sender]
rsync error: unexplained error (code 255) at io.c(232) [sender=3.2.7]
"""


def test_the_cause_is_read_out_of_what_rsync_and_ssh_print() -> None:
    assert cause_of(RSYNC_AFTER_HOST_KEY) == "Host key verification failed."
    assert cause_of("ssh: Could not resolve hostname nosuch: Name or service not known\r\n"
                    "rsync error: unexplained error (code 255) at io.c(232)\n").startswith("ssh: Could not resolve")
    assert cause_of('rsync: [sender] change_dir "/nope" failed: No such file or directory (2)\n'
                    "rsync error: some files/attrs were not transferred (code 23) at main.c(1338)\n"
                    ) == "rsync error: some files/attrs were not transferred (code 23) at main.c(1338)"
    assert cause_of("mkdir: cannot create directory 'x': Permission denied\n") == \
        "mkdir: cannot create directory 'x': Permission denied"
    assert cause_of("") == ""


@pytest.mark.ssh
def test_an_unknown_host_key_is_named_by_sync_and_submit_alike(project: SshProject, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    # A connection of its own: a master connection other tests left open would skip the key check.
    project.config(ssh={"ssh_options": [f"UserKnownHostsFile={empty}", "StrictHostKeyChecking=yes",
                                        "ControlPath=none"]})
    job_sweep(project, [1])
    synced = project.hsm("sync", "--target", "ssh:server1")
    assert synced.returncode == 1, synced.stderr
    assert "Host key verification failed" in synced.stderr and "unexplained error" not in synced.stderr, synced.stderr
    ran = project.hsm("run", "--sources", "ssh:server1:1", "--no-verify-sync", "--poll-interval", "0.2")
    assert ran.returncode != 0
    assert "Host key verification failed" in ran.stderr, ran.stderr
