"""The argv of one task: Hydra overrides, argparse options, command templates."""

from __future__ import annotations

import pytest

from hsm.core.command import (
    argparse_args,
    build_argv,
    format_value,
    hydra_override,
    hydra_overrides,
    parse_template,
    render_template,
)
from hsm.errors import BadInput


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "a=null"),
        (True, "a=true"),
        (False, "a=false"),
        (0, "a=0"),
        (-7, "a=-7"),
        (10**20, "a=100000000000000000000"),
        (0.1, "a=0.1"),
        (1e-05, "a=1e-05"),
        (-2.5, "a=-2.5"),
        (1e300, "a=1e+300"),
        (float("inf"), "a=inf"),
        (float("-inf"), "a=-inf"),
        (float("nan"), "a=nan"),
        ("x", "a='x'"),
        ("", "a=''"),
        ("two words", "a='two words'"),
        ("1", "a='1'"),
        ("true", "a='true'"),
        ("null", "a='null'"),
        ("it's", r"a='it\'s'"),
        ('"double"', "a='\"double\"'"),
        ("a,b", "a='a,b'"),
        ("new\nline", "a='new\nline'"),
        ([], "a=[]"),
        ({}, "a={}"),
        ([1, "x y", None], "a=[1,'x y',null]"),
        ((1, 2), "a=[1,2]"),
        ({"k": "v w"}, "a={k:'v w'}"),
        ([[1, [True]], {"k": [None]}], "a=[[1,[true]],{k:[null]}]"),
    ],
)
def test_hydra_override_values(value: object, expected: str) -> None:
    assert hydra_override("a", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Backslashes are literal in a Hydra quoted string except in a run before a quote,
        # which is halved: such runs (the closing quote's included) are doubled.
        ("back\\slash", r"a='back\slash'"),
        ("end\\", r"a='end\\'"),
        ("end\\\\", r"a='end\\\\'"),
        ("\\'", r"a='\\\''"),
        ("\\\"", "a='\\\"'"),
        # OmegaConf would interpolate `${`; `\${` is its literal form, and the backslashes
        # before it are doubled so they stay literal.
        ("${HOME}", r"a='\${HOME}'"),
        ("${oc.env:HOME}", r"a='\${oc.env:HOME}'"),
        ("\\${x}", r"a='\\\${x}'"),
        ("$HOME {x}", "a='$HOME {x}'"),
    ],
)
def test_hydra_override_escapes(value: str, expected: str) -> None:
    assert hydra_override("a", value) == expected


def test_hydra_override_dict_keys_are_escaped_unquoted() -> None:
    assert hydra_override("a", {"a b": 1, "x.y": 2, "k:v": 3, "${x}": 4}) == r"a={a\ b:1,x.y:2,k\:v:3,$\{x\}:4}"
    assert hydra_override("a", {1: "one", 2.5: True, False: None}) == "a={1:'one',2.5:true,false:null}"


@pytest.mark.parametrize("key", ["1", "true", "null", "inf", "1_000", "", "é", "it's", 'q"', "a\nb", "a#b", None])
def test_hydra_override_rejects_dict_keys_hydra_cannot_write(key: object) -> None:
    with pytest.raises(BadInput, match="dict key"):
        hydra_override("a", {key: 1})


def test_hydra_override_rejects_missing_marker() -> None:
    # OmegaConf reads "???" as a missing value, so the script could never read it.
    with pytest.raises(BadInput, match=r"\?\?\?"):
        hydra_override("a", "???")
    with pytest.raises(BadInput, match=r"\?\?\?"):
        hydra_override("a", ["ok", "???"])


@pytest.mark.parametrize("value", [object(), b"bytes", {1, 2}, [object()]])
def test_hydra_override_rejects_other_types(value: object) -> None:
    with pytest.raises(BadInput, match="unsupported"):
        hydra_override("a", value)


@pytest.mark.parametrize(
    "name",
    ["a", "model.hidden_dim", "+a", "++trainer.max_epochs", "~a", "layers.0.size", "$x", "a-b", "hydra/launcher"],
)
def test_hydra_override_accepts_hydra_keys(name: str) -> None:
    assert hydra_override(name, 1) == f"{name}=1"


@pytest.mark.parametrize(
    "name", ["", "a=b", "a b", "a\tb", " a", "a\n", "-a", "1a", "a..b", ".a", "a.", "+++a", "é", "a,b"]
)
def test_hydra_override_rejects_bad_names(name: str) -> None:
    with pytest.raises(BadInput, match="not a Hydra override key"):
        hydra_override(name, 1)


def test_hydra_overrides_keep_order() -> None:
    params = {"z": 1, "a": "x", "model.hidden_dim": 64}
    assert hydra_overrides(params) == ["z=1", "a='x'", "model.hidden_dim=64"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("two words", "two words"),
        ("", ""),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (3, "3"),
        (1e-05, "1e-05"),
        (0.1, "0.1"),
        (float("inf"), "inf"),
        ([1, "x y", None], '[1,"x y",null]'),
        ({"k": "v w", "n": [True]}, '{"k":"v w","n":[true]}'),
        (["é"], '["é"]'),
    ],
)
def test_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected


def test_format_value_rejects_other_types() -> None:
    with pytest.raises(BadInput, match="unsupported"):
        format_value({"a": object()})


