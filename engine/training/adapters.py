"""Where a run's adapters live: its final `adapter/` and each saved checkpoint, as choices for chat and studies.

A choice is named by a string: the run id for the final adapter, `run_id@checkpoint-N` for a checkpoint, and
`BASE_CHOICE` ("@base") for the base model itself (no run id holds the checkpoint mark, so none collides with it).
Chat and studies open it by path: the run folder, or one of its `checkpoints/checkpoint-N` folders.

Only whole adapters are offered. A checkpoint is complete once the trainer has written its `trainer_state.json`,
the last file it saves there; this module is the one place that decides it, for chat, studies and resume. The final
`adapter/` is written into a hidden sibling folder and renamed into place when complete (`replacing_folder`), so
an `adapter/` that exists is whole.
"""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.errors import EngineError

CHECKPOINT_MARK = "@"
BASE_CHOICE = f"{CHECKPOINT_MARK}base"  # the choice of the base model, with no adapter, as one side of a comparison
ADAPTER_FILE = "adapter_config.json"
CHECKPOINT_COMPLETE_FILE = "trainer_state.json"  # the trainer writes it last, after the weights and optimizer state


@dataclass(frozen=True)
class AdapterChoice:
    """One adapter a user can chat with: a run's final adapter (step None) or a checkpoint's."""

    value: str
    run_id: str
    step: int | None = None


def checkpoint_step(folder: Path) -> int:
    """The step number of a `checkpoint-N` folder; ValueError when its name does not end in a number."""
    return int(folder.name.rsplit("-", 1)[-1])


def checkpoint_folders(run_dir: Path) -> list[Path]:
    """The run's `checkpoints/checkpoint-N` folders whose N is a step number, lowest step first (folders with
    other names, such as a half-written `checkpoint-tmp`, are left out)."""
    found = [p for p in (run_dir / "checkpoints").glob("checkpoint-*")
             if p.is_dir() and p.name.rsplit("-", 1)[-1].isdigit()]
    return sorted(found, key=checkpoint_step)


def is_complete_checkpoint(folder: Path) -> bool:
    """Whether the trainer finished saving checkpoint `folder` (a save cut short has no trainer_state.json)."""
    return (folder / CHECKPOINT_COMPLETE_FILE).is_file()


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoint folders the trainer finished saving, lowest step first."""
    return [p for p in checkpoint_folders(run_dir) if is_complete_checkpoint(p)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, the one a resume continues from; None when there is none."""
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def checkpoints_with_adapter(run_dir: Path) -> list[Path]:
    """The run's complete checkpoint folders that hold an adapter, lowest step first."""
    return [p for p in complete_checkpoints(run_dir) if (p / ADAPTER_FILE).is_file()]


def choices_for(run_id: str, run_dir: Path) -> list[AdapterChoice]:
    """The final adapter (when saved) and then every checkpoint of one run, newest checkpoint first."""
    found = [AdapterChoice(run_id, run_id)] if (run_dir / "adapter" / ADAPTER_FILE).is_file() else []
    return found + [AdapterChoice(f"{run_id}{CHECKPOINT_MARK}{p.name}", run_id, checkpoint_step(p))
                    for p in reversed(checkpoints_with_adapter(run_dir))]


def split_choice(value: str) -> tuple[str, str | None]:
    """("run id", "checkpoint-N" or None) of a choice's string."""
    run_id, mark, checkpoint = value.rpartition(CHECKPOINT_MARK)
    if mark and checkpoint.startswith("checkpoint-"):
        return run_id, checkpoint
    return value, None


def choice_of(path: str | Path) -> str:
    """The choice string of an adapter folder (a run folder or one of its checkpoint folders): the inverse of
    `split_choice` for the run folder's name as its id; raises `run_not_found` when no adapter is there."""
    run_dir, adapter_dir = locate(path)
    return run_dir.name if adapter_dir == run_dir / "adapter" else f"{run_dir.name}{CHECKPOINT_MARK}{adapter_dir.name}"


def locate(path: str | Path) -> tuple[Path, Path]:
    """(run folder, adapter folder) for a run folder (its final adapter) or one of its checkpoint
    folders; raises `run_not_found` when there is no adapter there. A path named directly is opened when its
    adapter is there (PEFT writes adapter_config.json after the weights), even if the trainer's save of that
    checkpoint was cut short; only complete checkpoints are offered as choices."""
    path = Path(path)
    if path.parent.name == "checkpoints" and (path.parent.parent / "config.yaml").is_file():
        run_dir, adapter_dir = path.parent.parent, path
    else:
        run_dir, adapter_dir = path, path / "adapter"
    if not (adapter_dir / ADAPTER_FILE).is_file() or not (run_dir / "config.yaml").is_file():
        raise EngineError("run_not_found", {"path": str(path)}, hint="hint_pick_run")
    return run_dir, adapter_dir


@contextmanager
def replacing_folder(folder: Path) -> Iterator[Path]:
    """A new hidden sibling folder (`.adapter.tmp-…`) to write `folder`'s new content into; when the block ends its
    files are synced and it takes `folder`'s place (an older `folder` is renamed aside first, then removed). When the
    block fails it is removed and an older `folder` stays as it was, so a crash never leaves a half `folder`.
    Leftovers of an earlier save that was killed are removed first."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    staging, aside = (folder.parent / f".{folder.name}.{role}-{uuid.uuid4().hex[:8]}" for role in ("tmp", "old"))
    staging.mkdir()  # with the permissions of any new folder (a temporary folder's would be private)
    try:
        yield staging
        _sync_tree(staging)
        if folder.exists():
            folder.rename(aside)
        try:
            staging.rename(folder)
        except BaseException:
            if aside.exists():
                aside.rename(folder)
            raise
        _sync_folder(folder.parent)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_leftovers(folder: Path) -> None:
    """Remove the hidden staging and set-aside folders that an earlier, killed save of `folder` left behind."""
    for pattern in (f".{folder.name}.tmp-*", f".{folder.name}.old-*"):
        for leftover in folder.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _sync_tree(folder: Path) -> None:
    """Flush every file under `folder`, and the folders naming them, to the disk."""
    for parent, _dirs, files in os.walk(folder):
        for name in files:
            _fsync(Path(parent, name))
        _sync_folder(Path(parent))


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the names created or renamed in it) to the disk, where the system allows it."""
    if os.name == "posix":  # Windows cannot open a folder to sync it
        _fsync(folder)


def _fsync(path: Path) -> None:
    """Flush what the system holds of file or folder `path` to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
