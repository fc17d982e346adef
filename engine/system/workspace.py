"""The studio's workspace: the folders a web request may name; a path anywhere else is refused in words."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError


@dataclass(frozen=True)
class Workspace:
    """The folders a front end's paths must lie in (symlinks followed); no folders at all means anywhere,
    as on the command line, where the user names their own files."""

    roots: tuple[Path, ...] = ()

    @classmethod
    def of(cls, *folders: str | Path) -> "Workspace":
        """A workspace of `folders` (resolved now; they need not exist yet)."""
        return cls(tuple(dict.fromkeys(Path(folder).expanduser().resolve() for folder in folders)))

    @property
    def confined(self) -> bool:
        """Whether paths are checked at all."""
        return bool(self.roots)

    def check(self, path: str | Path, field: str) -> str | Path:
        """`path` when it lies inside one of the folders (or the workspace is not confined, or the path is empty);
        raises `path_outside_workspace` naming `field` and the folders otherwise."""
        if not self.roots or not str(path).strip():
            return path
        resolved = Path(str(path).strip()).expanduser().resolve()
        if any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            return path
        raise EngineError("path_outside_workspace",
                          {"field": field, "path": str(path), "allowed": ", ".join(str(r) for r in self.roots)},
                          hint="hint_allow_dir")
