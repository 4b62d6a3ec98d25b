"""Hostile parameter values reach a real Hydra app and a real argparse script exactly.

The apps run as real processes with the argv that hsm builds; no shell is involved, so a value
only has to survive the app's own parsing (Hydra's override grammar, OmegaConf, argparse).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from hsm.core.command import build_argv, format_value, hydra_override, parse_template
from hsm.errors import BadInput

APPS = Path(__file__).resolve().parents[1] / "apps"
HYDRA_APP = APPS / "hydra_app.py"
ARGPARSE_APP = APPS / "argparse_app.py"

# Files the shell-looking values would create if anything ran them through a shell.
CANARIES = ("PWNED", "PWNED2", "PWNED3")

HOSTILE: dict[str, object] = {
    "command substitution": "$(touch PWNED)",
    "backticks": "`touch PWNED2`",
    "quote and semicolon": "a'; touch PWNED3; echo b",
    "two words": "two words",
    "double quotes": '"double"',
    "single quotes": "'single'",
    "backslashes": "back\\slash \\\\ and end\\",
    "backslash before quotes": "\\'x\\\"",
    "shell variable": "${HOME}",
    "oc.env interpolation": "${oc.env:HOME}",
    "escaped interpolation": "\\${x}",
    "dollar": "$HOME $ {x}",
    "string null": "null",
    "string true": "true",
    "string one": "1",
    "string float": "1e-3",
    "string inf": "inf",
    "None": None,
    "True": True,
    "False": False,
    "int": 42,
    "negative int": -7,
    "big int": 10**20,
    "float": 1.5,
    "small float": 1e-05,
    "negative float": -2.5,
    "large float": 1e300,
    "inf": float("inf"),
    "nan": float("nan"),
    "list": [1, "x y", None],
    "nested": [[1, ["a,b"]], {"k": None, "n": [True, 0.5]}],
    "dict": {"k": "v w"},
    "dict with odd keys": {"a b": 1, "x.y": 2, "k:v": "${x}", "1a": [], "$%*@?|": None},
    "dict with int key": {1: "one"},
    "empty list": [],
    "empty dict": {},
    "empty string": "",
    "leading space": " lead",
    "trailing space": "trail ",
    "newline": "new\nline",
    "tab": "tab\there",
    "unicode": "héllo 世界 🚀",
    "grammar punctuation": "=,[]{}():",
    "sweep-looking": "a,b",
    "function-looking": "choice(a,b)",
    "dash": "-x",
    "double dash option": "--b",
    "percent": "%d %s",
    "hash": "#not a comment",
}

# argparse (3.11) drops an option value that is exactly "--" in every spelling, so that one only
# goes to the Hydra app.
HYDRA_HOSTILE = {**HOSTILE, "bare double dash": "--"}

HYDRA_QUIET = (
    "hydra.output_subdir=null",
    "hydra/job_logging=disabled",
    "hydra/hydra_logging=disabled",
)


def run_app(argv: list[str], cwd: Path) -> dict:
    """Run one app process without a shell and return the JSON it wrote."""
    out = cwd / "received.json"
    env = {**os.environ, "HSM_TEST_OUT": str(out)}
    proc = subprocess.run(argv, cwd=cwd, env=env, shell=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"argv={argv!r}\nstdout={proc.stdout}\nstderr={proc.stderr}"
    return json.loads(out.read_text(encoding="utf-8"))


def hydra_extra(tmp_path: Path) -> list[str]:
    """Overrides that keep Hydra's run dir and logs out of the way."""
    return [f"hydra.run.dir={tmp_path / 'hydra_run'}", *HYDRA_QUIET]


