"""The engine never imports gradio; the UI never imports the training libraries."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "transformers", "trl", "peft"}

CHECK = """
import importlib, pkgutil, sys
import engine
for module in pkgutil.walk_packages(engine.__path__, "engine."):  # every module of every room
    importlib.import_module(module.name)
leaked = sorted(m for m in sys.modules if m == "gradio" or m.startswith("gradio."))
print("LEAKED:" + ",".join(leaked))
"""

LIGHT = """
import sys
import engine, engine.studio, engine.cli, engine.training.runner, engine.chat.inference, engine.presets
import engine.data.reading
heavy = sorted(m for m in ("torch", "transformers", "trl", "peft", "gradio") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_engine_does_not_import_gradio():
    result = run_python(CHECK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LEAKED:", result.stdout


def test_engine_front_doors_import_without_heavy_libraries():
    """The docstring promise: torch & co. are imported lazily, so importing the engine is fast."""
    result = run_python(LIGHT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("HEAVY:"), result.stdout


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


def test_ui_does_not_import_training_libraries():
    ui = ROOT / "ui"
    files = sorted(ui.rglob("*.py")) if ui.is_dir() else []
    if not files:
        pytest.skip("ui/ has no Python files yet")
    offenders = {}
    for path in files:
        bad = {name for name in _imported_modules(path) if name.split(".")[0] in HEAVY}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_ui_imports_only_the_engine_surface():
    """`ui/` reaches the engine through `from engine import ...` alone, never `engine.<submodule>`."""
    files = sorted((ROOT / "ui").rglob("*.py"))
    assert files
    offenders = {}
    for path in files:
        bad = {name for name in _imported_modules(path) if name.startswith("engine.")}
        bad |= {f"engine.{alias}" for alias in _engine_submodules_imported_by_name(path)}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def _engine_submodules_imported_by_name(path: Path) -> set[str]:
    """Names taken `from engine import ...` that are submodules (`from engine import presets`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    submodules = {p.stem for p in (ROOT / "engine").glob("*.py")} | {
        p.name for p in (ROOT / "engine").iterdir() if (p / "__init__.py").is_file()}
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "engine"
            and node.level == 0 for alias in node.names if alias.name in submodules - {"__init__"}}


def test_the_ui_import_check_catches_submodule_imports(tmp_path):
    """The check above would fail on each way of reaching past the surface."""
    module = tmp_path / "bad.py"
    module.write_text("import engine.studio\nfrom engine.data import editor\nfrom engine import presets, Studio\n"
                      "importlib.import_module('engine.cli')\n", encoding="utf-8")
    reached = {name for name in _imported_modules(module) if name.startswith("engine.")}
    assert reached == {"engine.studio", "engine.data", "engine.cli"}
    assert _engine_submodules_imported_by_name(module) == {"presets"}
