"""Hydra's sweep syntax in sweep configs and on the command line, read with Hydra's own grammar."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm.commands import expand as expand_cmd
from hsm.config import load_project
from hsm.core.spec import Distribution, HydraSweep, RandomSpec, SweepSpec, is_sweep_text
from hsm.core.sweepconfig import parse_sweep_config
from hsm.errors import BadInput
from hsm.hydra_sweeps import parse_overrides, parse_value

pytest.importorskip("hydra")

WHERE = "sweeps/sweep_config.yaml"


def parse(data: object) -> SweepSpec:
    return parse_sweep_config(data, WHERE, parse_value)


def refused(data: object, parser=parse_value) -> str:
    with pytest.raises(BadInput) as info:
        parse_sweep_config(data, WHERE, parser)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{WHERE}: "), message
    return message


# --- the grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "values"), [
    ("range(1,5)", "range", (1, 2, 3, 4)),
    ("range(0,1,0.25)", "range", (0.0, 0.25, 0.5, 0.75)),
    ("choice(a,b)", "choice", ("a", "b")),
    ("choice('1', \"x y\", true, [1,2])", "choice", ("1", "x y", True, [1, 2])),
    ("sort(choice(3,1,2))", "choice", (1, 2, 3)),
])
def test_hydra_enumerates_the_sweep(text: str, kind: str, values: tuple) -> None:
    sweep = parse_value(text)
    assert sweep == HydraSweep(kind, values=values)
    assert [type(v) for v in sweep.values] == [type(v) for v in values]


def test_intervals_keep_their_bounds_and_log_tag() -> None:
    assert parse_value("interval(0,1)") == HydraSweep("interval", low=0.0, high=1.0)
    assert parse_value("tag(log, interval(1e-4,1e-1))") == HydraSweep("interval", low=1e-4, high=1e-1, log=True)


def test_a_valid_value_that_is_no_sweep_is_none_and_bad_syntax_a_one_line_value_error() -> None:
    assert parse_value("sort([3,1])") is None
    assert parse_value("int(3.5)") is None
    for text in ("range(a)", "range(1,", "choice()", "glob(*)", "range(1,3),4"):
        with pytest.raises(ValueError) as info:
            parse_value(text)
        assert "\n" not in str(info.value) and str(info.value), text


@pytest.mark.parametrize("text", ["range(1,5)", " choice(a,b) ", "interval(0,1)", "tag(log, interval(1,2))"])
def test_what_reads_as_sweep_syntax(text: str) -> None:
    assert is_sweep_text(text)


@pytest.mark.parametrize("text", ["choice", "my(range)", "str(1)", "range(1", "ranges(1,2)", 5, None])
def test_what_stays_a_plain_value(text: object) -> None:
    assert not is_sweep_text(text)


# --- sweep configs -----------------------------------------------------------------------------


def test_grid_range_gives_its_ints() -> None:
    spec = parse({"grid": {"lr": "range(1,5)"}})
    assert [c["lr"] for c in spec.combinations()] == [1, 2, 3, 4]
    assert all(type(c["lr"]) is int for c in spec.combinations())


def test_grid_float_range_nested_and_crossed() -> None:
    spec = parse({"sweep": {"grid": {"opt": {"lr": "range(0,1,0.25)"}, "act": "choice(relu,gelu)", "seed": [7]}}})
    assert spec.grid == (("opt.lr", (0.0, 0.25, 0.5, 0.75)), ("act", ("relu", "gelu")), ("seed", (7,)))
    assert spec.count() == 8


def test_paired_groups_take_sweeps_too() -> None:
    spec = parse({"sweep": {"paired": [{"a": "range(1,4)", "b": ["x", "y", "z"]}]}})
    assert list(spec.combinations()) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}]


def test_plain_strings_that_look_similar_stay_strings() -> None:
    spec = parse({"grid": {"name": ["my(range)", "choice", "str(1)"]}})
    assert spec.grid == (("name", ("my(range)", "choice", "str(1)")),)
    assert "expected a list of values, got 'choice'" in refused({"grid": {"name": "choice"}})
    assert "expected a list of values, got 'sort([3,1])'" in refused({"grid": {"name": "sort([3,1])"}})


def test_the_list_yaml_split_at_the_commas_is_refused_saying_to_quote_it() -> None:
    # `lr: [range(1,5)]` as YAML reads it.
    message = refused({"grid": {"lr": ["range(1", "5)"]}})
    assert message == (f"{WHERE}: grid.lr: YAML read [range(1,5)] as the separate items 'range(1', '5)': "
                       "to sweep range(1,5), quote it and leave out the brackets: lr: \"range(1,5)\"")
    assert "'range(0', 1, '0.25)'" in refused({"grid": {"m": {"lr": ["range(0", 1, "0.25)"]}}})


def test_a_whole_sweep_string_inside_a_list_is_refused() -> None:
    message = refused({"grid": {"lr": ["range(1,5)"]}})
    assert "grid.lr" in message and "inside a list is not expanded" in message and 'lr: "range(1,5)"' in message


@pytest.mark.parametrize(("value", "words"), [
    ("interval(0,1)", ("grid.lr", "continuous interval", "random:")),
    ("range(5,1)", ("grid.lr", "gives no values")),
    ("range(a)", ("grid.lr", "'range(a)'", "mismatch type")),
    ("glob(*)", ("grid.lr", "glob()")),
])
def test_bad_grid_sweeps_name_file_and_key(value: str, words: tuple[str, ...]) -> None:
    message = refused({"grid": {"lr": value}})
    for word in words:
        assert word in message


def test_random_reads_hydra_sweeps_as_distributions() -> None:
    spec = parse({"random": {"n": 50, "seed": 1, "u": "interval(0,1)", "l": "tag(log, interval(1e-4,1e-1))",
                             "c": "choice(a,b)", "i": "range(1,5)", "s": "range(0,10,5)"}})
    assert spec.random == RandomSpec(50, 1, (
        ("u", Distribution("uniform", 0.0, 1.0)),
        ("l", Distribution("loguniform", 1e-4, 1e-1)),
        ("c", Distribution("choice", values=("a", "b"))),
        ("i", Distribution("int", 1, 4)),
        ("s", Distribution("choice", values=(0, 5))),
    ))
    for u, lg, c, i, s in spec.random.samples():
        assert 0 <= u <= 1 and 1e-4 <= lg <= 1e-1 and c in ("a", "b") and i in (1, 2, 3, 4) and s in (0, 5)


def test_random_refuses_bad_sweeps() -> None:
    assert "loguniform needs low > 0" in refused({"random": {"n": 2, "x": "tag(log, interval(0,1))"}})
    assert "low must be below high" in refused({"random": {"n": 2, "x": "interval(1,0)"}})
    assert "is not a sweep" in refused({"random": {"n": 2, "x": "sort([1,2])"}})


def test_without_hydra_core_a_sweep_value_says_how_to_install_it() -> None:
    def missing(text: str) -> HydraSweep | None:
        raise ImportError("No module named 'hydra'")

    expected = (f"{WHERE}: grid.lr: 'range(1,5)' is Hydra sweep syntax; install hydra-core to use it "
                "(pip install hydra-core)")
    assert refused({"grid": {"lr": "range(1,5)"}}, missing) == expected
    assert refused({"grid": {"lr": "range(1,5)"}}, None) == expected
    assert "random.x: 'interval(0,1)' is Hydra sweep syntax" in refused({"random": {"n": 1, "x": "interval(0,1)"}}, None)
    # Nothing that is no sweep syntax needs the grammar.
    assert parse_sweep_config({"grid": {"lr": [1, "my(range)"]}}, WHERE, missing).count() == 2


# --- command-line overrides ------------------------------------------------------------------------


def test_overrides_sweep_as_hydras_basic_sweeper() -> None:
    assert parse_overrides(["a=1,2", "b=x,y"]) == (("a", (1, 2)), ("b", ("x", "y")))
    assert parse_overrides(["s=range(1,4)", "c=choice(p,q)", "f=1e-3", "q='1','2'", "l=[1,2],[3]"]) == (
        ("s", (1, 2, 3)), ("c", ("p", "q")), ("f", (0.001,)), ("q", ("1", "2")), ("l", ([1, 2], [3])))


def test_prefixed_overrides_keep_their_prefix_and_a_repeated_key_its_first_place() -> None:
    assert parse_overrides(["a=1", "+c=z", "++d=1,2", "~e", "~f=3", "a=4,5"]) == (
        ("a", (4, 5)), ("+c", ("z",)), ("++d", (1, 2)), ("~e", (None,)), ("~f", (3,)))


@pytest.mark.parametrize(("word", "words"), [
    ("lr=interval(0,1)", ("'lr=interval(0,1)'", "interval")),
    ("lr=glob(*)", ("glob()",)),
    ("lr=range(5,1)", ("no values",)),
    ("x=${a}", ("'x=${a}'", "interpolation")),
    ("x=choice('${a}',b)", ("interpolation",)),
    ("=1", ("no key",)),
    ("a b", ("'a b'",)),
])
def test_bad_overrides_are_one_line_naming_the_override(word: str, words: tuple[str, ...]) -> None:
    with pytest.raises(BadInput) as info:
        parse_overrides([word])
    assert "\n" not in str(info.value) and str(info.value).startswith(f"override {word!r}")
    for needle in words:
        assert needle in str(info.value)


# --- config and overrides together ------------------------------------------------------------------


def test_the_command_line_wins_in_place_and_takes_parameters_out_of_paired_and_random() -> None:
    spec = parse({"sweep": {"grid": {"a": [1, 2], "b": [3]}, "paired": [{"p": [1, 2], "q": ["x", "y"]}, {"p": [9]}]},
                  "random": {"n": 3, "r": {"uniform": [0, 1]}}})
    merged = spec.overridden((("b", (5, 6)), ("q", ("z",)), ("r", (0.5,)), ("new", ("n",))))
    assert merged.grid == (("a", (1, 2)), ("b", (5, 6)), ("q", ("z",)), ("r", (0.5,)), ("new", ("n",)))
    assert merged.paired == ((None, ("p",), ((1,), (2,))), (None, ("p",), ((9,),)))
    assert merged.random is None
    assert merged.count() == 2 * 2 * 3
    # A group left with nothing goes.
    assert spec.overridden((("p", (0,)),)).paired == ((None, ("q",), (("x",), ("y",))),)


def _project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "hsm_config.yaml").write_text("paths:\n  training_script: train.py\n")
    return tmp_path


def test_plan_of_overrides_alone_and_with_a_config(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path) / "hsm_config.yaml")
    alone = expand_cmd.plan(None, project, None, ["a=1,2", "b=x,y"])
    assert alone.total == 4 and alone.overrides == ("a=1,2", "b=x,y")
    assert alone.raw_text.startswith("# The sweep of the command-line overrides: a=1,2 b=x,y\n")
    # The text kept with the sweep is a config that makes the same sweep.
    config = tmp_path / "again.yaml"
    config.write_text(alone.raw_text)
    assert list(expand_cmd.plan(config, project, None).spec.combinations()) == list(alone.spec.combinations())

    config.write_text("grid:\n  a: [7, 8, 9]\n  c: \"range(1,3)\"\n")
    both = expand_cmd.plan(config, project, None, ["a=1,2", "b=x"])
    assert both.spec.grid == (("a", (1, 2)), ("c", (1, 2)), ("b", ("x",)))
    assert both.raw_text.endswith("# Command-line overrides, which take precedence over the above: a=1,2 b=x\n")
