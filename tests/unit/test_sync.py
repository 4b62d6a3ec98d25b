"""Project-copy comparison and SSH option building: the pure parts of hsm/sync.py and the SSH source."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hsm import sync
from hsm.agent import project as agent_project
from hsm.config import parse_config
from hsm.core.health import classify_health
from hsm.core.hostpaths import resolve_remote
from hsm.core.settings import read_ssh
from hsm.errors import BadInput
from hsm.sources.runner_based import conda_setup
from hsm.transport import SshTarget, login_relative

# --- exclusion patterns ----------------------------------------------------------------------------


def test_exclude_patterns_anchor_the_outputs_dir_below_the_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    patterns = sync.exclude_patterns(root, [root / "sweeps" / "outputs", tmp_path / "elsewhere"], ["data/", "*.ckpt"])
    assert patterns == [".git", "__pycache__", "/sweeps/outputs/", "data/", "*.ckpt"]
    assert sync.rsync_exclude_args(patterns[:3]) == ["--exclude=.git", "--exclude=__pycache__", "--exclude=/sweeps/outputs/"]
    assert sync.push_argv_options([".git"]) == ["--mkpath", "--exclude=.git"]


@pytest.mark.parametrize(
    ("path", "is_dir", "patterns", "expected"),
    [
        (".git", True, [".git"], True),
        ("sub/.git/config", False, [".git"], True),  # a name pattern matches at any depth
        ("a/__pycache__/m.pyc", False, ["__pycache__"], True),
        ("sweeps/outputs/s1/tasks/x", False, ["/sweeps/outputs/"], True),
        ("lib/sweeps/outputs/x", False, ["/sweeps/outputs/"], False),  # anchored at the root
        ("data", False, ["data/"], False),  # a directory pattern leaves a file of that name
        ("data", True, ["data/"], True),
        ("data/big.bin", False, ["data/"], True),
        ("x/model.ckpt", False, ["*.ckpt"], True),
        ("conf/local.yaml", False, ["conf/local.yaml"], True),
        ("a/conf/local.yaml", False, ["conf/local.yaml"], True),  # a pattern with / matches the path's end
        ("a/conf/other.yaml", False, ["conf/local.yaml"], False),
        ("train.py", False, [".git", "__pycache__", "/sweeps/outputs/"], False),
    ],
)
def test_excluded_follows_rsync_rules(path: str, is_dir: bool, patterns: list[str], expected: bool) -> None:
    assert agent_project.excluded(path, is_dir, patterns) is expected


def test_walk_files_lists_what_a_push_copies(tmp_path: Path) -> None:
    for rel in ("train.py", "conf/a.yaml", ".git/HEAD", "pkg/__pycache__/m.pyc", "sweeps/outputs/s/x",
                "sweeps/sweep_config.yaml", "data/big.bin", "two words.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "link").symlink_to("train.py")
    (tmp_path / "linked_dir").symlink_to("conf")
    patterns = sync.exclude_patterns(tmp_path, [tmp_path / "sweeps" / "outputs"], ["data/"])
    assert agent_project.walk_files(str(tmp_path), patterns) == [
        "conf/a.yaml", "link", "linked_dir", "sweeps/sweep_config.yaml", "train.py", "two words.py",
    ]
    digests = sync.describe_files(tmp_path, patterns)
    assert digests["link"].startswith("link:") and digests["linked_dir"].startswith("link:")
    assert digests["train.py"] == agent_project.digest(str(tmp_path / "train.py"))
    assert agent_project.file_digests(str(tmp_path), ["gone.py"]) == {"gone.py": None}


# --- git status parsing --------------------------------------------------------------------------


def test_parse_git_status_keeps_the_project_part_and_both_sides_of_a_rename() -> None:
    text = "\0".join([
        " M proj/train.py",
        "?? proj/new file.py",
        "R  proj/b.py",  # renamed from proj/a.py: both paths differ from HEAD
        "proj/a.py",
        " D proj/old.py",
        "?? proj/sweeps/outputs/s1/status.yaml",
        " M other/x.py",
        "",
    ])
    patterns = [".git", "__pycache__", "/sweeps/outputs/"]
    assert agent_project.parse_git_status(text, "proj/", patterns) == ["a.py", "b.py", "new file.py", "old.py", "train.py"]
    assert agent_project.parse_git_status(text, "", patterns) == sorted(
        ["proj/train.py", "proj/new file.py", "proj/b.py", "proj/a.py", "proj/old.py",
         "proj/sweeps/outputs/s1/status.yaml", "other/x.py"])


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_local_state_of_a_checkout_names_commit_and_uncommitted_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    project = repo / "proj"
    project.mkdir(parents=True)
    (project / "train.py").write_text("print(1)\n")
    (project / "sweeps" / "outputs").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(git + argv, check=True, capture_output=True)
    (project / "train.py").write_text("print(2)\n")
    (project / "sweeps" / "outputs" / "x.log").write_text("ignored: below the outputs dir")
    (repo / "outside.py").write_text("not part of the project")
    patterns = sync.exclude_patterns(project, [project / "sweeps" / "outputs"])
    state = sync.local_state(project, patterns)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert state["git"] == {"commit": commit, "dirty": {"train.py": agent_project.digest(str(project / "train.py"))}}
    assert set(state["files"]) == {"train.py"}
    assert state["excludes"] == patterns


# --- comparing two copies ---------------------------------------------------------------------------


def _files(**files: str | None) -> dict[str, Any]:
    return {"excludes": [], "git": None, "files": files}


CASES = [
    ("same files", _files(a="1", b="2"), {"mode": "files", "files": {"a": "1", "b": "2"}}),
    ("changed", _files(a="1", b="2"), {"mode": "files", "files": {"a": "1", "b": "X"}}),
    ("missing there", _files(a="1", b="2"), {"mode": "files", "files": {"a": "1", "b": None}}),
    ("same git", {"git": {"commit": "c1", "dirty": {"x": "1"}}, "files": {}},
     {"mode": "git", "git": {"commit": "c1", "dirty": {"x": "1"}}}),
    ("other commit", {"git": {"commit": "c1", "dirty": {}}, "files": {}},
     {"mode": "git", "git": {"commit": "c2", "dirty": {}}}),
    ("dirty differs", {"git": {"commit": "c1", "dirty": {"x": "1", "y": "2"}}, "files": {}},
     {"mode": "git", "git": {"commit": "c1", "dirty": {"x": "9", "z": "3"}}}),
]


@pytest.mark.parametrize(("what", "expected", "observed"), CASES, ids=[c[0] for c in CASES])
def test_a_diff_is_empty_exactly_when_the_host_calls_it_a_match(what: str, expected: dict, observed: dict) -> None:
    # The host decides whether to start the runner; this machine explains a refusal. They must agree.
    assert (not sync.diff_states(expected, observed)) is agent_project.matches(expected, observed)


def test_diff_of_files_says_which_differ_and_which_are_missing() -> None:
    diff = sync.diff_states(_files(a="1", b="2", c="3"), {"mode": "files", "files": {"a": "1", "b": "X", "c": None},
                                                          "why": "no git checkout here"})
    assert (diff.mode, diff.changed, diff.missing, diff.commits) == ("files", ["b"], ["c"], None)
    text = sync.describe_diff("server1", "~/proj", diff)
    assert text == ("server1:~/proj differs from this project (compared by sha256; no git checkout here): "
                    "1 file differ: b; 1 missing on server1: c")


def test_diff_of_git_states_names_commits_and_uncommitted_files() -> None:
    here = {"git": {"commit": "a" * 40, "dirty": {"x.py": "1", "y.py": "2"}}}
    there = {"mode": "git", "git": {"commit": "b" * 40, "dirty": {"x.py": "9", "z.py": "3"}}}
    diff = sync.diff_states(here, there)
    assert diff.commits == ("a" * 40, "b" * 40)
    assert (diff.changed, diff.missing, diff.extra) == (["x.py"], ["y.py"], ["z.py"])
    text = sync.describe_diff("s2", "/p", diff)
    assert text.startswith("s2:/p differs from this project (compared by git): ")
    assert f"commit {'a' * 12} here, {'b' * 12} on s2" in text
    assert "uncommitted changes differ in x.py" in text
    assert "uncommitted changes only here in y.py" in text and "uncommitted changes only on s2 in z.py" in text
    message = sync.mismatch_message("s2", "s2", "/p", diff)
    assert "hsm sync --target ssh:s2 --force" in message and "--no-verify-sync" in message


def test_a_long_list_of_files_is_cut_short() -> None:
    files = {f"f{i:02d}.py": "1" for i in range(20)}
    diff = sync.diff_states(_files(**files), {"mode": "files", "files": {k: "2" for k in files}})
    assert "20 files differ: f00.py, f01.py" in sync.describe_diff("h", "/p", diff)
    assert "and 12 more" in sync.describe_diff("h", "/p", diff)


def test_the_host_side_describes_a_copy_as_this_side_does(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    (here / "pkg").mkdir(parents=True)
    (here / "train.py").write_text("a")
    (here / "pkg" / "m.py").write_text("b")
    shutil.copytree(here, there)
    expected = {"excludes": [".git"], "git": None, "files": sync.describe_files(here, [".git"])}
    observed = agent_project.project_state(str(there), expected)
    assert observed["mode"] == "files" and agent_project.matches(expected, observed)
    (there / "pkg" / "m.py").write_text("changed")
    observed = agent_project.project_state(str(there), expected)
    assert sync.diff_states(expected, observed).changed == ["pkg/m.py"]


# --- the host side's answers ---------------------------------------------------------------------


def agent(action: str, request: dict) -> subprocess.CompletedProcess:
    """The agent's command line, as a host runs it."""
    return subprocess.run([sys.executable, "-m", "hsm.agent", action], input=json.dumps(request),
                          capture_output=True, text=True, timeout=60, check=False)


