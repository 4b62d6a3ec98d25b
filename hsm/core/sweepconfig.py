"""The sweep config file's content, checked and turned into a SweepSpec (pure).

`hsm.store.read_yaml_strict` reads the file; every refusal here names the file and the key.

A value written in Hydra's sweep syntax (`lr: "range(1,5)"`, `act: "choice(relu,gelu)"`,
`dropout: "interval(0,0.5)"`) is read by a `SweepParser` the caller passes in (`hsm.hydra_sweeps`
wraps Hydra's own grammar, which this pure module does not import).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterator, Mapping, Sequence

from hsm.core.spec import SWEEP_CALL, Distribution, HydraSweep, RandomSpec, SweepParser, SweepSpec, Values, is_sweep_text
from hsm.errors import BadInput

TOP_LEVEL_KEYS = ("grid", "sweep", "random", "command", "arg_style", "metadata", "defaults")
SWEEP_KEYS = ("grid", "paired")
ARG_STYLES = ("hydra", "argparse")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")

def parse_sweep_config(data: object, where: str, parser: SweepParser | None = None) -> SweepSpec:
    """Validate loaded sweep-config data; `where` (the file) prefixes every error.

    `parser` reads values in Hydra's sweep syntax; without one such a value is refused with
    how to install hydra-core.
    """
    if not isinstance(data, Mapping):
        raise _bad(where, "top level", f"expected a mapping of keys, got {_show(data)}")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _bad(where, _key(key), f"unknown key (expected one of {', '.join(TOP_LEVEL_KEYS)})")

    grid_given, grid_data, grid_path = "grid" in data, data.get("grid"), "grid"
    paired_data = None
    if "sweep" in data:
        sweep = data["sweep"]
        if not isinstance(sweep, Mapping):
            raise _bad(where, "sweep", f"expected a mapping with grid and/or paired, got {_show(sweep)}")
        for key in sweep:
            if key not in SWEEP_KEYS:
                raise _bad(where, f"sweep.{_key(key)}", "unknown key (expected grid or paired)")
        if "grid" in sweep:
            if "grid" in data:
                raise _bad(where, "sweep.grid", "grid is given both at the top level and under sweep")
            grid_given, grid_data, grid_path = True, sweep["grid"], "sweep.grid"
        paired_data = sweep.get("paired")
        if "paired" in sweep and paired_data is None:
            raise _bad(where, "sweep.paired", "expected a list of groups, got None")

    seen: dict[str, str] = {}  # parameter name -> key path where it was first given
    grid = _parse_grid(grid_data, grid_path, where, seen, parser) if grid_given else ()
    paired = _parse_paired(paired_data, where, seen, parser) if paired_data is not None else ()
    rand = _parse_random(data["random"], where, seen, parser) if "random" in data else None
    if not grid and not paired and rand is None:
        raise _bad(where, "top level", "no parameters to sweep (give grid, sweep.paired or random)")

    return SweepSpec(
        grid=grid,
        paired=paired,
        random=rand,
        command=_parse_command(data.get("command"), where),
        arg_style=_parse_arg_style(data.get("arg_style"), where),
        metadata=_parse_metadata(data.get("metadata"), where),
        defaults=_parse_defaults(data.get("defaults"), where),
    )


# --- sections ------------------------------------------------------------------------------


def _parse_grid(data: object, path: str, where: str, seen: dict[str, str],
                parser: SweepParser | None) -> tuple[tuple[str, Values], ...]:
    if not isinstance(data, Mapping):
        raise _bad(where, path, f"expected a mapping of parameter names to lists of values, got {_show(data)}")
    if not data:  # `grid: {}` is a placeholder; a sweep with no parameters at all is refused later
        return ()
    grid = []
    for name, key_path, values in _flatten(data, path, where, parser):
        _claim(name, key_path, where, seen)
        grid.append((name, tuple(values)))
    return tuple(grid)


def _parse_paired(
    data: object, where: str, seen: dict[str, str], parser: SweepParser | None
) -> tuple[tuple[str | None, tuple[str, ...], tuple[Values, ...]], ...]:
    if not isinstance(data, list):
        raise _bad(where, "sweep.paired", f"expected a list of groups, got {_show(data)}")
    if not data:
        raise _bad(where, "sweep.paired", "empty list of groups")
    groups = []
    # Groups are alternatives, so two groups may set the same parameter; check against the
    # grid and random only, and within a group against itself.
    outside = dict(seen)
    for index, group in enumerate(data):
        path = f"sweep.paired[{index}]"
        if not isinstance(group, Mapping) or not group:
            raise _bad(where, path, f"expected a mapping of parameter names to lists, got {_show(group)}")
        group_name: str | None = None
        body: Mapping[str, object] = group
        first_key, first_value = next(iter(group.items()))
        # A single key holding a mapping names the group; its parameters are not prefixed.
        if len(group) == 1 and isinstance(first_value, Mapping):
            if not isinstance(first_key, str) or not first_key.strip():
                raise _bad(where, path, f"group name must be a non-empty string, got {_show(first_key)}")
            group_name, body, path = first_key, first_value, f"{path}.{first_key}"
            if not body:
                raise _bad(where, path, "empty group")
        flat = list(_flatten(body, path, where, parser))
        in_group: dict[str, str] = {}
        for name, key_path, _ in flat:
            if name in outside:
                raise _bad(where, key_path, f"parameter {name!r} is also given in {outside[name]}")
            _claim(name, key_path, where, in_group)
        lengths = {name: len(values) for name, _, values in flat}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name} has {length}" for name, length in lengths.items())
            raise _bad(where, path, f"paired lists must have equal length: {listed}")
        names = tuple(name for name, _, _ in flat)
        rows = tuple(zip(*(values for _, _, values in flat)))
        groups.append((group_name, names, rows))
        for name, key_path in in_group.items():
            seen.setdefault(name, key_path)
    return tuple(groups)


def _parse_random(data: object, where: str, seen: dict[str, str], parser: SweepParser | None) -> RandomSpec:
    if not isinstance(data, Mapping):
        raise _bad(where, "random", f"expected a mapping with n, seed and parameters, got {_show(data)}")
    if "n" not in data:
        raise _bad(where, "random.n", "missing: how many samples to draw")
    n = data["n"]
    if not _is_int(n) or n < 1:
        raise _bad(where, "random.n", f"expected an integer >= 1, got {_show(n)}")
    seed = data.get("seed", 0)
    if not _is_int(seed):
        raise _bad(where, "random.seed", f"expected an integer, got {_show(seed)}")

    if "parameters" in data:
        for key in data:
            if key not in ("n", "seed", "parameters"):
                raise _bad(where, f"random.{_key(key)}", "unknown key (parameters go under random.parameters)")
        specs, base = data["parameters"], "random.parameters"
        if not isinstance(specs, Mapping):
            raise _bad(where, base, f"expected a mapping of parameter names to distributions, got {_show(specs)}")
    else:
        specs = {key: value for key, value in data.items() if key not in ("n", "seed")}
        base = "random"
    if not specs:
        raise _bad(where, base, "no parameters to sample")

    parameters = []
    for name, spec in specs.items():
        path = f"{base}.{_key(name)}"
        _check_name(name, base, where)
        _claim(name, path, where, seen)
        if is_sweep_text(spec):
            parameters.append((name, _sweep_distribution(str(spec), path, where, parser)))
        else:
            parameters.append((name, _parse_distribution(spec, path, where)))
    return RandomSpec(n=n, seed=seed, parameters=tuple(parameters))


def _parse_distribution(spec: object, path: str, where: str) -> Distribution:
    known = ", ".join(DISTRIBUTIONS)
    expected = f"expected one of {{{': [..]}, {'.join(DISTRIBUTIONS)}: [..]}} or {{type: .., ..}}"
    if not isinstance(spec, Mapping) or not spec:
        raise _bad(where, path, f"{expected}, got {_show(spec)}")
    if "type" in spec:
        kind = spec["type"]
        if kind not in DISTRIBUTIONS:
            raise _bad(where, f"{path}.type", f"unknown distribution {_show(kind)} (expected {known})")
        wanted = ("type", "values") if kind == "choice" else ("type", "low", "high")
        for key in spec:
            if key not in wanted:
                allowed = ", ".join(wanted[1:])
                raise _bad(where, f"{path}.{_key(key)}", f"unknown key for {kind} (expected {allowed})")
        for key in wanted[1:]:
            if key not in spec:
                raise _bad(where, f"{path}.{key}", f"missing for {kind}")
        args = spec["values"] if kind == "choice" else [spec["low"], spec["high"]]
    else:
        if len(spec) != 1:
            raise _bad(where, path, f"{expected}, got {_show(spec)}")
        ((kind, args),) = spec.items()
        if kind not in DISTRIBUTIONS:
            raise _bad(where, f"{path}.{_key(kind)}", f"unknown distribution (expected {known})")
        path = f"{path}.{kind}"

    if kind == "choice":
        if not isinstance(args, (list, tuple)):
            raise _bad(where, path, f"expected a list of values, got {_show(args)}")
        if not args:
            raise _bad(where, path, "empty list of values")
        return Distribution(kind, values=tuple(args))

    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise _bad(where, path, f"expected [low, high], got {_show(args)}")
    return _bounded(kind, args[0], args[1], path, where)


def _bounded(kind: str, low: object, high: object, path: str, where: str) -> Distribution:
    """A uniform, loguniform or int distribution between `low` and `high`, checked."""
    args = [low, high]
    if kind == "int":
        if not (_is_int(low) and _is_int(high)):
            raise _bad(where, path, f"expected two integers [low, high], got {_show(args)}")
    elif not (_is_number(low) and _is_number(high)):
        raise _bad(where, path, f"expected two finite numbers [low, high], got {_show(args)}")
    assert isinstance(low, (int, float)) and isinstance(high, (int, float))
    if low >= high:
        raise _bad(where, path, f"low must be below high, got [{low!r}, {high!r}]")
    if kind == "loguniform" and low <= 0:
        raise _bad(where, path, f"loguniform needs low > 0, got {low!r}")
    return Distribution(kind, low=low, high=high)


# --- Hydra's sweep syntax --------------------------------------------------------------------


def _read_sweep(text: str, path: str, where: str, parser: SweepParser | None) -> HydraSweep | None:
    """What `parser` makes of `text`; refusals name the file and the key."""
    install = f"{_show(text)} is Hydra sweep syntax; install hydra-core to use it (pip install hydra-core)"
    if parser is None:
        raise _bad(where, path, install)
    try:
        return parser(text)
    except ImportError:
        raise _bad(where, path, install) from None
    except ValueError as exc:
        raise _bad(where, path, f"{_show(text)}: {exc}") from None


def _grid_sweep(text: str, path: str, where: str, parser: SweepParser | None) -> list[object] | None:
    """The values of a sweep written as one string (`range(1,5)`), None when it is no sweep."""
    sweep = _read_sweep(text, path, where, parser)
    try:
        return None if sweep is None else list(sweep.grid_values())
    except ValueError as exc:
        raise _bad(where, path, f"{_show(text)} {exc}") from None


def _sweep_distribution(text: str, path: str, where: str, parser: SweepParser | None) -> Distribution:
    """`interval(a,b)` uniform (loguniform when tagged log), `choice(..)` a choice, `range(..)` its ints."""
    sweep = _read_sweep(text, path, where, parser)
    if sweep is None:
        raise _bad(where, path, f"{_show(text)} is not a sweep (expected interval(..), choice(..) or range(..))")
    if sweep.kind == "interval":
        return _bounded("loguniform" if sweep.log else "uniform", sweep.low, sweep.high, path, where)
    try:
        return sweep.discrete()
    except ValueError as exc:
        raise _bad(where, path, f"{_show(text)} {exc}") from None


def _refuse_sweep_items(values: Sequence[object], key: str, path: str, where: str) -> None:
    """Refuse a list holding Hydra sweep syntax: `[range(1,5)]` (YAML splits it at the commas)."""
    for index, item in enumerate(values):
        if not (isinstance(item, str) and SWEEP_CALL.match(item)):
            continue
        if item.count("(") > item.count(")"):
            parts: list[object] = []
            for part in values[index:]:
                parts.append(part)
                text = ",".join(str(p) for p in parts)
                if text.count("(") <= text.count(")"):
                    break
            if len(parts) == 1:
                raise _bad(where, path, f"{_show(item)} looks like Hydra sweep syntax with an unclosed '('")
            split = ", ".join(_show(p) for p in parts)
            raise _bad(where, path, f"YAML read [{text}] as the separate items {split}: to sweep {text}, "
                                    f"quote it and leave out the brackets: {key}: \"{text}\"")
        if is_sweep_text(item):
            raise _bad(where, path, f"{_show(item)} inside a list is not expanded: to sweep it, "
                                    f"leave out the brackets: {key}: \"{item}\"")


def _parse_command(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, "command", f"expected a non-empty command template, got {_show(value)}")
    try:
        words = shlex.split(value)
    except ValueError:
        return value  # an unclosed quote: refused, with shlex's words, where the template is split
    if not words or not words[0].strip():
        raise _bad(where, "command", f"the first word, the program to run, is empty, got {_show(value)}")
    return value


def _parse_arg_style(value: object, where: str) -> str | None:
    if value is None:
        return None
    if value not in ARG_STYLES:
        raise _bad(where, "arg_style", f"expected hydra or argparse, got {_show(value)}")
    return value


def _parse_metadata(value: object, where: str) -> dict[str, object]:
    # `metadata:` with nothing after it loads as None: the user meant "none".
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(where, "metadata", f"expected a mapping, got {_show(value)}")
    return dict(value)


def _parse_defaults(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(where, "defaults", f"expected a Hydra defaults list, got {_show(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, (str, Mapping)):
            raise _bad(where, f"defaults[{index}]", f"expected a string or a mapping, got {_show(item)}")
    return list(value)


# --- helpers -------------------------------------------------------------------------------


def _flatten(data: Mapping[str, object], path: str, where: str, parser: SweepParser | None,
             prefix: str = "") -> Iterator[tuple[str, str, list[object]]]:
    """Yield (dotted name, key path, values) for every list (or Hydra sweep) under `data`, in order."""
    if not data:
        raise _bad(where, path, "empty mapping: no parameters")
    for key, value in data.items():
        if not isinstance(key, str):
            raise _bad(where, f"{path}.{_key(key)}", f"parameter names must be strings, got {_show(key)} (quote it)")
        name = f"{prefix}.{key}" if prefix else key
        _check_name(name, path, where)
        key_path = f"{path}.{key}"
        swept = _grid_sweep(str(value), key_path, where, parser) if is_sweep_text(value) else None
        if isinstance(value, Mapping):
            yield from _flatten(value, key_path, where, parser, name)
        elif isinstance(value, (list, tuple)):
            if not value:
                raise _bad(where, key_path, "empty list of values")
            _refuse_sweep_items(value, key, key_path, where)
            yield name, key_path, list(value)
        elif swept is not None:
            yield name, key_path, swept
        else:
            raise _bad(where, key_path, f"expected a list of values, got {_show(value)}")


def _check_name(name: object, path: str, where: str) -> None:
    """Refuse a name that cannot be written as a `name=value` override."""
    if not isinstance(name, str):
        raise _bad(where, f"{path}.{_key(name)}", f"parameter names must be strings, got {_show(name)} (quote it)")
    if not name:
        raise _bad(where, path, "empty parameter name")
    if "\0" in name:
        raise _bad(where, path, f"parameter name {name.split(chr(0))[0]!r}... holds a NUL character")
    if "=" in name or any(ch.isspace() for ch in name):
        raise _bad(where, path, f"parameter name {name!r} must not contain '=' or whitespace")
    if "" in name.split("."):
        raise _bad(where, path, f"parameter name {name!r} has an empty part between dots")
    if name.startswith("-"):
        raise _bad(where, path, f"parameter name {name!r} must not start with '-' (hsm writes the dashes argparse needs)")


def _claim(name: str, key_path: str, where: str, seen: dict[str, str]) -> None:
    if name in seen:
        if seen[name] == key_path:  # `a.b:` and `a: {b:}` in the same mapping
            raise _bad(where, key_path, f"parameter {name!r} is given twice (nested and dotted)")
        raise _bad(where, key_path, f"parameter {name!r} is also given in {seen[name]}")
    seen[name] = key_path


def _bad(where: str, key: str, problem: str) -> BadInput:
    return BadInput(_one_line(f"{where}: {key}: {problem}"))


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(key: object) -> str:
    return key if isinstance(key, str) else repr(key)


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
