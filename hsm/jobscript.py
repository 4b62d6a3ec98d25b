"""Rendering of the bash templates in `templates/`, overridable per project.

A template has `{{name}}` placeholders. Values are inserted shell-quoted unless wrapped in
`Raw` (a block of setup lines the user configured). A missing value is an error, and
bash's own `$VAR`, `"$@"` and `%j` pass through untouched.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from hsm.errors import BadInput

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")


class Raw(str):
    """A value inserted into a template as it is, not quoted."""


def own_template(name: str, project_root: Path | None) -> Path | None:
    """The project's own copy of template `name` (in its `templates/`), None when it has none."""
    if project_root is None:
        return None
    path = project_root / "templates" / name
    return path if path.is_file() else None


def template_text(name: str, project_root: Path | None = None) -> str:
    """The text of template `name`: the project's `templates/` copy wins over hsm's own."""
    override = own_template(name, project_root)
    if override is not None:
        return override.read_text(encoding="utf-8")
    return builtin_template(name).read_text(encoding="utf-8")


def builtin_template(name: str) -> Path:
    """Where hsm's own copy of template `name` is: installed package data or the checkout."""
    try:
        installed = Path(str(resources.files("hsm.templates").joinpath(name)))
        if installed.is_file():
            return installed
    except ModuleNotFoundError:
        pass
    checkout = Path(__file__).resolve().parent.parent / "templates" / name
    if checkout.is_file():
        return checkout
    raise BadInput(f"template '{name}': not found in hsm's templates")


def render(text: str, values: Mapping[str, object], name: str = "template") -> str:
    """Fill every `{{name}}`; quoted unless Raw. A placeholder with no value is an error."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(values))
    if missing:
        raise BadInput(f"{name}: no value for {', '.join('{{' + m + '}}' for m in missing)}")

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return str(value) if isinstance(value, Raw) else shlex.quote(str(value))

    return _PLACEHOLDER.sub(fill, text)
