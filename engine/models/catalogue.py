"""The base models the picker offers on this machine: the recommended list (`recommended.yaml`), the models
already on disk, and for each the memory estimate's verdict and time for the current settings.

Nothing is loaded or fetched: shapes come from `engine/models/shapes.yaml`, a local or cached config.json, or the
list's own `shape` entry; models on disk are found in the hub cache, the studio's downloads folder
(`<studio cache>/models/downloads`, written by `engine.models.download`) and the current local folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.models import loader
from engine.models.shapes import ModelShape, shape_from_config, shape_of

LIST_FILE = Path(__file__).with_name("recommended.yaml")
GiB = 2**30


@dataclass(frozen=True)
class MachineTier:
    """Which part of the list suits this machine: the tier's name (`cpu`, `gpu_8`, `gpu_12`, `gpu_24`, `gpu_48`),
    the device's name and its memory in GiB."""

    name: str
    device: str
    memory_gb: float


@dataclass(frozen=True)
class ModelChoice:
    """One base model the picker shows, with what it is and how a run of the current settings would go on it."""

    name: str                        # the hub id, or a local folder's name
    value: str                       # what the base-model field gets: a hub id or a local folder
    params_b: float | None           # billions of parameters (None: unknown)
    licence: str = ""
    languages: tuple[str, ...] = ()  # ISO codes; "+" stands for many more
    context: int | None = None       # tokens
    chat_template: bool | None = None
    four_bit: bool = False           # train it in 4-bit (QLoRA) on this machine
    gated: bool = False              # the hub asks to accept its licence before a download
    on_disk: bool = False
    recommended: bool = False        # on this machine's part of the list
    verdict: str | None = None       # the memory estimate's "fits", "tight" or "will_not_fit" (None: shape unknown)
    memory_gb: float | None = None   # the estimated peak memory
    seconds_per_epoch: float | None = None  # None without a dataset to count


@lru_cache(maxsize=1)
def _list() -> dict[str, Any]:
    return yaml.safe_load(LIST_FILE.read_text(encoding="utf-8"))


def entries() -> list[dict[str, Any]]:
    """The recommended list's models, in the list's order (each a mapping of the YAML's fields)."""
    return list(_list()["models"])


def entry(model_id: str) -> dict[str, Any] | None:
    """The list's entry for a hub id (any case), or None when the list does not hold it."""
    key = BUNDLED_MODEL_ID.lower() if loader.is_bundled(model_id) else model_id.strip().lower()
    return next((item for item in entries() if item["id"].lower() == key), None)


def machine_tier(kind: str, name: str, total_bytes: int) -> MachineTier:
    """The tier of a device of `kind` ("cuda" or "cpu") with `total_bytes` of memory."""
    memory_gb = round(total_bytes / GiB, 1)
    fitting = [tier["name"] for tier in _list()["tiers"]
               if tier["device"] == ("cuda" if kind == "cuda" else "cpu") and memory_gb >= tier["min_gb"]]
    return MachineTier(fitting[-1], name, memory_gb)


# ---- models on disk ----------------------------------------------------------------------------
def downloads_root() -> Path:
    """Where the studio keeps the models it downloads, one folder per model (`owner--name`)."""
    return loader.cache_root() / "models" / "downloads"


def download_folder(model_id: str) -> Path:
    """The folder a complete download of hub id `model_id` lives in."""
    return downloads_root() / model_id.strip().replace("/", "--")


def is_complete(folder: Path) -> bool:
    """Whether `folder` holds a whole model: its config.json and every safetensors file its index names (or,
    without an index, at least one)."""
    if not (folder / "config.json").is_file():
        return False
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError):
            return False
        return all((folder / shard).is_file() for shard in shards)
    return any(folder.glob("*.safetensors"))


def _generates_text(folder: Path) -> bool:
    """Whether the config.json in `folder` names a text-generating architecture (`...ForCausalLM`, or a multimodal
    `...ForConditionalGeneration`), not an encoder such as a sentence embedder."""
    try:
        names = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return False
    return any(str(name).endswith(("ForCausalLM", "ForConditionalGeneration")) for name in names)


