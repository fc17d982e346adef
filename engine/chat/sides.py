"""The two sides of a comparison: the baseline (left-hand; the base model by default) and the candidate.

A side is the base model (no adapter: `None`) or an adapter folder (a run's final adapter or one of its
checkpoints). Both sides must sit on the same base model, since they share its one loaded copy, and must differ.
The storage and field names keep "base" for the baseline side and "adapter" for the candidate side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.models import loader
from engine.training import adapters


@dataclass(frozen=True)
class AdapterSource:
    """Where one adapter side lives: its run folder, its adapter folder and the run's config."""

    run_dir: Path
    adapter_dir: Path
    config: TrainConfig

    @property
    def name(self) -> str:
        """The adapter's name on the loaded model (unique per run and checkpoint)."""
        suffix = f"_{self.adapter_dir.name}" if self.adapter_dir != self.run_dir / "adapter" else ""
        return f"run_{self.run_dir.resolve().name}{suffix}"

    @property
    def model(self) -> str:
        """The base model the adapter was trained on, as its config names it."""
        return self.config.model_name_or_path


def source_of(path: str | Path) -> AdapterSource:
    """The adapter side at `path` (a run folder or one of its checkpoint folders); raises `run_not_found`."""
    run_dir, adapter_dir = adapters.locate(path)
    return AdapterSource(run_dir, adapter_dir, TrainConfig.from_yaml(run_dir / "config.yaml"))


def same_model(first: str, second: str) -> bool:
    """Whether two model names (hub ids or folders) name the same weights."""
    if first == second:
        return True
    try:
        return loader.resolve_model(first).resolve() == loader.resolve_model(second).resolve()
    except EngineError:  # one of them cannot be found here: different names, so not known to be the same
        return False


def check_sides(baseline: AdapterSource | None, candidate: AdapterSource | None) -> None:
    """Refuse two sides that cannot be compared on one loaded model: the same model on both sides
    (`sides_identical`) or adapters of different base models (`sides_different_base`)."""
    if baseline is None and candidate is None or (
            baseline is not None and candidate is not None
            and baseline.adapter_dir.resolve() == candidate.adapter_dir.resolve()):
        raise EngineError("sides_identical", hint="hint_sides_pick_other")
    if baseline is not None and candidate is not None and not same_model(baseline.model, candidate.model):
        raise EngineError("sides_different_base", {"baseline": str(baseline.run_dir.name), "candidate":
                                                   str(candidate.run_dir.name), "baseline_model": baseline.model,
                                                   "candidate_model": candidate.model},
                          hint="hint_sides_same_base")


def sources(candidate: str | Path | None, baseline: str | Path | None) -> tuple[AdapterSource | None,
                                                                                  AdapterSource | None]:
    """(baseline, candidate) sources of two side paths (None = the base model), checked to be comparable."""
    found = (source_of(baseline) if baseline is not None else None,
             source_of(candidate) if candidate is not None else None)
    check_sides(*found)
    return found
