"""Whole-run memory and time estimate before training, offline: will this run fit, and how long?

Memory is the sum of the parts practitioners count (bytes):
- weights: linear layers at the load precision (fp32 4, bf16/fp16 2, 8-bit 1, NF4 0.5 plus the
  quantization constants: 0.5 bits per weight, 0.127 with double quantization); embeddings and the
  output head stay in 16-bit under bitsandbytes;
- LoRA parameters in fp32 (4), their gradients (4) and AdamW's two moments (8; 8-bit/paged 2);
- activations per layer: b*s*h*(34 + 5*a*s/h) bytes at 16-bit (Korthikanti et al., "Reducing
  Activation Recomputation in Large Transformer Models"), without the attention-score term where
  CUDA's fused attention never stores the scores; with gradient checkpointing only each layer's
  input (2*b*s*h bytes) plus one layer's working set; doubled for fp32 activations;
- the logits and their gradient in fp32 (2 * b*s*vocab*4), often the surprise with big vocabularies;
- a fixed overhead (CUDA context and allocator slack, or the Python process on CPU).
Time is tokens / throughput, with the throughput measured when given, else 4 * params FLOPs per
token (LoRA: forward 2P, backward for activations 2P, no weight gradients for frozen weights) at a
tabulated device speed and utilisation.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from engine.config import TrainConfig

GB = 2 ** 30
FITS, TIGHT = 0.85, 1.0  # share of the available memory
OVERHEAD = {"cuda": 0.8 * GB, "cpu": 0.4 * GB}
# Effective training throughput in FLOP/s: GPUs at bf16 peak times MFU; the CPU value is calibrated on
# the bundled model (about 70 tokens/s for LoRA on 2 cores).
GPU_FLOPS = {"3090": 71e12, "4090": 165e12, "a100": 312e12, "h100": 990e12, "h200": 990e12}
GPU_DEFAULT_FLOPS, GPU_MFU = 50e12, 0.35
CPU_FLOPS_PER_CORE = 19e9


@dataclass(frozen=True)
class ModelShape:
    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def linear_params(self) -> int:
        return self.num_hidden_layers * sum(i * o for i, o in linear_shapes(self).values())

    @property
    def total_params(self) -> int:
        norms = (2 * self.num_hidden_layers + 1) * self.hidden_size
        return self.embedding_params + self.linear_params + norms


# Public config.json values of popular instruct models (hidden, intermediate, layers, heads, kv heads,
# vocab, tied embeddings), so the estimate works offline.
KNOWN_SHAPES = {
    "qwen/qwen2.5-0.5b-instruct": (896, 4864, 24, 14, 2, 151936, True),
    "qwen/qwen2.5-1.5b-instruct": (1536, 8960, 28, 12, 2, 151936, True),
    "qwen/qwen2.5-3b-instruct": (2048, 11008, 36, 16, 2, 151936, True),
    "qwen/qwen2.5-7b-instruct": (3584, 18944, 28, 28, 4, 152064, False),
    "qwen/qwen2.5-14b-instruct": (5120, 13824, 48, 40, 8, 152064, False),
    "meta-llama/llama-3.1-8b-instruct": (4096, 14336, 32, 32, 8, 128256, False),
    "meta-llama/llama-3.2-1b-instruct": (2048, 8192, 16, 32, 8, 128256, True),
    "meta-llama/llama-3.2-3b-instruct": (3072, 8192, 28, 24, 8, 128256, True),
    "mistralai/mistral-7b-instruct-v0.3": (4096, 14336, 32, 32, 8, 32768, False),
    "google/gemma-2-2b-it": (2304, 9216, 26, 8, 4, 256000, True),
    "google/gemma-2-9b-it": (3584, 14336, 42, 16, 8, 256000, True),
    "microsoft/phi-3-mini-4k-instruct": (3072, 8192, 32, 32, 32, 32064, False),
    "huggingfacetb/smollm2-135m-instruct": (576, 1536, 30, 9, 3, 49152, True),
    "huggingfacetb/smollm2-360m-instruct": (960, 2560, 32, 15, 5, 49152, True),
    "huggingfacetb/smollm2-1.7b-instruct": (2048, 8192, 24, 32, 32, 49152, True),
}


def shape_of(name: str) -> ModelShape | None:
    """The shape of a known model, or read from a local folder's config.json; None if unknown."""
    key = name.strip().lower()
    if key in KNOWN_SHAPES:
        return ModelShape(name, *KNOWN_SHAPES[key])
    config_file = Path(name).expanduser() / "config.json"
    if not config_file.is_file():
        return None
    raw = json.loads(config_file.read_text(encoding="utf-8"))
    try:
        return ModelShape(name, raw["hidden_size"], raw["intermediate_size"], raw["num_hidden_layers"],
                          raw["num_attention_heads"], raw.get("num_key_value_heads", raw["num_attention_heads"]),
                          raw["vocab_size"], bool(raw.get("tie_word_embeddings", False)))
    except KeyError:
        return None


def linear_shapes(shape: ModelShape) -> dict[str, tuple[int, int]]:
    """(in, out) features of each linear layer in one decoder layer (llama-style blocks)."""
    h, kv = shape.hidden_size, shape.num_key_value_heads * shape.head_dim
    i = shape.intermediate_size
    return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def trainable_parameters(config: TrainConfig, shape: ModelShape) -> tuple[int, int]:
    """(LoRA parameters, total parameters): r*(in+out) per targeted linear per layer (+out for DoRA)."""
    shapes = linear_shapes(shape)
    targets = shapes if "all-linear" in config.lora_target_modules else \
        {k: v for k, v in shapes.items() if k in config.lora_target_modules}
    per_layer = sum(config.lora_r * (i + o) + (o if config.use_dora else 0) for i, o in targets.values())
    return per_layer * shape.num_hidden_layers, shape.total_params


