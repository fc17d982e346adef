"""The prepared GPU check (issue 16): QLoRA, LoRA, memory and speed through the studio's real training path.

`python -m bench gpu [--json PATH]` on a CUDA machine builds random-weight Llama-shaped models locally
(`bench/gpu_models.py`: ~1B, and exactly Llama-3.1-8B's decoder), writes synthetic rows of 64-1024 tokens
(log-uniform) and trains, each through `Studio.start` (a worker process) for `--steps` optimizer steps:

  lora_bf16_1b   LoRA r16 all-linear, bf16, on the ~1B model
  qlora_nf4_1b   QLoRA: NF4 weights, double quant, paged AdamW 8-bit, on the ~1B model
  qlora_8b_24gb  the `qlora-8b-24gb` preset's settings on the 8B-shaped model

Per run it reports real tokens/s (the run's log events: tokens_seen over time, first step left out as warm-up),
MFU, peak CUDA memory against `Studio.plan(config).memory` (goal within 15%) and, for the preset, whether it
stays under 24 GB. Then it checks the Chat path on the QLoRA adapter: it reloads from the run folder and answers
(`Studio.compare`), and the compare mode's base answer equals the base model's own greedy answer.

MFU = real tokens/s x FLOPs per token / the device's peak dense bf16 FLOP/s (`engine.planning.estimate.GPU_FLOPS`,
by device name: H200/H100 989 TFLOP/s, 4090 165, 3090 71). FLOPs per token of LoRA training = 4 N + 12 L d s: N
the base's matmul weights (decoder linears and lm_head), 2N forward + 2N backward through the frozen weights (no
weight gradients), attention scores 12 L d s with s the token-weighted mean row length (sum s^2 / sum s), L the
layers, d the hidden size; recomputation under gradient checkpointing is not counted (model FLOPs, not hardware).

Peak memory is the worker's own `peak_memory_mb` (torch's peak reserved CUDA memory, written with every log
event); NVML's device memory in use while the worker lives, less what was in use before it started (what
`nvidia-smi` shows: the CUDA context and bitsandbytes buffers too), is reported beside it as a cross-check.
`--tiny` runs the same code on a CPU with tiny shapes and 3 steps; the CUDA-only runs are skipped with the reason
in the JSON and the table. Exit status 0 when everything that ran passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench import gpu_models
from bench.gpu_measure import GiB, chat_check, peak_flops, print_table, run_summary, start_memory_meter
from engine import Studio, TrainConfig

CUDA_ONLY = "skipped: needs CUDA (bitsandbytes NF4 weights and paged 8-bit AdamW run only on a CUDA GPU)"
CUDA_8B = "skipped: needs CUDA (the 8B-shaped model is built on the GPU and loaded in 4-bit)"
PROMPT = "How do I change my delivery address?"


def modes(tiny: bool) -> dict:
    """Sizes of one mode: the model shapes, rows, row lengths, max_length and steps."""
    if tiny:
        return {"small": "tiny", "big": None, "rows": 32, "shortest": 16, "longest": 128, "max_length": 128,
                "steps": 3, "timeout": 600.0}
    return {"small": "1b", "big": "8b", "rows": 512, "shortest": 64, "longest": 1024, "max_length": 1024,
            "steps": 20, "timeout": 300.0}


def run_configs(studio: Studio, dataset: Path, sizes: dict, steps: int) -> dict[str, TrainConfig]:
    """The three runs' configs (model folders filled in later): LoRA bf16, QLoRA NF4, and the 8B preset."""
    base = TrainConfig(dataset_path=str(dataset), max_steps=steps, eval_split=0.0, eval_strategy="no",
                       save_steps=100_000, logging_steps=1, seed=0)
    lora = base.replace(bf16=True, lora_r=16, lora_alpha=32, lora_target_modules=("all-linear",),
                        max_length=sizes["max_length"], per_device_train_batch_size=4)
    return {
        "lora_bf16": lora,
        "qlora_nf4": lora.replace(load_in_4bit=True, bnb_4bit_quant_type="nf4", use_bnb_nested_quant=True,
                                  optim="paged_adamw_8bit"),
        "qlora_8b_24gb": studio.apply_preset("qlora-8b-24gb", base),
    }


def train(studio: Studio, config: TrainConfig, timeout: float, claims_24gb: bool) -> dict:
    """Train `config` through `Studio.start` (its worker process), measuring the device memory meanwhile; the run's
    summary (`bench.gpu_measure.run_summary`)."""
    plan = studio.plan(config)
    if plan.errors:
        return {"status": "failed", "error": [issue.code for issue in plan.errors]}
    meter = start_memory_meter()
    begin = time.perf_counter()
    run_id = studio.start(config)
    state = studio.runner.wait(timeout)
    timed_out = state.is_live
    if timed_out:
        studio.stop()
        state = studio.runner.wait(120)
    peak = meter.stop() if meter else None
    events = studio.events_since(run_id, 0)[0]
    summary = run_summary(config, plan, events, peak, studio.run_dir(run_id), claims_24gb)
    summary.update(run_id=run_id, state=state.value, wall_seconds=round(time.perf_counter() - begin, 1))
    summary["status"] = "timeout" if timed_out else ("done" if state.value == "DONE" else "failed")
    return summary


