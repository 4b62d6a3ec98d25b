"""`hsm sync`, `hsm config validate --check-sync` and the check before a run: SSH hosts' project copies."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hsm import sync
from hsm.config import ProjectConfig
from hsm.core.settings import SourceConfig, SshSettings
from hsm.errors import SourceError
from hsm.sources.ssh import call_host, remember_host_home
from hsm.transport import SshTarget


@dataclass
class SyncReport:
    """One host's copy: where it is, whether it was pushed, and what differs (empty: the same)."""

    name: str
    host: str
    mode: str  # the source's sync mode: push or verify
    remote_dir: str
    pushed: bool
    diff: sync.SyncDiff

    @property
    def message(self) -> str:
        """The refusal text for a differing copy."""
        return sync.mismatch_message(self.name, self.host, self.remote_dir, self.diff)


def ssh_settings(source: SourceConfig) -> SshSettings:
    """The checked settings of an SSH source."""
    assert isinstance(source.settings, SshSettings), source
    return source.settings


def ssh_sources(sources: Iterable[SourceConfig]) -> list[SourceConfig]:
    """The SSH sources among `sources`."""
    return [s for s in sources if s.type == "ssh"]


def check(project: ProjectConfig, source: SourceConfig, *, push: bool) -> SyncReport:
    """Push the project to one host when asked (one rsync), then compare the copies (one ssh call)."""
    host = ssh_settings(source)
    target = SshTarget.from_connection(host.connection)
    remote = host.project_path(str(project.root))  # `~/x` stays so: rsync and the host resolve it
    patterns = sync.exclude_patterns(project.root, [project.outputs_dir], host.sync_excludes)
    if push:
        sync.push(target, project.root, remote, patterns)
    expected = sync.local_state(project.root, patterns)
    _, answer = call_host(target, host.agent_python(), "state", {"project_dir": remote, "expected": expected})
    if answer.get("home"):
        remember_host_home(host, answer["home"])  # so the submit that follows need not ask
    return SyncReport(source.name, target.host, host.sync_mode, remote, push,
                      sync.diff_states(expected, answer["observed"]))


def sync_sources(project: ProjectConfig, sources: Iterable[SourceConfig], force: bool) -> list[SyncReport]:
    """`hsm sync`: push each host's copy (push mode, or any mode with `force`) and verify it."""
    reports = []
    for source in ssh_sources(sources):
        host = ssh_settings(source)
        reports.append(check(project, source, push=force or host.sync_mode == "push"))
    return reports


def preflight(project: ProjectConfig, sources: Iterable[SourceConfig],
              down: Callable[[str, str], None] = lambda name, message: None) -> list[SyncReport]:
    """Before a run starts anything: push and verify every SSH source's copy.

    A copy that differs stops the run (SyncMismatch) before any task is submitted. A host
    that does not answer is passed to `down` (name, why): the caller decides.
    """
    reports = []
    for source in ssh_sources(sources):
        host = ssh_settings(source)
        try:
            report = check(project, source, push=host.sync_mode == "push")
        except SourceError as exc:
            down(source.name, str(exc))
            continue
        if report.diff:
            raise sync.SyncMismatch(report.message)
        reports.append(report)
    return reports
