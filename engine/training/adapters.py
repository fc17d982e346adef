"""Where a run's adapters live: its final `adapter/` and each saved checkpoint, as choices for chat and studies.

A choice is named by a string: the run id for the final adapter, `run_id@checkpoint-N` for a checkpoint.
Chat and studies open it by path: the run folder, or one of its `checkpoints/checkpoint-N` folders.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError

CHECKPOINT_MARK = "@"
ADAPTER_FILE = "adapter_config.json"


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


def checkpoints_with_adapter(run_dir: Path) -> list[Path]:
    """The run's checkpoint folders that hold an adapter, lowest step first."""
    return [p for p in checkpoint_folders(run_dir) if (p / ADAPTER_FILE).is_file()]


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


def locate(path: str | Path) -> tuple[Path, Path]:
    """(run folder, adapter folder) for a run folder (its final adapter) or one of its checkpoint
    folders; raises `run_not_found` when there is no adapter there."""
    path = Path(path)
    if path.parent.name == "checkpoints" and (path.parent.parent / "config.yaml").is_file():
        run_dir, adapter_dir = path.parent.parent, path
    else:
        run_dir, adapter_dir = path, path / "adapter"
    if not (adapter_dir / ADAPTER_FILE).is_file() or not (run_dir / "config.yaml").is_file():
        raise EngineError("run_not_found", {"path": str(path)}, hint="hint_pick_run")
    return run_dir, adapter_dir