def test_argparse_args_two_entries_each() -> None:
    params = {"lr": 1e-05, "name": "two words", "flag": True, "none": None, "layers": [1, 2]}
    assert argparse_args(params) == [
        "--lr", "1e-05",
        "--name", "two words",
        "--flag", "true",
        "--none", "null",
        "--layers", "[1,2]",
    ]  # fmt: skip


def test_argparse_args_value_starting_with_dash_is_one_entry() -> None:
    # argparse would take a separate "-x" for an option; "--name=value" it reads literally.
    assert argparse_args({"a": "-x", "b": -2.5, "c": "--"}) == ["--a=-x", "--b=-2.5", "--c=--"]


@pytest.mark.parametrize("name", ["", "a=b", "a b", "-a"])
def test_argparse_args_rejects_bad_names(name: str) -> None:
    with pytest.raises(BadInput):
        argparse_args({name: 1})


def test_parse_template_splits_once_with_shell_word_rules() -> None:
    tokens = parse_template("{python} -u {script} --tag 'run {task_id}' {overrides}", ["a"], "sweep.yaml: command")
    assert tokens == ["{python}", "-u", "{script}", "--tag", "run {task_id}", "{overrides}"]


def test_parse_template_names_unknown_placeholder_and_where() -> None:
    with pytest.raises(BadInput, match=r"sweep\.yaml: command: unknown placeholder \{lr\}"):
        parse_template("{python} {script} --lr={lr}", ["a"], "sweep.yaml: command")


def test_parse_template_knows_dotted_parameters_and_literal_braces() -> None:
    tokens = parse_template("{python} {script} --h={model.hidden_dim} --json={{}}", ["model.hidden_dim"], "w")
    assert tokens == ["{python}", "{script}", "--h={model.hidden_dim}", "--json={{}}"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{python} 'unclosed", r"w: cannot split command template"),
        ("", r"w: command template is empty"),
        ("{python} --x={overrides}", r"w: \{overrides\} must be a word of its own"),
        ("{python} {script", r"w: unmatched '\{'"),
        ("{python} x}", r"w: unmatched '\}'"),
        ("{python} ${HOME}", r"w: unknown placeholder \{HOME\}"),
        ("{python} {output_dir}", r"w: placeholder \{output_dir\} is ambiguous"),
    ],
)
def test_parse_template_errors(template: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_template(template, ["a", "output_dir"], "w")


def test_render_template_keeps_each_word_one_entry() -> None:
    tokens = parse_template("{python} {script} --lr={a} --tag 'task {task_id}' {overrides}", ["a", "b"], "w")
    params = {"a": "1e-3 x", "b": "two words"}
    argv = render_template(tokens, params, {"python": "py", "script": "train.py", "task_id": "task_001"})
    assert argv == ["py", "train.py", "--lr=1e-3 x", "--tag", "task task_001", "a='1e-3 x'", "b='two words'"]


def test_render_template_args_and_braces() -> None:
    tokens = parse_template("{python} {script} {args} --json={{{a}}}", ["a"], "w")
    argv = render_template(tokens, {"a": 5}, {"python": "py", "script": "s.py"})
    assert argv == ["py", "s.py", "--a", "5", "--json={5}"]


def test_render_template_missing_context_is_an_error() -> None:
    with pytest.raises(BadInput, match=r"no value for \{task_dir\}"):
        render_template(["{task_dir}"], {}, {})


def test_build_argv_hydra_default() -> None:
    argv = build_argv({"a": 1, "b": "x y"}, python="py", script="train.py", extra_overrides=["hydra.run.dir=out"])
    assert argv == ["py", "train.py", "a=1", "b='x y'", "hydra.run.dir=out"]


def test_build_argv_argparse_ignores_extra_overrides() -> None:
    argv = build_argv({"a": 1}, python="py", script="train.py", arg_style="argparse", extra_overrides=["x=1"])
    assert argv == ["py", "train.py", "--a", "1"]


def test_build_argv_template_gets_python_and_script() -> None:
    tokens = parse_template("{python} -u {script} {overrides} hydra.run.dir={task_dir}", ["a"], "w")
    argv = build_argv(
        {"a": 1},
        python="py",
        script="train.py",
        template=tokens,
        context={"task_dir": "/s/t 1"},
        extra_overrides=["hydra.output_subdir=null"],
    )
    assert argv == ["py", "-u", "train.py", "a=1", "hydra.output_subdir=null", "hydra.run.dir=/s/t 1"]


def test_build_argv_rejects_unknown_arg_style() -> None:
    with pytest.raises(BadInput, match="arg_style 'click'"):
        build_argv({}, python="py", script="s.py", arg_style="click")


def test_a_value_holding_nul_is_refused_in_every_style() -> None:
    """It would reach the program as two arguments (argv files separate arguments with NUL)."""
    for style in ("hydra", "argparse"):
        with pytest.raises(BadInput, match=r"parameters: x\[1\]: the value 'a'\.\.\. holds a NUL"):
            build_argv({"x": ["ok", "a\0--injected"]}, python="python", script="train.py", arg_style=style)
    with pytest.raises(BadInput, match="NUL"):
        build_argv({"x": "a\0b"}, python="python", script="train.py", template=["{python}", "{x}"])
