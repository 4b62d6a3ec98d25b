"""The sweep config: parsing, validation, counting and expansion."""

from __future__ import annotations

import itertools
import math
import random
import textwrap
from pathlib import Path

import pytest

from hsm.commands.expand import load_sweep_config
from hsm.core.spec import Distribution, RandomSpec, SweepSpec
from hsm.core.sweepconfig import parse_sweep_config
from hsm.errors import BadInput

WHERE = "sweeps/sweep_config.yaml"

# Seed 002's example sweep config, verbatim.
SEED_002 = """\
# sweeps/sweep_config.yaml
grid:
  learning_rate: [0.001, 0.01, 0.1]
  batch_size: [32, 64, 128]
  hidden_dim: [64, 128, 256]

metadata:
  description: "Hyperparameter search for my model"
  tags: ["baseline", "grid_search"]
"""


def write(tmp_path: Path, text: str, name: str = "sweep_config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def parse(data: object) -> SweepSpec:
    return parse_sweep_config(data, WHERE)


def refusal(data: object) -> str:
    with pytest.raises(BadInput) as info:
        parse(data)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{WHERE}: ")
    assert info.value.exit_code == 2
    return message


# --- grid ----------------------------------------------------------------------------------


def test_seed_002_grid_gives_27_combinations_first_key_outermost(tmp_path: Path) -> None:
    spec, raw = load_sweep_config(write(tmp_path, SEED_002))
    combos = list(spec.combinations())
    assert spec.count() == len(combos) == 27
    assert combos[:4] == [
        {"learning_rate": 0.001, "batch_size": 32, "hidden_dim": 64},
        {"learning_rate": 0.001, "batch_size": 32, "hidden_dim": 128},
        {"learning_rate": 0.001, "batch_size": 32, "hidden_dim": 256},
        {"learning_rate": 0.001, "batch_size": 64, "hidden_dim": 64},
    ]
    assert combos[-1] == {"learning_rate": 0.1, "batch_size": 128, "hidden_dim": 256}
    assert len({tuple(c.items()) for c in combos}) == 27
    assert spec.parameter_names() == ["learning_rate", "batch_size", "hidden_dim"]
    assert spec.describe() == [
        ("learning_rate", "3 values"),
        ("batch_size", "3 values"),
        ("hidden_dim", "3 values"),
    ]
    assert spec.metadata == {"description": "Hyperparameter search for my model", "tags": ["baseline", "grid_search"]}
    assert raw["grid"]["batch_size"] == [32, 64, 128]


def test_grid_under_sweep_is_the_same_as_top_level() -> None:
    grid = {"a": [1, 2], "b": ["x", "y", "z"]}
    top = parse({"grid": grid})
    nested = parse({"sweep": {"grid": grid}})
    assert list(top.combinations()) == list(nested.combinations())
    assert top.grid == nested.grid == (("a", (1, 2)), ("b", ("x", "y", "z")))


def test_nested_mappings_flatten_with_dots_and_dotted_keys_are_kept() -> None:
    spec = parse(
        {
            "grid": {
                "model": {"hidden_dim": [64, 128], "encoder": {"layers": [2]}},
                "optimizer.lr": [0.1, 0.01],
            }
        }
    )
    assert spec.parameter_names() == ["model.hidden_dim", "model.encoder.layers", "optimizer.lr"]
    assert next(spec.combinations()) == {"model.hidden_dim": 64, "model.encoder.layers": 2, "optimizer.lr": 0.1}
    assert spec.count() == 4


def test_list_of_lists_gives_list_valued_values() -> None:
    spec = parse({"grid": {"layers": [[64, 64], [128, 64, 32]], "seed": [1]}})
    assert list(spec.combinations()) == [
        {"layers": [64, 64], "seed": 1},
        {"layers": [128, 64, 32], "seed": 1},
    ]


def test_values_of_any_yaml_type_are_kept(tmp_path: Path) -> None:
    spec, _ = load_sweep_config(write(tmp_path, "grid:\n  opt: [adam, null, true, 1.5e-3, 'x y']\n"))
    assert [c["opt"] for c in spec.combinations()] == ["adam", None, True, 1.5e-3, "x y"]


def test_combinations_are_lazy_and_count_is_arithmetic() -> None:
    spec = parse({"grid": {f"p{i}": list(range(100)) for i in range(6)}})
    assert spec.count() == 100**6
    first = next(spec.combinations())
    assert first == {f"p{i}": 0 for i in range(6)}


def test_each_combination_is_a_new_dict() -> None:
    spec = parse({"grid": {"a": [1, 2]}})
    combos = list(spec.combinations())
    combos[0]["a"] = 99
    assert list(spec.combinations())[0] == {"a": 1}
    assert combos[1] == {"a": 2}


# --- paired --------------------------------------------------------------------------------

PAIRED = {
    "grid": {"seed": [1, 2]},
    "sweep": {
        "paired": [
            {"model": ["small", "large"], "lr": [0.1, 0.01]},
            {"arch": {"name": ["vit", "mlp", "cnn"], "depth": [12, 4, 8]}},
        ]
    },
}


def test_paired_total_is_grid_times_sum_of_group_lengths() -> None:
    spec = parse(PAIRED)
    assert spec.count() == 2 * (2 + 3) == len(list(spec.combinations()))


def test_paired_order_grid_outermost_then_group_rows_in_order() -> None:
    combos = list(parse(PAIRED).combinations())
    assert combos[:5] == [
        {"seed": 1, "model": "small", "lr": 0.1},
        {"seed": 1, "model": "large", "lr": 0.01},
        {"seed": 1, "name": "vit", "depth": 12},
        {"seed": 1, "name": "mlp", "depth": 4},
        {"seed": 1, "name": "cnn", "depth": 8},
    ]
    assert combos[5] == {"seed": 2, "model": "small", "lr": 0.1}


def test_a_task_of_one_group_does_not_carry_the_other_groups_parameters() -> None:
    for combo in parse(PAIRED).combinations():
        assert set(combo) in ({"seed", "model", "lr"}, {"seed", "name", "depth"})


def test_single_key_mapping_names_the_group_and_other_groups_are_unnamed() -> None:
    spec = parse(PAIRED)
    assert spec.paired == (
        (None, ("model", "lr"), (("small", 0.1), ("large", 0.01))),
        ("arch", ("name", "depth"), (("vit", 12), ("mlp", 4), ("cnn", 8))),
    )
    assert spec.describe() == [
        ("seed", "2 values"),
        ("model", "paired group 1: 2 values"),
        ("lr", "paired group 1: 2 values"),
        ("name", "paired group arch: 3 values"),
        ("depth", "paired group arch: 3 values"),
    ]
    assert spec.parameter_names() == ["seed", "model", "lr", "name", "depth"]


def test_paired_groups_flatten_nested_mappings() -> None:
    spec = parse({"sweep": {"paired": [{"model": {"width": [1, 2]}, "optimizer.lr": [0.1, 0.2]}]}})
    assert list(spec.combinations()) == [
        {"model.width": 1, "optimizer.lr": 0.1},
        {"model.width": 2, "optimizer.lr": 0.2},
    ]


def test_paired_only_without_grid() -> None:
    spec = parse({"sweep": {"paired": [{"a": [1, 2], "b": [3, 4]}, {"c": [5]}]}})
    assert list(spec.combinations()) == [{"a": 1, "b": 3}, {"a": 2, "b": 4}, {"c": 5}]
    assert spec.count() == 3


def test_the_same_parameter_may_appear_in_two_paired_groups() -> None:
    # Groups are alternatives, so each may choose its own values for a shared parameter.
    spec = parse({"sweep": {"paired": [{"model": ["a"], "lr": [0.1]}, {"model": ["b", "c"], "lr": [1, 2]}]}})
    assert [c["model"] for c in spec.combinations()] == ["a", "b", "c"]
    assert spec.parameter_names() == ["model", "lr"]


# --- random --------------------------------------------------------------------------------

RANDOM = {
    "n": 200,
    "seed": 7,
    "parameters": {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "dropout": {"uniform": [0.0, 0.5]},
        "layers": {"int": [1, 3]},
        "act": {"choice": ["relu", "gelu"]},
    },
}


def test_random_alone_gives_n_tasks_within_bounds() -> None:
    spec = parse({"random": RANDOM})
    combos = list(spec.combinations())
    assert spec.count() == len(combos) == 200
    assert all(1e-4 <= c["lr"] <= 1e-1 for c in combos)
    assert all(0.0 <= c["dropout"] <= 0.5 for c in combos)
    assert {c["layers"] for c in combos} == {1, 2, 3}  # int bounds are inclusive
    assert all(isinstance(c["layers"], int) for c in combos)
    assert {c["act"] for c in combos} == {"relu", "gelu"}
    assert list(combos[0]) == ["lr", "dropout", "layers", "act"]


def test_random_is_reproducible_and_the_seed_matters() -> None:
    first = list(parse({"random": RANDOM}).combinations())
    again = list(parse({"random": RANDOM}).combinations())
    other = list(parse({"random": {**RANDOM, "seed": 8}}).combinations())
    assert first == again
    assert first != other


def test_random_draws_in_listed_order_with_full_precision() -> None:
    spec = parse({"random": {"n": 2, "seed": 3, "a": {"uniform": [0, 10]}, "b": {"int": [0, 100]}}})
    rng = random.Random(3)
    expected = []
    for _ in range(2):
        a = rng.uniform(0, 10)
        expected.append({"a": a, "b": rng.randint(0, 100)})
    assert list(spec.combinations()) == expected


def test_random_seed_defaults_to_zero() -> None:
    without = parse({"random": {"n": 5, "x": {"uniform": [0, 1]}}})
    with_zero = parse({"random": {"n": 5, "seed": 0, "x": {"uniform": [0, 1]}}})
    assert without.random is not None and without.random.seed == 0
    assert list(without.combinations()) == list(with_zero.combinations())


def test_random_long_form_is_the_same_as_short_form() -> None:
    short = parse({"random": {"n": 20, "a": {"loguniform": [0.001, 1]}, "b": {"choice": [1, 2, 3]}}})
    long = parse(
        {
            "random": {
                "n": 20,
                "parameters": {
                    "a": {"type": "loguniform", "low": 0.001, "high": 1},
                    "b": {"type": "choice", "values": [1, 2, 3]},
                },
            }
        }
    )
    assert short.random == long.random
    assert list(short.combinations()) == list(long.combinations())
    assert long.random == RandomSpec(
        n=20,
        seed=0,
        parameters=(("a", Distribution("loguniform", 0.001, 1)), ("b", Distribution("choice", values=(1, 2, 3)))),
    )


def test_random_crossed_with_grid_and_paired_grid_outermost_samples_inner() -> None:
    spec = parse(
        {
            "grid": {"seed": [1, 2, 3]},
            "sweep": {"paired": [{"m": ["a", "b"]}, {"k": [9]}]},
            "random": {"n": 4, "seed": 1, "lr": {"uniform": [0, 1]}},
        }
    )
    combos = list(spec.combinations())
    assert spec.count() == len(combos) == 3 * (2 + 1) * 4
    samples = [c["lr"] for c in combos[:4]]
    assert len(set(samples)) == 4
    # The same n samples are drawn once and crossed with every grid/paired combination.
    assert [c["lr"] for c in combos] == samples * 9
    assert [(c["seed"], c.get("m"), c.get("k")) for c in combos[::4]] == [
        (s, m, k) for s in (1, 2, 3) for m, k in (("a", None), ("b", None), (None, 9))
    ]


def test_random_describe() -> None:
    assert parse({"random": RANDOM}).describe() == [
        ("lr", "loguniform(0.0001, 0.1)"),
        ("dropout", "uniform(0.0, 0.5)"),
        ("layers", "int(1, 3)"),
        ("act", "choice of 2 values"),
    ]


# --- other keys ----------------------------------------------------------------------------


def test_command_arg_style_metadata_and_defaults_are_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        defaults:
          - override: 'hydra/launcher: basic'
          - override hydra/launcher: basic
          - _self_
        command: python train.py {params}
        arg_style: argparse
        metadata: {owner: me}
        grid:
          a: [1, 2]
        """,
    )
    spec, _ = load_sweep_config(path)
    assert spec.defaults == [
        {"override": "hydra/launcher: basic"},
        {"override hydra/launcher": "basic"},
        "_self_",
    ]
    assert spec.command == "python train.py {params}"
    assert spec.arg_style == "argparse"
    assert spec.metadata == {"owner": "me"}
    assert spec.count() == 2  # defaults add no combinations
    assert spec.parameter_names() == ["a"]


def test_optional_keys_default_to_nothing() -> None:
    spec = parse({"grid": {"a": [1]}, "metadata": None, "defaults": None})
    assert (spec.command, spec.arg_style, spec.metadata, spec.defaults, spec.random) == (None, None, {}, [], None)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        (["a"], "top level", "expected a mapping"),
        (None, "top level", "expected a mapping"),
        ({"grid": {"a": [1]}, "gird": {}}, "gird", "unknown key"),
        ({"sweep": {"grid": {"a": [1]}, "pared": []}}, "sweep.pared", "unknown key"),
        ({"sweep": [1]}, "sweep", "expected a mapping"),
        ({"grid": {"a": [1]}, "sweep": {"grid": {"b": [1]}}}, "sweep.grid", "both"),
        ({"grid": [1, 2]}, "grid", "expected a mapping"),
        ({"grid": None}, "grid", "expected a mapping"),
        ({"grid": {"model": {"hidden_dim": 64}}}, "grid.model.hidden_dim", "expected a list of values, got 64"),
        ({"sweep": {"grid": {"lr": "0.1"}}}, "sweep.grid.lr", "expected a list of values, got '0.1'"),
        ({"grid": {"a": []}}, "grid.a", "empty list"),
        ({"grid": {"model": {}}}, "grid.model", "empty mapping"),
        ({"grid": {"a.b": [1], "a": {"b": [2]}}}, "grid.a.b", "'a.b' is given twice"),
        ({"grid": {"a": {"b": [2]}}, "sweep": {"paired": [{"a.b": [1]}]}}, "sweep.paired[0].a.b", "grid.a.b"),
        ({"grid": {"a b": [1]}}, "grid", "'a b' must not contain '=' or whitespace"),
        ({"grid": {"a=b": [1]}}, "grid", "'a=b' must not contain '='"),
        ({"grid": {"model": {"x\ty": [1]}}}, "grid.model", "'model.x\\ty'"),
        ({"grid": {"": [1]}}, "grid", "empty parameter name"),
        ({"grid": {"a..b": [1]}}, "grid", "empty part between dots"),
        ({"grid": {"model": {"": [1]}}}, "grid.model", "empty part between dots"),
        ({"grid": {True: [1]}}, "grid.True", "must be strings"),
        ({"grid": {}}, "top level", "no parameters"),
        ({"metadata": {"a": 1}}, "top level", "no parameters"),
        ({"sweep": {"paired": {"a": [1]}}}, "sweep.paired", "expected a list of groups"),
        ({"sweep": {"paired": None}}, "sweep.paired", "expected a list of groups"),
        ({"sweep": {"paired": []}}, "sweep.paired", "empty list"),
        ({"sweep": {"paired": [[1, 2]]}}, "sweep.paired[0]", "expected a mapping"),
        ({"sweep": {"paired": [{"a": [1, 2], "b": [1, 2, 3]}]}}, "sweep.paired[0]", "a has 2, b has 3"),
        (
            {"sweep": {"paired": [{"a": [1]}, {"g": {"a": [1, 2], "b": [1]}}]}},
            "sweep.paired[1].g",
            "a has 2, b has 1",
        ),
        ({"sweep": {"paired": [{"g": {}}]}}, "sweep.paired[0].g", "empty group"),
        ({"sweep": {"paired": [{"a": 5}]}}, "sweep.paired[0].a", "expected a list of values, got 5"),
        ({"sweep": {"paired": [{"a": [], "b": []}]}}, "sweep.paired[0].a", "empty list"),
        (
            {"grid": {"lr": [1]}, "sweep": {"paired": [{"lr": [1], "b": [2]}]}},
            "sweep.paired[0].lr",
            "'lr' is also given in grid.lr",
        ),
        ({"sweep": {"paired": [{"a": [1], "a.b": [2], "c": {"d": [3]}, "c.d": [4]}]}}, "sweep.paired[0].c.d", "twice"),
        (
            {"grid": {"lr": [1]}, "random": {"n": 2, "lr": {"uniform": [0, 1]}}},
            "random.lr",
            "'lr' is also given in grid.lr",
        ),
        (
            {"sweep": {"paired": [{"x": [1]}]}, "random": {"n": 2, "parameters": {"x": {"uniform": [0, 1]}}}},
            "random.parameters.x",
            "also given in sweep.paired[0].x",
        ),
        ({"random": [1]}, "random", "expected a mapping"),
        ({"random": {"x": {"uniform": [0, 1]}}}, "random.n", "missing"),
        ({"random": {"n": 0, "x": {"uniform": [0, 1]}}}, "random.n", "expected an integer >= 1, got 0"),
        ({"random": {"n": 2.5, "x": {"uniform": [0, 1]}}}, "random.n", "got 2.5"),
        ({"random": {"n": True, "x": {"uniform": [0, 1]}}}, "random.n", "got True"),
        ({"random": {"n": 1, "seed": "abc", "x": {"uniform": [0, 1]}}}, "random.seed", "expected an integer"),
        ({"random": {"n": 1}}, "random", "no parameters to sample"),
        ({"random": {"n": 1, "parameters": {}}}, "random.parameters", "no parameters to sample"),
        ({"random": {"n": 1, "parameters": [1]}}, "random.parameters", "expected a mapping"),
        (
            {"random": {"n": 1, "parameters": {"x": {"uniform": [0, 1]}}, "y": {"uniform": [0, 1]}}},
            "random.y",
            "unknown key",
        ),
        ({"random": {"n": 1, "x": {"uniform": [1, 1]}}}, "random.x.uniform", "low must be below high"),
        ({"random": {"n": 1, "x": {"uniform": [2, 1]}}}, "random.x.uniform", "low must be below high"),
        ({"random": {"n": 1, "x": {"uniform": ["a", 1]}}}, "random.x.uniform", "two finite numbers"),
        ({"random": {"n": 1, "x": {"uniform": [0, float("inf")]}}}, "random.x.uniform", "two finite numbers"),
        ({"random": {"n": 1, "x": {"uniform": [0, 1, 2]}}}, "random.x.uniform", "expected [low, high]"),
        ({"random": {"n": 1, "x": {"uniform": 1}}}, "random.x.uniform", "expected [low, high]"),
        ({"random": {"n": 1, "x": {"loguniform": [0, 1]}}}, "random.x.loguniform", "low > 0"),
        ({"random": {"n": 1, "x": {"int": [0.5, 3]}}}, "random.x.int", "two integers"),
        ({"random": {"n": 1, "x": {"int": [3, 3]}}}, "random.x.int", "low must be below high"),
        ({"random": {"n": 1, "x": {"choice": []}}}, "random.x.choice", "empty list"),
        ({"random": {"n": 1, "x": {"choice": "ab"}}}, "random.x.choice", "expected a list"),
        ({"random": {"n": 1, "x": {"normal": [0, 1]}}}, "random.x.normal", "unknown distribution"),
        ({"random": {"n": 1, "x": {"uniform": [0, 1], "int": [0, 1]}}}, "random.x", "expected one of"),
        ({"random": {"n": 1, "x": [0, 1]}}, "random.x", "expected one of"),
        ({"random": {"n": 1, "x": {"type": "gauss", "low": 0, "high": 1}}}, "random.x.type", "unknown distribution"),
        ({"random": {"n": 1, "x": {"type": "uniform", "low": 0}}}, "random.x.high", "missing"),
        (
            {"random": {"n": 1, "x": {"type": "uniform", "low": 0, "high": 1, "step": 2}}},
            "random.x.step",
            "unknown key",
        ),
        ({"random": {"n": 1, "x": {"type": "choice", "low": 0}}}, "random.x.low", "unknown key"),
        ({"random": {"n": 1, "x": {"type": "int", "low": 5, "high": 1}}}, "random.x", "low must be below high"),
        ({"random": {"n": 1, "a b": {"uniform": [0, 1]}}}, "random", "must not contain"),
        ({"grid": {"a": [1]}, "command": ""}, "command", "non-empty"),
        ({"grid": {"a": [1]}, "command": ["python"]}, "command", "non-empty"),
        ({"grid": {"a": [1]}, "arg_style": "click"}, "arg_style", "expected hydra or argparse"),
        ({"grid": {"a": [1]}, "metadata": [1]}, "metadata", "expected a mapping"),
        ({"grid": {"a": [1]}, "defaults": "basic"}, "defaults", "expected a Hydra defaults list"),
        ({"grid": {"a": [1]}, "defaults": ["_self_", 3]}, "defaults[1]", "expected a string or a mapping"),
    ],
)
def test_refusals_name_the_file_and_the_key(data: object, key: str, problem: str) -> None:
    message = refusal(data)
    assert message.startswith(f"{WHERE}: {key}: "), message
    assert problem in message, message


def test_refusal_example_message_exactly() -> None:
    message = refusal({"grid": {"model": {"hidden_dim": 64}}})
    assert message == "sweeps/sweep_config.yaml: grid.model.hidden_dim: expected a list of values, got 64"


# --- loading files -------------------------------------------------------------------------


def test_load_reports_malformed_yaml_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "grid:\n  a: [1, 2\n  b: [3]\n")
    with pytest.raises(BadInput) as info:
        load_sweep_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3, column ")
    assert "\n" not in message


def test_load_reports_a_bad_indent_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, "grid:\n  a: [1]\n b: [2]\n")
    with pytest.raises(BadInput, match=rf"^{path}: line 3, column 2: "):
        load_sweep_config(path)


def test_load_names_the_context_of_a_second_document(tmp_path: Path) -> None:
    path = write(tmp_path, "grid: {a: [1]}\n---\ngrid: {b: [1]}\n")
    with pytest.raises(BadInput) as info:
        load_sweep_config(path)
    assert str(info.value) == (
        f"{path}: line 2, column 1: expected a single document in the stream, but found another document"
    )


def test_load_refuses_a_key_given_twice(tmp_path: Path) -> None:
    path = write(tmp_path, "grid:\n  lr: [1, 2]\n  lr: [3]\n")
    with pytest.raises(BadInput) as info:
        load_sweep_config(path)
    assert str(info.value) == f"{path}: line 3, column 3: found duplicate key 'lr'"


def test_load_allows_merge_keys_to_be_overridden(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        metadata:
          base: &base {lr: [1], wd: [0]}
        grid:
          <<: *base
          lr: [2, 3]
        """,
    )
    spec, _ = load_sweep_config(path)
    assert dict(spec.grid) == {"lr": (2, 3), "wd": (0,)}


