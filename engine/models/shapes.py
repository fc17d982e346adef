"""Model shapes for estimates: the sizes of popular instruct models (offline table) or a local config.json."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from engine.config import BUNDLED_MODEL_ID, TrainConfig

SHAPES_FILE = Path(__file__).with_name("shapes.yaml")
NORMS_PER_LAYER = {"gemma2": 4, "gemma3": 4}
BIASED_ATTENTION = {"qwen2"}       # q/k/v projections carry a bias


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer that memory and time depend on."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool = False
    total_params: int = 0            # 0: computed from the shape
    head_dim: int = 0                # 0: hidden_size // num_attention_heads
    model_type: str = "llama"
    attention_bias: bool = False

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        if not self.total_params:
            object.__setattr__(self, "total_params", _count_params(self))

    @property
    def q_dim(self) -> int:
        """Output width of the query projection: attention heads x head_dim."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Output width of the key and of the value projection: key/value heads x head_dim."""
        return self.num_key_value_heads * self.head_dim

    @property
    def linear_params(self) -> int:
        """Weights of all decoder linear layers (what bitsandbytes quantizes and LoRA can target)."""
        return self.num_hidden_layers * sum(i * o for i, o in linear_shapes(self).values())

    @property
    def matmul_params(self) -> int:
        """Weights multiplied per token: decoder linears plus lm_head (tied or not)."""
        return self.linear_params + self.vocab_size * self.hidden_size


def _count_params(shape: ModelShape) -> int:
    h, layers = shape.hidden_size, shape.num_hidden_layers
    per_layer = sum(i * o for i, o in linear_shapes(shape).values())
    per_layer += NORMS_PER_LAYER.get(shape.model_type, 2) * h
    if shape.attention_bias:
        per_layer += shape.q_dim + 2 * shape.kv_dim
    embeddings = shape.vocab_size * h * (1 if shape.tie_word_embeddings else 2)
    return layers * per_layer + embeddings + h  # + the final norm


def linear_shapes(shape: ModelShape) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each linear module of one decoder layer, by module name."""
    h, i, q, kv = shape.hidden_size, shape.intermediate_size, shape.q_dim, shape.kv_dim
    if shape.model_type == "phi3":
        return {"qkv_proj": (h, q + 2 * kv), "o_proj": (q, h), "gate_up_proj": (h, 2 * i), "down_proj": (i, h)}
    return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def targeted_modules(config: TrainConfig, shape: ModelShape) -> dict[str, tuple[int, int]]:
    """The linear modules LoRA wraps: all of them for "all-linear", else those named (last name part)."""
    shapes = linear_shapes(shape)
    names = {str(m).rsplit(".", 1)[-1].strip() for m in config.lora_target_modules}
    if "all-linear" in names:
        return shapes
    return {name: dims for name, dims in shapes.items() if name in names}


def trainable_parameters(config: TrainConfig, shape: ModelShape) -> tuple[int, int]:
    """(trainable adapter parameters, all parameters with the adapter), as PEFT's
    `get_nb_trainable_parameters()` reports them: r*(in+out) per targeted linear per layer, plus the
    out_features magnitude vector per module with DoRA."""
    dora = bool(getattr(config, "use_dora", False))
    per_layer = sum(config.lora_r * (i + o) + (o if dora else 0) for i, o in targeted_modules(config, shape).values())
    lora = shape.num_hidden_layers * per_layer
    return lora, shape.total_params + lora


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(SHAPES_FILE.read_text(encoding="utf-8")) or {}
    return {key.lower(): {"name": key, **value} for key, value in data.items()}


def known_models() -> list[str]:
    """Hub ids of the shipped shapes."""
    return [entry["name"] for entry in _table().values()]


def _from_mapping(name: str, data: dict[str, Any]) -> ModelShape:
    fields = {f.name for f in dataclasses.fields(ModelShape)}
    return ModelShape(**{k: v for k, v in {**data, "name": name}.items() if k in fields})


def shape_from_config(name: str, data: dict[str, Any]) -> ModelShape | None:
    """A shape from a transformers config.json mapping; None when it lacks the decoder sizes."""
    data = data.get("text_config") or data  # multimodal wrappers nest the language model's config
    model_type = str(data.get("model_type", "llama"))
    try:
        heads = int(data["num_attention_heads"])
        return ModelShape(
            name=name,
            hidden_size=int(data["hidden_size"]),
            intermediate_size=int(data["intermediate_size"]),
            num_hidden_layers=int(data["num_hidden_layers"]),
            num_attention_heads=heads,
            num_key_value_heads=int(data.get("num_key_value_heads") or heads),
            vocab_size=int(data["vocab_size"]),
            tie_word_embeddings=bool(data.get("tie_word_embeddings", model_type.startswith("gemma"))),
            head_dim=int(data.get("head_dim") or 0),
            model_type=model_type,
            attention_bias=bool(data.get("attention_bias", model_type in BIASED_ATTENTION)),
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _read_config(folder: Path, name: str) -> ModelShape | None:
    try:
        return shape_from_config(name, json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def shape_of(model_name_or_path: str) -> ModelShape | None:
    """The shape of a model without loading it: the shipped table, a local folder's config.json, or a
    config.json already in the hub cache. None when none of these knows the model (nothing is fetched)."""
    name = model_name_or_path.strip()
    from engine.models import loader

    key = BUNDLED_MODEL_ID.lower() if loader.is_bundled(name) else name.lower()
    entry = _table().get(key)
    if entry is not None:
        return _from_mapping(entry["name"], entry)
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return _read_config(path, name)
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
        except Exception:  # an invalid repo id or an unreadable cache: unknown
            cached = None
        if isinstance(cached, str):
            return _read_config(Path(cached).parent, name)
    return None
