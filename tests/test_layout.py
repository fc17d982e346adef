"""The house rules that keep the code navigable: rooms by role, short modules, short functions, docstrings."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# the door, the run's settings, presets, errors, the CLI and the package marker; everything else lives in a room
ENGINE_TOP_MODULES = {"__init__.py", "studio.py", "config.py", "presets.py", "errors.py", "cli.py"}
ENGINE_ROOMS = {"data", "models", "system", "training", "planning", "chat", "study", "export", "serving", "locales"}


def _sources() -> list[Path]:
    return sorted([*ROOT.glob("engine/**/*.py"), *ROOT.glob("ui/**/*.py"), ROOT / "app.py"])


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_engine_top_level_holds_only_the_door_and_the_rooms():
    entries = {p.name for p in (ROOT / "engine").iterdir() if p.name != "__pycache__"}
    modules = {name for name in entries if name.endswith(".py")}
    rooms = {name for name in entries if (ROOT / "engine" / name).is_dir()}
    assert modules == ENGINE_TOP_MODULES
    assert rooms == ENGINE_ROOMS
    assert entries == modules | rooms, "only modules and packages at engine/'s top level"
    for room in rooms:
        assert (ROOT / "engine" / room / "__init__.py").is_file(), f"engine/{room} is a package"


def test_no_module_over_the_line_limit():
    long = {_relative(p): n for p in _sources() if (n := len(p.read_text(encoding="utf-8").splitlines()))
            > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_over_the_line_limit():
    long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{_relative(path)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_every_module_says_what_it_is_for():
    silent = [_relative(p) for p in _sources() if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert silent == []


def test_every_public_function_and_class_says_what_it_is_for():
    """Module-level functions and classes and their methods, unless private (`_name`)."""
    silent = []
    for path in _sources():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            members = node.body if isinstance(node, ast.ClassDef) else []
            for item in [node, *members]:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                        not item.name.startswith("_") and not ast.get_docstring(item):
                    silent.append(f"{_relative(path)}:{item.lineno} {item.name}")
    assert silent == []
