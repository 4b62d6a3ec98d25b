"""What `hsm init` reads from a training script, and the config files it writes (pure).

The script is read with `ast`, never imported or run: a Hydra app (where its primary config
is) or an argparse script (its options: defaults, types, choices). From its parameters, a small
example grid of values the script accepts; with the answers, hsm_config.yaml and the sweep config.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# A parameter name hsm can pass: words joined by dots or dashes (`lr`, `model.hidden_dim`, `batch-size`).
_NAME = re.compile(r"\w+(?:[.-]\w+)*")
_NO_DEFAULT: dict[str, list[object]] = {"int": [1, 2], "float": [0.1, 0.01], "str": ["a", "b"], "any": [1, 2]}


@dataclass(frozen=True)
class Param:
    """One parameter a script accepts, named as hsm passes it (`lr`, `model.hidden_dim`)."""

    name: str
    kind: str  # float, int, bool, str, or any (a Hydra null: any value goes)
    default: object = None
    has_default: bool = False
    choices: tuple[object, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class ScriptScan:
    """What a training script's source says about how it takes its parameters."""

    kind: str  # hydra, argparse or plain (also: a file that does not parse)
    config_path: str | None = None  # Hydra: @hydra.main(config_path=..., config_name=...)
    config_name: str | None = None
    params: tuple[Param, ...] = ()  # argparse: the long options
    positionals: tuple[str, ...] = ()  # argparse: required positional arguments
    stores: Mapping[str, Mapping[str, object]] | None = None  # Hydra: ConfigStore nodes written as literals


# --- reading a script ------------------------------------------------------------------------


def scan_script(source: str) -> ScriptScan:
    """Read a script's source: a Hydra app, an argparse script, or neither."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return ScriptScan("plain")
    hydra = _hydra_main(tree)
    if hydra is not None:
        path, name = (_text_arg(hydra, i, key) for i, key in ((0, "config_path"), (1, "config_name")))
        if name is None and path and path.endswith((".yaml", ".yml")):  # Hydra 0.11: config_path named the file
            path, _, name = path.rpartition("/")
        return ScriptScan("hydra", path or None, name, stores=_config_store_nodes(tree))
    if not any(name.split(".")[0] == "argparse" for node in ast.walk(tree) for name in _imported(node)):
        return ScriptScan("plain")
    params: dict[str, Param] = {}
    positionals: list[str] = []
    for call, bindings in _add_argument_calls(tree, {}):
        names = [_strings(arg, bindings) for arg in call.args]
        # One name that a loop makes many is many options; several names are one option's aliases.
        for aliases in ([[n] for n in names[0]] if len(names) == 1 else [[n for ns in names for n in ns]]):
            if aliases and not aliases[0].startswith("-"):
                if _literal(_keyword(call, "nargs"))[1] not in ("?", "*") and _NAME.fullmatch(aliases[0]):
                    positionals.append(aliases[0])
                continue
            option = next((n[2:] for n in aliases if n.startswith("--") and _NAME.fullmatch(n[2:])), None)
            param = _option(option, call) if option else None
            if param is not None and param.name not in params:
                params[param.name] = param
    return ScriptScan("argparse", params=tuple(params.values()), positionals=tuple(positionals))


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []


def _hydra_main(tree: ast.AST) -> ast.Call | None:
    """The `@hydra.main(...)` decorator (or `@main(...)` imported from hydra), if any."""
    aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "hydra" for a in node.names if a.name == "main"}
    for node in ast.walk(tree):
        for deco in node.decorator_list if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else ():
            func = deco.func if isinstance(deco, ast.Call) else None
            if (isinstance(func, ast.Attribute) and func.attr == "main" and isinstance(func.value, ast.Name)
                    and func.value.id == "hydra") or (isinstance(func, ast.Name) and func.id in aliases):
                return deco if isinstance(deco, ast.Call) else None
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _text_arg(call: ast.Call, position: int, name: str) -> str | None:
    node = _keyword(call, name) or (call.args[position] if len(call.args) > position else None)
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _literal(node: ast.expr | None) -> tuple[bool, object]:
    """(True, value) when `node` is a literal, else (False, None)."""
    try:
        return (True, ast.literal_eval(node)) if node is not None else (False, None)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _config_store_nodes(tree: ast.AST) -> dict[str, Mapping[str, object]]:
    """`ConfigStore.instance().store(name=..., node={...})` calls whose node is a dict literal."""
    nodes: dict[str, Mapping[str, object]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "store":
            name = _text_arg(node, 0, "name")
            value = _keyword(node, "node") or (node.args[1] if len(node.args) > 1 else None)
            if name is not None and isinstance(value, ast.Dict):
                nodes[name] = _dict_literal(value)
    return nodes


def _dict_literal(node: ast.Dict) -> dict[str, object]:
    """The literal entries of a dict display (`**spread` and computed entries left out)."""
    out: dict[str, object] = {}
    for key, value in zip(node.keys, node.values):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            ok, literal = (True, _dict_literal(value)) if isinstance(value, ast.Dict) else _literal(value)
            if ok:
                out[key.value] = literal
    return out


def _add_argument_calls(node: ast.AST, bindings: Mapping[str, list[str]]) -> Iterator[tuple[ast.Call, Mapping[str, list[str]]]]:
    """Every `.add_argument(...)` call, with the names a `for NAME in ("a", "b")` loop binds around it."""
    if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
        values = [e.value for e in getattr(node.iter, "elts", []) if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if values:
            bindings = {**bindings, node.target.id: values}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
        yield node, bindings
    for child in ast.iter_child_nodes(node):
        yield from _add_argument_calls(child, bindings)


def _strings(node: ast.expr, bindings: Mapping[str, list[str]]) -> list[str]:
    """The strings an argument can be: a constant, or an f-string over loop-bound names."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in bindings:
        return list(bindings[node.id])
    if isinstance(node, ast.FormattedValue) and node.format_spec is None and node.conversion == -1:
        return _strings(node.value, bindings)
    if isinstance(node, ast.JoinedStr):  # a part that is not known makes the whole unknown: no product
        return ["".join(p) for p in itertools.product(*(_strings(v, bindings) for v in node.values))]
    return []


