"""Keeping an uploaded file: a copy in the studio's `uploads/` folder, so a run, its resume or a study can still
read it after the web server has cleaned up its temporary uploads (old ones hourly, all of them when it stops)."""
from __future__ import annotations

import filecmp
from pathlib import Path

from engine.errors import EngineError
from engine.system.files import copy_atomic


def keep_upload(source: str | Path, folder: str | Path) -> Path:
    """The kept copy of `source` in `folder`: under its own name, or `name-2`, `name-3`, ... when that name holds
    another file; an identical file already kept is reused. Raises `upload_not_kept` when it cannot be copied."""
    source, folder = Path(source), Path(folder)
    target, number = folder / source.name, 2
    try:
        while target.exists() and not filecmp.cmp(target, source, shallow=False):
            target, number = folder / f"{source.stem}-{number}{source.suffix}", number + 1
        if not target.exists():
            copy_atomic(source, target)
    except OSError as error:
        raise EngineError("upload_not_kept", {"name": source.name, "reason": error.strerror or str(error)},
                          hint="hint_upload_again") from None
    return target
