"""The house's walls: what may import what.

- `hsm/agent/` runs on hosts that have nothing but a Python 3: standard library only, and
  nothing of hsm outside the agent itself.
- There is one way the agent reaches a host (its zip application) and no program text is
  sent for a host to execute.
- `hsm/core/` is pure: the model, the state transitions, expansion, assignment, policies.
  It imports the standard library's computing modules only (no files, processes, clock or
  network), and nothing of hsm but itself and its errors.
- Modules and functions stay small enough to read whole: a module over 400 lines or a
  function over 60 needs its reason written on the line above it (`# long: ...`).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from hsm import remote_agent

ROOT = Path(__file__).resolve().parents[2]
HSM = ROOT / "hsm"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved within hsm)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


def test_the_agent_imports_the_standard_library_and_itself_only() -> None:
    stdlib = sys.stdlib_module_names
    for path in sorted((HSM / "agent").glob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top == "__future__" or top in stdlib or name.startswith("hsm.agent"), (path.name, name)


# Standard-library modules that compute and touch nothing outside the process.
PURE_STDLIB = {
    "__future__", "ast", "collections", "collections.abc", "copy", "dataclasses", "datetime", "difflib", "enum",
    "fnmatch", "functools", "hashlib", "heapq", "html", "itertools", "json", "math", "operator", "posixpath",
    "random", "re", "shlex", "statistics", "string", "types", "typing",
}


def test_core_imports_pure_modules_only() -> None:
    paths = sorted((HSM / "core").glob("*.py"))
    assert len(paths) > 5
    for path in paths:
        for name in imported_modules(path):
            allowed = name in PURE_STDLIB or name == "hsm.errors" or name.startswith("hsm.core")
            assert allowed, f"hsm/core/{path.name} imports {name}"


def test_core_opens_no_file_and_reads_no_clock() -> None:
    for path in sorted((HSM / "core").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                assert name not in {"open", "now", "utcnow", "time", "today", "read_text", "write_text"}, \
                    f"hsm/core/{path.name}:{node.lineno} calls {name}()"


def test_the_agent_runs_from_its_zip_application_with_the_standard_library_alone(tmp_path: Path) -> None:
    bundle = remote_agent.local_bundle()
    assert bundle.name == remote_agent.bundle_name()
    # -I -S: no site-packages, no PYTHONPATH, no user site: only the standard library.
    for action, request in (("home", {}), ("health", {"project_dir": str(tmp_path)}),
                            ("statuses", {"tasks_dir": str(tmp_path), "tasks": [["task_001", 1, None]]})):
        result = subprocess.run([sys.executable, "-I", "-S", str(bundle), action], input=json.dumps(request),
                                capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
        assert result.returncode == 0, (action, result.stderr)
        assert isinstance(json.loads(result.stdout), dict)
    modules = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         "import sys; sys.path.insert(0, sys.argv[1]); "
         "import hsm.agent.main, hsm.agent.probe, hsm.agent.project, hsm.agent.runner, hsm.agent.status; "
         "print(sorted(m for m in sys.modules if m.startswith('hsm')))", str(bundle)],
        capture_output=True, text=True, timeout=60, check=False)
    assert modules.returncode == 0, modules.stderr
    assert all(m == "hsm" or m.startswith("hsm.agent") for m in ast.literal_eval(modules.stdout))


def test_no_program_text_is_sent_to_a_host() -> None:
    for path in HSM.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "getsource" not in text and "BOOTSTRAP" not in text, path


MODULE_LINES, FUNCTION_LINES = 400, 60


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for path in sorted(HSM.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        rel = path.relative_to(ROOT)
        if len(lines) > MODULE_LINES and not any(line.startswith("# long:") for line in lines[:40]):
            too_long.append(f"{rel}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                reason = lines[first - 2].strip().startswith("# long:") if first >= 2 else False
                if length > FUNCTION_LINES and not reason:
                    too_long.append(f"{rel}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, "\n".join(too_long)


def test_every_command_is_loaded_from_the_module_the_table_names() -> None:
    """`hsm CMD` imports only COMMAND_MODULES[CMD]: a command missing there, or listed under the
    wrong module, would be 'No such command' when called alone."""
    import importlib

    from hsm.cli import COMMAND_MODULES, cli

    for name in cli.commands:
        module_name = COMMAND_MODULES.get(name)
        assert module_name is not None, f"hsm {name} is not in hsm.cli.COMMAND_MODULES"
        if module_name == "legacy":
            continue
        module = importlib.import_module(f"hsm.cli.{module_name}")
        names = {c.name for c in getattr(module, "COMMANDS", ())} | ({"config"} if module_name == "config_cmd" else set())
        assert name in names, f"hsm {name} is not among the commands of hsm.cli.{module_name}"
    assert set(COMMAND_MODULES) == set(cli.commands)