def test_agent_actions_answer_with_json(tmp_path: Path) -> None:
    result = agent("health", {"project_dir": str(tmp_path / "not" / "there")})
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["path"] == str(tmp_path) and info["free_bytes"] > 0 and info["cpus"] >= 1
    result = agent("poll", {"runner_dir": str(tmp_path / "none"), "tasks_dir": "x", "tasks": []})
    assert result.returncode == 1 and result.stdout == ""
    assert "no such directory" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = agent("nonsense", {})
    assert result.returncode == 2 and "usage" in result.stderr


# --- settings and options ------------------------------------------------------------------------


def _project(tmp_path: Path, data: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    return parse_config(data or {}, None, tmp_path)


def test_host_settings_overlay_the_ssh_section_with_the_source(tmp_path: Path) -> None:
    project = _project(tmp_path, {
        "ssh": {"ssh_config": "~/tb/config", "ssh_options": ["ServerAliveInterval=5"], "project_dir": "~/work/p",
                "compression": True, "sync_excludes": ["data/"]},
        "result_collection": {"cleanup_remote_on_success": True},
    })
    host = read_ssh("gpu", {"host": "gpu.example.org", "ssh_port": 2222, "ssh_key": "~/.ssh/k",
                            "python_interpreter": "~/miniconda3/envs/x/bin/python"}, project.source_defaults)
    target = SshTarget.from_connection(host.connection)
    assert target.host == "gpu.example.org"
    opts = target.ssh_options()
    assert opts[:2] == ["-F", os.path.expanduser("~/tb/config")]
    assert opts[opts.index("-p"):opts.index("-p") + 2] == ["-p", "2222"]
    assert os.path.expanduser("~/.ssh/k") in opts
    assert "BatchMode=yes" in opts and "ServerAliveInterval=5" in opts and "Compression=yes" in opts
    assert not any(o.startswith("StrictHostKeyChecking") for o in opts)  # the user's own ssh decides
    assert (host.sync_mode, host.sync_excludes, host.cleanup_remote_on_success) == ("push", ("data/",), True)
    assert host.needs_home()
    assert host.project_path(str(tmp_path)) == "~/work/p"
    assert host.project_path(str(tmp_path), "/home/u") == "/home/u/work/p"
    assert host.task_python("/home/u") == "/home/u/miniconda3/envs/x/bin/python"
    assert host.agent_python() == "miniconda3/envs/x/bin/python"


def test_host_settings_defaults(tmp_path: Path) -> None:
    host = read_ssh("server1", {}, _project(tmp_path).source_defaults)
    assert host.connection.host == "server1"
    assert (host.python, host.sync_mode, host.cleanup_remote_on_success) == ("python3", "push", False)
    assert not host.needs_home()
    assert host.project_path(str(tmp_path / "proj")) == str(tmp_path / "proj")  # the local project root's path
    assert host.task_python(None) == "python3" and host.agent_python() == "python3"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sync": "always"}, "source 's': sync: expected one of push, verify, got 'always'"),
        ({"sync_excludes": [1]}, "source 's': sync_excludes: expected a list of rsync patterns"),
        ({"ssh_port": "22"}, "source 's': ssh_port: expected a port number"),
        ({"ssh_options": ["-v"]}, "source 's': ssh_options: expected a list of 'Name=value' options"),
        ({"project_dir": ""}, "source 's': project_dir: expected a path or name"),
        ({"cleanup_remote_on_success": "yes"}, "source 's': cleanup_remote_on_success: expected true or false"),
    ],
)
def test_bad_settings_name_the_source_and_the_key(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        read_ssh("s", options, _project(tmp_path).source_defaults)


@pytest.mark.parametrize(
    ("path", "home", "expected"),
    [
        ("/abs/p", None, "/abs/p"),
        ("/abs/./p/", "/h", "/abs/p"),
        ("~/p q", None, "~/p q"),
        ("~/p q", "/home/u", "/home/u/p q"),
        ("rel/p", "/home/u", "/home/u/rel/p"),
        ("~", "/home/u", "/home/u"),
    ],
)
def test_resolve_remote(path: str, home: str | None, expected: str) -> None:
    assert resolve_remote(path, home) == expected


def test_resolve_remote_refuses_another_users_home() -> None:
    with pytest.raises(BadInput, match="only ~/"):
        resolve_remote("~bob/p", "/home/u")


def test_rsync_and_ssh_name_home_relative_paths_without_a_tilde() -> None:
    assert [login_relative(p) for p in ("~/a b", "~", "/abs", "rel")] == ["a b", ".", "/abs", "rel"]
    target = SshTarget(host="h")
    assert target.remote_path("~/my project/") == "h:my project/"
    # The remote command is one string for the remote shell: every word quoted.
    argv = target.ssh_argv(["python3", "-c", "print('x y')", "a'b"])
    assert argv[-2:] == ["h", "python3 -c 'print('\"'\"'x y'\"'\"')' 'a'\"'\"'b'"]
    assert shlex.split(argv[-1]) == ["python3", "-c", "print('x y')", "a'b"]


def test_conda_setup_quotes_the_env_name() -> None:
    assert conda_setup(None) == ""
    text = conda_setup("my env; rm -rf /")
    assert "conda activate 'my env; rm -rf /'" in text


@pytest.mark.parametrize(
    ("info", "status"),
    [
        ({"free_bytes": 50 * 2**30, "load1": 0.5, "cpus": 4, "mem_total": 100, "mem_available": 50}, "healthy"),
        ({"free_bytes": 1 * 2**30, "load1": 0.5, "cpus": 4, "mem_total": 100, "mem_available": 50}, "degraded"),
        ({"free_bytes": 50 * 2**30, "load1": 9.0, "cpus": 4, "mem_total": 100, "mem_available": 50}, "degraded"),
        ({"free_bytes": 50 * 2**30, "load1": 0.5, "cpus": 4, "mem_total": 100, "mem_available": 2}, "degraded"),
        ({"free_bytes": 100 * 2**20, "load1": 0.5, "cpus": 4, "mem_total": 100, "mem_available": 50}, "unhealthy"),
    ],
)
def test_classify_health(info: dict[str, Any], status: str) -> None:
    result = classify_health(info, {"disk_floor_mb": 200, "disk_min_free_gb": 3.0})
    assert result["status"] == status and result["ok"] is (status != "unhealthy")
    assert "GB free, load" in result["details"]


def test_the_older_remotes_form_gives_the_same_settings(tmp_path: Path) -> None:
    project = _project(tmp_path, {
        "ssh": {"ssh_config": "/etc/hsm/ssh_config"},
        "distributed": {"remotes": {"blossom": {"host": "blossom.lab", "ssh_key": "~/.ssh/id_ed25519",
                                                "ssh_port": 2200, "max_parallel_jobs": 2}}},
    })
    source = project.sources["blossom"]
    assert (source.type, source.max_parallel) == ("ssh", 2)
    target = SshTarget.from_connection(source.settings.connection)
    opts = target.ssh_options()
    assert target.host == "blossom.lab" and opts[:2] == ["-F", "/etc/hsm/ssh_config"]
    assert "2200" in opts and os.path.expanduser("~/.ssh/id_ed25519") in opts
