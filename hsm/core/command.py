"""One task's parameters turned into the argv that runs the training script.

Everything here is pure. The argv is run without a shell, so the only languages a value must
survive are the ones the training script itself parses: Hydra's override grammar (and OmegaConf's
interpolation syntax behind it) for `hydra` style, plain text for `argparse` style.

Hydra facts this module relies on (hydra-core 1.3, `hydra/grammar/OverrideLexer.g4`,
`OverrideParser.g4` and `core/override_parser/overrides_visitor.py`):

- A quoted value (`'...'` or `"..."`) is always a string, never a number, bool or null. Inside it,
  backslashes are literal except a run of them right before a quote character: that run is
  halved, and an odd one left over escapes the quote. The run before the closing quote must
  therefore be doubled.
- Unquoted text is typed: `null`, `true`/`false` (any case), ints (`1_000` too), floats (`1e-05`,
  `inf`, `nan`); `[a,b]` is a list and `{k:v}` a dict; `a,b` at top level is a sweep.
- Dict keys cannot be quoted: only letters a-z/A-Z, digits and `_-/\\+.$%*@?|` are allowed, plus
  `\\()[]{}:=,` space and tab when escaped with a backslash.
- Hydra stores the value in the config with `OmegaConf.update`, and OmegaConf treats any string
  containing `${` as an interpolation (resolved when the script reads it) and the string `???`
  as a missing value. `\\${` is OmegaConf's escape for a literal `${`; a run of n backslashes
  right before `${` stands for n // 2 literal backslashes.
"""

from __future__ import annotations

import json
import re
import shlex
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence

from hsm.errors import BadInput

ARG_STYLES = ("hydra", "argparse")

# Placeholders every template may use besides the parameters' own dotted names.
BUILTIN_PLACEHOLDERS = (
    "python",
    "script",
    "overrides",
    "args",
    "task_id",
    "task_dir",
    "output_dir",
    "sweep_id",
)

# Placeholders that expand to several argv entries, so they must be a whole word of the template.
_EXPANDING = ("overrides", "args")

_EMPTY: Mapping[str, str] = types.MappingProxyType({})

# Hydra's key grammar: `key: packageOrGroup (AT package)?`, with
# `packageOrGroup: package | ID (SLASH ID)+` and `package: ID | KEY_SPECIAL | DOT_PATH`.
_ID = r"[A-Za-z_][A-Za-z0-9_\-]*"
_KEY_SPECIAL = r"[A-Za-z_$][A-Za-z0-9_\-$]*"
_INT_UNSIGNED = r"(?:0|[1-9](?:_?[0-9])*)"
_PART = rf"(?:{_KEY_SPECIAL}|{_INT_UNSIGNED})"
_PACKAGE = rf"(?:{_KEY_SPECIAL}|{_PART}(?:\.{_PART})+)"
_GROUP = rf"(?:{_ID}(?:/{_ID})+)"
_HYDRA_KEY = re.compile(rf"(?:~|\+\+?)?(?:{_GROUP}|{_PACKAGE})(?:@{_PACKAGE})?")

# Unquoted tokens Hydra turns into something other than a string (OverrideLexer VALUE_MODE).
_POINT_FLOAT = rf"(?:{_INT_UNSIGNED}\.|{_INT_UNSIGNED}?\.[0-9](?:_?[0-9])*)"
_EXPONENT_FLOAT = rf"(?:(?:{_INT_UNSIGNED}|{_POINT_FLOAT})[eE][+-]?[0-9](?:_?[0-9])*)"
_HYDRA_INT = re.compile(rf"[+-]?{_INT_UNSIGNED}")
_HYDRA_FLOAT = re.compile(rf"[+-]?(?:{_POINT_FLOAT}|{_EXPONENT_FLOAT}|[Ii][Nn][Ff]|[Nn][Aa][Nn])")
_HYDRA_BOOL = re.compile(r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]")
_HYDRA_NULL = re.compile(r"[Nn][Uu][Ll][Ll]")

# Characters an unquoted dict key may hold as they are, and those it may hold escaped.
_KEY_PLAIN = re.compile(r"[A-Za-z0-9_\-/\\+.$%*@?|]")
_KEY_ESCAPED = "\\()[]{}:=, \t"

_QUOTE_RUN = re.compile(r"(\\*)'")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)\Z")
_INTERPOLATION_OPEN = re.compile(r"(\\*)\$\{")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def hydra_override(name: str, value: object) -> str:
    """One Hydra override `name=VALUE` that gives the app exactly `value`, type included."""
    check_hydra_name(name)
    return f"{name}={_hydra_value(value, name)}"


def hydra_overrides(params: Mapping[str, object]) -> list[str]:
    """The Hydra overrides for `params`, in their order."""
    return [hydra_override(name, value) for name, value in params.items()]


def check_hydra_name(name: str) -> None:
    """Raise BadInput unless `name` is a key Hydra's override grammar accepts."""
    if not isinstance(name, str) or not _HYDRA_KEY.fullmatch(name):
        raise BadInput(
            f"parameter {name!r}: not a Hydra override key (expected a dotted name such as "
            "model.hidden_dim, optionally prefixed with +, ++ or ~)"
        )