def ensure_model(models: dict, shape: str, work: Path, tokenizer: Path, device: str) -> dict:
    """The built model of `shape` (built on first use, in its own process)."""
    if shape not in models:
        models[shape] = gpu_models.build_in_process(shape, work / f"model-{shape}", tokenizer, device)
    return models[shape]


def the_runs(sizes: dict, cuda: bool) -> list[tuple[str, str, str | None, str | None]]:
    """(run name, config key, model shape, reason it is skipped or None) of every run, in order."""
    small, big = sizes["small"], sizes["big"]
    return [(f"lora_bf16_{small}", "lora_bf16", small, None),
            (f"qlora_nf4_{small}", "qlora_nf4", small, None if cuda else CUDA_ONLY),
            ("qlora_8b_24gb", "qlora_8b_24gb", big, None if cuda and big else CUDA_8B)]


def check(work: Path, tiny: bool, steps: int | None, tokenizer: Path | None, only: set[str] | None,
          timeout: float | None) -> dict:
    """Build, train and check everything of one mode in `work`; the JSON summary."""
    import torch

    cuda = torch.cuda.is_available() and not tiny
    sizes = modes(tiny)
    steps = steps or sizes["steps"]
    tokenizer = tokenizer or gpu_models.bundled_tokenizer_folder()
    device = {"kind": "cuda" if cuda else "cpu", "name": torch.cuda.get_device_name(0) if cuda else "CPU"}
    device["peak_bf16_tflops"] = round(peak_flops(device["name"]) / 1e12, 1) if cuda else None
    studio = Studio(work / "runs", data_root=work / "data")
    dataset = gpu_models.write_dataset(work / "spread.jsonl", tokenizer, sizes["rows"], sizes["shortest"],
                                       sizes["longest"])
    configs = run_configs(studio, dataset, sizes, steps)
    models: dict[str, dict] = {}
    runs: dict[str, dict] = {}
    for name, key, shape, skipped in the_runs(sizes, cuda):
        if only and name not in only and key not in only:
            continue
        if skipped:
            runs[name] = {"status": "skipped", "reason": skipped}
            continue
        model = ensure_model(models, shape, work, tokenizer, "cuda" if cuda else "cpu")
        if "error" in model:
            runs[name] = {"status": "failed", "error": "model_build_failed", "detail": model["error"]}
            continue
        runs[name] = train(studio, configs[key].replace(model_name_or_path=model["folder"]),
                           timeout or sizes["timeout"], claims_24gb=key == "qlora_8b_24gb")
    chat_run = next((n for n in (f"qlora_nf4_{sizes['small']}", f"lora_bf16_{sizes['small']}")
                     if runs.get(n, {}).get("status") == "done"), None)
    chat = chat_check(studio, Path(runs[chat_run]["run_dir"]), PROMPT, chat_run) if chat_run else \
        {"passed": False, "reason": "no finished LoRA or QLoRA run to chat with"}
    ran = [run for run in runs.values() if run["status"] != "skipped"]
    ok = bool(ran) and all(r["status"] == "done" and (r.get("tokens_per_second") or 0) > 0 for r in ran)
    return {"mode": "tiny" if tiny else "gpu", "device": device, "steps": steps, "models": models,
            "dataset": {"rows": sizes["rows"], "token_range": [sizes["shortest"], sizes["longest"]],
                        "spread": "log-uniform"},
            "formulas": {"flops_per_token": "4*N + 12*L*d*s (N: matmul weights, L layers, d hidden, s: sum s^2/sum s)",
                         "mfu": "tokens_per_second * flops_per_token / peak dense bf16 FLOP/s of the device",
                         "peak_memory": "NVML device memory in use while the worker lives, less that before it",
                         "gb": f"GiB ({GiB} bytes)"},
            "runs": runs, "chat": chat, "ok": ok and bool(chat.get("passed"))}


def main(argv: list[str] | None = None) -> int:
    """Parse the options (`argv`; none when `python -m bench gpu` calls it bare), run the check in a temporary
    folder (or `--work`), print the table and the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU, CUDA-only runs skipped")
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default 20; 3 with --tiny)")
    parser.add_argument("--tokenizer", type=Path,
                        help="tokenizer folder (default: the bundled model's; `python -m bench.gpu_models tokenizer`)")
    parser.add_argument("--only", help="comma-separated run names (or lora_bf16, qlora_nf4, qlora_8b_24gb)")
    parser.add_argument("--timeout", type=float, help="seconds one run may take before it is stopped")
    parser.add_argument("--work", type=Path, help="keep the models and runs in this folder (default: a temporary one)")
    options = parser.parse_args(argv or [])
    import torch

    if not options.tiny and not torch.cuda.is_available():
        print("no CUDA GPU here: run `python -m bench gpu --tiny` for the CPU version of the check", file=sys.stderr)
        return 2
    only = set(options.only.split(",")) if options.only else None
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        work = options.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        summary = check(work, options.tiny, options.steps, options.tokenizer, only, options.timeout)
    print_table(summary)
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    print(text)
    if options.json:
        from engine.system.files import write_text_atomic

        write_text_atomic(options.json, text + "\n")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