def as_parsed(value: object) -> object:
    """`value` as an app gets it back: tuples become lists."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [as_parsed(item) for item in value]
    if isinstance(value, dict):
        return {key: as_parsed(item) for key, item in value.items()}
    return value


def assert_no_canaries(cwd: Path) -> None:
    """Nothing ran the shell-looking values."""
    assert not [name for name in CANARIES if (cwd / name).exists()]


def test_hostile_values_reach_hydra_app(tmp_path: Path) -> None:
    labels = list(HYDRA_HOSTILE)
    params = {f"v{i}": HYDRA_HOSTILE[label] for i, label in enumerate(labels)}
    argv = build_argv(params, python=sys.executable, script=str(HYDRA_APP), extra_overrides=hydra_extra(tmp_path))

    got = run_app(argv, tmp_path)

    assert_no_canaries(tmp_path)
    # repr tells apart what JSON would merge: 1 vs "1" vs True, int vs str dict keys, nan.
    received = {label: got["repr"][f"v{i}"] for i, label in enumerate(labels)}
    expected = {label: repr(as_parsed(HYDRA_HOSTILE[label])) for label in labels}
    assert received == expected


def test_interpolation_text_is_not_resolved(tmp_path: Path) -> None:
    # The literal text must arrive even where OmegaConf could resolve it to something.
    params = {"a": "${oc.env:HOME}", "b": "${model.hidden_dim}", "model.hidden_dim": 64}
    argv = build_argv(params, python=sys.executable, script=str(HYDRA_APP), extra_overrides=hydra_extra(tmp_path))

    got = run_app(argv, tmp_path)["values"]

    assert (got["a"], got["b"], got["model"]) == ("${oc.env:HOME}", "${model.hidden_dim}", {"hidden_dim": 64})


def test_hostile_values_reach_argparse_script(tmp_path: Path) -> None:
    labels = list(HOSTILE)
    params = {f"v{i}": HOSTILE[label] for i, label in enumerate(labels)}
    argv = build_argv(params, python=sys.executable, script=str(ARGPARSE_APP), arg_style="argparse")

    got = run_app(argv, tmp_path)

    assert_no_canaries(tmp_path)
    received = {label: got.get(f"v{i}") for i, label in enumerate(labels)}
    assert received == {label: format_value(HOSTILE[label]) for label in labels}
    # The text forms themselves, spelled out for the cases that are not strings.
    spelled = {"None": "null", "True": "true", "small float": "1e-05", "inf": "inf", "nan": "nan"}
    spelled |= {"list": '[1,"x y",null]', "dict": '{"k":"v w"}', "unicode": "héllo 世界 🚀", "dash": "-x"}
    assert {label: received[label] for label in spelled} == spelled


def test_template_with_hydra_app(tmp_path: Path) -> None:
    run_dir = tmp_path / "task dir"
    template = parse_template(
        "{python} -u {script} {overrides} 'hydra.run.dir={task_dir}'", ["a", "b", "model.hidden_dim"], "test: command"
    )
    params = {"a": "a'; touch PWNED3; echo b", "b": [1, "x y", None], "model.hidden_dim": 128}
    argv = build_argv(
        params,
        python=sys.executable,
        script=str(HYDRA_APP),
        template=template,
        context={"task_dir": str(run_dir)},
        extra_overrides=HYDRA_QUIET,
    )

    got = run_app(argv, tmp_path)["values"]

    assert_no_canaries(tmp_path)
    assert (got["a"], got["b"], got["model"]) == (params["a"], [1, "x y", None], {"hidden_dim": 128})
    assert run_dir.is_dir()  # the task dir with a space in it stayed one override


def test_template_with_argparse_script(tmp_path: Path) -> None:
    template = parse_template("{python} {script} --lr={a} --tag 'task {task_id}' {args}", ["a", "b"], "test: command")
    params = {"a": 1e-05, "b": "$(touch PWNED) two words"}
    argv = build_argv(
        params,
        python=sys.executable,
        script=str(ARGPARSE_APP),
        arg_style="argparse",
        template=template,
        context={"task_id": "task_007"},
    )

    got = run_app(argv, tmp_path)

    assert_no_canaries(tmp_path)
    assert got == {"lr": "1e-05", "tag": "task task_007", "a": "1e-05", "b": "$(touch PWNED) two words"}


def test_random_strings_survive_hydra_parsing() -> None:
    """Many random strings through Hydra's own parser and OmegaConf, the way Hydra applies them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    rng = random.Random(20240501)
    alphabet = "\\'\"${}a1 ,=[]():\n\t.-+é#;`|&<>!~*?@%"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if text == "???":
            continue
        override = hydra_override("a", [text, {"k": text}])
        cfg = OmegaConf.create({"a": None})
        OmegaConf.update(cfg, "a", parser.parse_override(override).value(), merge=True)
        got = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)["a"]
        assert got == [text, {"k": text}], override


def test_random_dict_keys_are_written_or_refused_exactly() -> None:
    """A dict key is either written so Hydra reads it back unchanged, or refused."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    rng = random.Random(7)
    alphabet = "a1 \\${}[]():=,.-+_/$%*@?|\t'é"
    for _ in range(3000):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        try:
            override = hydra_override("a", {key: 1})
        except BadInput:
            continue
        parsed = parser.parse_override(override).value()
        assert [(type(k), k) for k in parsed] == [(str, key)], override


@pytest.mark.parametrize("value", [float("nan")])
def test_nan_reaches_hydra_app(tmp_path: Path, value: float) -> None:
    argv = build_argv({"a": value}, python=sys.executable, script=str(HYDRA_APP), extra_overrides=hydra_extra(tmp_path))
    got = run_app(argv, tmp_path)["values"]["a"]
    assert isinstance(got, float) and math.isnan(got)
