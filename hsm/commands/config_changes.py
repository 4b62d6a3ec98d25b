"""`hsm config set`: change one key of hsm_config.yaml, keeping the rest of the file as written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hsm import config_set
from hsm.commands.sources import edit_config
from hsm.config import ProjectConfig
from hsm.errors import BadInput

_KEY = re.compile(r"[A-Za-z0-9_.-]+\Z")


@dataclass(frozen=True)
class Change:
    """What `hsm config set` did: the key, its value before (None: not written) and after, the file."""

    key: str
    before: Any
    after: Any
    path: Path | None  # None: the file already said so


def parse_value(text: str, key: str) -> Any:
    """The value as YAML reads it (`120` a number, `true` a boolean, `[0, 1]` a list, `x` a string)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInput(f"{key}: {text!r} is not a YAML value ({' '.join(str(exc).split())[:120]})") from None
    if isinstance(value, dict):
        raise BadInput(f"{key}: give one value; set the keys of a section one by one (e.g. {key}.NAME VALUE)")
    return value


def key_path(key: str) -> tuple[str, ...]:
    """`compute.health_check_interval` as its parts; BadInput for an empty part or odd characters."""
    parts = tuple(key.split("."))
    if not _KEY.match(key) or not all(parts) or len(parts) < 2:
        raise BadInput(f"{key!r}: expected a dotted key below a section, e.g. compute.health_check_interval")
    return parts


def set_key(project: ProjectConfig, key: str, value_text: str) -> Change:
    """Set `key` to the value `value_text` gives; the file is written only when it still loads."""
    path = key_path(key)
    value = parse_value(value_text, key)
    before = _lookup(project.raw, path)
    written = edit_config(project, [lambda text, where: config_set.set_value(text, path, value, where)])
    return Change(key, before, value, written)


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data
