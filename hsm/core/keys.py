"""Declaring a setting once: its name, type, default, allowed range and meaning (pure).

A `Key` parses the value a user wrote into the value hsm uses, or raises BadInput with one
line naming where it was written and what was expected. `read_keys` applies a list of keys
to one mapping of a config file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hsm.errors import BadInput

Parse = Callable[[Any, str], Any]  # (value as written, where) -> value hsm uses


@dataclass(frozen=True)
class Key:
    """One setting: how to read it, its default, and a line saying what it does."""

    name: str
    parse: Parse
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()
    kind: str = ""  # how the docs name its type, e.g. "whole number >= 1"

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def type_text(self) -> str:
        """What the docs say the key takes: `kind` when given, else what its parser says."""
        return self.kind or str(getattr(self.parse, "kind", "")) or _KINDS.get(getattr(self.parse, "__name__", ""), "")


def bad(where: str, problem: str, value: Any) -> BadInput:
    """The one-line refusal: `WHERE: expected ..., got VALUE`."""
    return BadInput(f"{where}: {problem}, got {value!r}")


def read_keys(keys: Sequence[Key], data: Mapping[str, Any], where: str, sep: str = ": ") -> dict[str, Any]:
    """Every key's value from `data` (by name or alias), parsed; the default where none is given.

    A value of None (an empty YAML entry) counts as not given.
    """
    out: dict[str, Any] = {}
    for key in keys:
        given = next((n for n in key.names() if data.get(n) is not None), None)
        out[key.name] = key.parse(data[given], f"{where}{sep}{given}") if given else key.default
    return out


def canonical(keys: Sequence[Key], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with every alias written under its key's own name (None values dropped).

    Layers of settings (a project section, then a source's own) are made canonical before
    they are merged, so a source's `partition` overrides the section's `queue`.
    """
    alias = {a: k.name for k in keys for a in k.aliases}
    return {alias.get(name, name): value for name, value in data.items() if value is not None}


def known_names(keys: Sequence[Key]) -> set[str]:
    """Every name and alias the keys answer to."""
    return {n for k in keys for n in k.names()}


# --- parsers -----------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole(minimum: int | None = None, maximum: int | None = None) -> Parse:
    """A whole number within [minimum, maximum]."""
    def parse(value: Any, where: str) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise bad(where, f"expected a whole number{_range(minimum, maximum)}", value)
        return int(value)
    parse.kind = f"whole number{_range(minimum, maximum)}"  # type: ignore[attr-defined]
    return parse


def number(minimum: float | None = None, maximum: float | None = None, above: float | None = None) -> Parse:
    """A finite number within [minimum, maximum] (and above `above`, exclusive)."""
    def parse(value: Any, where: str) -> float:
        ok = _is_number(value) and math.isfinite(value)
        if ok and ((minimum is not None and value < minimum) or (maximum is not None and value > maximum)
                   or (above is not None and value <= above)):
            ok = False
        if not ok:
            low = f" above {above:g}" if above is not None else ""
            raise bad(where, f"expected a number{low}{_range(minimum, maximum)}", value)
        return float(value)
    parse.kind = f"number{f' above {above:g}' if above is not None else ''}{_range(minimum, maximum)}"  # type: ignore[attr-defined]
    return parse


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f" of at least {minimum:g}"
    if maximum is not None:
        return f" of at most {maximum:g}"
    return ""


def boolean(value: Any, where: str) -> bool:
    """true or false (YAML's own booleans; the string 'no' is not one)."""
    if not isinstance(value, bool):
        raise bad(where, "expected true or false", value)
    return value


def text(value: Any, where: str) -> str:
    """A non-empty string (a number is taken as its text)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise bad(where, "expected a string", value)
    return str(value).strip()


def name_text(value: Any, where: str) -> str:
    """A name such as a partition's: a string (a bare number is refused; quoted, it is a name)."""
    if not isinstance(value, str) or not value.strip():
        problem = "expected a name (write a number in quotes: '7')" if _is_number(value) else "expected a name"
        raise bad(where, problem, value)
    return value.strip()


def path_text(value: Any, where: str) -> str:
    """A path or a name: a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise bad(where, "expected a path or name", value)
    return value


def absolute_path(value: Any, where: str) -> str:
    """An absolute path."""
    path = text(value, where)
    if not path.startswith("/"):
        raise BadInput(f"{where}: expected an absolute path on the cluster, got {path!r}")
    return path


def choice(*allowed: str) -> Parse:
    """One of the given words."""
    def parse(value: Any, where: str) -> str:
        if value not in allowed:
            raise bad(where, f"expected one of {', '.join(allowed)}", value)
        return str(value)
    parse.kind = " or ".join(f"`{a}`" for a in allowed)  # type: ignore[attr-defined]
    return parse


def strings(what: str = "strings") -> Parse:
    """A string or a list of strings, as a tuple."""
    def parse(value: Any, where: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
            raise bad(where, f"expected a list of {what}", value)
        return tuple(items)
    parse.kind = f"list of {what}"  # type: ignore[attr-defined]
    return parse


def exit_codes(value: Any, where: str) -> list[int]:
    """A list of exit codes (0 to 255), or one."""
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
                                              for v in items):
        raise bad(where, "expected a list of exit codes from 0 to 255", value)
    return list(items)  # a list: it is written into the sweep's metadata as YAML


def port(value: Any, where: str) -> int:
    """A TCP port number."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise bad(where, "expected a port number", value)
    return value


def ssh_options(value: Any, where: str) -> tuple[str, ...]:
    """ssh `-o` options written `Name=value`."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(o, str) and "=" in o and not o.startswith("-") for o in items):
        raise bad(where, "expected a list of 'Name=value' options", value)
    return tuple(items)


def string_or_list(value: Any, where: str) -> str | tuple[str, ...]:
    """A string, or a list of strings kept as a tuple."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise bad(where, "expected a string or a list", value)


# A memory amount as Slurm (32G, 4000M) and PBS (64gb, 512mb) write it.
_MEMORY_OPTION = re.compile(r"(?:^|[\s:,])(?:--)?(mem|mem-per-cpu|mem-per-gpu|pmem|vmem)=([^\s:,]*)")
_MEMORY = re.compile(r"^\d+(?:\.\d+)?(?:[KMGTPkmgtp][Bb]?|[Bb]|[Ww]|[KMGTkmgt][Ww])?$")


def resources(value: Any, where: str) -> str | tuple[str, ...]:
    """Job resources (a string or a list), with every memory amount in them readable by the
    scheduler: sbatch refused `mem=lots` only at the first submit."""
    text = string_or_list(value, where)
    for item in [text] if isinstance(text, str) else list(text):
        for name, amount in _MEMORY_OPTION.findall(item):
            if not _MEMORY.match(amount):
                raise BadInput(f"{where}: {name}={amount!r} is not an amount of memory (e.g. {name}=32G or "
                               f"{name}=64gb)")
    return text


def mapping(value: Any, where: str) -> dict[str, Any]:
    """A mapping (a YAML section); None is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


# How the docs name the type of a key read by each plain parser.
_KINDS = {
    "boolean": "true or false", "text": "string", "name_text": "name", "path_text": "path", "absolute_path": "absolute path",
    "exit_codes": "list of exit codes", "port": "port number", "ssh_options": "list of Name=value",
    "string_or_list": "string or list", "resources": "string or list", "mapping": "mapping",
}
