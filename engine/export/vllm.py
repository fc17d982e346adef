"""The exact `vllm serve` line that serves an adapter on its base with vLLM's LoRA support, and the warnings about
what vLLM will refuse or needs.

vLLM's LoRA limits (its `vllm/config/lora.py` and `vllm/lora/peft_helper.py`): `--max-lora-rank` must be one of
MAX_LORA_RANKS and at least the adapter's rank; an adapter with `modules_to_save`, DoRA or a trained bias is
refused when it loads. The base is named as given in the run's config; vLLM downloads a Hub id itself, while a
local folder must exist at the same path on the serving machine.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from engine.export.card import is_hub_id
from engine.export.source import ExportSource

MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's MaxLoRARanks


@dataclass(frozen=True)
class VllmAdvice:
    """The command to copy and the warnings to show with it, each a (catalogue code, params) pair."""

    command: str
    warnings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def adapter_rank(adapter_config: dict[str, Any]) -> int:
    """The largest LoRA rank in the adapter (its `r`, or a larger one in `rank_pattern`)."""
    ranks = [int(adapter_config.get("r") or 0), *map(int, (adapter_config.get("rank_pattern") or {}).values())]
    return max(ranks)


def max_lora_rank(rank: int) -> int | None:
    """The smallest `--max-lora-rank` vLLM accepts that holds `rank`; None when the rank is above them all."""
    return next((allowed for allowed in MAX_LORA_RANKS if allowed >= rank), None)


def lora_name(name: str) -> str:
    """A LoRA module name safe on vLLM's command line and in API requests (letters, digits, '.', '_', '-')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "adapter"


def default_name(source: ExportSource) -> str:
    """The adapter's default model name in vLLM: `run-<run id>`, with the checkpoint for a checkpoint's adapter."""
    suffix = "" if source.adapter_name == "adapter" else f"-{source.adapter_name}"
    return lora_name(f"run-{source.run_id}{suffix}")


def rank_warnings(rank: int) -> list[tuple[str, dict[str, Any]]]:
    """A rank above every value vLLM accepts, or one it rounds up to the next accepted value."""
    allowed = max_lora_rank(rank)
    if allowed is None:
        return [("vllm_rank_too_large", {"rank": rank, "largest": MAX_LORA_RANKS[-1]})]
    if allowed != rank:
        return [("vllm_rank_rounded", {"rank": rank, "max_rank": allowed,
                                       "ranks": ", ".join(map(str, MAX_LORA_RANKS))})]
    return []


def feature_warnings(adapter_config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """What vLLM refuses in an adapter: `modules_to_save`, DoRA, a trained bias."""
    warnings: list[tuple[str, dict[str, Any]]] = []
    modules = adapter_config.get("modules_to_save")
    if modules:
        warnings.append(("vllm_modules_to_save", {"modules": ", ".join(map(str, modules))}))
    if adapter_config.get("use_dora"):
        warnings.append(("vllm_dora", {}))
    if adapter_config.get("bias", "none") not in (None, "none"):
        warnings.append(("vllm_bias", {"bias": adapter_config["bias"]}))
    return warnings


def vllm_command(source: ExportSource, name: str | None = None) -> VllmAdvice:
    """The `vllm serve BASE --enable-lora --lora-modules NAME=PATH --max-lora-rank R` line for `source` (PATH the
    adapter folder's absolute path) and its warnings (rank, refused features, a base given as a local folder)."""
    adapter_config = source.adapter_config()
    rank = adapter_rank(adapter_config)
    base = source.base_model
    module = f"{lora_name(name) if name else default_name(source)}={source.adapter_dir.resolve()}"
    command = " ".join(["vllm serve", shlex.quote(base), "--enable-lora", "--lora-modules", shlex.quote(module),
                        "--max-lora-rank", str(max_lora_rank(rank) or rank)])
    warnings = rank_warnings(rank) + feature_warnings(adapter_config)
    if not is_hub_id(base):
        warnings.append(("vllm_local_base", {"path": base}))
    return VllmAdvice(command, warnings)
