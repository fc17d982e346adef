"""Export on the bundled model, measured side by side in one run (`python -m bench export [--rounds N]`).

1. Generation speed: greedy tokens per second of the merged model against the base with the adapter attached
   (PEFT, adapter active), the same prompt and number of new tokens, in alternating rounds so that both see the
   same machine state. The merged model skips the LoRA side path of every targeted layer.
2. Export: the seconds to merge, then to write each GGUF type this machine can write, and each file's size.
A short adapter is trained first (two steps), so the numbers need no earlier run.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

PROMPT = "A customer writes that their order arrived late and one item is missing. What should I reply?"


def generation_speed(model, ids, new_tokens: int) -> float:
    """Greedy tokens per second of `model` generating exactly `new_tokens` after `ids`."""
    import torch

    started = time.perf_counter()
    with torch.no_grad():
        model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return new_tokens / (time.perf_counter() - started)


def compare_speed(source, merged_dir: Path, rounds: int, new_tokens: int) -> dict[str, list[float]]:
    """Tokens/s of base+adapter and of the merged model, one of each per round, alternating."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import loader

    tokenizer = loader.load_tokenizer(merged_dir)
    text = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(source.base_folder(), dtype=torch.float32)
    models = {"base+adapter": PeftModel.from_pretrained(base, str(source.adapter_dir)).eval(),
              "merged": AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()}
    for model in models.values():
        generation_speed(model, ids, 4)  # warm up
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for _round in range(rounds):
        for name, model in models.items():
            speeds[name].append(generation_speed(model, ids, new_tokens))
    return speeds


def export_times(source, types: list[str]) -> dict[str, dict[str, float]]:
    """Seconds and megabytes of each GGUF type written from the (already merged) model."""
    from engine.export.gguf_export import export_gguf

    found = {}
    for gguf_type in types:
        started = time.perf_counter()
        path = export_gguf(source, gguf_type)
        found[gguf_type] = {"seconds": round(time.perf_counter() - started, 1),
                            "mb": round(path.stat().st_size / 2**20, 1)}
    return found


def main(argv: list[str] | None = None) -> None:
    """Train a short adapter, merge it, and print generation speed and export cost side by side."""
    import warnings

    from bench.compare_bench import short_run
    from engine.export.gguf_export import gguf_types
    from engine.export.merge import merge_adapter
    from engine.export.source import ExportSource
    from engine.export.space import folder_size

    parser = argparse.ArgumentParser(prog="python -m bench export")
    parser.add_argument("--rounds", type=int, default=3, help="alternating generation rounds per model")
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per generation")
    args = parser.parse_args(argv or [])
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        source = ExportSource.of(short_run(Path(tmp)))
        started = time.perf_counter()
        merged_dir = merge_adapter(source)
        merge_seconds = round(time.perf_counter() - started, 1)
        speeds = compare_speed(source, merged_dir, args.rounds, args.tokens)
        exports = export_times(source, gguf_types())
        merged_mb = round(folder_size(merged_dir) / 2**20, 1)
    print(f"generation, {args.tokens} new tokens, {args.rounds} alternating rounds (tokens/s):")
    for name, values in speeds.items():
        print(f"  {name:>13}: " + "  ".join(f"{value:6.1f}" for value in values)
              + f"   best {max(values):6.1f}")
    ratio = max(speeds["merged"]) / max(speeds["base+adapter"])
    print(f"  merged / base+adapter: {ratio:.2f}x")
    print(f"merge: {merge_seconds} s, {merged_mb} MB of safetensors")
    for gguf_type, cost in exports.items():
        print(f"  gguf {gguf_type:>6}: {cost['seconds']:6.1f} s  {cost['mb']:8.1f} MB")
    print(json.dumps({"speeds": speeds, "merge_seconds": merge_seconds, "merged_mb": merged_mb, "gguf": exports}))
