"""Whole-run memory estimate against the measured peak of real runs on the bundled model.

Each configuration is planned the way the Hyperparameters tab plans it (`Studio.plan`: the estimate a
user sees, with the dataset's real row lengths), then trained for a few steps through the studio's
engine in a fresh process. Measured peak: on CUDA the CUDA context plus torch's peak reserved memory
(what nvidia-smi shows); on CPU the process's peak resident memory. Goal: within +-15%.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.config import TrainConfig

STEPS = int(os.environ.get("BENCH_MEMORY_STEPS", "3"))
ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {  # name: changes over the studio's defaults for this machine
    "batch 4 x 256, r 16 all-linear": {"per_device_train_batch_size": 4, "max_length": 256},
    "batch 8 x 512, r 16 all-linear": {"per_device_train_batch_size": 8, "max_length": 512},
    "batch 4 x 512, checkpointing": {"per_device_train_batch_size": 4, "max_length": 512,
                                     "gradient_checkpointing": True},
    "batch 4 x 512, r 64 q/v only": {"per_device_train_batch_size": 4, "max_length": 512, "lora_r": 64,
                                     "lora_alpha": 128, "lora_target_modules": ["q_proj", "v_proj"]},
}


def _config(studio, dataset: Path, changes: dict) -> TrainConfig:
    base = studio.default_config().replace(dataset_path=str(dataset), max_steps=STEPS, eval_split=0.0,
                                             eval_strategy="no", save_steps=10_000, logging_steps=1)
    return base.replace(**changes)


def _child(config_file: str, folder: str) -> None:
    """Train the config through the engine in this fresh process; print the peak memory in bytes."""
    import resource
    import warnings

    import torch

    from engine.studio import Studio

    warnings.filterwarnings("ignore")
    context = 0
    if torch.cuda.is_available():
        torch.cuda.init()
        free, total = torch.cuda.mem_get_info()
        context = total - free
    studio = Studio(Path(folder) / "runs")
    studio.start(TrainConfig.from_yaml(config_file))
    state = studio.runner.wait()
    if torch.cuda.is_available():
        peak = context + torch.cuda.max_memory_reserved()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak": peak, "state": state.value}))


def main() -> None:
    from bench.training_bench import spread_dataset
    from engine.planning.estimate import gb
    from engine.studio import Studio

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        studio = Studio(folder / "plans", data_root=folder / "data")
        dataset = spread_dataset(folder)
        errors = []
        for name, changes in CONFIGS.items():
            config = _config(studio, dataset, changes)
            estimate = studio.plan(config).memory
            config_file = folder / "config.yaml"
            config_file.write_text(config.to_yaml(), encoding="utf-8")
            child = subprocess.run([sys.executable, "-m", "bench.memory_bench", str(config_file), str(folder / "run")],
                                   capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if child.returncode != 0:
                raise SystemExit(f"[memory] {name} failed:\n{child.stderr[-3000:]}")
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            error = estimate.total / measured["peak"] - 1
            errors.append(error)
            print(f"[memory] {name}: estimate {gb(estimate.total):.2f} GB, measured peak {gb(measured['peak']):.2f} GB "
                  f"({measured['state']}): error {100 * error:+.0f}%", flush=True)
        print(f"[memory] largest error {100 * max(errors, key=abs):+.0f}% over {len(errors)} runs (goal within +-15%)")


if __name__ == "__main__":
    _child(*sys.argv[1:]) if len(sys.argv) == 3 else main()
