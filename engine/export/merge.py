"""The merged model: the run's base reloaded in 16-bit on the CPU (never in 4-bit), the adapter folded into its
weights with PEFT's `merge_and_unload`, written as safetensors shards with the adapter's tokenizer and chat template.

The precision of the reload (`merge_dtype`), first rule that applies:
1. the run's `dtype` setting when it names one (float32, bfloat16, float16);
2. bfloat16 when the run trained in bf16, float16 when it trained in fp16;
3. the base checkpoint's own precision when it is 16-bit (a 7–8B hub model is saved in bfloat16: no loss, half the
   memory of float32);
4. bfloat16 where this machine's GPU supports it, float16 on another GPU, float32 on a CPU-only machine.
The merge itself runs on the CPU whatever the rule gives, so a 7–8B model needs its 16-bit size in memory once
(about 16 GB) and no GPU memory; training's 4-bit quantization is never applied to the reload.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.errors import EngineError
from engine.export.source import ExportSource, Progress, no_progress
from engine.export.space import ensure_free_space, replacing_folder
from engine.locales import message_key
from engine.models import loader
from engine.system import device
from engine.system.threads import on_own_thread

MERGED_FOLDER = "merged"
SIXTEEN_BIT = ("bfloat16", "float16")


def merged_dir(source: ExportSource) -> Path:
    """Where the merged model of `source` is written: `export_dir/merged`."""
    return source.export_dir / MERGED_FOLDER


def base_dtype(source: ExportSource) -> str | None:
    """The precision the base checkpoint was saved in (its config's `dtype`, or `torch_dtype` in older
    configs), or None when the config does not say."""
    config = json.loads((source.base_folder() / "config.json").read_text(encoding="utf-8"))
    saved = config.get("dtype") or config.get("torch_dtype")
    return saved if isinstance(saved, str) else None


def merge_dtype(source: ExportSource) -> str:
    """The precision the base is reloaded in for the merge (the rules in this module's docstring)."""
    config = source.config
    if config.dtype != "auto":
        return config.dtype
    if config.bf16:
        return "bfloat16"
    if config.fp16:
        return "float16"
    saved = base_dtype(source)
    if saved in SIXTEEN_BIT:
        return saved
    if device.cuda_available():
        return "bfloat16" if device.bf16_supported() else "float16"
    return "float32"


def merge_notes(source: ExportSource) -> list[tuple[str, dict]]:
    """What a person should know about this merge, as (catalogue code, params): the precision of the reload, and
    that a QLoRA (or 8-bit) run is merged into a 16-bit reload of its base, not into the weights it trained on."""
    notes: list[tuple[str, dict]] = [("merge_note_dtype", {"dtype": merge_dtype(source)})]
    if source.used_qlora:
        notes.append(("merge_note_qlora", {}))
    elif source.config.load_in_8bit:
        notes.append(("merge_note_8bit", {}))
    return notes


def check_shard_size(max_shard_size: str) -> int:
    """The bytes `max_shard_size` means ("2GB", "500MB", a number of bytes); raises `merge_bad_shard_size`."""
    convert_file_size_to_int = loader.import_transformers("utils.hub", "convert_file_size_to_int")
    try:
        size = convert_file_size_to_int(max_shard_size.strip() if isinstance(max_shard_size, str) else max_shard_size)
    except (ValueError, TypeError, AttributeError):
        size = 0
    if not isinstance(size, int) or size <= 0:
        raise EngineError("merge_bad_shard_size", {"value": str(max_shard_size)}, hint="hint_shard_size")
    return size


def _refuse_quantized_base(folder: Path) -> None:
    """Raise `merge_quantized_base` when the base checkpoint itself is stored quantized (a GPTQ/AWQ/bnb hub
    model): its weights cannot take a merged adapter in 16-bit."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("quantization_config"):
        raise EngineError("merge_quantized_base", {"model": folder.name}, hint="hint_unquantized_base")


def merged_model(source: ExportSource, progress: Progress = no_progress):
    """The base reloaded on the CPU in `merge_dtype`, with the adapter merged into it (PEFT's `merge_and_unload`);
    the model is in memory, nothing is written."""
    import torch
    from peft import PeftModel

    folder = source.base_folder()
    _refuse_quantized_base(folder)
    progress(message_key("merge_step_load_base"), 0.0)
    base = loader.load_model(folder, {"dtype": getattr(torch, merge_dtype(source)), "low_cpu_mem_usage": True})
    progress(message_key("merge_step_merge"), 0.4)
    with_adapter = PeftModel.from_pretrained(base, str(source.adapter_dir))
    merged = with_adapter.merge_and_unload()
    merged.eval()
    return merged


def model_bytes(model) -> int:
    """The bytes of a model's parameters and buffers as they will be saved (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


@on_own_thread  # torch work off the web server's long-lived threads
def merge_adapter(source: ExportSource, *, max_shard_size: str = "2GB", progress: Progress = no_progress) -> Path:
    """Write the merged model of `source` to `export_dir/merged` (safetensors shards of at most `max_shard_size`,
    config, generation config, the adapter's tokenizer and chat template) and return that folder. Free space is
    checked before writing; the folder is written under a temporary name and replaces an older one when complete."""
    check_shard_size(max_shard_size)
    merged = merged_model(source, progress)
    target = merged_dir(source)
    ensure_free_space(target.parent, model_bytes(merged))
    progress(message_key("merge_step_save"), 0.7)
    tokenizer = loader.load_tokenizer(source.adapter_dir)
    with replacing_folder(target) as staging:
        merged.save_pretrained(staging, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(staging)
    progress(message_key("merge_step_done"), 1.0)
    return target
