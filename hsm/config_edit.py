"""Changing the sources in `hsm_config.yaml` while keeping the rest of the file as the user wrote it.

The file is parsed with ruamel.yaml's round-trip loader, which reports where every key and
value stands, and the change is made to the text at those places: one value replaced, one
line inserted, or one entry's lines removed. Every other line stays byte for byte as it was
(comments, blank lines, key order, indentation, quoting). A full dump by the round-trip
dumper would move comments that follow a mapping's last entry and re-indent sequences.

Each edit is checked before it is returned: the new text, parsed again, must hold exactly the
old data with the intended change, so a layout the editor did not foresee is refused (one
line, exit 2) instead of written.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from hsm.errors import BadInput

SECTIONS = (("compute_sources",), ("distributed", "remotes"))
_SCALAR = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s,}\]#]+")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass
class Parsed:
    """A config text, its lines, and the round-trip document with the positions of its nodes."""

    text: str
    lines: list[str]
    doc: Any  # ruamel's CommentedMap of the whole file (empty for an empty file)
    where: str


def parse(text: str, where: str) -> Parsed:
    """Parse a config text with positions; BadInput naming the line when it is not YAML."""
    from ruamel.yaml import YAML, CommentedMap
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise BadInput(f"{where}: {at}{' '.join(str(exc.problem or exc).split())}") from None
    except YAMLError as exc:
        raise BadInput(f"{where}: {' '.join(str(exc).split())}") from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise BadInput(f"{where}: expected a mapping of sections, got {type(doc).__name__}")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return Parsed(text, lines, doc, where)


# --- finding things --------------------------------------------------------------------------------


def find_source(p: Parsed, name: str) -> tuple[str, ...] | None:
    """The section path (`compute_sources` or `distributed.remotes`) that holds source `name`."""
    for path in SECTIONS:
        section = _node(p.doc, path)
        if isinstance(section, dict) and name in section:
            return path
    return None


def _node(doc: Any, path: tuple[str, ...]) -> Any:
    node = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _is_flow(p: Parsed, node: Any) -> bool:
    """True when a mapping is written `{...}` (ruamel's own flag is not set for `{}`)."""
    line, col = node.lc.line, node.lc.col
    return line < len(p.lines) and p.lines[line][col:col + 1] == "{"


def _end_of(p: Parsed, path: tuple[str, ...]) -> int:
    """The line after the node at `path` (block mappings all the way down), before any trimming."""
    for depth in range(len(path), 0, -1):
        parent, key = _node(p.doc, path[:depth - 1]), path[depth - 1]
        keys = list(parent)
        following = keys[keys.index(key) + 1:]
        if following:
            return int(parent.lc.key(following[0])[0])
    return len(p.lines)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _trim(p: Parsed, start: int, end: int, col: int) -> int:
    """`end` moved back over blank lines, and comments at or left of `col` (they introduce what follows)."""
    while end > start + 1:
        line = p.lines[end - 1]
        if line.strip() and not (line.lstrip().startswith("#") and _indent(line) <= col):
            break
        end -= 1
    return end


def _block_path(p: Parsed, path: tuple[str, ...], what: str) -> None:
    """Refuse an edit inside a mapping written in flow style (`{...}`): its lines are not its entries."""
    for depth in range(1, len(path) + 1):
        node = _node(p.doc, path[:depth])
        if isinstance(node, dict) and _is_flow(p, node):
            shown = ".".join(path[:depth])
            raise BadInput(f"{p.where}: {shown} is written in flow style ({{...}}); {what} needs it as a block "
                           "mapping, one entry per line: change it by hand")


# --- edits ---------------------------------------------------------------------------------------


def set_enabled(text: str, name: str, value: bool, where: str) -> str:
    """The text with `enabled: true|false` on source `name` (unchanged when it already says so)."""
    p = parse(text, where)
    path = find_source(p, name)
    if path is None:
        raise BadInput(f"{where}: no source '{name}' under compute_sources or distributed.remotes")
    entry = _node(p.doc, path)[name]
    word = "true" if value else "false"
    if entry is None:
        raise BadInput(f"{where}: {'.'.join(path)}.{name} has no settings; write it as a mapping "
                       f"(e.g. {name}: {{type: ...}}) first")
    if "enabled" in entry:
        if entry["enabled"] is value:
            return text
        line, col = entry.lc.value("enabled")
        new = _replace_scalar(p, line, col, word)
    elif value:
        return text  # enabled is the default
    else:
        new = _insert_key(p, path, name, entry, f"enabled: {word}")
    return _checked(p, new, lambda d: _entry(d, path, name).__setitem__("enabled", value))


def add_source(text: str, name: str, settings: dict[str, Any], where: str) -> str:
    """The text with a new source under `compute_sources` (the section made when missing)."""
    if not NAME.match(name):
        raise BadInput(f"source name '{name}': use letters, digits, '.', '_' and '-', starting with a letter or digit")
    p = parse(text, where)
    found = find_source(p, name)
    if found is not None:
        raise BadInput(f"{where}: source '{name}' already exists ({'.'.join(found)}.{name})")
    section = p.doc.get("compute_sources")
    if section is not None and not isinstance(section, dict):
        raise BadInput(f"{where}: compute_sources: expected a mapping, got {type(section).__name__}")
    if section:
        _block_path(p, ("compute_sources",), "adding a source")
        new = _append_entry(p, name, settings)
    else:
        new = _new_section(p, name, settings)

    def change(d: dict[str, Any]) -> None:
        if not isinstance(d.get("compute_sources"), dict):
            d["compute_sources"] = {}
        d["compute_sources"][name] = settings

    return _checked(p, new, change)


def remove_source(text: str, name: str, where: str) -> str:
    """The text without source `name` (its lines, and a blank line it leaves doubled)."""
    p = parse(text, where)
    path = find_source(p, name)
    if path is None:
        raise BadInput(f"{where}: no source '{name}' under compute_sources or distributed.remotes")
    _block_path(p, path, "removing a source")
    section = _node(p.doc, path)
    start, col = section.lc.key(name)
    end = _trim(p, start, _end_of(p, (*path, name)), col)
    lines = p.lines[:start] + p.lines[end:]
    if 0 < start < len(lines) and not lines[start - 1].strip() and not lines[start].strip():
        del lines[start]
    return _checked(p, "".join(lines), lambda d: _drop(d, path, name))


# --- text surgery ----------------------------------------------------------------------------------


def _replace_scalar(p: Parsed, line: int, col: int, word: str) -> str:
    match = _SCALAR.match(p.lines[line], col)
    if match is None:
        raise BadInput(f"{p.where}: line {line + 1}: cannot read the value at column {col + 1}")
    lines = list(p.lines)
    lines[line] = lines[line][:col] + word + lines[line][match.end():]
    return "".join(lines)


def _insert_key(p: Parsed, path: tuple[str, ...], name: str, entry: Any, item: str) -> str:
    """`item` (`key: value`) made the first key of the entry, in the entry's own style."""
    lines = list(p.lines)
    if _is_flow(p, entry):
        if len(entry):
            line, col = entry.lc.key(next(iter(entry)))
            lines[line] = lines[line][:col] + item + ", " + lines[line][col:]
        else:
            line, col = entry.lc.line, entry.lc.col + 1
            lines[line] = lines[line][:col] + item + lines[line][col:]
        return "".join(lines)
    header = _node(p.doc, path).lc.key(name)[0]
    first_line, col = entry.lc.key(next(iter(entry)))
    if first_line <= header:
        raise BadInput(f"{p.where}: line {header + 1}: cannot tell where the settings of '{name}' start")
    lines.insert(header + 1, " " * col + item + "\n")
    return "".join(lines)


def _entry_text(name: str, settings: dict[str, Any], col: int, inner: int) -> list[str]:
    """`name:` and its settings as block-style lines, at column `col`, keys `inner` further in."""
    if not settings:
        return [" " * col + f"{name}: {{}}\n"]
    body = yaml.safe_dump(settings, default_flow_style=False, sort_keys=False, allow_unicode=True, width=4096,
                          indent=inner)
    return [" " * col + f"{name}:\n"] + [" " * (col + inner) + line + "\n" for line in body.splitlines()]


def _append_entry(p: Parsed, name: str, settings: dict[str, Any]) -> str:
    """A new entry after the last of `compute_sources`, indented and spaced like its siblings."""
    section = p.doc["compute_sources"]
    names = list(section)
    col = section.lc.key(names[0])[1]
    blocks = [section[n] for n in names if isinstance(section[n], dict) and len(section[n]) and not _is_flow(p, section[n])]
    inner = (blocks[0].lc.key(next(iter(blocks[0])))[1] - col) if blocks else col or 2
    spaced = any(not p.lines[section.lc.key(n)[0] - 1].strip() for n in names[1:])
    last = section.lc.key(names[-1])[0]
    end = _trim(p, last, _end_of(p, ("compute_sources", names[-1])), col)
    new = (["\n"] if spaced else []) + _entry_text(name, settings, col, max(inner, 1))
    return "".join(p.lines[:end] + new + p.lines[end:])


def _new_section(p: Parsed, name: str, settings: dict[str, Any]) -> str:
    """`compute_sources:` with one entry: in place of an empty one, else at the end of the file."""
    indented = [line for line in p.lines if line.strip() and not line.lstrip().startswith("#") and _indent(line)]
    step = min((_indent(line) for line in indented), default=2)
    entry = _entry_text(name, settings, step, step)
    if "compute_sources" in p.doc:
        line = p.doc.lc.key("compute_sources")[0]
        comment = re.search(r"\s+#.*$", p.lines[line].rstrip("\n"))
        head = "compute_sources:" + (comment.group(0) if comment else "") + "\n"
        return "".join(p.lines[:line] + [head] + entry + p.lines[line + 1:])
    spacer = ["\n"] if p.lines and p.lines[-1].strip() else []
    return "".join(p.lines + spacer + ["compute_sources:\n"] + entry)


def _entry(data: dict[str, Any], path: tuple[str, ...], name: str) -> dict[str, Any]:
    node = _node(data, path)
    return node[name]


def _drop(data: dict[str, Any], path: tuple[str, ...], name: str) -> None:
    """The data change of a removal: a section left without entries reads as empty (null)."""
    section = _node(data, path)
    section.pop(name)
    if not section:
        _node(data, path[:-1])[path[-1]] = None


def _checked(p: Parsed, new: str, change: Callable[[dict[str, Any]], Any]) -> str:
    """`new`, once it is known to parse to the old data with `change` applied; else BadInput."""
    before = yaml.safe_load(p.text) or {}
    expected = copy.deepcopy(before)
    change(expected)
    try:
        after = yaml.safe_load(new) or {}
    except yaml.YAMLError:
        after = None
    if after != expected:
        raise BadInput(f"{p.where}: this file's layout is one hsm cannot change safely; nothing was written "
                       "(make the change by hand)")
    return new
