"""Every dotted `engine.<module>[.<name>]` the engine's code, docstrings and comments mention still exists."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOTTED = re.compile(r"\bengine(?:\.[A-Za-z_]\w*)+")


def _module_file(parts: list[str]) -> Path | None:
    """The file of module `parts` (a package's __init__.py), or None when there is no such module."""
    path = ROOT.joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _top_level_names(path: Path) -> set[str]:
    """The names a module defines, assigns or imports at its top level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def _resolves(dotted: str) -> bool:
    """Whether `dotted` is a module of the engine, or a module and a name it defines."""
    parts = dotted.split(".")
    for size in range(len(parts), 0, -1):
        found = _module_file(parts[:size])
        if found is not None:
            rest = parts[size:]
            return not rest or rest[0] in _top_level_names(found) or ROOT.joinpath(*parts[:size], rest[0]).exists()
    return False


def test_every_dotted_engine_name_in_the_engine_exists():
    stale = []
    for path in sorted((ROOT / "engine").rglob("*")):
        if path.suffix not in (".py", ".yaml", ".md"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            stale += [f"{path.relative_to(ROOT)}:{number}: {name}" for name in DOTTED.findall(line)
                      if not _resolves(name.rstrip("."))]
    assert stale == []


def test_a_moved_module_is_found_stale():
    assert not _resolves("engine.model_shapes") and not _resolves("engine.data.split_examples")
    assert _resolves("engine.models.shapes") and _resolves("engine.data.splits.split_examples")
    assert _resolves("engine.locales") and _resolves("engine.data.samples")