def format_value(value: object) -> str:
    """The plain-text form of a value: str as is, true/false, null, repr of numbers, JSON else."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return _scalar_text(value)
    if isinstance(value, (list, tuple, dict)):
        _check_plain(value, "value")
        # JSON is the one text form of a nested value that any script can parse back;
        # non-ASCII stays readable, and NaN/Infinity use Python's json spelling.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    raise BadInput(f"value {value!r}: unsupported type {type(value).__name__}")


def argparse_args(params: Mapping[str, object]) -> list[str]:
    """`--name value` pairs for an argparse script, each value written by `format_value`.

    Each parameter is two argv entries, `--name` and the value as text: strings as they are,
    bools as `true`/`false`, None as `null`, numbers in repr form (`1e-05`), lists and dicts as
    JSON. A value that begins with `-` is given as one entry `--name=value` instead, because
    argparse would take a separate `-x` (or `--b`) for an option and fail; `--name=value` is
    read literally by argparse, click and most other parsers.
    """
    argv: list[str] = []
    for name, value in params.items():
        if not isinstance(name, str) or not name or name.startswith("-") or "=" in name or _has_space(name):
            raise BadInput(f"parameter {name!r}: not usable as a --name option")
        text = format_value(value)
        if text.startswith("-"):
            argv.append(f"--{name}={text}")
        else:
            argv += [f"--{name}", text]
    return argv


def parse_template(template: str, known: Iterable[str], where: str) -> list[str]:
    """Split a command template into words and check that every placeholder is known.

    `known` holds the parameters' dotted names; the built-in placeholders (python, script,
    overrides, args, task_id, task_dir, output_dir, sweep_id) are always known. `{{` and `}}`
    are literal braces. The template is split once, with shell word rules, and never given
    to a shell.
    """
    try:
        tokens = shlex.split(template)
    except ValueError as exc:
        raise BadInput(f"{where}: cannot split command template: {exc}") from None
    if not tokens:
        raise BadInput(f"{where}: command template is empty")
    params = set(known)
    for token in tokens:
        for placeholder in _placeholders(token, where):
            if placeholder in _EXPANDING and token != "{" + placeholder + "}":
                raise BadInput(f"{where}: {{{placeholder}}} must be a word of its own, not part of {token!r}")
            if placeholder in BUILTIN_PLACEHOLDERS and placeholder in params:
                raise BadInput(
                    f"{where}: placeholder {{{placeholder}}} is ambiguous: it is both a parameter and "
                    "a built-in placeholder"
                )
            if placeholder not in params and placeholder not in BUILTIN_PLACEHOLDERS:
                raise BadInput(f"{where}: unknown placeholder {{{placeholder}}} in command template")
    return tokens


def render_template(
    tokens: Sequence[str],
    params: Mapping[str, object],
    context: Mapping[str, str],
    *,
    extra_overrides: Sequence[str] = (),
) -> list[str]:
    """The argv of a parsed template: each word filled in on its own, so it stays one entry.

    A word that is exactly `{overrides}` becomes the Hydra overrides of `params` followed by
    `extra_overrides`; exactly `{args}` becomes `argparse_args(params)`. Other placeholders take
    a built-in's text from `context`, else the parameter's `format_value` text.
    """
    argv: list[str] = []
    for token in tokens:
        if token == "{overrides}":
            argv += hydra_overrides(params)
            argv += extra_overrides
        elif token == "{args}":
            argv += argparse_args(params)
        else:
            argv.append(_fill(token, params, context))
    return argv


def check_no_nul(value: object, where: str, key: str = "") -> None:
    """Raise BadInput when a string in `value` holds a NUL character: no program can take one in
    an argument (the task's argv file separates arguments with NUL), so it would split in two."""
    if isinstance(value, str):
        if "\0" in value:
            head = value.split("\0")[0]
            raise BadInput(f"{where}: {key + ': ' if key else ''}the value {head!r}... holds a NUL character, "
                           "which no program can take in an argument")
    elif isinstance(value, Mapping):
        for name, item in value.items():
            check_no_nul(name, where, key)
            check_no_nul(item, where, f"{key}.{name}" if key else str(name))
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            check_no_nul(item, where, f"{key}[{n}]")


def build_argv(
    params: Mapping[str, object],
    *,
    python: str,
    script: str,
    arg_style: str = "hydra",
    template: Sequence[str] | None = None,
    context: Mapping[str, str] = _EMPTY,
    extra_overrides: Sequence[str] = (),
) -> list[str]:
    """The argv that runs one task: `python script` plus its parameters, or the rendered template."""
    if arg_style not in ARG_STYLES:
        raise BadInput(f"arg_style {arg_style!r}: expected one of {', '.join(ARG_STYLES)}")
    check_no_nul(dict(params), "parameters")
    if template is not None:
        full_context = {**context, "python": python, "script": script}
        return render_template(template, params, full_context, extra_overrides=extra_overrides)
    if arg_style == "hydra":
        return [python, script, *hydra_overrides(params), *extra_overrides]
    return [python, script, *argparse_args(params)]


def _hydra_value(value: object, where: str) -> str:
    """The text after `=` for one value, or one element of a list or dict."""
    if isinstance(value, str):
        return _hydra_quote(_omegaconf_literal(value, where))
    if value is None or isinstance(value, (bool, int, float)):
        return _scalar_text(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(item, where) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{_hydra_dict_key(key, where)}:{_hydra_value(item, where)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    raise BadInput(f"parameter {where!r}: unsupported value type {type(value).__name__}")


def _hydra_quote(text: str) -> str:
    """`text` in single quotes, escaped so that Hydra's un-escaping gives `text` back."""
    # Hydra reads backslashes literally except in a run right before a quote: there the run is
    # halved and an odd leftover escapes the quote. So double such runs and escape each quote;
    # the closing quote counts, hence the trailing run is doubled too.
    body = _QUOTE_RUN.sub(lambda m: m.group(1) * 2 + "\\'", text)
    body = _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2, body)
    return f"'{body}'"


def _omegaconf_literal(text: str, where: str) -> str:
    """The string OmegaConf must hold so that the script reads back exactly `text`."""
    if text == "???":
        raise BadInput(
            f"parameter {where!r}: the string '???' cannot be passed to a Hydra app "
            "(OmegaConf reads it as a missing value)"
        )
    if "${" not in text:
        # Without `${` OmegaConf never parses the string, so backslashes are literal.
        return text
    # Escape every `${` as `\${`, doubling the backslashes that precede it so they stay literal.
    return _INTERPOLATION_OPEN.sub(lambda m: m.group(1) * 2 + "\\${", text)


def _hydra_dict_key(key: object, where: str) -> str:
    """An unquoted dict key that Hydra parses back to exactly `key` (keys cannot be quoted)."""
    if isinstance(key, str):
        text = "".join(f"\\{ch}" if ch in _KEY_ESCAPED else ch for ch in key)
        if key and all(ch in _KEY_ESCAPED or _KEY_PLAIN.fullmatch(ch) for ch in key):
            parsed = _unquoted_value(key)
            if isinstance(parsed, str):
                return text
    elif isinstance(key, (bool, int, float)):
        text = _scalar_text(key)
        parsed = _unquoted_value(text)
        if type(parsed) is type(key) and parsed == key:
            return text
    raise BadInput(
        f"parameter {where!r}: dict key {key!r} cannot be written in a Hydra override "
        "(keys there are unquoted: only ASCII letters, digits, space and _-/\\+.$%*@?|()[]{}:=, "
        "and a key that reads as a number, bool or null would change type)"
    )


def _unquoted_value(text: str) -> object:
    """What Hydra makes of `text` when it lexes as one unquoted token, else `text` itself."""
    if _HYDRA_INT.fullmatch(text):
        return int(text)
    if _HYDRA_FLOAT.fullmatch(text):
        return float(text)
    if _HYDRA_BOOL.fullmatch(text):
        return text.lower() == "true"
    if _HYDRA_NULL.fullmatch(text):
        return None
    return text


def _scalar_text(value: object) -> str:
    """null, true/false, or the repr of an int or float (the subclass's own repr is ignored)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    assert isinstance(value, float)
    return float.__repr__(value)


def _check_plain(value: object, where: str) -> None:
    """Raise BadInput if a nested value holds anything but str, numbers, bools, None, lists, dicts."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, bool, int, float))):
                raise BadInput(f"{where} {value!r}: unsupported dict key type {type(key).__name__}")
            _check_plain(item, where)
        return
    raise BadInput(f"{where} {value!r}: unsupported type {type(value).__name__}")


def _placeholders(token: str, where: str) -> Iterator[str]:
    """The placeholder names in one template word; BadInput on a stray `{` or `}`."""
    for match in _PLACEHOLDER.finditer(token):
        text = match.group(0)
        if text in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise BadInput(f"{where}: unmatched {text!r} in {token!r} (write {text}{text} for a literal brace)")
        yield match.group(1)


def _fill(token: str, params: Mapping[str, object], context: Mapping[str, str]) -> str:
    """One template word with its placeholders replaced."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "{{":
            return "{"
        if text == "}}":
            return "}"
        name = match.group(1)
        if name is None:
            raise BadInput(f"command template: unmatched {text!r} in {token!r}")
        if name in BUILTIN_PLACEHOLDERS:
            if name in context:
                return context[name]
            raise BadInput(f"command template: no value for {{{name}}}")
        if name in params:
            return format_value(params[name])
        raise BadInput(f"command template: unknown placeholder {{{name}}}")

    return _PLACEHOLDER.sub(replace, token)


def _has_space(text: str) -> bool:
    """True if `text` holds any whitespace character."""
    return any(ch.isspace() for ch in text)


__all__ = [
    "ARG_STYLES",
    "BUILTIN_PLACEHOLDERS",
    "argparse_args",
    "build_argv",
    "check_no_nul",
    "check_hydra_name",
    "format_value",
    "hydra_override",
    "hydra_overrides",
    "parse_template",
    "render_template",
]
