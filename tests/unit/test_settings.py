"""Settings checked at load: what is accepted must stay accepted (the bad-input corpus covers the refusals)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm.config import parse_config
from hsm.core.settings import check_known
from hsm.core.walltime import check_walltime
from hsm.errors import BadInput

SLURM = ["30", "30:00", "12:00:00", "2-00", "2-12:30", "2-12:30:00", "UNLIMITED", "infinite"]
PBS = ["3600", "30:00", "12:00:00", "120:00:00"]


@pytest.mark.parametrize("value", SLURM)
def test_every_slurm_form_is_a_walltime(value: str) -> None:
    assert check_walltime(value, "slurm", "w") == value
    assert check_walltime(value, None, "w") == value  # the scheduler is not known yet


@pytest.mark.parametrize("value", PBS)
def test_every_pbs_form_is_a_walltime(value: str) -> None:
    assert check_walltime(value, "pbs", "w") == value


@pytest.mark.parametrize(("value", "system"), [("forever", None), ("12h", "slurm"), ("2-00:00:00", "pbs"),
                                               ("1:2:3:4", "slurm"), ("UNLIMITED", "pbs"), ("-5", None)])
def test_other_walltimes_are_refused_naming_the_key(value: str, system: str | None) -> None:
    with pytest.raises(BadInput, match=f"hpc.default_walltime: expected a walltime.*got '{value}'"):
        check_walltime(value, system, "hpc.default_walltime")


def test_an_unknown_key_names_the_one_meant() -> None:
    with pytest.raises(BadInput, match=r"^F: compute\.retry_attempt: unknown key \(did you mean retry_attempts\?\)$"):
        check_known({"retry_attempt": 3}, ["retry_attempts", "retry_delay"], "F: compute")


def test_a_full_config_with_aliases_and_older_keys_loads(tmp_path: Path) -> None:
    data = {
        "paths": {"training_script": "train.py", "train_script": None, "conda_env": "", "output_dir": "out"},
        "compute": {"retry_attempts": 2, "default_timeout": None, "max_concurrent_remote": 10},
        "execution": {"strategy": "least_loaded", "arg_style": "argparse", "hydra_run_dir": False},
        "ssh": {"port": 2222, "ssh_options": ["ServerAliveInterval=15"]},
        "hpc": {"default_queue": "gpu", "walltime": "04:00:00", "resources": "select=1:ncpus=4"},
        "result_collection": {"cleanup_remote_on_success": True},
        "compute_sources": {
            "local": {"type": "local", "max_parallel_tasks": 2, "enabled": True},
            "server": {"type": "ssh", "host": "server.lab.edu", "max_parallel_jobs": 4, "sync": "verify"},
            "cluster": {"type": "hpc", "system": "pbs", "partition": "short", "default_walltime": "7200"},
        },
        "distributed": {"enabled": True, "collect_interval": 300, "remotes": {"blossom": {"host": "blossom"}}},
        "logging": {"level": "INFO"},
    }
    project = parse_config(data, tmp_path / "hsm_config.yaml", tmp_path)
    assert project.strategy == "least_loaded"
    assert project.outputs_dir == tmp_path.resolve() / "out"
    assert project.conda_env is None
    assert sorted(project.sources) == ["blossom", "cluster", "local", "server"]
    assert project.sources["cluster"].settings.walltime == "7200"  # type: ignore[union-attr]
