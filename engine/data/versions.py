"""Saved versions of an edited dataset: `<data_root>/<dataset name>/v0001.jsonl`, `v0002.jsonl`, ... (an
existing version is never overwritten) and `latest.jsonl`, each written atomically."""
from __future__ import annotations

import re
import threading
from pathlib import Path

from engine.system.files import write_text_atomic

LATEST = "latest.jsonl"
VERSION = re.compile(r"^v(\d{4,})\.jsonl$")
_FOLDER_LOCKS: dict[Path, threading.Lock] = {}  # one per dataset folder (resolved), so saves there take turns
_LOCKS_GUARD = threading.Lock()


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
        target = _claim_next_version(folder)
        try:
            write_text_atomic(target, text)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        write_text_atomic(folder / LATEST, text)
    return target


def _folder_lock(folder: Path) -> threading.Lock:
    """The lock of one dataset folder, the same for every spelling of its path."""
    with _LOCKS_GUARD:
        return _FOLDER_LOCKS.setdefault(folder.resolve(), threading.Lock())


def _claim_next_version(folder: Path) -> Path:
    """Create the next free `vNNNN.jsonl` in `folder` empty and return it (another process saving there
    at the same time never gets the same name)."""
    existing = versions(folder)
    number = int(VERSION.match(existing[-1].name).group(1)) + 1 if existing else 1
    while True:
        target = folder / f"v{number:04d}.jsonl"
        try:
            with open(target, "x", encoding="utf-8"):
                return target
        except FileExistsError:
            number += 1
