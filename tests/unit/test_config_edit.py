"""Editing hsm_config.yaml's sources: the change is made, and every other line stays as written."""

from __future__ import annotations

import pytest
import yaml

from hsm import config_edit as ce
from hsm.errors import BadInput

WHERE = "hsm_config.yaml"

CONFIG = """\
# my project
paths:
  training_script: train.py   # relative to here

compute_sources:
  local: {type: local, max_parallel_tasks: 4}   # this machine

  server1:
    type: ssh
    host: compute-server-1.example.com  # the big one
    max_parallel_tasks: 8

  cluster:
    type: hpc
    system: slurm
    module_commands:
      - "module load python/3.9"
      - 'module load cuda/11.8'

# Health monitoring settings
compute:
  health_check_interval: 300  # 5 minutes
distributed:
  remotes:
    blossom:
      host: blossom
      enabled: false
"""


def added_lines(before: str, after: str) -> list[str]:
    """The lines `after` has beyond `before`, when it is `before` with lines inserted (else fail)."""
    old, new = before.splitlines(), after.splitlines()
    extra, i = [], 0
    for line in new:
        if i < len(old) and line == old[i]:
            i += 1
        else:
            extra.append(line)
    assert i == len(old), f"lines of the original were changed:\n{after}"
    return extra


def test_disabling_a_block_entry_inserts_one_line_and_changes_no_other() -> None:
    after = ce.set_enabled(CONFIG, "server1", False, WHERE)
    assert added_lines(CONFIG, after) == ["    enabled: false"]
    assert yaml.safe_load(after)["compute_sources"]["server1"]["enabled"] is False


def test_disabling_a_flow_entry_keeps_it_on_its_line_with_its_comment() -> None:
    after = ce.set_enabled(CONFIG, "local", False, WHERE)
    assert "  local: {enabled: false, type: local, max_parallel_tasks: 4}   # this machine\n" in after
    assert after.replace("enabled: false, ", "") == CONFIG


def test_an_existing_enabled_value_is_replaced_in_place() -> None:
    after = ce.set_enabled(CONFIG, "blossom", True, WHERE)
    assert after == CONFIG.replace("      enabled: false\n", "      enabled: true\n")
    assert ce.set_enabled(CONFIG, "blossom", False, WHERE) == CONFIG  # already says so
    assert ce.set_enabled(CONFIG, "server1", True, WHERE) == CONFIG  # enabled is the default


def test_adding_a_source_goes_after_the_last_one_spaced_and_indented_like_them() -> None:
    after = ce.add_source(CONFIG, "gpu-server", {"type": "ssh", "host": "gpu.university.edu",
                                                 "ssh_key": "~/.ssh/id_ed25519", "max_parallel_tasks": 2}, WHERE)
    # After the last entry, before the comment that introduces the next section.
    entry = ("\n  gpu-server:\n    type: ssh\n    host: gpu.university.edu\n    ssh_key: ~/.ssh/id_ed25519\n"
             "    max_parallel_tasks: 2\n")
    assert after == CONFIG.replace("cuda/11.8'\n", "cuda/11.8'\n" + entry)
    assert yaml.safe_load(after)["compute_sources"]["gpu-server"]["ssh_key"] == "~/.ssh/id_ed25519"


def test_removing_a_source_takes_its_lines_and_leaves_the_comments_around_it() -> None:
    added = ce.add_source(CONFIG, "gpu-server", {"type": "ssh", "host": "g"}, WHERE)
    assert ce.remove_source(added, "gpu-server", WHERE) == CONFIG
    without = ce.remove_source(CONFIG, "cluster", WHERE)
    assert "# Health monitoring settings\ncompute:" in without and "module load" not in without
    assert list(yaml.safe_load(without)["compute_sources"]) == ["local", "server1"]
    middle = ce.remove_source(CONFIG, "server1", WHERE)
    assert "\n\n\n" not in middle and "compute-server-1" not in middle
    assert ce.remove_source(CONFIG, "blossom", WHERE).count("blossom") == 0


def test_four_space_indentation_is_kept() -> None:
    text = "compute_sources:\n    local:\n        type: local\n"
    after = ce.add_source(text, "s", {"type": "ssh", "max_parallel_tasks": 2}, WHERE)
    assert after == text + "    s:\n        type: ssh\n        max_parallel_tasks: 2\n"
    assert ce.set_enabled(after, "s", False, WHERE) == \
        text + "    s:\n        enabled: false\n        type: ssh\n        max_parallel_tasks: 2\n"


def test_a_section_is_made_where_there_is_none() -> None:
    assert ce.add_source("", "local", {"type": "local", "max_parallel_tasks": 4}, WHERE) == \
        "compute_sources:\n  local:\n    type: local\n    max_parallel_tasks: 4\n"
    text = "paths:\n  training_script: train.py\ncompute_sources:   # none yet\ncompute: {}\n"
    after = ce.add_source(text, "local", {"type": "local"}, WHERE)
    assert after == ("paths:\n  training_script: train.py\ncompute_sources:   # none yet\n"
                     "  local:\n    type: local\ncompute: {}\n")


@pytest.mark.parametrize("edit, needle", [
    (lambda t: ce.add_source(t, "server1", {"type": "ssh"}, WHERE), "already exists"),
    (lambda t: ce.add_source(t, "bad name", {"type": "ssh"}, WHERE), "bad name"),
    (lambda t: ce.remove_source(t, "nosuch", WHERE), "nosuch"),
    (lambda t: ce.set_enabled(t, "nosuch", False, WHERE), "nosuch"),
    (lambda t: ce.add_source("compute_sources: {local: {type: local}}\n", "s", {"type": "ssh"}, WHERE), "flow style"),
    (lambda t: ce.set_enabled("compute_sources:\n  local:\n", "local", False, WHERE), "has no settings"),
    (lambda t: ce.set_enabled("a: [1\n", "local", False, WHERE), "line 2"),
    (lambda t: ce.set_enabled("a: 1\na: 2\n", "local", False, WHERE), "duplicate"),
], ids=["duplicate", "bad name", "remove unknown", "enable unknown", "flow section", "null entry", "not YAML",
        "duplicate key"])
def test_what_cannot_be_done_is_refused_in_one_line(edit, needle: str) -> None:
    with pytest.raises(BadInput) as exc:
        edit(CONFIG)
    assert needle in str(exc.value) and "\n" not in str(exc.value)
