"""What an export starts from: a run and one of its adapters (the final one or a complete checkpoint), and the
folder that run's exports are written to."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.models import loader
from engine.training import adapters

EXPORT_FOLDER = "export"  # runs/<id>/export/<adapter>/: merged/, *.gguf, Modelfile, the package zip, report.html

Progress = Callable[[str, float], None]  # (catalogue code of the step, as "engine.<code>"; fraction done 0..1)


def no_progress(_code: str, _fraction: float) -> None:
    """A progress callback that shows nothing (tests, scripts)."""


@dataclass(frozen=True)
class ExportSource:
    """A run folder, the adapter folder an export takes (its `adapter/` or a complete `checkpoints/checkpoint-N`),
    and the run's config."""

    run_dir: Path
    adapter_dir: Path
    config: TrainConfig

    @classmethod
    def of(cls, path: str | Path) -> ExportSource:
        """The source for a run folder (its final adapter) or one of its checkpoint folders; raises
        `run_not_found` when no adapter is there."""
        run_dir, adapter_dir = adapters.locate(path)
        return cls(run_dir, adapter_dir, TrainConfig.from_yaml(run_dir / "config.yaml"))

    @property
    def run_id(self) -> str:
        """The run's id (its folder's name)."""
        return self.run_dir.name

    @property
    def adapter_name(self) -> str:
        """`adapter` for the final adapter, else the checkpoint folder's name (`checkpoint-40`)."""
        return "adapter" if self.adapter_dir == self.run_dir / "adapter" else self.adapter_dir.name

    @property
    def export_dir(self) -> Path:
        """Where this adapter's exports go: `runs/<id>/export/<adapter name>/`."""
        return self.run_dir / EXPORT_FOLDER / self.adapter_name

    @property
    def base_model(self) -> str:
        """The base model as other tools name it: its Hub id for the bundled model's aliases (`bundled`,
        `smollm2-135m-instruct`), else the name or folder the run's config gives."""
        name = self.config.model_name_or_path
        return BUNDLED_MODEL_ID if loader.is_bundled(name) else name

    @property
    def used_qlora(self) -> bool:
        """Whether the run trained on 4-bit weights (its merge then reloads the base in 16-bit)."""
        return bool(self.config.load_in_4bit)

    def adapter_config(self) -> dict[str, Any]:
        """The adapter's `adapter_config.json` (PEFT's settings: rank, target modules, modules_to_save...)."""
        return json.loads((self.adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))

    def base_folder(self) -> Path:
        """The local folder of the run's base model (the bundled model's converted cache, or a local/hub model)."""
        return loader.resolve_model(self.config.model_name_or_path)