def test_load_refuses_a_non_mapping_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(BadInput) as info:
        load_sweep_config(path)
    assert str(info.value) == f"{path}: top level: expected a mapping of keys, got ['a', 'b']"


def test_load_refuses_an_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    with pytest.raises(BadInput, match=r"top level: expected a mapping of keys, got None"):
        load_sweep_config(path)


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(BadInput) as info:
        load_sweep_config(path)
    assert str(info.value) == f"{path}: no such file"


def test_load_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="is a directory"):
        load_sweep_config(tmp_path)


def test_load_refuses_invalid_config_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "grid:\n  model:\n    hidden_dim: 64\n")
    with pytest.raises(BadInput) as info:
        load_sweep_config(path)
    assert str(info.value) == f"{path}: grid.model.hidden_dim: expected a list of values, got 64"


def test_load_returns_the_raw_data_alongside_the_spec(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        sweep:
          grid:
            a: [1, 2]
          paired:
            - {b: [1], c: [2]}
        random: {n: 3, x: {int: [0, 9]}}
        """,
    )
    spec, raw = load_sweep_config(path)
    assert raw == {
        "sweep": {"grid": {"a": [1, 2]}, "paired": [{"b": [1], "c": [2]}]},
        "random": {"n": 3, "x": {"int": [0, 9]}},
    }
    assert spec.count() == 2 * 1 * 3 == len(list(spec.combinations()))


# --- count agrees with expansion -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"grid": {"a": [1, 2, 3], "b": [1, 2]}},
        {"sweep": {"paired": [{"a": [1, 2]}, {"b": [1, 2, 3]}, {"c": [1]}]}},
        {"grid": {"a": [1]}, "sweep": {"paired": [{"b": [1, 2]}]}, "random": {"n": 5, "x": {"uniform": [0, 1]}}},
        {"random": {"n": 1, "x": {"choice": [[1, 2], [3]]}}},
    ],
)
def test_count_matches_the_number_of_combinations(data: dict) -> None:
    spec = parse(data)
    combos = list(spec.combinations())
    assert spec.count() == len(combos)
    assert all(set(c) <= set(spec.parameter_names()) for c in combos)


def test_grid_order_is_itertools_product_order() -> None:
    grid = {"a": [1, 2], "b": [3, 4, 5], "c": [6, 7]}
    spec = parse({"grid": grid})
    expected = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    assert list(spec.combinations()) == expected
    assert spec.count() == math.prod(len(v) for v in grid.values())
