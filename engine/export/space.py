"""Room on disk for an export: free space checked before writing, and each output written under a temporary
name and renamed into place only when complete (a folder through `adapters.replacing_folder`)."""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.errors import EngineError
from engine.training.adapters import replacing_folder

MARGIN = 1.05  # room asked for beyond the expected size (metadata, rounding of the estimate)

__all__ = ["ensure_free_space", "folder_size", "replacing_folder", "staged_file"]


def folder_size(folder: Path) -> int:
    """The bytes of every file under `folder`."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def ensure_free_space(folder: Path, needed_bytes: int) -> None:
    """Raise `export_no_space` (the folder, the gigabytes needed and free) when the disk holding `folder` has less
    than `needed_bytes` (plus a margin) free; the folder is created first."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes * MARGIN:
        raise EngineError("export_no_space", {"folder": str(folder), "needed_gb": round(needed_bytes * MARGIN / 1e9, 2),
                                              "free_gb": round(free / 1e9, 2)}, hint="hint_free_space")


@contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """A hidden temporary path beside `path` to write one file to; renamed onto `path` (synced) when the block ends,
    removed when it fails, so `path` is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield staging
        with open(staging, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
