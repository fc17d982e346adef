"""The prepared GPU check (`python -m bench gpu`, bench/gpu_check.py): its `--tiny` run on the CPU end to end, as
the GPU machine will run it (a subprocess from the repo root), and, fast, the pieces only a CUDA run reaches."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import gpu_measure, gpu_models
from engine import LogEvent, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
RUN_NAMES = {"lora_bf16_tiny", "qlora_nf4_tiny", "qlora_8b_24gb"}


def write_shape(folder: Path, shape: str) -> Path:
    """A model folder holding only the config.json of `shape` (what the estimate reads)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 49152,
                                                    **gpu_models.SHAPES[shape]}), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_the_tiny_check_trains_chats_and_marks_the_cuda_runs_skipped(tmp_path):
    out = tmp_path / "gpu.json"
    child = subprocess.run([sys.executable, "-m", "bench", "gpu", "--tiny", "--json", str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert {"mode", "device", "steps", "models", "dataset", "formulas", "runs", "chat", "ok"} <= set(summary)
    assert summary["mode"] == "tiny" and summary["device"]["kind"] == "cpu" and summary["ok"] is True
    assert set(summary["runs"]) == RUN_NAMES
    lora = summary["runs"]["lora_bf16_tiny"]
    assert lora["status"] == "done" and lora["state"] == "DONE" and lora["steps"] == 3
    assert lora["tokens_per_second"] > 0 and lora["flops_per_token"] > 0
    assert lora["settings"]["bf16"] is True and lora["settings"]["lora_r"] == 16
    assert lora["estimate_gb"] > 0 and lora["peak_memory_gb"] > 0
    for name in ("qlora_nf4_tiny", "qlora_8b_24gb"):
        run = summary["runs"][name]
        assert run["status"] == "skipped" and "needs CUDA" in run["reason"], run
    assert summary["models"]["tiny"]["parameters"] > 0 and "8b" not in summary["models"]
    chat = summary["chat"]
    assert chat["run"] == "lora_bf16_tiny" and chat["passed"] is True
    assert chat["adapter_saved"] and chat["answered"] and chat["base_equals_base_alone"]
    assert chat["base"] == chat["base_alone"] and chat["adapter"].strip()
    table = child.stdout
    assert "skipped: needs CUDA" in table and "chat (lora_bf16_tiny): passed" in table and "overall: ok" in table


def test_the_gpu_check_runs_only_when_named():
    assert "gpu_check" not in bench_main.discover()  # a plain `make bench` never starts it
    assert bench_main.ON_REQUEST["gpu"] == "gpu_check"


def test_without_cuda_the_full_check_refuses_in_words(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_main.main(["gpu"]) == 2
    assert "--tiny" in capsys.readouterr().err


def test_synthetic_rows_spread_log_uniformly_over_the_range():
    lengths = gpu_models.spread_lengths(2000, 64, 1024)
    assert min(lengths) >= 64 and max(lengths) <= 1024
    below_256 = sum(n < 256 for n in lengths) / len(lengths)
    assert 0.45 < below_256 < 0.55  # log-uniform: 64..256 is half the range (a uniform spread gives 0.2)


def test_throughput_leaves_the_first_step_out():
    logs = [LogEvent(1, loss=2.0, tokens_seen=500, time=100.0), LogEvent(2, loss=1.9, tokens_seen=1500, time=101.0),
            LogEvent(3, loss=1.8, tokens_seen=2500, time=103.0)]
    assert gpu_measure.throughput(logs) == pytest.approx(2000 / 3)
    assert gpu_measure.throughput(logs[:1]) is None


def test_flops_per_token_is_four_n_plus_the_attention_term():
    from engine.planning import estimate

    shape = estimate.shape_from_config("x", {"model_type": "llama", "vocab_size": 49152, **gpu_models.SHAPES["8b"]})
    lengths = [100, 300]
    seq = (100 * 100 + 300 * 300) / 400
    assert gpu_measure.flops_per_token(shape, lengths) == pytest.approx(4 * shape.matmul_params
                                                                        + 12 * 32 * 4096 * seq)
    assert 6.9e9 < shape.matmul_params < 7.5e9  # Llama-3.1-8B's decoder with the bundled vocabulary


def test_peak_flops_come_from_the_estimates_table():
    assert gpu_measure.peak_flops("NVIDIA H200") == 989e12
    assert gpu_measure.peak_flops("NVIDIA GeForce RTX 4090") == 165e12
    assert gpu_measure.peak_flops("NVIDIA GeForce RTX 3090") == 71e12


def test_the_presets_24gb_claim_is_judged_for_the_shape_and_the_real_model(tmp_path):
    from engine import Studio

    folder = write_shape(tmp_path / "model-8b", "8b")
    config = Studio(tmp_path / "runs").apply_preset("qlora-8b-24gb", TrainConfig()).replace(
        model_name_or_path=str(folder))
    measured = 14 * gpu_measure.GiB
    claim = gpu_measure._card_24gb(config, 1024, measured, 13 * gpu_measure.GiB)
    assert claim["under_24gb"] is True and claim["estimate_verdict_on_24gb"] in ("fits", "tight", "will_not_fit")
    assert claim["real_llama_8b_estimate_gb"] > 13  # the 128256-token vocabulary's logits are bigger
    projected = measured + claim["real_llama_8b_estimate_gb"] * gpu_measure.GiB - 13 * gpu_measure.GiB
    assert claim["real_llama_8b_projected_gb"] == pytest.approx(projected / gpu_measure.GiB, abs=0.01)
    assert gpu_measure._card_24gb(config, 1024, None, None)["under_24gb"] is None


def test_the_table_names_skipped_and_failed_runs(capsys):
    summary = {"mode": "gpu", "device": {"name": "NVIDIA H200"}, "steps": 20, "ok": False,
               "runs": {"lora_bf16_1b": {"status": "done", "tokens_per_second": 9000.0, "mfu": 0.31,
                                         "peak_memory_gb": 5.2, "estimate_gb": 5.6, "estimate_error": 0.077},
                        "qlora_nf4_1b": {"status": "failed", "error": {"code": "model_load_failed"}},
                        "qlora_8b_24gb": {"status": "skipped", "reason": "skipped: needs CUDA"}},
               "chat": {"passed": False, "reason": "no finished LoRA or QLoRA run to chat with"}}
    gpu_measure.print_table(summary)
    table = capsys.readouterr().out
    assert "9000.0" in table and "+8%" in table and "model_load_failed" in table and "skipped: needs CUDA" in table
    assert "FAILED" in table and "no finished LoRA" in table
