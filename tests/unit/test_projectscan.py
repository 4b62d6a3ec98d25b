"""What `hsm init` reads from a training script, the example grid it makes, and the texts it renders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from hsm.commands.init import partitions, ssh_hosts
from hsm.config import parse_config
from hsm.core.projectscan import (
    InitPlan,
    Param,
    example_grid,
    example_values,
    hsm_config_text,
    hydra_params,
    scan_script,
    sweep_config_text,
    yaml_scalar,
)
from hsm.core.sweepconfig import parse_sweep_config

APPS = Path(__file__).resolve().parents[1] / "apps"

ARGPARSE_SCRIPT = """\
import argparse

raise SystemExit("never run")

def main():
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("extra", nargs="?")
    p.add_argument("-l", "--lr", "--learning-rate", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=10, help="passes")
    p.add_argument("--optimizer", choices=["adam", "sgd", "rmsprop"], default="adam")
    p.add_argument("--name", default="run")
    p.add_argument("--seed", type=int)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--layers", nargs="+", type=int)
    p.add_argument("-q")
    p.add_argument("--scale", default=0.5)
    p.add_argument("--mode", type=str, required=True)
    p.add_argument("--path", type=Path, default=Path("x"))
"""


def test_an_argparse_script_gives_its_long_options_with_defaults_types_and_choices() -> None:
    scan = scan_script(ARGPARSE_SCRIPT)
    assert scan.kind == "argparse"
    params = {p.name: p for p in scan.params}
    # Flags, lists, short-only options take no single value hsm could pass as --name value.
    assert list(params) == ["lr", "epochs", "optimizer", "name", "seed", "scale", "mode", "path"]
    assert params["lr"] == Param("lr", "float", 1e-3, True)
    assert params["epochs"] == Param("epochs", "int", 10, True)
    assert params["optimizer"].choices == ("adam", "sgd", "rmsprop")
    assert params["name"] == Param("name", "str", "run", True)
    assert params["seed"] == Param("seed", "int")
    assert params["scale"].kind == "other"  # no type=: the script would get the string "0.05"
    assert params["mode"].required and params["path"].kind == "other"
    assert scan.positionals == ("data_dir",)


def test_options_made_in_a_loop_are_read_too() -> None:
    scan = scan_script((APPS / "argparse_app.py").read_text(encoding="utf-8"))
    assert scan.kind == "argparse"
    assert [p.name for p in scan.params] == ["a", "b", "model.hidden_dim", "lr", "tag"]
    assert all(p.kind == "str" and not p.has_default for p in scan.params)


@pytest.mark.parametrize("decorator, path, name", [
    ('@hydra.main(version_base=None, config_path="conf", config_name="config")', "conf", "config"),
    ('@hydra.main("../configs", "train")', "../configs", "train"),
    ('@hydra.main(config_path="conf/config.yaml")', "conf", "config.yaml"),
    ("@main(config_name='x')", None, "x"),
])
def test_a_hydra_app_gives_where_its_primary_config_is(decorator: str, path: str | None, name: str) -> None:
    source = f"import argparse\nimport hydra\nfrom hydra import main\n\n{decorator}\ndef run(cfg):\n    pass\n"
    scan = scan_script(source)
    assert (scan.kind, scan.config_path, scan.config_name) == ("hydra", path, name)


def test_a_hydra_app_with_a_config_store_node_gives_its_literal_keys() -> None:
    scan = scan_script((APPS / "hydra_app.py").read_text(encoding="utf-8"))
    assert scan.kind == "hydra" and scan.config_path is None and scan.config_name == "hsm_test_app"
    node = (scan.stores or {})["hsm_test_app"]
    assert node == {"a": None, "b": None, "model": {"hidden_dim": None}}  # the **{...} spread is not literal
    assert [p.name for p in hydra_params(node)] == ["a", "b", "model.hidden_dim"]


@pytest.mark.parametrize("source", ["print('hello')\n", "def broken(:\n", "import sys\nsys.argv\n", "\x00"])
def test_other_scripts_are_plain(source: str) -> None:
    assert scan_script(source).kind == "plain"


def test_hydra_config_keys_are_dotted_and_hydras_own_keys_left_out() -> None:
    config = {
        "defaults": ["_self_", {"model": "mlp"}], "hydra": {"run": {"dir": "."}},
        "lr": 0.01, "epochs": 5, "use_amp": False, "name": "mlp", "seed": None, "data": "???",
        "model": {"_target_": "m.Model", "hidden_dim": 64, "act": "relu"},
        "out": "${hydra:runtime.cwd}/x", "layers": [64, 64], 3: "x", "bad key": 1,
    }
    params = {p.name: p for p in hydra_params(config)}
    assert list(params) == ["lr", "epochs", "use_amp", "name", "seed", "data", "model.hidden_dim", "model.act"]
    assert params["use_amp"].kind == "bool" and params["seed"].kind == "any"
    assert params["data"].required and not params["data"].has_default


@pytest.mark.parametrize("param, values", [
    (Param("lr", "float", 0.001, True), [0.001, 0.0001]),
    (Param("lr", "float", 0.7, True), [0.7, 0.07]),  # not 0.06999999999999999
    (Param("w", "float", 0, True), [0.0, 0.1]),
    (Param("n", "int", 32, True), [32, 64]),
    (Param("n", "int", 0, True), [0, 1]),
    (Param("amp", "bool", True, True), [True, False]),
    (Param("opt", "str", "adam", True, ("adam", "sgd", "rmsprop")), ["adam", "sgd"]),
    (Param("name", "str", "run", True), ["run"]),
    (Param("seed", "int"), [1, 2]),
    (Param("tag", "str"), ["a", "b"]),
    (Param("x", "any"), [1, 2]),
    (Param("x", "other", 0.5, True), None),
    (Param("x", "float", math.inf, True), None),
])
def test_example_values_are_values_the_script_takes(param: Param, values: list[object] | None) -> None:
    assert example_values(param) == values


def test_the_grid_takes_two_parameters_numbers_first_in_the_scripts_order() -> None:
    params = [Param("name", "str", "run", True), Param("epochs", "int", 10, True),
              Param("opt", "str", "adam", True, ("adam", "sgd")), Param("lr", "float", 0.01, True)]
    assert example_grid(params) == [(params[1], [10, 20]), (params[3], [0.01, 0.001])]
    assert example_grid(params[:1]) == [(params[0], ["run"])]
    assert example_grid([]) == []


def test_required_parameters_are_always_in_the_grid() -> None:
    params = [Param("lr", "float", 0.1, True), Param("a", "str", required=True), Param("n", "int", 2, True),
              Param("b", "int", required=True), Param("c", "str", required=True)]
    grid = example_grid(params)
    assert [(p.name, v) for p, v in grid] == [("a", ["a", "b"]), ("b", [1, 2]), ("c", ["a"])]


@pytest.mark.parametrize("value", [
    None, True, False, 0, -3, 10**20, 0.1, 1e-05, -2.5e-10, 1e16, 0.1 / 3, "adam", "yes", "No", "null", "~", "1",
    "0.5", "1e-3", "", " x", "a b", "x: y", "#x", "[x]", "{x}", "a,b", "-x", "/opt/conda/envs/ml/bin/python",
    "scripts/train.py", "ünïcödé", "tab\there", "new\nline", "'quoted'", '"dq"', "\u0085", "@at", "`tick", "%p",
])
def test_yaml_scalars_load_back_as_the_same_value(value: object) -> None:
    text = yaml_scalar(value)
    assert yaml.safe_load(f"k: {text}") == {"k": value}
    assert yaml.safe_load(f"k: [{text}, {text}]") == {"k": [value, value]}  # flow context too


def _plan(**changes: object) -> InitPlan:
    base: dict[str, object] = dict(project_name="my: project", training_script="train.py", script_kind="argparse",
                                   python_interpreter="/usr/bin/python3")
    return InitPlan(**{**base, **changes})  # type: ignore[arg-type]


def test_the_hsm_config_loads_as_every_command_loads_it(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("", encoding="utf-8")
    plan = _plan(conda_env="ml", hpc_system="slurm", queue="gpu", partitions=("debug", "gpu"), local_max=3,
                 ssh_hosts=("server1", "yes"))
    text = hsm_config_text(plan)
    config = parse_config(yaml.safe_load(text), tmp_path / "hsm_config.yaml", tmp_path)
    assert (config.training_script, config.python_interpreter, config.conda_env) == ("train.py", "/usr/bin/python3", "ml")
    assert config.arg_style == "argparse" and config.hpc == {"system": "slurm", "queue": "gpu"}
    assert list(config.sources) == ["local"] and config.sources["local"].max_parallel == 3
    assert config.raw["project"]["name"] == "my: project"
    # The SSH hosts are there to be uncommented: each one loads as a source when it is.
    uncommented = text.replace("  # server1:", "  server1:").replace("  #   ", "    ")
    assert "server1" in parse_config(yaml.safe_load(uncommented), None, tmp_path).sources


def test_without_a_scheduler_or_script_the_hpc_section_and_script_are_commented_out(tmp_path: Path) -> None:
    text = hsm_config_text(_plan(training_script=None, script_kind="none"))
    data = yaml.safe_load(text)
    assert "hpc" not in data and "training_script" not in data["paths"] and data["execution"]["arg_style"] == "hydra"
    assert "# hpc:" in text and "# training_script:" in text
    parse_config(data, tmp_path / "hsm_config.yaml", tmp_path)


def test_the_sweep_config_holds_the_grid_and_says_where_its_values_come_from() -> None:
    lr, n = Param("lr", "float", 1e-05, True), Param("model.hidden_dim", "int", 64, True)
    plan = _plan(script_kind="hydra", grid=((lr, (1e-05, 1e-06)), (n, (64, 128))), params_from="conf/config.yaml",
                 others=(Param("seed", "any"),), positionals=("data_dir",))
    text = sweep_config_text(plan)
    spec = parse_sweep_config(yaml.safe_load(text), "sweep_config.yaml")
    assert spec.arg_style == "hydra"
    assert [(name, list(values)) for name, values in spec.grid] == [("lr", [1e-05, 1e-06]), ("model.hidden_dim", [64, 128])]
    assert "conf/config.yaml: 2 × 2 = 4 tasks" in text and "seed" in text and "command:" in text


def test_with_no_parameters_the_grid_is_a_commented_example() -> None:
    text = sweep_config_text(_plan(training_script=None, script_kind="none"))
    data = yaml.safe_load(text)
    assert "grid" not in data and "arg_style" not in data and "# grid:" in text


def test_ssh_hosts_are_the_host_names_without_patterns() -> None:
    config = ("Host server1 server2\n  HostName 10.0.0.1\nHost *.example.com\nHost *\n  User me\n"
              "host=gpu-box # a comment\nHOST !bad \"quoted\" server1\nMatch host x\nHostname y\n")
    assert ssh_hosts(config) == ["server1", "server2", "gpu-box", "quoted"]
    assert ssh_hosts("") == []


def test_partitions_and_the_default_one() -> None:
    assert partitions("debug\ngpu*\ngpu*\nlong\n") == (["debug", "gpu", "long"], "gpu")
    assert partitions("batch\nlong\n") == (["batch", "long"], "batch")
    assert partitions("") == ([], None)
