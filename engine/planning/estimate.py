"""Whole-run memory and time estimates, made before training and offline (no model is loaded).

Memory is modelled the way practitioners add it up, per part (bytes), for one device: with `num_gpus` > 1
every DDP process holds the whole model and its own micro-batch, so the same estimate holds per GPU.

* weights: parameters x bytes per parameter of the load precision: fp32 4, bf16/fp16 2; 8-bit
  (LLM.int8) 1 + a fp32 scale per output row; NF4/FP4 0.5 + the block constants: one fp32 absmax per
  64 weights = 0.5 bit/param, or 0.127 bit/param with double ("nested") quantization (QLoRA paper,
  8/64 + 32/(64*256)). bitsandbytes quantizes only the decoder's linear layers: embeddings, lm_head,
  norms and biases stay in the 16-bit compute dtype.
* lora / gradients / optimizer: the LoRA parameters (r*(in+out) per targeted linear per layer), their
  gradients (same size) and the optimizer state. PEFT keeps adapters in fp32 (4 bytes), except that
  TRL's SFTTrainer casts them to bf16 (2 bytes) when the base is 4/8-bit quantized. AdamW keeps two
  states in the parameters' dtype (2 x 4 bytes for fp32 adapters); the bitsandbytes 8-bit optimizers
  (adamw_8bit, paged_adamw_8bit) two uint8 states (2 bytes); Adafactor factored moments (~0); SGD none.
* activations: what autograd keeps for backward, per token per decoder layer. This is the accounting of
  Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models" (2022), whose
  GPT layer keeps sbh(34 + 5as/h) bytes, redone for a Llama-style layer (RMSNorm, grouped-query
  attention, SwiGLU MLP, no dropout in the base model, SDPA/flash attention so no s^2 score matrix):
      act_bytes * (2h + 2*q_dim + 2*kv_dim + 4*i)      linear inputs, q/k/v, attention output, SwiGLU
    + 4 * h * norms                                       RMSNorm upcasts its input to fp32
    + sum over LoRA-targeted modules of in_features * (act_bytes + 1)   LoRA dropout output + bool mask
  (Gemma-2 trains with eager attention for its logit soft-capping: + 3 * heads * seq * act_bytes.)
  Without gradient checkpointing every layer keeps this; with it, only each layer's input
  (h * act_bytes) is kept, plus one layer's working set recomputed during backward. One more layer's
  working set is counted for the gradients flowing back. The logits add batch*seq*vocab in fp32 twice
  (upcast logits and log-softmax for the loss), plus the 16-bit logits when training in 16-bit; they
  are their own part ("logits"), often the surprise with big vocabularies.
  Checked on this project's bundled SmolLM2-135M on CPU: the formula gives 63 KiB per token per layer
  where autograd's saved tensors measure 68 KiB (fp32, LoRA all-linear, dropout 0.05).
* overhead: CUDA context, cuBLAS workspace and caching-allocator slack on a GPU (0.75 GiB + 10% of
  the activations); on a CPU the Python/torch runtime (0.5 GiB) plus what glibc's allocator keeps of
  freed logits-sized buffers: peak RSS on this project's machine ran 0 to 9 x the fp32 logits (batch *
  seq * vocab * 4 bytes) above the live tensors, growing with the tokens per step; 6 x is counted.

* DPO: a chosen and a rejected answer per pair, so activations and logits count twice the batch; the "reference"
  part is the reference pass's logits for it (no gradients: no activations kept) + a frozen copy of the LoRA weights.

Time: measured throughput when given, else FLOPs per token / (device FLOP/s * MFU), times N x 0.9 for N GPUs (DDP's
gradient all-reduce; processes sharing one CPU gain nothing). A full fine-tune costs 6 * P FLOPs per token (forward 2P,
backward 4P). With LoRA the frozen weights need no weight gradients, only the gradients flowing through them, so the
base costs 4P (+2P again for the recomputed forward under gradient checkpointing), plus 6 x the (small) adapter.
Attention scores add 6 * layers * seq * q_dim per token (causal). P counts the matmul weights: the decoder's linear
layers and lm_head (embedding lookups cost nothing). DPO adds the reference forward: 2P + 2 * layers * seq * q_dim.

"GB" in messages is GiB (2**30 bytes), the unit torch and nvidia-smi use for a card's memory.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import TrainConfig
from engine.models.shapes import (
    NORMS_PER_LAYER,
    ModelShape,
    known_models,
    linear_shapes,
    shape_from_config,
    shape_of,
    targeted_modules,
    trainable_parameters,
)
from engine.training import factories

# The shapes live in engine.models.shapes; they are re-exported here for the estimate's callers.
__all__ = ["DeviceInfo", "MemoryEstimate", "ModelShape", "TimeEstimate", "cuda_device_count", "detect_device",
           "estimate_memory", "estimate_time", "known_models", "linear_shapes", "shape_from_config", "shape_of",
           "targeted_modules", "trainable_parameters"]

GiB = GB = 2**30

CPU_ALLOCATOR_SLACK = 6.0  # x the fp32 logits: freed memory glibc keeps (see the docstring)
FIT_SHARE = 0.85          # "fits" up to this share of the available memory, "tight" up to all of it
PARTS = ("weights", "lora", "gradients", "optimizer", "activations", "logits", "reference", "overhead")

EAGER_ATTENTION = {"gemma2"}       # trained with eager attention (keeps the score matrices)

# ---- throughput table --------------------------------------------------------------------------
# Peak dense bf16/fp16 tensor FLOP/s by a substring of torch.cuda.get_device_name() (first match wins).
GPU_FLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989e12), ("H100", 989e12), ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12),
    ("L40", 181e12), ("A6000", 155e12), ("A10G", 70e12), ("A10", 125e12), ("L4", 121e12),
    ("4090", 165e12), ("4080", 97e12), ("4070", 58e12), ("3090", 71e12), ("3080", 60e12),
    ("3070", 40e12), ("3060", 25e12), ("V100", 125e12), ("T4", 65e12),
)
DEFAULT_GPU_FLOPS = 50e12
GPU_MFU = 0.35            # model FLOPs utilisation typical of single-GPU HF/TRL LoRA training
FP32_ON_GPU = 0.25        # share of the bf16 rate left when training in plain fp32 on a GPU
QUANTIZED_SPEED = 0.7     # bitsandbytes dequantizes weights at every matmul
DDP_EFFICIENCY = 0.9      # share of N GPUs' summed throughput DDP keeps (the gradient all-reduce of each step)
# Effective (MFU included) FLOP/s per CPU core, calibrated on this project's 2-core machine, where the
# bundled SmolLM2-135M trains with LoRA (all-linear, r=16, max_length 512) at about 70 tokens/s.
CPU_FLOPS_PER_CORE = 21e9


# ---- device ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceInfo:
    """The device a run will train on: kind ("cuda" or "cpu"), name, total and free memory in bytes, bf16 support."""

    kind: str            # "cuda" or "cpu"
    name: str
    total_bytes: int
    free_bytes: int
    bf16: bool = False
    cores: int = 0       # CPU cores torch trains on (0: unknown, os.cpu_count() is used)


def _may_have_cuda() -> bool:
    """Cheap test so that CPU-only Linux machines need not import torch to learn they have no GPU."""
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()
    return sys.platform == "win32"


def _cpu_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def cuda_device_count() -> int:
    """How many CUDA devices torch can use (0 without CUDA; a CPU-only Linux machine never imports torch)."""
    if not _may_have_cuda():
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def detect_device() -> DeviceInfo:
    """The device training will use: GPU 0 with its free memory, else the CPU with available RAM."""
    if _may_have_cuda():
        import torch

        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info(0)
            return DeviceInfo("cuda", torch.cuda.get_device_name(0), int(total), int(free),
                              bool(torch.cuda.is_bf16_supported()), _cpu_cores())
    import platform

    import psutil

    memory = psutil.virtual_memory()
    return DeviceInfo("cpu", platform.processor() or platform.machine() or "CPU", int(memory.total),
                      int(memory.available), False, _cpu_cores())


# ---- memory ------------------------------------------------------------------------------------
@dataclass
class MemoryEstimate:
    """Peak memory of a run by part and in total (bytes) against the available memory, with a verdict and
    at most one suggested change (`suggestion` to word it, `changes` to apply it)."""

    parts: dict[str, int]
    total: int
    available: int
    verdict: str                                    # "fits", "tight" or "will_not_fit"
    biggest: str                                    # the largest part's name
    suggestion: tuple[str, dict[str, Any]] | None = None   # (message code, params) of one change
    changes: dict[str, Any] = field(default_factory=dict)  # the TrainConfig fields that change makes

    @property
    def code(self) -> str:
        """The locale key of the verdict message: `estimate_fits`, `estimate_tight` or `estimate_will_not_fit`."""
        return "estimate_" + self.verdict

    def params(self, lang: str = "en") -> dict[str, Any]:
        """Parameters of the verdict message, the biggest part worded in `lang`."""
        from engine.locales import render

        return {"total_gb": gb(self.total), "available_gb": gb(self.available),
                "biggest": render("estimate_part_" + self.biggest, None, lang)}

    def describe(self, lang: str = "en") -> str:
        """The verdict sentence, followed by the suggestion when there is one."""
        from engine.locales import render

        text = render(self.code, self.params(lang), lang)
        if self.suggestion:
            text += " " + render(self.suggestion[0], self.suggestion[1], lang)
        return text


def gb(n_bytes: float) -> float:
    """Bytes as GiB with one decimal (what messages call GB)."""
    return round(n_bytes / GiB, 1)


def _dtype_bytes(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def _optimizer_bytes(optim: str, param_bytes: int) -> float:
    """Optimizer state per trainable parameter: AdamW two moments in the parameters' dtype, the
    bitsandbytes 8-bit optimizers two uint8 moments, Adafactor factored moments (~0), SGD none."""
    if "8bit" in optim:
        return 2.0
    if optim in ("adafactor", "sgd"):
        return 0.0
    return 2.0 * param_bytes


def weight_bytes(config: TrainConfig, shape: ModelShape, device: DeviceInfo) -> int:
    """Memory of the base model's weights at the precision `config` loads them in on `device`."""
    dtype_bytes = _dtype_bytes(factories.resolve_dtype(config.dtype, device.kind == "cuda", device.bf16))
    linear = shape.linear_params
    rest = shape.total_params - linear
    if config.load_in_4bit:
        constants_bits = 0.127 if config.use_bnb_nested_quant else 0.5
        return int(linear * (0.5 + constants_bits / 8) + rest * dtype_bytes)
    if config.load_in_8bit:
        rows = shape.num_hidden_layers * sum(o for _i, o in linear_shapes(shape).values())
        return int(linear + 4 * rows + rest * dtype_bytes)
    return int(shape.total_params * dtype_bytes)


