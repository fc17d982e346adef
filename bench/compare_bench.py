"""Chat compare on the bundled model, measured side by side in one run.

1. Memory: the compare model (base + adapter, one copy, and its tokenizer) against the base model alone
   with its tokenizer, each loaded in a fresh process (resident memory after loading and one forward
   pass). Goal: <= 1.05x.
2. Time to generate N answer pairs: one mixed batch (`adapter_names=["__base__", name, ...]`) against
   two sequential generations per question. Goal: mixed at least 1.5x faster.
A short adapter is trained first (two steps), so the numbers need no earlier run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.chat.inference import ChatModel, GenParams
from engine.config import TrainConfig
from engine.presets import SAMPLE_DATASET

PAIRS = int(os.environ.get("BENCH_PAIRS", "8"))
NEW_TOKENS = 48
ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, os, sys, psutil
sys.path.insert(0, {root!r})
from engine.training import factories
from engine.system import device
from engine.models import loader
from engine.config import TrainConfig
import peft, transformers  # imported in both modes before measuring: only model memory is compared
from engine.chat.inference import ChatModel
mode, run_dir = sys.argv[1], sys.argv[2]
before = psutil.Process().memory_info().rss
if mode == "base":
    config = TrainConfig.from_yaml(os.path.join(run_dir, "config.yaml"))
    kwargs = factories.model_kwargs(config, device.cuda_available(), device.bf16_supported())
    folder = loader.resolve_model(config.model_name_or_path)
    model = loader.load_model(folder, kwargs)
    tokenizer = loader.load_tokenizer(folder)  # chatting with the base alone needs its tokenizer too
else:
    chat = ChatModel()
    chat._attach_sides(__import__("pathlib").Path(run_dir), None)
    model = chat._model
import torch
with torch.no_grad():  # one forward pass touches every weight (safetensors are mapped lazily)
    model(input_ids=torch.tensor([[1, 2, 3, 4]], device=model.device))
print(json.dumps({{"rss": psutil.Process().memory_info().rss - before}}))
"""


def short_run(folder: Path) -> Path:
    from engine.studio import Studio

    studio = Studio(folder / "runs")
    run_id = studio.start(TrainConfig(dataset_path=str(SAMPLE_DATASET), max_steps=2, per_device_train_batch_size=2,
                                      max_length=128, eval_split=0.0, eval_strategy="no"))
    studio.runner.wait()
    return studio.runner.run_dir(run_id)


def memory(mode: str, run_dir: Path) -> int:
    out = subprocess.run([sys.executable, "-c", MEASURE.format(root=str(ROOT)), mode, str(run_dir)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    return json.loads(out.stdout.strip().splitlines()[-1])["rss"]


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    rows = [json.loads(line) for line in SAMPLE_DATASET.read_text(encoding="utf-8").splitlines()][:PAIRS]
    conversations = [[{"role": "user", "content": row["instruction"]}] for row in rows]
    params = GenParams(max_new_tokens=NEW_TOKENS)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = short_run(Path(tmp))
        base_only, compare = memory("base", run_dir), memory("compare", run_dir)
        print(f"[compare] memory after loading and one forward pass: base alone {base_only / 2**20:.0f} MB, "
              f"compare mode {compare / 2**20:.0f} MB: {compare / base_only:.3f}x (goal <= 1.05x)")
        chat = ChatModel()
        chat.compare(run_dir, conversations[0], GenParams(max_new_tokens=4))  # load and warm up
        started = time.perf_counter()
        for conversation in conversations:
            chat.answer(run_dir, conversation, params, "base")
            chat.answer(run_dir, conversation, params, "adapter")
        sequential = time.perf_counter() - started
        started = time.perf_counter()
        chat.compare_batch(run_dir, conversations, params)
        mixed = time.perf_counter() - started
        print(f"[compare] {PAIRS} answer pairs, {NEW_TOKENS} new tokens: two sequential generations "
              f"{sequential:.1f} s, one mixed batch {mixed:.1f} s: mixed {sequential / mixed:.2f}x faster "
              f"(goal >= 1.5x)")


if __name__ == "__main__":
    main()
