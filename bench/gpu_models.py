"""Random-weight models and synthetic rows for the GPU check (`bench/gpu_check.py`), made locally: nothing is
downloaded, the bundled model's tokenizer is the only thing taken from elsewhere.

Each model is a Llama-shaped transformers model with random weights (`AutoModelForCausalLM.from_config`), built
in bfloat16 straight on the device it is built on (the GPU for the 8B shape: no fp32 copy on the host), saved as
safetensors with the bundled tokenizer's files. Run as a module it builds one model in its own process (so the
check's own process never holds CUDA memory while a run is measured) and prints one JSON line:

    python -m bench.gpu_models build SHAPE FOLDER --tokenizer DIR [--device cuda]
    python -m bench.gpu_models tokenizer FOLDER     # the bundled tokenizer's files, to carry to a GPU machine
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

# Llama shapes (transformers LlamaConfig fields); the vocabulary is always the bundled tokenizer's.
SHAPES: dict[str, dict] = {
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "tie_word_embeddings": True, "rope_theta": 10000.0},
    # Llama-3.2-1B's decoder: about 1.1B parameters with the bundled 49k vocabulary
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "tie_word_embeddings": True, "rope_theta": 500000.0},
    # exactly Llama-3.1-8B's decoder (its vocabulary is 128256; here the bundled one's)
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "tie_word_embeddings": False, "rope_theta": 500000.0},
}
MAX_POSITIONS = 4096


def bundled_tokenizer_folder() -> Path:
    """The bundled model's local folder (its tokenizer files); needs the bundled model installed."""
    from engine.config import BUNDLED_MODEL_ID
    from engine.models import loader

    return loader.resolve_model(BUNDLED_MODEL_ID)


def save_tokenizer(source: Path, folder: Path) -> int:
    """Write the tokenizer of `source` (a model folder or a saved tokenizer) into `folder`; its vocabulary size."""
    from engine.models import loader

    tokenizer = loader.load_tokenizer(Path(source))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return len(tokenizer)


def build_model(shape: str, folder: Path, tokenizer_source: Path, device: str = "cpu") -> dict:
    """Build the random-weight model `shape` on `device` in bfloat16 and save it (safetensors, with the tokenizer)
    into `folder`; returns its parameter count and the seconds the weights took to make and to save."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    vocab = save_tokenizer(tokenizer_source, folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    # weights of std 1/sqrt(hidden): the logits spread about 1, so a greedy answer varies with the prompt (with
    # transformers' default 0.02 a tiny model answers every prompt with the same newlines)
    config = LlamaConfig(vocab_size=vocab, max_position_embeddings=MAX_POSITIONS, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         initializer_range=round(SHAPES[shape]["hidden_size"] ** -0.5, 4), **SHAPES[shape])
    begin = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    made = time.perf_counter()
    model.save_pretrained(str(folder), safe_serialization=True)
    saved = time.perf_counter()
    return {"shape": shape, "folder": str(folder), "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": vocab, "device": device, "dtype": "bfloat16", "init_seconds": round(made - begin, 2),
            "save_seconds": round(saved - made, 2),
            "disk_gb": round(sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**30, 2)}


def build_in_process(shape: str, folder: Path, tokenizer_source: Path, device: str) -> dict:
    """`build_model` in a fresh Python process (its CUDA memory is gone when it returns), timed as a whole."""
    import subprocess

    begin = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "bench.gpu_models", "build", shape, str(folder), "--tokenizer",
                            str(tokenizer_source), "--device", device], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent.parent)
    if child.returncode != 0:
        return {"shape": shape, "error": child.stderr.strip()[-2000:]}
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return {**result, "build_seconds": round(time.perf_counter() - begin, 1)}


def spread_lengths(rows: int, shortest: int, longest: int, seed: int = 0) -> list[int]:
    """`rows` target row lengths in tokens, log-uniform between `shortest` and `longest`."""
    rng = random.Random(seed)
    low, high = math.log(shortest), math.log(longest)
    return [int(round(math.exp(rng.uniform(low, high)))) for _ in range(rows)]


def synthetic_rows(tokenizer, lengths: list[int], seed: int = 0) -> list[dict]:
    """Alpaca rows (a question of the sample set, an answer of its words in random order) whose whole chat, as the
    model sees it, is about each of `lengths` tokens long."""
    from engine.presets import SAMPLE_DATASET

    sample = [json.loads(line) for line in SAMPLE_DATASET.read_text(encoding="utf-8").splitlines() if line.strip()]
    words = " ".join(row["output"] for row in sample).split()
    rng = random.Random(seed)
    rows = []
    for target in lengths:
        question = rng.choice(sample)["instruction"]
        frame = len(tokenizer.apply_chat_template([{"role": "user", "content": question},
                                                   {"role": "assistant", "content": "."}], tokenize=True))
        frame = len(frame["input_ids"]) if isinstance(frame, dict) else frame
        text = " ".join(rng.choice(words) for _ in range(target))
        ids = tokenizer.encode(text, add_special_tokens=False)[:max(target - frame, 4)]
        rows.append({"instruction": question, "input": "", "output": tokenizer.decode(ids).strip()})
    return rows


def write_dataset(path: Path, tokenizer_folder: Path, rows: int, shortest: int, longest: int) -> Path:
    """The synthetic JSONL dataset of `rows` rows of `shortest`..`longest` tokens (log-uniform), at `path`."""
    from engine.models import loader
    from engine.system.files import write_text_atomic

    tokenizer = loader.load_tokenizer(tokenizer_folder)
    data = synthetic_rows(tokenizer, spread_lengths(rows, shortest, longest))
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data))
    return path


def main(argv: list[str] | None = None) -> int:
    """`build SHAPE FOLDER` (one JSON line) or `tokenizer FOLDER` (the bundled tokenizer's files)."""
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_models")
    parser.add_argument("action", choices=("build", "tokenizer"))
    parser.add_argument("args", nargs="+", help="build: SHAPE FOLDER; tokenizer: FOLDER")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder (default: the bundled model's)")
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args(argv)
    source = options.tokenizer or bundled_tokenizer_folder()
    if options.action == "tokenizer":
        print(json.dumps({"folder": options.args[0], "vocab_size": save_tokenizer(source, Path(options.args[0]))}))
        return 0
    shape, folder = options.args[0], Path(options.args[1])
    print(json.dumps(build_model(shape, folder, source, options.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