@dataclass(frozen=True)
class DeviceInfo:
    kind: str
    name: str
    total_bytes: int
    free_bytes: int
    bf16: bool = False
    cores: int = 1


def detect_device() -> DeviceInfo:
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return DeviceInfo("cuda", torch.cuda.get_device_name(0), total, free, torch.cuda.is_bf16_supported())
    import psutil

    memory = psutil.virtual_memory()
    return DeviceInfo("cpu", "CPU", memory.total, memory.available, False, os.cpu_count() or 1)


@dataclass(frozen=True)
class MemoryEstimate:
    parts: dict[str, int]
    total: int
    available: int
    verdict: str                         # "fits", "tight" or "will_not_fit"
    biggest: str
    suggestion: tuple[str, dict] | None  # (message code, params): one change that helps most


def _weight_bytes(config: TrainConfig, shape: ModelShape, device: DeviceInfo) -> int:
    if config.load_in_4bit:
        constant_bits = 0.127 if config.use_bnb_nested_quant else 0.5
        return int(shape.linear_params * (0.5 + constant_bits / 8) + shape.embedding_params * 2)
    if config.load_in_8bit:
        return int(shape.linear_params * 1.02 + shape.embedding_params * 2)
    return shape.total_params * _dtype_bytes(config, device)


def _dtype_bytes(config: TrainConfig, device: DeviceInfo) -> int:
    if config.dtype == "float32" or (config.dtype == "auto" and device.kind == "cpu"):
        return 4
    return 2


def _parts(config: TrainConfig, shape: ModelShape, device: DeviceInfo) -> dict[str, int]:
    lora, _total = trainable_parameters(config, shape)
    optimizer_bytes = 2 if "8bit" in config.optim else (0 if config.optim == "sgd" else 8)
    b, s, h = config.per_device_train_batch_size, config.max_length, shape.hidden_size
    act_scale = 2 if (_dtype_bytes(config, device) == 4 and not (config.bf16 or config.fp16)) else 1
    scores = 0 if device.kind == "cuda" else 5 * shape.num_attention_heads * s / h
    per_layer = b * s * h * (34 + scores) * act_scale
    if config.gradient_checkpointing:
        activations = shape.num_hidden_layers * 2 * b * s * h * act_scale + per_layer
    else:
        activations = shape.num_hidden_layers * per_layer
    return {"weights": _weight_bytes(config, shape, device), "lora": lora * 4, "gradients": lora * 4,
            "optimizer": lora * optimizer_bytes, "activations": int(activations),
            "logits": 2 * b * s * shape.vocab_size * 4, "overhead": int(OVERHEAD[device.kind])}


def _verdict(total: int, available: int) -> str:
    if total <= FITS * available:
        return "fits"
    return "tight" if total <= TIGHT * available else "will_not_fit"


# Candidate changes, least compromise first: (message code, changes to the config).
CANDIDATES = (
    ("estimate_suggest_checkpointing", lambda c: {"gradient_checkpointing": True}),
    ("estimate_suggest_4bit", lambda c: {"load_in_4bit": True, "load_in_8bit": False}),
    ("estimate_suggest_batch", lambda c: {"per_device_train_batch_size": max(1, c.per_device_train_batch_size // 2),
                                          "gradient_accumulation_steps": c.gradient_accumulation_steps * 2}),
    ("estimate_suggest_length", lambda c: {"max_length": max(128, c.max_length // 2)}),
)


def estimate_memory(config: TrainConfig, shape: ModelShape, device: DeviceInfo) -> MemoryEstimate:
    parts = _parts(config, shape, device)
    total = sum(parts.values())
    available = device.free_bytes
    verdict = _verdict(total, available)
    suggestion = None
    if verdict != "fits":
        for code, change in CANDIDATES:
            changes = change(config)
            if all(getattr(config, k) == v for k, v in changes.items()):
                continue
            trial = sum(_parts(replace(config, **changes), shape, device).values())
            if trial < total:
                suggestion = (code, {"total_gb": f"{trial / GB:.1f}"})
                if _verdict(trial, available) == "fits":
                    break
    return MemoryEstimate(parts, total, available, verdict, max(parts, key=parts.get), suggestion)


@dataclass(frozen=True)
class TimeEstimate:
    tokens_per_epoch: int
    tokens_per_second: float
    seconds_per_epoch: float
    source: str  # "measured" or "table"


def device_flops(device: DeviceInfo) -> float:
    if device.kind == "cpu":
        return CPU_FLOPS_PER_CORE * device.cores
    name = device.name.lower()
    peak = next((flops for key, flops in GPU_FLOPS.items() if key in name), GPU_DEFAULT_FLOPS)
    return peak * GPU_MFU


def estimate_time(config: TrainConfig, shape: ModelShape, tokens_per_epoch: int, device: DeviceInfo,
                  measured_tokens_per_second: float | None = None) -> TimeEstimate:
    if measured_tokens_per_second:
        rate, source = measured_tokens_per_second, "measured"
    else:
        flops_per_token = 4 * shape.total_params * (4 / 3 if config.gradient_checkpointing else 1)
        rate, source = device_flops(device) / flops_per_token, "table"
    return TimeEstimate(tokens_per_epoch, rate, tokens_per_epoch / rate, source)
