"""The two sides of a study, described from their stored folders: which choice, run, step and base model each is.

A study stores the candidate's adapter folder (`run_dir`) and the baseline's (`baseline_dir`, None for the base
model). A side is described as `{"choice", "run_id", "step", "model"}`: the choice string the studio offers
(`BASE_CHOICE` for the base model), the run id (None for the base model), the checkpoint's step (None for a final
adapter) and the base model's id (read from the run's config; the base model's side names the other side's model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.training.adapters import BASE_CHOICE, CHECKPOINT_MARK, checkpoint_step


def model_of(run_dir: Path) -> str | None:
    """The base model a run was trained on, as its config.yaml names it; None when the run's config is gone."""
    try:
        return (yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}).get("model_name_or_path")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def side_of(folder: str | Path | None) -> dict[str, Any]:
    """One side of a study from its stored folder (a run folder, one of its checkpoint folders, or None for the
    base model); no file needs to be there but the run's config, for the model."""
    if not folder:
        return {"choice": BASE_CHOICE, "run_id": None, "step": None, "model": None}
    path = Path(folder)
    if path.parent.name == "checkpoints":
        run_dir = path.parent.parent
        return {"choice": f"{run_dir.name}{CHECKPOINT_MARK}{path.name}", "run_id": run_dir.name,
                "step": checkpoint_step(path), "model": model_of(run_dir)}
    return {"choice": path.name, "run_id": path.name, "step": None, "model": model_of(path)}


def study_sides(run_dir: str | Path | None, baseline_dir: str | Path | None) -> dict[str, dict[str, Any]]:
    """{"baseline": side, "candidate": side} of a study; a base-model side names the other side's base model."""
    baseline, candidate = side_of(baseline_dir), side_of(run_dir)
    for side, other in ((baseline, candidate), (candidate, baseline)):
        if side["run_id"] is None:
            side["model"] = other["model"]
    return {"baseline": baseline, "candidate": candidate}
