"""`hsm config set|show|validate` against real files, and configs written for the original HSM."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.hsmproc import Project, make_project
from tests.cli.test_bad_input import assert_bad_input

COMMENTED = """\
# The project's settings (comments must survive hsm config set).
paths:
  training_script: train.py   # what each task runs

compute:
  # checks of the sources
  health_check_interval: 300  # five minutes
  disk_min_free_gb: 0.05

compute_sources:
  local: {type: local, max_parallel_tasks: 2}  # this machine
"""

# The original HSM's examples/simple_mlp/hsm_config.yaml, as its `config init` wrote it on a
# machine without a scheduler; only the paths are this test's own.
ORIGINAL = """\
compute:
  default_timeout: null
  health_check_interval: 300
  max_concurrent_local: 4
  max_concurrent_remote: 10
  result_collection_interval: 60
  retry_attempts: 3
  retry_delay: 60
experiment_tracking:
  mlflow_enabled: false
  mlflow_tracking_uri: null
  tensorboard_enabled: false
  wandb_enabled: false
  wandb_entity: null
  wandb_project: null
hpc:
  default_queue: null
  default_resources: select=1:ncpus=4:mem=64gb
  default_walltime: '23:59:59'
  max_array_size: null
  module_commands: []
  system: local
logging:
  backup_count: 5
  console_logging: true
  file_logging: true
  format: '%(asctime)s - %(name)s - %(levelname)s - %(message)s'
  level: INFO
  max_log_size: 100MB
paths:
  conda_env: nca
  project_root: {root}
  python_interpreter: {python}
  training_script: {root}/main.py
"""


def test_config_set_changes_one_value_and_keeps_every_comment(project: Project) -> None:
    config = project.write("hsm_config.yaml", COMMENTED)
    result = project.hsm("config", "set", "compute.health_check_interval", "120")
    assert result.returncode == 0, result.stderr
    assert "300 → 120" in result.stderr
    assert config.read_text() == COMMENTED.replace("health_check_interval: 300", "health_check_interval: 120")
    shown = json.loads(project.hsm("config", "show", "--format", "json").stdout)
    assert shown["compute"]["health_check_interval"] == 120


def test_config_set_adds_a_missing_key_and_section(project: Project) -> None:
    config = project.write("hsm_config.yaml", COMMENTED)
    assert project.hsm("config", "set", "compute.retry_attempts", "2").returncode == 0
    assert project.hsm("config", "set", "execution.arg_style", "argparse").returncode == 0
    assert project.hsm("config", "set", "compute_sources.local.max_parallel_tasks", "3").returncode == 0
    text = config.read_text()
    assert "  disk_min_free_gb: 0.05\n  retry_attempts: 2\n" in text
    assert text.endswith("execution:\n  arg_style: argparse\n")
    assert "local: {type: local, max_parallel_tasks: 3}  # this machine" in text
    for line in COMMENTED.splitlines():
        if "#" in line:
            assert line.split("#")[1] in text
    shown = json.loads(project.hsm("config", "show", "--format", "json").stdout)
    assert (shown["compute"]["retry_attempts"], shown["execution"]["arg_style"]) == (2, "argparse")


def test_a_bad_value_is_refused_and_the_file_left_as_it_was(project: Project) -> None:
    config = project.write("hsm_config.yaml", COMMENTED)
    for key, value, named in [("compute.health_check_interval", "-1", "compute.health_check_interval"),
                              ("compute.health_check_intervall", "5", "did you mean health_check_interval?"),
                              ("compute_sources.local.gpus", "[a]", "compute_sources.local.gpus"),
                              ("hpc.queue", "7", "hpc.queue")]:
        assert_bad_input(project.hsm("config", "set", key, value), named)
        assert config.read_text() == COMMENTED


def test_config_show_prints_yaml_or_json(project: Project) -> None:
    as_json = json.loads(project.hsm("config", "show", "--format", "json").stdout)
    assert as_json["paths"]["training_script"] == "train.py"
    assert "compute:\n" in project.hsm("config", "show").stdout


def test_a_config_of_the_original_hsm_validates_and_runs(tmp_path: Path) -> None:
    import sys

    p = make_project(tmp_path / "simple_mlp", hsm_config=None)
    p.write("main.py", "import sys\nprint('main', *sys.argv[1:])\n")
    p.write("hsm_config.yaml", ORIGINAL.format(root=p.root, python=sys.executable))
    result = p.hsm("config", "validate")
    assert result.returncode == 0, result.stderr
    p.sweep_config("grid:\n  lr: [0.1, 0.2]\n")
    # `system: local` means no cluster: `--sources hpc` says so instead of using a scheduler.
    refused = p.hsm("run", "--sources", "hpc", "--dry-run")
    assert_bad_input(refused, "hpc.system: local")
    ran = p.hsm("run", "--sources", "local:2", "--poll-interval", "0.1", "--no-progress")
    assert ran.returncode == 0, ran.stderr


def test_logging_level_and_format_apply_to_hsm_lines(project: Project) -> None:
    project.write("hsm_config.yaml", "paths: {training_script: train.py}\n"
                  "logging: {level: DEBUG, format: 'LOGGED %(levelname)s %(message)s'}\n")
    project.sweep_config("grid:\n  lr: [0.1]\n")
    ran = project.hsm("run", "--sources", "local:1", "--poll-interval", "0.1", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    assert any(line.startswith("LOGGED DEBUG ") for line in ran.stderr.splitlines()), ran.stderr
    # -v on the command line is not lowered by the config's level, and WARNING hides debug lines
    project.write("hsm_config.yaml", "paths: {training_script: train.py}\nlogging: {level: WARNING}\n")
    quiet = project.hsm("run", "--sources", "local:1", "--poll-interval", "0.1", "--no-progress")
    assert "DEBUG" not in quiet.stderr and "lock" not in quiet.stderr.lower(), quiet.stderr