def _act_bytes(config: TrainConfig, device: DeviceInfo) -> int:
    """Bytes per activation element: 2 when the run computes in 16-bit, else 4."""
    dtype = factories.resolve_dtype(config.dtype, device.kind == "cuda", device.bf16)
    return 2 if (config.bf16 or config.fp16 or dtype != "float32") else 4


def _seq(config: TrainConfig, seq_len: int | None) -> int:
    return max(1, min(seq_len or config.max_length, config.max_length))


def activation_bytes(config: TrainConfig, shape: ModelShape, device: DeviceInfo, seq_len: int | None = None) -> int:
    """Decoder activations kept for backward for one micro-batch (formula in the module docstring)."""
    act, seq = _act_bytes(config, device), _seq(config, seq_len)
    tokens = config.per_device_train_batch_size * seq
    h, i = shape.hidden_size, shape.intermediate_size
    targeted = targeted_modules(config, shape)
    per_token_layer = act * (2 * h + 2 * shape.q_dim + 2 * shape.kv_dim + 4 * i)
    per_token_layer += 4 * h * NORMS_PER_LAYER.get(shape.model_type, 2)
    per_token_layer += act * config.lora_r * len(targeted)                   # LoRA A outputs
    if config.lora_dropout > 0:
        per_token_layer += sum(in_f for in_f, _o in targeted.values()) * (act + 1)
    if shape.model_type in EAGER_ATTENTION:
        per_token_layer += 3 * shape.num_attention_heads * seq * act
    layer_set = tokens * per_token_layer
    if config.gradient_checkpointing:
        layers = shape.num_hidden_layers * tokens * h * act + 2 * layer_set
    else:
        layers = shape.num_hidden_layers * layer_set + layer_set
    return int(layers + tokens * h * (act + 4))  # + the embedding output and the final norm


