"""Setting one key of `hsm_config.yaml` (`hsm config set`), keeping the rest of the file as written.

The same text surgery as `hsm.config_edit`: the round-trip parser says where the key stands,
one value is replaced in place (or one entry added after its section's last), and the result,
parsed again, must hold exactly the old data with the one change before it is returned.
"""

from __future__ import annotations

from typing import Any

import yaml

from hsm.config_edit import Parsed, _block_path, _checked, _end_of, _indent, _node, _replace_scalar, _trim, parse
from hsm.errors import BadInput


def set_value(text: str, path: tuple[str, ...], value: Any, where: str) -> str:
    """The text with the key at `path` (e.g. compute, health_check_interval) set to `value`.

    An existing value is replaced where it stands (a block-style mapping or list becomes one
    flow-style line); a missing key is added as the last entry of its mapping, and missing
    sections are made at the end of the file.
    """
    p = parse(text, where)
    shown = ".".join(path)
    depth = 0
    node = p.doc
    while depth < len(path) - 1 and isinstance(node, dict) and isinstance(node.get(path[depth]), dict):
        node = node[path[depth]]
        depth += 1
    if depth < len(path) - 1 and node.get(path[depth]) is not None:
        raise BadInput(f"{where}: {'.'.join(path[:depth + 1])} is a value, not a section: cannot set {shown}")
    if depth == len(path) - 1 and path[-1] in node:
        new = _replace_value(p, node, path[-1], value)
    else:
        if depth:
            _block_path(p, path[:depth], f"adding {shown}")
        new = _add_entry(p, path[:depth], path[depth:], value)
    return _checked(p, new, lambda d: _set_in(d, path, value))


def flow_text(value: Any) -> str:
    """`value` as YAML writes it on one line (quoted where it must be)."""
    dumped = yaml.safe_dump({"k": value}, default_flow_style=True, width=10**6, allow_unicode=True).strip()
    return dumped[len("{k: "):-1]


def _replace_value(p: Parsed, parent: Any, key: str, value: Any) -> str:
    line, col = parent.lc.value(key)
    old = parent[key]
    if not isinstance(old, (dict, list)) and line == parent.lc.key(key)[0]:
        return _replace_scalar(p, line, col, flow_text(value))
    key_line, key_col = parent.lc.key(key)
    if isinstance(old, (dict, list)) and p.lines[line][col:col + 1] in "[{" and line == key_line:
        end = _closing(p.lines[line], col)
        lines = list(p.lines)
        lines[line] = lines[line][:col] + flow_text(value) + lines[line][end:]
        return "".join(lines)
    path_end = _next_key_line(p, parent, key)
    end = _trim(p, key_line, path_end, key_col)
    entry = " " * key_col + f"{_key_text(key)}: {flow_text(value)}\n"
    return "".join(p.lines[:key_line] + [entry] + p.lines[end:])


def _closing(line: str, start: int) -> int:
    """The index after the bracket that closes the one at `start` (quotes respected)."""
    depth, quote = 0, ""
    for i in range(start, len(line)):
        c = line[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise BadInput(f"cannot find the end of the value on: {line.strip()}")


def _next_key_line(p: Parsed, parent: Any, key: str) -> int:
    """The line where the entry after `key` starts (or where the enclosing mappings' next entry does)."""
    keys = list(parent)
    following = keys[keys.index(key) + 1:]
    if following:
        return int(parent.lc.key(following[0])[0])
    path = _path_to(p.doc, parent)
    return _end_of(p, path) if path else len(p.lines)


def _path_to(doc: Any, target: Any, prefix: tuple[str, ...] = ()) -> tuple[str, ...]:
    for k, v in doc.items():
        if v is target:
            return (*prefix, str(k))
        if isinstance(v, dict):
            found = _path_to(v, target, (*prefix, str(k)))
            if found:
                return found
    return ()


def _add_entry(p: Parsed, have: tuple[str, ...], missing: tuple[str, ...], value: Any) -> str:
    """`missing` keys (the last set to `value`) added below the existing mapping at `have`."""
    indented = [line for line in p.lines if line.strip() and not line.lstrip().startswith("#") and _indent(line)]
    step = min((_indent(line) for line in indented), default=2)
    parent = _node(p.doc, have) if have else p.doc
    if have and len(parent):
        col = parent.lc.key(next(iter(parent)))[1]
        last = list(parent)[-1]
        at = _trim(p, parent.lc.key(last)[0], _end_of(p, (*have, str(last))), col)
    elif have:  # an empty section: `compute:` alone, or `compute: {}`
        line = _node(p.doc, have[:-1]).lc.key(have[-1])[0] if len(have) > 1 else p.doc.lc.key(have[-1])[0]
        col = _indent(p.lines[line]) + step
        at = line + 1
        if "{}" in p.lines[line].split("#")[0]:
            p.lines[line] = p.lines[line].replace("{}", "", 1).rstrip() + "\n"
    else:
        col = 0
        at = len(p.lines)
    new = [" " * (col + i * step) + f"{_key_text(k)}:\n" for i, k in enumerate(missing[:-1])]
    new.append(" " * (col + (len(missing) - 1) * step) + f"{_key_text(missing[-1])}: {flow_text(value)}\n")
    if not have and p.lines and p.lines[-1].strip():
        new.insert(0, "\n")
    return "".join(p.lines[:at] + new + p.lines[at:])


def _key_text(key: str) -> str:
    return flow_text(key)


def _set_in(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
