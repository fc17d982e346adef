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
import sys
import engine, engine.studio, engine.cli, engine.training.runner, engine.chat.inference, engine.training.job
import engine.config, engine.data.reading, engine.training.events, engine.training.factories
import engine.training.callbacks, engine.presets, engine.locales, engine.models.loader, engine.system.device
import engine.system.files
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
