"""Where the jobs of an HPC source see the sweep: the same paths, or a copy behind a login host (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hsm.core.settings import HpcSettings
from hsm.paths import SweepPaths


@dataclass(frozen=True)
class ClusterLayout:
    """A sweep dir and its project on this machine, and where the cluster's jobs find them."""

    paths: SweepPaths
    local_project: Path
    settings: HpcSettings

    @property
    def remote(self) -> bool:
        """True when the jobs run behind a login host, on a copy of the sweep."""
        return self.settings.connection is not None

    def root(self) -> PurePosixPath:
        """The sweep dir as the jobs see it: the same path, or below `sweeps_dir` / `project_dir` on a login host."""
        local = PurePosixPath(self.paths.root.as_posix())
        if not self.remote:
            return local
        if self.settings.sweeps_dir:
            return PurePosixPath(self.settings.sweeps_dir) / self.paths.sweep_id
        if self.settings.project_dir:
            try:
                return PurePosixPath(self.settings.project_dir) / local.relative_to(self.local_project.as_posix())
            except ValueError:
                return local
        return local

    def project(self) -> PurePosixPath:
        """The project root as the jobs see it."""
        if self.remote and self.settings.project_dir:
            return PurePosixPath(self.settings.project_dir)
        return PurePosixPath(self.local_project.as_posix())

    def of(self, local: Path) -> str:
        """A path below the sweep dir on this machine, as the jobs see it."""
        return str(self.root() / self.paths.relative(local))

    def script(self, script: str) -> str:
        """The training script as the jobs see it (one outside the project keeps its path)."""
        if not script:
            return ""
        local_script = (self.local_project / Path(script).expanduser()).resolve()
        if not self.remote:
            return str(local_script)
        try:
            return str(self.project() / local_script.relative_to(self.local_project.resolve()).as_posix())
        except ValueError:
            return str(local_script)
