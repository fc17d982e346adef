"""Atomic file writes: a crash never leaves a half-written config, dataset, report or kept upload."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside `path` to write into; synced and renamed over `path` when the block ends, removed
    when it fails (parent folders are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a synced temporary file and a rename, creating parent folders."""
    with _replacing(Path(path)) as fh:
        fh.write(text.encode("utf-8"))


def copy_atomic(source: str | Path, path: str | Path) -> None:
    """Copy the file `source` to `path` through a synced temporary file and a rename, creating parent folders."""
    with open(source, "rb") as src, _replacing(Path(path)) as fh:
        shutil.copyfileobj(src, fh)