def _hub_cache_models() -> dict[str, Path]:
    """Hub ids of the whole text-generating models in the Hugging Face cache, each with its newest snapshot folder."""
    from huggingface_hub import constants, scan_cache_dir

    try:
        repos = scan_cache_dir(constants.HF_HUB_CACHE).repos
    except Exception:  # no cache yet (CacheNotFound) or an unreadable one: nothing on disk there
        return {}
    found = {}
    for repo in repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda revision: revision.last_modified)
        if is_complete(Path(newest.snapshot_path)) and _generates_text(Path(newest.snapshot_path)):
            found[repo.repo_id] = Path(newest.snapshot_path)
    return found


def on_disk(current: str = "") -> dict[str, str]:
    """Models on this computer, name -> what the base-model field gets for it: the bundled model, the hub cache's
    whole models (their hub ids, which the loader finds there), the studio's downloads (their folders) and
    `current` when it is a local model folder."""
    found = {BUNDLED_MODEL_ID: BUNDLED_MODEL_ID} if loader.bundled_gguf() is not None else {}
    found.update({repo_id: repo_id for repo_id in _hub_cache_models()})
    root = downloads_root()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if not folder.name.startswith(".") and is_complete(folder):
                found.setdefault(folder.name.replace("--", "/", 1), str(folder))
    path = Path(current.strip()).expanduser() if current.strip() else None
    if path is not None and path.is_dir() and is_complete(path):
        found.setdefault(path.name, str(path))
    return found


# ---- the list for this machine -------------------------------------------------------------------
def _shape(name: str, value: str) -> ModelShape | None:
    """The shape of a model: the shapes table, its local or cached config.json, else the list's own entry."""
    shape = shape_of(value) or shape_of(name)
    listed = entry(name)
    if shape is None and listed is not None and listed.get("shape"):
        shape = shape_from_config(listed["id"], listed["shape"])
    return shape


def _choice(name: str, value: str, config: TrainConfig, device, tier: MachineTier, tokens_per_epoch: int | None,
            local: bool) -> ModelChoice:
    """One model of the picker, with the estimate of `config` on `device` when its shape is known."""
    from engine.planning import estimate

    listed = entry(name) or {}
    shape = _shape(name, value)
    verdict = memory_gb = seconds = None
    if shape is not None:
        memory = estimate.estimate_memory(config, shape, device)
        verdict, memory_gb = memory.verdict, estimate.gb(memory.total)
        if tokens_per_epoch:
            seconds = estimate.estimate_time(config, shape, tokens_per_epoch, device).seconds_per_epoch
    params = listed.get("params_b") or (round(shape.total_params / 1e9, 2) if shape is not None else None)
    needs_4bit = tier.name != "cpu" and tier.memory_gb < listed.get("four_bit_below_gb", 0)
    return ModelChoice(
        name=name, value=value, params_b=params, licence=str(listed.get("licence", "")),
        languages=tuple(str(code) for code in listed.get("languages", ())), context=listed.get("context"),
        chat_template=listed.get("chat_template"), four_bit=needs_4bit, gated=bool(listed.get("gated")),
        on_disk=local, recommended=tier.name in listed.get("tiers", ()), verdict=verdict, memory_gb=memory_gb,
        seconds_per_epoch=seconds)


def recommended_models(config: TrainConfig, device, tokens_per_epoch: int | None = None,
                       every: bool = False) -> list[ModelChoice]:
    """The picker's models for `config` on `device` (an `engine.planning.estimate.DeviceInfo`): those on disk
    first, then this machine's part of the list (with `every`, the whole list). `tokens_per_epoch` (the current
    dataset's, however it was counted) gives each a time per epoch."""
    tier = machine_tier(device.kind, device.name, device.total_bytes)
    local = on_disk(config.model_name_or_path)
    listed = [item["id"] for item in entries() if every or tier.name in item["tiers"]]
    names = [name for name in [item["id"] for item in entries()] + list(local) if name in local]
    names += [name for name in listed if name not in local]
    return [_choice(name, local.get(name, name), config, device, tier, tokens_per_epoch, name in local)
            for name in dict.fromkeys(names)]
