"""The only writer of state files: safe YAML, atomic replace, and the sweep lock.

Every file is written to a temporary file in its own directory, flushed to disk and
renamed over the old one, so a reader sees either the old or the new content, never a
torn one. Read-modify-write of sweep-level files happens under the sweep's lock
(`SweepLock`); slow calls to sources are made outside it.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import yaml

from hsm.core.states import ORDER
from hsm.errors import BadInput, HsmError

SCHEMA = 1

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; state files get the mode a plain open() would give them.
_FILE_MODE = 0o666 & ~_umask()

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def yaml_text(data: Any) -> str:
    """Render plain data as block-style YAML, keys in insertion order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text; a syntax error becomes BadInput naming `where`, line and column."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise BadInput(f"{where}: {at}{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{where}: {exc}") from None


class _StrictLoader(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a key given twice in one mapping.

    Plain safe_load keeps the last of two equal keys, so a grid parameter written twice
    would silently lose its first list of values.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            # Keys merged in with `<<:` may be overridden on purpose.
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; the base constructor reports it
                continue
            if duplicate:
                shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..."
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {shown}", key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_yaml_strict(path: Path) -> Any:
    """Load a YAML file a person wrote; a key given twice, or any other fault, is BadInput naming the place."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{where}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{where}: is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise BadInput(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        if exc.problem and exc.context and exc.problem.startswith("but "):
            # "but found another document" only makes sense after its context.
            problem = f"{exc.context}, {exc.problem}"
        if mark is None:
            raise BadInput(f"{where}: {_one_line(problem)}") from None
        raise BadInput(f"{where}: line {mark.line + 1}, column {mark.column + 1}: {_one_line(problem)}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{where}: {_one_line(str(exc))}") from None


def read_yaml(path: Path, where: str | None = None) -> Any:
    """Load one YAML file (C loader when present)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{where or path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{where or path}: not UTF-8 text ({exc.reason})") from None
    return parse_yaml(text, where or str(path))


def atomic_write(path: Path, text: str, mode: int | None = None) -> None:
    """Replace `path` with `text` atomically: temp file in the same dir, fsync, rename.

    The new file gets `mode` (a user's file keeps its own), else what a plain open() gives.
    """
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with the bytes `data` atomically, as `atomic_write` does with text."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:  # a write to the open file names none
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines to a log or record (callers hold the sweep lock, so lines never interleave)."""
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def write_inputs(files: dict[Path, str]) -> None:
    """Replace many small input files (the tasks' argv) atomically, with one sync for all.

    Each is still written to a temporary file and renamed, so no reader sees half of one;
    one flush of their file system at the end instead of an fsync per file keeps a submit of 100,000 tasks
    from paying a disk flush per task.
    """
    pid = os.getpid()
    for path, text in files.items():
        tmp = path.parent / f".{path.name}.{pid}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    if files:
        _sync_filesystem(next(iter(files)).parent)


def _sync_filesystem(path: Path) -> None:
    """Flush the one file system holding `path` (syncfs), not every one on the machine.

    On a shared login node `os.sync()` would wait for every user's dirty data; syncfs
    limits the wait to hsm's own file system. Falls back to os.sync where syncfs is missing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    """Write a state file atomically, with the schema version first."""
    atomic_write(path, yaml_text({"schema": SCHEMA, **{k: v for k, v in data.items() if k != "schema"}}))


def check_schema(data: Any, where: str) -> dict[str, Any]:
    """Refuse a state file that is not a mapping or carries a newer schema."""
    if not isinstance(data, dict):
        raise HsmError(f"{where}: not a state file (expected a mapping)")
    version = data.get("schema", SCHEMA)
    if not isinstance(version, int) or version > SCHEMA:
        raise HsmError(f"{where}: schema {version!r} is newer than this hsm understands ({SCHEMA}); upgrade hsm")
    return data


_encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: json.dumps(kwargs) builds one per call
_encode_key = json.encoder.encode_basestring  # a str as JSON, non-ASCII kept (C code when present)


def index_text(index: dict[str, Any]) -> str:
    """Render the task index as flow-style YAML, one task per line.

    Flow style is the JSON-compatible subset of YAML: any YAML reader takes it, and it
    parses at JSON speed, which is what keeps `status` and `poll` fast on 100,000 tasks
    (libyaml needs about 6 s for such an index in block style, json 0.2 s).
    """
    head = {k: v for k, v in index.items() if k != "tasks"}
    head = {"schema": SCHEMA, **{k: v for k, v in head.items() if k != "schema"}}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('"tasks": {')
    lines.append(",\n".join(_task_lines(index.get("tasks", {}))))
    lines.append("}}")
    return "\n".join(lines if index.get("tasks") else [*lines[:-2], "}}"]) + "\n"


def _task_lines(tasks: dict[str, Any]) -> Iterator[str]:
    """One ` "task_id": {...}` line per task; an entry object met again (expand gives every pending
    task the same one) is rendered once."""
    last: Any = None
    text = ""
    for task_id, entry in tasks.items():
        if entry is not last:
            last, text = entry, _encode(entry)
        yield f" {_encode_key(task_id)}: {text}"


def parse_index(text: str, where: str) -> dict[str, Any]:
    """Parse the task index: JSON fast path, YAML for a hand-edited file."""
    try:
        data = json.loads(text)
    except ValueError:
        data = parse_yaml(text, where)
    data = check_schema(data, where)
    if not isinstance(data.get("tasks"), dict):
        raise HsmError(f"{where}: 'tasks' is missing or not a mapping")
    _check_states(data["tasks"], where)
    return data


_KNOWN_STATES = frozenset(ORDER)


def _check_states(tasks: dict[str, Any], where: str) -> None:
    """Refuse an index with a task that has no known state, naming the first such task.

    The common case, every entry a mapping with a known state, is checked at C speed (the set
    of states seen); only a damaged index is walked entry by entry to name the culprit.
    """
    try:
        if set(map(_get_state, tasks.values())) <= _KNOWN_STATES:
            return
    except (AttributeError, TypeError):  # an entry that is not a mapping, or a state that is not hashable
        pass
    for task_id, entry in tasks.items():
        if not isinstance(entry, dict) or _hashable(entry.get("state")) not in _KNOWN_STATES:
            state = entry.get("state") if isinstance(entry, dict) else None
            raise HsmError(f"{where}: task {task_id!r} is damaged: "
                           + (f"unknown state {state!r}" if state is not None else "it has no state")
                           + f" (each task needs a state: {', '.join(ORDER)})")


_get_state = operator.methodcaller("get", "state")


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return None
    return value


class SweepLock:
    """The sweep's lock: held only for a read-modify-write of sweep-level files.

    The lock file lives beside the data and is never deleted (deleting it would let two
    processes hold 'the' lock on two different inodes).
    """

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self._lock = filelock.FileLock(str(path), timeout=timeout)
        self.path = path

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the body of a `with` block."""
        try:
            with self._lock:
                yield
        except filelock.Timeout:
            raise HsmError(f"{self.path}: another hsm command held the sweep lock for too long") from None