def _option(name: str, call: ast.Call) -> Param | None:
    """A long option as a parameter, unless it takes no value or a list (flags, nargs, counts)."""
    action = _keyword(call, "action")
    if action is not None and not (isinstance(action, ast.Constant) and action.value == "store"):
        return None
    if _keyword(call, "nargs") is not None:
        return None
    type_node = _keyword(call, "type")
    type_name = type_node.id if isinstance(type_node, ast.Name) else None if type_node is None else "other"
    has_default, default = _literal(_keyword(call, "default"))
    _, choices = _literal(_keyword(call, "choices"))
    _, required = _literal(_keyword(call, "required"))
    if type_name in ("int", "float", "str"):
        kind = str(type_name)
    elif type_name is None and (not has_default or default is None or isinstance(default, str)):
        kind = "str"  # argparse hands the script the string it was given
    else:
        kind = "other"  # a conversion hsm cannot see through: only its choices are sure to be taken
    return Param(name, kind, default, has_default and default is not None,
                 tuple(choices) if isinstance(choices, (list, tuple)) else (), required is True)


def hydra_params(config: Mapping[Any, object], prefix: str = "") -> list[Param]:
    """The keys of a Hydra config (nested ones dotted), with their values as defaults."""
    params: list[Param] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        # `_target_` and the like, `defaults` and `hydra` are Hydra's, not parameters.
        if not isinstance(key, str) or key.startswith("_") or not _NAME.fullmatch(key) or name in ("defaults", "hydra"):
            continue
        if isinstance(value, Mapping):
            params.extend(hydra_params(value, name + "."))
        elif value == "???":
            params.append(Param(name, "any", required=True))
        elif value is None:
            params.append(Param(name, "any"))
        elif isinstance(value, (bool, int, float, str)) and "${" not in str(value):
            kind = "bool" if isinstance(value, bool) else type(value).__name__
            params.append(Param(name, kind, value, True))
    return params


def example_values(param: Param) -> list[object] | None:
    """Values the script accepts for `param`, two when there is a second one to be sure of."""
    if param.choices:
        return list(param.choices[:2])
    value = param.default
    if param.has_default:
        if isinstance(value, bool):
            return [value, not value] if param.kind == "bool" else None
        if param.kind == "int" and isinstance(value, int):
            return [value, 2 * value] if value else [0, 1]
        if param.kind == "float" and isinstance(value, (int, float)) and math.isfinite(value):
            return [float(value), float(f"{value / 10:.12g}")] if value else [0.0, 0.1]
        return [value] if param.kind == "str" and isinstance(value, str) else None
    return _NO_DEFAULT.get(param.kind)