def logits_bytes(config: TrainConfig, shape: ModelShape, device: DeviceInfo, seq_len: int | None = None) -> int:
    """The logits for the loss: fp32 twice (upcast and log-softmax), plus the 16-bit logits in 16-bit."""
    act = _act_bytes(config, device)
    elements = config.per_device_train_batch_size * _seq(config, seq_len) * shape.vocab_size
    return elements * (8 + (act if act == 2 else 0))


def _parts(config: TrainConfig, shape: ModelShape, device: DeviceInfo, seq_len: int | None) -> dict[str, int]:
    lora_params, _total = trainable_parameters(config, shape)
    lora_bytes = 2 if (config.load_in_4bit or config.load_in_8bit) else 4
    if config.method == "dpo":  # a chosen and a rejected answer per pair
        config = config.replace(per_device_train_batch_size=2 * config.per_device_train_batch_size)
    activations = activation_bytes(config, shape, device, seq_len)
    logits = logits_bytes(config, shape, device, seq_len)
    frozen_copy = lora_params * lora_bytes if config.dpo_reference == "frozen_adapter" else 0
    reference = logits + frozen_copy if config.method == "dpo" else 0
    if device.kind == "cuda":
        overhead = int(0.75 * GiB + 0.10 * (activations + logits))
    else:  # the Python/torch runtime, and what glibc keeps of the freed logits-sized buffers
        overhead = int(0.5 * GiB + CPU_ALLOCATOR_SLACK * config.per_device_train_batch_size * _seq(config, seq_len)
                       * shape.vocab_size * 4)
    return {
        "weights": weight_bytes(config, shape, device),
        "lora": lora_params * lora_bytes,
        "gradients": lora_params * lora_bytes,
        "optimizer": int(lora_params * _optimizer_bytes(config.optim, lora_bytes)),
        "activations": activations,
        "logits": logits,
        "reference": reference,
        "overhead": overhead,
    }


