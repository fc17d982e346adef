"""Presets: small YAML files in presets/ that hold only the settings differing from the defaults."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.system.files import write_text_atomic

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
SAMPLE_DATASET = Path(__file__).resolve().parent / "data" / "samples" / "customer_service.jsonl"
CPU_PRESET = "cpu-demo"


PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
# Settings a preset never carries: they belong to one dataset, not to a recipe.
NOT_IN_PRESETS = ("dataset_path", "mix_dataset_path")


@dataclass(frozen=True)
class Preset:
    """A named recipe: its description by language and the TrainConfig settings it changes from the defaults."""

    name: str
    description: dict[str, str]
    settings: dict[str, Any]
    user: bool = False  # saved from the app; only these may be overwritten


def list_presets(folder: Path | None = None) -> list[Preset]:
    """Every preset in `folder` (default: presets/), shipped and saved, sorted by name."""
    return [load_preset(name, folder) for name in _preset_names(folder or PRESETS_DIR)]


def load_preset(name: str, folder: Path | None = None) -> Preset:
    """Read preset `name` from `folder` (default: presets/); raises `preset_unknown` listing the available ones
    (also for a name that cannot be a preset's, such as a path), `preset_file_invalid` for a file that is not
    YAML and `preset_file_shape` for one that does not hold a preset's mappings."""
    folder = folder or PRESETS_DIR
    path = folder / f"{name}.yaml"
    if not isinstance(name, str) or not PRESET_NAME.match(name) or not path.is_file():
        raise EngineError("preset_unknown", {"name": name, "available": ", ".join(_preset_names(folder))})
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = str(exc).splitlines()[0][:200]
        raise EngineError("preset_file_invalid", {"path": str(path), "detail": detail}) from None
    parts = (raw, raw.get("description", {}), raw.get("settings", {})) if isinstance(raw, dict) else (raw,)
    if not all(isinstance(part, dict) for part in parts):
        raise EngineError("preset_file_shape", {"path": str(path)})
    return Preset(name, parts[1], parts[2], bool(raw.get("user", False)))


def _preset_names(folder: Path) -> list[str]:
    """The names of the preset files in `folder`, sorted (files whose name cannot be a preset's are not presets)."""
    return [path.stem for path in sorted(folder.glob("*.yaml")) if PRESET_NAME.match(path.stem)]


def save_preset(name: str, config: TrainConfig, description: str = "", folder: Path | None = None) -> Path:
    """Save `config`'s differences from the defaults as a user preset (never over a shipped one)."""
    folder = folder or PRESETS_DIR
    name = name.strip().lower()
    if not PRESET_NAME.match(name):
        raise EngineError("preset_bad_name", {"name": name})
    path = folder / f"{name}.yaml"
    if path.is_file() and not load_preset(name, folder).user:
        raise EngineError("preset_builtin", {"name": name})
    settings = {k: v for k, v in config.diff().items() if k not in NOT_IN_PRESETS}
    document = {"user": True, "description": {"en": description, "zh": description}, "settings": settings}
    write_text_atomic(path, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def apply_preset(name: str, base: TrainConfig) -> TrainConfig:
    """`base` with the preset's settings on top (unknown keys in the preset are refused)."""
    return base.replace(**load_preset(name).settings)  # unknown keys in a preset are refused here


def default_config(cuda: bool | None = None) -> TrainConfig:
    """The starting config for this machine: the bundled model and sample data; QLoRA where CUDA is."""
    if cuda is None:
        from engine.system.device import cuda_available

        cuda = cuda_available()
    base = TrainConfig(dataset_path=str(SAMPLE_DATASET))
    if cuda:
        from engine.system.device import bf16_supported

        return base.replace(load_in_4bit=True, bf16=bf16_supported(), fp16=not bf16_supported())
    return apply_preset(CPU_PRESET, base)
