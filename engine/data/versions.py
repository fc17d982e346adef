"""Saved versions of an edited dataset: `<data_root>/<dataset name>/v0001.jsonl`, `v0002.jsonl`, ... (an
existing version is never overwritten) and `latest.jsonl`, each written atomically: a version's name appears only
once its whole text is on the disk, so a crash never leaves an empty or partial `vNNNN.jsonl`."""
from __future__ import annotations

import errno
import os
import re
import threading
import uuid
from pathlib import Path

from engine.system.files import write_text_atomic

LATEST = "latest.jsonl"
VERSION = re.compile(r"^v(\d{4,})\.jsonl$")
_FOLDER_LOCKS: dict[Path, threading.Lock] = {}  # one per dataset folder (resolved), so saves there take turns
_LOCKS_GUARD = threading.Lock()
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS)  # a file system without them


def dataset_name(path: Path, data_root: Path) -> str:
    """The folder name under `data_root`: a saved version or latest.jsonl keeps its folder's name."""
    try:
        inside = path.resolve().parent.parent == data_root.resolve()
    except OSError:
        inside = False
    if inside and (path.name == LATEST or VERSION.match(path.name)):
        return path.parent.name
    name = re.sub(r"[^\w.-]+", "_", path.stem).strip("._")
    return name or "dataset"


def versions(folder: Path) -> list[Path]:
    """Saved versions in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := VERSION.match(p.name))]
    return [p for _n, p in sorted(found)]


def save_version(folder: Path, text: str) -> Path:
    """Write `text` as the next version in `folder` (never over one) and as latest.jsonl; returns the version.

    Saves to one folder take turns (editors of different sessions may save the same dataset at once), so
    latest.jsonl is always the newest version's text.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_lock(folder):
        pending = folder / f".pending-{uuid.uuid4().hex}.jsonl"  # a hidden name that is never a version
        try:
            write_text_atomic(pending, text)
            target = _publish_as_next_version(pending)
        finally:
            pending.unlink(missing_ok=True)
        write_text_atomic(folder / LATEST, text)
    return target


def _folder_lock(folder: Path) -> threading.Lock:
    """The lock of one dataset folder, the same for every spelling of its path."""
    with _LOCKS_GUARD:
        return _FOLDER_LOCKS.setdefault(folder.resolve(), threading.Lock())


def _publish_as_next_version(pending: Path) -> Path:
    """Give the whole, synced file `pending` the next free `vNNNN.jsonl` name of its folder and return it. A hard
    link takes a name only if it is free, so another process saving there at the same time never gets the same
    one, and the name never shows a file still being written."""
    existing = versions(pending.parent)
    number = int(VERSION.match(existing[-1].name).group(1)) + 1 if existing else 1
    hard_link = True
    while True:
        target = pending.parent / f"v{number:04d}.jsonl"
        try:
            _take_name(pending, target, hard_link)
            return target
        except FileExistsError:
            number += 1
        except OSError as error:
            if not hard_link or error.errno not in _NO_HARD_LINKS:
                raise
            hard_link = False


def _take_name(pending: Path, target: Path, hard_link: bool) -> None:
    """Make `pending`'s file appear as `target`; FileExistsError when that name is taken. Without hard links (a FAT
    drive, some network shares) the name is claimed empty and at once replaced by the file: only a crash in
    that instant could leave it empty."""
    if hard_link:
        os.link(pending, target)
        return
    with open(target, "x", encoding="utf-8"):
        pass
    os.replace(pending, target)