def _rank(param: Param) -> int:
    """Which parameters make the best example: required ones, then numbers, choices, switches."""
    numeric = param.has_default and param.kind in ("float", "int") and not param.choices
    order = (param.required, numeric and param.kind == "float", numeric, len(param.choices) > 1, param.kind == "bool",
             param.kind in ("int", "float"), not param.has_default)  # the first that holds is the rank
    return next((i for i, holds in enumerate(order) if holds), len(order))


def example_grid(params: Sequence[Param], size: int = 2) -> list[tuple[Param, list[object]]]:
    """A small grid over `size` of the parameters (every required one included), in the script's order."""
    usable = [(p, v) for p in params if (v := example_values(p)) is not None]
    best = sorted(range(len(usable)), key=lambda i: (_rank(usable[i][0]), i))[:size]
    chosen = sorted({*best, *(i for i, (p, _) in enumerate(usable) if p.required)})
    return [(usable[i][0], usable[i][1] if i in best else usable[i][1][:1]) for i in chosen]

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./+@-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def yaml_scalar(value: object) -> str:
    """`value` as a YAML scalar that loads back as the same value (flow context safe)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # YAML 1.1 reads 1e-05 as a string
            text = text.replace("e", ".0e", 1)
        return text if math.isfinite(value) else {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[text]
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=not text.isprintable())


# --- the files hsm init writes -----------------------------------------------------------------


@dataclass(frozen=True)
class InitPlan:
    """What `hsm init` writes: the answers, and the example grid over the script's parameters."""

    project_name: str
    training_script: str | None
    script_kind: str  # hydra, argparse, plain; none when there is no script
    python_interpreter: str
    conda_env: str | None = None
    hpc_system: str | None = None
    queue: str | None = None
    partitions: tuple[str, ...] = ()
    local_max: int = 4
    ssh_hosts: tuple[str, ...] = ()
    grid: tuple[tuple[Param, tuple[object, ...]], ...] = ()
    others: tuple[Param, ...] = ()  # parameters found but left out of the grid
    positionals: tuple[str, ...] = ()
    params_from: str = ""  # where the parameters were read: "train.py's options", "conf/config.yaml"

    @property
    def arg_style(self) -> str:
        return "argparse" if self.script_kind == "argparse" else "hydra"

    @property
    def tasks(self) -> int:
        return math.prod(len(values) for _, values in self.grid) if self.grid else 0


def hsm_config_text(plan: InitPlan) -> str:
    """hsm_config.yaml, each key with a comment saying what it does."""
    q = yaml_scalar
    return "\n".join([
        "# hsm_config.yaml: how hsm runs this project's sweeps (written by `hsm init`).",
        "# Every key is optional (docs/configuration.md). Check this file with: hsm config validate",
        "",
        "project:",
        f"  name: {q(plan.project_name)}  # for you: hsm does not use it",
        "",
        "paths:",
        "  # The script each task runs, relative to this file's directory.",
        f"  training_script: {q(plan.training_script)}" if plan.training_script else "  # training_script: train.py",
        "  # The Python the tasks run with.",
        f"  python_interpreter: {q(plan.python_interpreter)}",
        "  # A conda env activated before each task (when conda is on PATH).",
        f"  conda_env: {q(plan.conda_env)}" if plan.conda_env else "  # conda_env: myenv",
        "  # Where sweep directories go, one per sweep.",
        "  outputs_dir: sweeps/outputs",
        "",
        "execution:",
        "  # How a task gets its parameters: hydra (name=value overrides) or argparse (--name value).",
        f"  arg_style: {plan.arg_style}",
        "  # How tasks are spread over sources: round_robin, least_loaded, random, weighted, capability_based.",
        "  strategy: round_robin",
        "",
        "compute_sources:",
        "  # This machine: at most this many tasks at once (`hsm run --sources local:N` sets N for one run).",
        "  local:",
        "    type: local",
        f"    max_parallel_tasks: {plan.local_max}",
        *_ssh_lines(plan.ssh_hosts),
        "",
        *_hpc_lines(plan),
        "",
        "compute:",
        "  # Disable a source when this fraction of its finished tasks failed, or after this many failed",
        "  # health checks in a row; retry a task its host, node or disk failed this many times.",
        "  source_failure_threshold: 0.4",
        "  health_check_failure_threshold: 3",
        "  retry_attempts: 0",
        "  # disk_min_free_gb: 3.0  # the free disk a task needs to start",
        "",
    ])


