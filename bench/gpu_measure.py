"""What the GPU check (`bench/gpu_check.py`) measures and prints: device memory, tokens/s and MFU from a run's
events, the estimate's error, the Chat-path check, and the short table. Formulas: `bench/gpu_check.py`'s docstring."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from engine import GenParams, LogEvent, Studio, TrainConfig

GiB = 2**30
CARD_24GB = 24 * GiB     # an RTX 3090/4090
ESTIMATE_GOAL = 0.15     # the estimate should be within 15% of the measured peak
REAL_LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"  # the preset's model: the 8B shape with a 128256 vocabulary


def peak_flops(device_name: str) -> float:
    """Peak dense bf16 FLOP/s of a CUDA device by its name (the estimate's table)."""
    from engine.planning import estimate

    name = device_name.upper()
    return next((flops for key, flops in estimate.GPU_FLOPS if key in name), estimate.DEFAULT_GPU_FLOPS)


class MemoryMeter:
    """Samples NVML's device memory in use on GPU 0 from a thread; `stop()` gives the peak less the baseline."""

    def __init__(self, interval: float = 0.1) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        self.baseline = self._used()
        self.peak = self.baseline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def _sample(self, interval: float) -> None:
        while not self._done.wait(interval):
            self.peak = max(self.peak, self._used())

    def stop(self) -> int:
        """Stop sampling; the peak bytes in use above the baseline."""
        self._done.set()
        self._thread.join()
        return self.peak - self.baseline


def start_memory_meter() -> MemoryMeter | None:
    """A running MemoryMeter where CUDA and NVML are present, else None (the CPU: the events' memory is used)."""
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        return MemoryMeter()
    except Exception:  # NVML missing or refused (a sandboxed driver): the peak is then not measured
        return None


def throughput(logs: list[LogEvent]) -> float | None:
    """Real (non-padding) tokens/s between the first and the last log (the first step is the warm-up)."""
    timed = [e for e in logs if e.tokens_seen is not None]
    if len(timed) < 2 or timed[-1].time <= timed[0].time:
        return None
    return (timed[-1].tokens_seen - timed[0].tokens_seen) / (timed[-1].time - timed[0].time)


def flops_per_token(shape, lengths: list[int]) -> float:
    """LoRA training FLOPs per token: 4 N + 12 L d s (see `bench/gpu_check.py`)."""
    seq = sum(n * n for n in lengths) / max(sum(lengths), 1)
    return 4.0 * shape.matmul_params + 12.0 * shape.num_hidden_layers * shape.hidden_size * seq


def _gb(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else round(n_bytes / GiB, 2)


def _memory(plan, logs: list[LogEvent], peak: int | None, cuda: bool) -> dict:
    """Measured peak against the plan's estimate: the figures, the relative error and whether it is in the goal.
    The worker's own `peak_memory_mb` (torch's peak reserved CUDA memory) is the measure; the GPU's memory in use
    sampled through NVML (`peak`, minus what was in use before) is reported beside it as a cross-check."""
    reserved = max((e.peak_memory_mb for e in logs if e.peak_memory_mb is not None), default=None)
    logged = max((e.memory_mb for e in logs if e.memory_mb is not None), default=None)
    measured = reserved * 2**20 if reserved is not None else peak
    source = ("events_peak_reserved" if cuda else "events_peak_rss") if reserved is not None else "nvml_device_used"
    out = {"peak_memory_gb": _gb(measured), "memory_source": source, "nvml_peak_gb": _gb(peak),
           "logged_memory_gb": _gb(logged and logged * 2**20)}
    if plan.memory is not None:
        out["estimate_gb"] = _gb(plan.memory.total)
        out["estimate_parts_gb"] = {part: _gb(size) for part, size in plan.memory.parts.items()}
        if measured:
            error = (plan.memory.total - measured) / measured
            out["estimate_error"] = round(error, 3)
            if cuda:  # the goal is the CUDA estimate's; a CPU's peak resident memory holds Python and torch too
                out["estimate_within_15pct"] = abs(error) <= ESTIMATE_GOAL
    return out


def _card_24gb(config: TrainConfig, seq_len: int, measured: float | None, shaped_estimate: int | None) -> dict:
    """The preset's claim: the run under 24 GB, the estimate's verdict on a 24 GB card, and the same for the real
    Llama-3.1-8B (its 128256-token vocabulary makes bigger logits: measured + the estimates' difference)."""
    from engine.planning import estimate

    card = estimate.DeviceInfo("cuda", "RTX 4090 (24 GB)", CARD_24GB, CARD_24GB, True)
    shape = estimate.shape_of(config.model_name_or_path)
    real = estimate.estimate_memory(config, estimate.shape_of(REAL_LLAMA_8B), card, seq_len=seq_len)
    out = {"under_24gb": None if measured is None else measured < CARD_24GB,
           "estimate_verdict_on_24gb": estimate.estimate_memory(config, shape, card, seq_len=seq_len).verdict,
           "real_llama_8b_estimate_gb": _gb(real.total), "real_llama_8b_verdict_on_24gb": real.verdict}
    if measured is not None and shaped_estimate is not None:
        projected = measured + real.total - shaped_estimate
        out.update(real_llama_8b_projected_gb=_gb(projected), real_llama_8b_under_24gb=projected < CARD_24GB)
    return out


def run_summary(config: TrainConfig, plan, events: list, peak: int | None, run_dir: Path | None,
                claims_24gb: bool = False) -> dict:
    """One run's figures from its plan, its events and the measured peak device memory; with `claims_24gb` (the
    `qlora-8b-24gb` preset's run) whether it fits a 24 GB card too."""
    logs = [e for e in events if isinstance(e, LogEvent) and e.loss is not None]
    lengths = [min(n, config.max_length) for n in (plan.dataset.summary.token_lengths if plan.dataset else [])]
    from engine.planning import estimate

    shape = estimate.shape_of(config.model_name_or_path)
    rate = throughput(logs)
    flops = flops_per_token(shape, lengths) if shape and lengths else None
    summary = {"settings": {k: getattr(config, k) for k in ("load_in_4bit", "bf16", "optim", "lora_r", "max_length",
                                                            "per_device_train_batch_size",
                                                            "gradient_accumulation_steps", "gradient_checkpointing")},
               "run_dir": str(run_dir) if run_dir else None, "steps": logs[-1].step if logs else 0,
               "loss_first": logs[0].loss if logs else None, "loss_last": logs[-1].loss if logs else None,
               "tokens_per_second": round(rate, 1) if rate else None,
               "flops_per_token": flops, "parameters": shape.total_params if shape else None}
    errors = [e for e in events if getattr(e, "kind", "") == "error"]
    if errors:
        summary["error"] = {"code": errors[-1].code, "params": errors[-1].params}
    import torch

    if torch.cuda.is_available() and rate and flops:
        summary["mfu"] = round(rate * flops / peak_flops(torch.cuda.get_device_name(0)), 4)
    summary.update(_memory(plan, logs, peak, torch.cuda.is_available()))
    if claims_24gb and shape and lengths:
        measured = summary["peak_memory_gb"] * GiB if summary["peak_memory_gb"] is not None else None
        summary.update(_card_24gb(config, max(lengths), measured, plan.memory.total if plan.memory else None))
    return summary


def base_alone(run_dir: Path, prompt: str, params: GenParams) -> str:
    """The base model's own greedy answer, loaded by itself (no PEFT) at the precision the run trained it in, with
    the tokenizer and chat template saved with the adapter: the reference for the compare mode's base side."""
    import torch

    from engine.models import loader
    from engine.training import factories

    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    cuda = torch.cuda.is_available()
    kwargs = factories.model_kwargs(config, cuda, cuda and torch.cuda.is_bf16_supported())
    if cuda:
        kwargs.setdefault("device_map", {"": 0})
    model = loader.load_model(loader.resolve_model(config.model_name_or_path), kwargs).eval()
    tokenizer = loader.load_tokenizer(run_dir / "adapter")
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         tokenize=False)
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=params.max_new_tokens, do_sample=False, top_k=None,
                                top_p=None, temperature=None, repetition_penalty=params.repetition_penalty,
                                pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    del model
    return answer


def chat_check(studio: Studio, run_dir: Path, prompt: str, run_name: str) -> dict:
    """The adapter saved, reloaded by the Chat path and answering (`Studio.compare`); its base side equal to the
    base model alone (greedy, the default generation settings)."""
    begin = time.perf_counter()
    files = sorted(p.name for p in (run_dir / "adapter").glob("*")) if (run_dir / "adapter").is_dir() else []
    try:
        pair = studio.compare(run_dir, prompt)
        alone = base_alone(run_dir, prompt, GenParams())
    except Exception as exc:  # reported in the summary: the check's point is to see the failure
        return {"run": run_name, "adapter_files": files, "passed": False, "error": f"{type(exc).__name__}: {exc}"}
    saved = "adapter_model.safetensors" in files
    same = pair.base == alone
    return {"run": run_name, "adapter_files": files, "adapter_saved": saved, "answered": bool(pair.adapter.strip()),
            "base": pair.base, "adapter": pair.adapter, "base_alone": alone, "base_equals_base_alone": same,
            "seconds": round(time.perf_counter() - begin, 1), "passed": saved and bool(pair.adapter.strip()) and same}


def _cell(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(summary: dict) -> None:
    """The short table: one line per run, then the chat check's line."""
    print(f"GPU check ({summary['mode']}, {summary['device']['name']}, {summary['steps']} steps a run)")
    print(f"{'run':<16} {'status':<8} {'tok/s':>9} {'MFU':>6} {'peak GB':>8} {'est GB':>7} {'err':>7}  note")
    for name, run in summary["runs"].items():
        note = run.get("reason") or (f"under 24 GB: {run['under_24gb']}" if "under_24gb" in run else "")
        if run.get("error"):
            note = f"error: {run['error']}"
        error = run.get("estimate_error")
        print(f"{name:<16} {run['status']:<8} {_cell(run.get('tokens_per_second'), 1):>9} "
              f"{_cell(run.get('mfu'), 3):>6} {_cell(run.get('peak_memory_gb')):>8} {_cell(run.get('estimate_gb')):>7} "
              f"{(f'{100 * error:+.0f}%' if error is not None else '-'):>7}  {note}")
    chat = summary["chat"]
    print(f"chat ({chat.get('run') or '-'}): {'passed' if chat.get('passed') else 'FAILED'}; adapter saved "
          f"{chat.get('adapter_saved')}, answered {chat.get('answered')}, base == base alone "
          f"{chat.get('base_equals_base_alone')}{'; ' + chat['error'] if chat.get('error') else ''}"
          f"{'; ' + chat['reason'] if chat.get('reason') else ''}")
    print(f"overall: {'ok' if summary['ok'] else 'FAILED'}")
