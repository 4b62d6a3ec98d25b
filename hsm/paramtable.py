"""The sweep's parameter table, `task_params.jsonl`: every task's parameters in one file.

`hsm expand` writes it once, in the directory it builds and renames into place, and nothing
changes it afterwards. One line per task, in task order (line N is task N):

    {"task_id": "task_001", "params": {"lr": 0.1, "model.hidden_dim": 64}}

A task whose values JSON cannot carry exactly (a mapping with keys that are not strings, a
date) has `"params_yaml"`, the YAML text of its parameters, instead of `"params"`.

Whoever needs a task's parameters reads them here: `hsm submit` (to build the task's argv and
to write `params.yaml` into the task's directory, which it creates then), `hsm export` and the
reports, `hsm status --task`. One table instead of a directory and a file per task at expand
is what keeps a sweep of a million tasks from costing a million inodes before anything runs.
A sweep made before the table existed has none: its tasks' own params.yaml files are read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from hsm import store
from hsm.errors import HsmError
from hsm.paths import SweepPaths

_encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: json.dumps(kwargs) makes one per call


def _exact(value: Any) -> bool:
    """True when JSON gives `value` back as it is (same types, same keys)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_exact(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _exact(v) for k, v in value.items())
    return False


class _Pieces:
    """Renders one `name: value` piece per parameter, reusing the text of values already seen.

    A grid repeats the same few values across many tasks, so most pieces are rendered once;
    that keeps the table of a million tasks within seconds.
    """

    def __init__(self, render: Any) -> None:
        self._render = render
        self._cache: dict[tuple[str, type, Any], Any] = {}

    def piece(self, name: str, value: Any) -> Any:
        try:
            key = (name, type(value), value)
            if key in self._cache:
                return self._cache[key]
        except TypeError:  # lists and dicts are not hashable: rendered each time
            return self._render(name, value)
        piece = self._cache[key] = self._render(name, value)
        return piece


def _json_piece(name: str, value: Any) -> str | None:
    return f"{_encode(name)}: {_encode(value)}" if _exact(value) else None


class LineWriter:
    """The table's lines, one per task."""

    def __init__(self) -> None:
        self._pieces = _Pieces(_json_piece)

    def line(self, tid: str, params: Mapping[str, Any]) -> str:
        pieces = [self._pieces.piece(name, value) for name, value in params.items()]
        if None in pieces:
            return f'{{"task_id": {_encode(tid)}, "params_yaml": {_encode(store.yaml_text(dict(params)))}}}\n'
        return f'{{"task_id": {_encode(tid)}, "params": {{{", ".join(pieces)}}}}}\n'


class YamlWriter:
    """params.yaml texts (block-style YAML), each value's line rendered once."""

    def __init__(self) -> None:
        self._pieces = _Pieces(lambda name, value: store.yaml_text({name: value}))

    def text(self, params: Mapping[str, Any]) -> str:
        return "".join(self._pieces.piece(name, value) for name, value in params.items())


def _number(tid: str) -> int:
    """The number in a task id (`task_007` -> 7); 0 for an id hsm did not make."""
    digits = tid.rpartition("_")[2]
    return int(digits) if digits.isdigit() else 0


class ParamTable:
    """The parameters of a sweep's tasks: from its table, or from each task's params.yaml (an older sweep)."""

    def __init__(self, paths: SweepPaths) -> None:
        self.paths = paths
        self._read_yet = False
        self._lines: list[str] | None = None  # None: the sweep has no table
        self._by_id: dict[str, str] | None = None

    @property
    def present(self) -> bool:
        """True for a sweep with a table; False for one made before it (params.yaml per task)."""
        return self._read() is not None

    def _read(self) -> list[str] | None:
        if not self._read_yet:
            self._read_yet = True
            try:
                text = self.paths.param_table.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
            self._lines = text.split("\n")
            if self._lines and not self._lines[-1]:
                self._lines.pop()  # after the last line's newline
        return self._lines

    def get(self, tid: str) -> dict[str, Any]:
        """Task `tid`'s parameters ({} for a task the sweep does not have)."""
        lines = self._read()
        if lines is None:
            return self._from_task_dir(tid)
        number = _number(tid)
        if 0 < number <= len(lines):
            found = self._params(self._row(lines[number - 1]), tid)
            if found is not None:
                return found
        # Not where task order puts it (a table edited by hand): look it up by id.
        if self._by_id is None:
            self._by_id = {}
            for line in lines:
                row = self._row(line)
                if isinstance(row, dict):
                    self._by_id[str(row.get("task_id"))] = line
        found_line = self._by_id.get(tid)
        return (self._params(self._row(found_line), tid) or {}) if found_line is not None else {}

    def many(self, tids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The parameters of each of these tasks."""
        return {tid: self.get(tid) for tid in tids}

    def _row(self, line: str) -> Any:
        """One line, parsed (None for a blank one)."""
        if not line.strip():
            return None
        try:
            return json.loads(line)
        except ValueError:
            raise HsmError(f"{self.paths.param_table}: a line is not JSON: {line[:80]!r}") from None

    def _params(self, row: Any, tid: str) -> dict[str, Any] | None:
        """The parameters in `row` when it is task `tid`'s, else None."""
        if not isinstance(row, dict) or row.get("task_id") != tid:
            return None
        if "params_yaml" in row:
            params = store.parse_yaml(str(row["params_yaml"]), f"{self.paths.param_table}: {tid}")
        else:
            params = row.get("params")
        return params if isinstance(params, dict) else {}

    def _from_task_dir(self, tid: str) -> dict[str, Any]:
        path = self.paths.params(tid)
        if not path.is_file():
            return {}
        data = store.read_yaml(path)
        return data if isinstance(data, dict) else {}


def write_task_params(paths: SweepPaths, params: Mapping[str, Mapping[str, Any]]) -> None:
    """Create each task's directory on its first submit and write its params.yaml there.

    The table is the record; params.yaml is the copy a person (or the training script) reads
    in the task's directory. Written straight into a directory created just now (nobody
    reads it yet), else replaced through a temporary file (a retry, a submit done again).
    A sweep made before the table has its params.yaml files already: nothing is written.
    """
    if not paths.param_table.is_file():
        return
    writer = YamlWriter()
    tasks_dir = str(paths.tasks)
    pid = os.getpid()
    for tid, values in params.items():
        task_dir = os.path.join(tasks_dir, tid)
        target = os.path.join(task_dir, "params.yaml")
        text = writer.text(values)
        try:
            os.mkdir(task_dir)
        except FileExistsError:
            tmp = os.path.join(task_dir, f".params.yaml.{pid}.tmp")
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            continue
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