def _ssh_lines(hosts: Sequence[str]) -> list[str]:
    """Commented-out SSH sources: the hosts of ~/.ssh/config, else one example."""
    head = "SSH hosts of ~/.ssh/config: uncomment one" if hosts else "An SSH host: uncomment it"
    lines = [f"  # {head} to run tasks there too (docs/ssh.md)."]
    for host in hosts or ["server1"]:
        key = yaml_scalar(host)
        lines += [f"  # {key}:", "  #   type: ssh", f"  #   host: {key}", "  #   max_parallel_tasks: 2"]
    return lines


def _hpc_lines(plan: InitPlan) -> list[str]:
    """The `hpc:` section for the scheduler found, else a commented-out one."""
    if not plan.hpc_system:
        return ["# No Slurm or PBS here (no sbatch or qsub on PATH). On a cluster, uncomment (docs/hpc.md):",
                "# hpc:", "#   system: slurm", "#   queue: batch", '#   default_walltime: "01:00:00"']
    known = f"; {plan.hpc_system} lists {', '.join(plan.partitions)}" if plan.partitions else ""
    return [
        f"# Defaults of the hpc sources; `hsm run --sources hpc` submits to {plan.hpc_system} (docs/hpc.md).",
        "hpc:",
        f"  system: {plan.hpc_system}",
        f"  # The partition or queue jobs go to{known}.",
        f"  queue: {yaml_scalar(plan.queue)}" if plan.queue else "  # queue: batch",
        '  # default_walltime: "01:00:00"  # the jobs\' time limit',
        '  # module_commands: ["module load python"]  # run in each job before its task',
    ]


def _about(param: Param) -> str:
    if param.required:
        return "required"
    if param.choices:
        return "choices: " + ", ".join(map(yaml_scalar, param.choices))
    return f"default {yaml_scalar(param.default)}" if param.has_default else "no default: example values"


def sweep_config_text(plan: InitPlan) -> str:
    """sweeps/sweep_config.yaml: a grid over two of the script's parameters (commented out when none)."""
    q = yaml_scalar
    lines = ["# sweep_config.yaml: what to sweep (written by `hsm init`; docs/sweep_config.md).",
             "# Every combination of the grid's values is one task.",
             "# Count them: hsm run --count-only; list them: hsm run --dry-run; run them: hsm run", ""]
    if plan.script_kind in ("hydra", "argparse"):
        lines += ["# How each task gets its parameters: argparse (--name value) or hydra (name=value overrides).",
                  f"arg_style: {plan.arg_style}", ""]
    if plan.grid:
        names = " × ".join(str(len(values)) for _, values in plan.grid)
        lines += [f"# From {plan.params_from}: {names} = {plan.tasks} tasks. Edit the values to your needs.", "grid:"]
        lines += [f"  {q(p.name)}: [{', '.join(q(v) for v in values)}]  # {_about(p)}" for p, values in plan.grid]
        if plan.others:
            shown = ", ".join(p.name for p in plan.others[:12]) + (", ..." if len(plan.others) > 12 else "")
            lines.append(f"# Its other parameters: {shown}")
    else:
        where = plan.training_script or "the project (no training script found)"
        lines += [f"# No parameters found in {where}: write the grid, e.g.", "# grid:",
                  "#   learning_rate: [0.001, 0.01]", "#   batch_size: [32, 64]"]
    if plan.positionals:
        lines += [f"# {plan.training_script} takes positional arguments ({', '.join(plan.positionals)}); hsm passes",
                  "# --name value pairs, so give them in a command template, e.g.:",
                  f'# command: "{{python}} {{script}} {" ".join(n.upper() for n in plan.positionals)} {{args}}"']
    lines += ["", "# Random samples, crossed with the grid:", "# random:", "#   n: 4", "#   seed: 0",
              "#   dropout: {uniform: [0.0, 0.5]}", "", "metadata:",
              f"  description: {q(f'first sweep of {plan.project_name}, written by hsm init')}", ""]
    return "\n".join(lines)