def _verdict(total: int, available: int) -> str:
    if total <= FIT_SHARE * available:
        return "fits"
    return "tight" if total <= available else "will_not_fit"


def _candidates(config: TrainConfig, device: DeviceInfo) -> list[tuple[str, dict[str, Any]]]:
    """Single changes that save memory, least compromise first: (message code, TrainConfig changes).
    Checkpointing costs only time; an 8-bit optimizer and 16-bit or 4-bit weights cost little quality;
    a smaller batch (same effective batch through accumulation) costs time; a shorter max length cuts
    the data."""
    out: list[tuple[str, dict[str, Any]]] = []
    cuda = device.kind == "cuda"
    if not config.gradient_checkpointing:
        out.append(("estimate_suggest_checkpointing", {"gradient_checkpointing": True}))
    if cuda and config.optim == "adamw_torch":
        out.append(("estimate_suggest_8bit_optimizer", {"optim": "paged_adamw_8bit"}))
    if cuda and factories.resolve_dtype(config.dtype, cuda, device.bf16) == "float32":
        out.append(("estimate_suggest_half_precision", {"dtype": "auto"}))
    if cuda and not config.load_in_4bit:
        out.append(("estimate_suggest_4bit", {"load_in_4bit": True, "load_in_8bit": False}))
    batch = config.per_device_train_batch_size
    while batch > 1:
        batch //= 2
        steps = config.gradient_accumulation_steps * config.per_device_train_batch_size // batch
        out.append(("estimate_suggest_batch", {"per_device_train_batch_size": batch,
                                               "gradient_accumulation_steps": steps}))
    length = config.max_length
    while length > 128:
        length = max(128, length // 2)
        out.append(("estimate_suggest_length", {"max_length": length}))
    return out


def estimate_memory(config: TrainConfig, shape: ModelShape, device: DeviceInfo,
                    seq_len: int | None = None) -> MemoryEstimate:
    """Peak memory of a LoRA/QLoRA run of `config` on `device`, by part, with a verdict and, unless
    it fits comfortably, the one change that helps most: the least compromising change that makes it
    fit (see `_candidates` for the order), else the least compromising one that saves a fifth. `seq_len` is the
    longest padded row the run will see (from the dataset's token counts); by default rows fill max_length."""
    parts = _parts(config, shape, device, seq_len)
    total = sum(parts.values())
    available = device.free_bytes or device.total_bytes
    verdict = _verdict(total, available)
    estimate = MemoryEstimate(parts, total, available, verdict, max(parts, key=parts.get))
    if verdict == "fits":
        return estimate
    tried = [(code, changes, sum(_parts(config.replace(**changes), shape, device, seq_len).values()))
             for code, changes in _candidates(config, device)]
    # the least compromising change that fits; when none does alone, the least compromising one that
    # saves a fifth (the next estimate then proposes the next step), else the one that saves most
    best = next((c for c in tried if _verdict(c[2], available) == "fits"), None) \
        or next((c for c in tried if c[2] <= 0.8 * total), None) \
        or min((c for c in tried if c[2] < total), key=lambda c: c[2], default=None)
    if best is not None:
        code, changes, candidate_total = best
        params = {"total_gb": gb(candidate_total), "batch_size": changes.get("per_device_train_batch_size"),
                  "gradient_accumulation_steps": changes.get("gradient_accumulation_steps"),
                  "max_length": changes.get("max_length")}
        estimate.suggestion = (code, {k: v for k, v in params.items() if v is not None})
        estimate.changes = dict(changes)
    return estimate


# ---- time --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeEstimate:
    """Speed of a run: tokens per epoch, tokens/s, seconds per epoch, and `source` ("measured" or "table")."""

    tokens_per_epoch: int
    tokens_per_second: float
    seconds_per_epoch: float
    source: str          # "measured" or "table" (FLOPs over the device table)


def flops_per_token(config: TrainConfig, shape: ModelShape) -> float:
    """Training FLOPs per token of a LoRA run (see the module docstring)."""
    base = (6 if config.gradient_checkpointing else 4) * shape.matmul_params
    lora, _total = trainable_parameters(config, shape)
    attention = (8 if config.gradient_checkpointing else 6) * shape.num_hidden_layers * config.max_length * shape.q_dim
    reference = 2 * shape.matmul_params + 2 * shape.num_hidden_layers * config.max_length * shape.q_dim
    return float(base + 6 * lora + attention + (reference if config.method == "dpo" else 0))


def device_flops(config: TrainConfig, device: DeviceInfo) -> float:
    """Effective FLOP/s a run reaches on `device` (peak x MFU on GPUs, calibrated on CPUs), over its `num_gpus` GPUs."""
    if device.kind != "cuda":
        rate = CPU_FLOPS_PER_CORE * (device.cores or os.cpu_count() or 1)
    else:
        name = device.name.upper()
        peak = next((flops for key, flops in GPU_FLOPS if key in name), DEFAULT_GPU_FLOPS)
        rate = peak * GPU_MFU
        if factories.resolve_dtype(config.dtype, True, device.bf16) == "float32" and not (config.bf16 or config.fp16):
            rate *= FP32_ON_GPU
    if config.load_in_4bit or config.load_in_8bit:
        rate *= QUANTIZED_SPEED
    return rate * parallel_speedup(config, device)


def parallel_speedup(config: TrainConfig, device: DeviceInfo) -> float:
    """How much faster `config.num_gpus` processes train than one: N GPUs x DDP_EFFICIENCY on CUDA; none on a
    CPU, where the processes share the same cores."""
    if device.kind != "cuda" or config.num_gpus <= 1:
        return 1.0
    return config.num_gpus * DDP_EFFICIENCY


def estimate_time(config: TrainConfig, shape: ModelShape, tokens_per_epoch: int, device: DeviceInfo,
                  measured_tokens_per_second: float | None = None) -> TimeEstimate:
    """Seconds per epoch: from a measured throughput when given, else from FLOPs and the device table."""
    if measured_tokens_per_second and measured_tokens_per_second > 0:
        rate, source = float(measured_tokens_per_second), "measured"
    else:
        rate, source = device_flops(config, device) / flops_per_token(config, shape), "table"
    return TimeEstimate(int(tokens_per_epoch), rate, tokens_per_epoch / rate, source)
