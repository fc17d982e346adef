"""Presets: small YAML files in presets/ that hold only the settings differing from the defaults."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.config import TrainConfig
from engine.errors import EngineError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
SAMPLE_DATASET = Path(__file__).resolve().parent / "samples" / "customer_service.jsonl"
CPU_PRESET = "cpu-demo"


@dataclass(frozen=True)
class Preset:
    name: str
    description: dict[str, str]
    settings: dict[str, Any]


def list_presets(folder: Path = PRESETS_DIR) -> list[Preset]:
    return [load_preset(path.stem, folder) for path in sorted(folder.glob("*.yaml"))]


def load_preset(name: str, folder: Path = PRESETS_DIR) -> Preset:
    path = folder / f"{name}.yaml"
    if not path.is_file():
        available = ", ".join(p.stem for p in sorted(folder.glob("*.yaml")))
        raise EngineError("preset_unknown", {"name": name, "available": available})
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Preset(name, raw.get("description", {}), raw.get("settings", {}))


def apply_preset(name: str, base: TrainConfig) -> TrainConfig:
    """`base` with the preset's settings on top (unknown keys in the preset are refused)."""
    return base.replace(**load_preset(name).settings)


def default_config(cuda: bool | None = None) -> TrainConfig:
    """The starting config for this machine: the bundled model and sample data; QLoRA where CUDA is."""
    if cuda is None:
        from engine.device import cuda_available

        cuda = cuda_available()
    base = TrainConfig(dataset_path=str(SAMPLE_DATASET))
    if cuda:
        from engine.device import bf16_supported

        return base.replace(load_in_4bit=True, bf16=bf16_supported(), fp16=not bf16_supported())
    return apply_preset(CPU_PRESET, base)
