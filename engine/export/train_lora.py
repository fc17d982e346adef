#!/usr/bin/env python3
"""LoRA fine-tuning with plain TRL + PEFT + transformers + datasets, exported from the fine-tuning studio.

The same data reading (encoding, delimiter, plain-text chunks), conversion, train/eval split, mix and settings
as the studio's run, without the studio:

    pip install torch "transformers>=5.23" datasets peft trl accelerate pandas charset-normalizer
    # (bitsandbytes too for 4-bit or 8-bit loading)
    python train_lora.py [--model PATH] [--dataset FILE] [--output DIR]

The adapter is written to OUTPUT/adapter (with the tokenizer), checkpoints to OUTPUT/checkpoints.
The settings below are the run's: edit them here, or pass the flags.
"""
from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

# The studio's own code: its exporter (engine/export/script.py) copies it into the script in place of these imports.
from engine.data.convert import (
    BadRow,
    detect_columns,
    held_out_count,
    json_document_rows,
    jsonl_rows,
    mix_count,
    rename_columns,
    to_example,
)
from engine.data.encoding import AUTO, UnknownEncoding, decode, sniff_delimiter
from engine.data.plain_text import SUFFIXES, chunk, paragraphs
from engine.data.splits import examples_dataset
from engine.models.loader import ready_tokenizer
from engine.training.factories import resolve_dtype, trainer_class

# ---- settings (written by the studio's exporter) ----------------------------------------------
# LoRA fine-tuning of HuggingFaceTB/SmolLM2-135M-Instruct on a dataset.
# The studio's bundled model. Its id is also a Hugging Face hub id, so this downloads it on the
# first run; offline, pass --model with a local folder (config.json + safetensors + tokenizer),
# e.g. the studio's converted copy under ~/.cache/finetune-studio/models/.
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DATASET = ""
OUTPUT_DIR = "output"
# The dataset file's text encoding and CSV delimiter, as the studio read it (auto: detected).
ENCODING = "auto"
DELIMITER = "auto"
# For a preference file (chosen/rejected): train on each prompt with its chosen answer.
SFT_ON_CHOSEN = False
# A second dataset mixed into the training rows (empty: none), MIX_RATIO times as many as train.
MIX_DATASET = ""
MIX_RATIO = 0.0
# The share of rows held out for evaluation (EVAL_ROWS > 0 holds out that many instead).
EVAL_SPLIT = 0.1
EVAL_ROWS = 0
SEED = 42
# Stop after this many evaluations without a better eval loss (0: off).
EARLY_STOPPING_PATIENCE = 0
# The weights' dtype: auto is bfloat16 (float16 without bf16 support) on CUDA, float32 on a CPU.
DTYPE = "auto"
# BitsAndBytesConfig arguments for 4-bit or 8-bit loading (None: not quantized).
QUANTIZATION = None
LORA = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": "all-linear",
    "use_rslora": False,
    "use_dora": False,
    "task_type": "CAUSAL_LM",
}
# SFTConfig arguments with an eval split held out (output_dir and use_cpu are set when the script runs).
SFT = {
    "learning_rate": 0.0002,
    "num_train_epochs": 3.0,
    "max_steps": -1,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.03,
    "weight_decay": 0.0,
    "optim": "adamw_torch",
    "activation_checkpointing": False,
    "train_sampling_strategy": "group_by_length",
    "bf16": False,
    "fp16": False,
    "seed": 42,
    "logging_steps": 1,
    "save_total_limit": 2,
    "max_length": 512,
    "logging_first_step": True,
    "packing": False,
    "include_num_input_tokens_seen": "non_padding",
    "report_to": "none",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
    "eval_strategy": "epoch",
    "eval_steps": None,
    "save_strategy": "steps",
    "save_steps": 50,
    "load_best_model_at_end": False,
    "metric_for_best_model": None,
    "greater_is_better": None,
}
# What changes in SFT when nothing is held out for evaluation.
SFT_WITHOUT_EVAL = {
    "eval_strategy": "no",
}
# The chat template for a tokenizer that has none.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# ---- end of settings ------------------------------------------------------------------------------


# ---- data: every format becomes TRL conversational prompt/completion rows ----------------------
def read_rows(path: Path, encoding: str = ENCODING, delimiter: str = DELIMITER) -> list[dict]:
    """The rows of a .jsonl, .json, .csv, .tsv, .parquet, .xlsx, .txt or .md file, as dicts (a text file's
    paragraphs as {"text": ...} rows); text is decoded in `encoding` and CSV cells split at `delimiter`, "auto"
    detecting each as the studio does."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    import pandas as pd

    if suffix == ".xlsx":
        return pd.read_excel(path, dtype=str, keep_default_na=False).to_dict(orient="records")
    if suffix not in (".jsonl", ".json", ".csv", ".tsv", *SUFFIXES):
        raise SystemExit(f"{path}: unsupported file type {suffix!r}")
    try:
        text, used = decode(path.read_bytes(), encoding)
    except UnknownEncoding as exc:
        raise SystemExit(f"{path}: not text in the encoding {encoding!r} ({exc}); set ENCODING") from None
    text = text.removeprefix("\ufeff")
    print(f"{path}: read as {used}")
    if suffix == ".jsonl":
        def skip(number: int, detail: str) -> None:
            """Tell of a line that is not JSON (it is left out, as in the studio)."""
            print(f"{path}: line {number} is not valid JSON ({detail}); skipped", file=sys.stderr)

        return [row for _number, row in jsonl_rows(text, skip)]
    if suffix == ".json":
        return json_document_rows(text)
    if suffix in SUFFIXES:
        return [{"text": part} for _line, part in paragraphs(text)]
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sniff_delimiter(text, suffix, delimiter), dtype=str,
                            keep_default_na=False)
    except pd.errors.EmptyDataError:
        return []
    return frame.to_dict(orient="records")


def load_examples(path: str, tokenizer, encoding: str = ENCODING, delimiter: str = DELIMITER) -> list[dict]:
    """The usable examples of a dataset file read as `read_rows` does, in file order (rows that cannot be used are
    left out, as in the studio); a plain-text file's paragraphs are packed into chunks of up to max_length of
    `tokenizer`'s tokens."""
    rows = read_rows(Path(path), encoding, delimiter)
    if Path(path).suffix.lower() in SUFFIXES:
        rows = [{"text": text} for _line, text in chunk([(1, row["text"]) for row in rows], tokenizer,
                                                         SFT["max_length"])]
    fmt, columns = detect_columns(list(dict.fromkeys(key for row in rows[:200] for key in row)))
    if fmt is None:
        raise SystemExit(f"{path}: could not recognise the format from the column names")
    if fmt == "preference" and not SFT_ON_CHOSEN:
        raise SystemExit(f"{path}: preference pairs (chosen/rejected); set SFT_ON_CHOSEN = True to train on the "
                         "chosen answers, or train them with preference tuning (DPO)")
    examples, skipped = [], 0
    for row in rows:
        try:
            examples.append(to_example(rename_columns(row, columns), fmt))
        except BadRow:
            skipped += 1
    if skipped:
        print(f"{path}: {skipped} row(s) left out because they cannot be used", file=sys.stderr)
    if not examples:
        raise SystemExit(f"{path}: no usable rows")
    print(f"{path}: {len(examples)} examples ({fmt})")
    return examples


def split(examples: list[dict]):
    """Train and eval sets (eval None when nothing is held out), shuffled with SEED."""
    dataset = examples_dataset(examples)
    held_out = held_out_count(len(examples), EVAL_SPLIT, EVAL_ROWS)
    if held_out == 0:
        return dataset, None
    if len(examples) - held_out < 1:
        raise SystemExit(f"only {len(examples)} usable row(s): too few to hold out an eval split")
    parts = dataset.train_test_split(test_size=held_out, seed=SEED)
    return parts["train"], parts["test"]


def mix_in(train, extra: list[dict]):
    """`train` plus round(len(train) * MIX_RATIO) rows drawn from `extra`, shuffled together."""
    from datasets import concatenate_datasets

    count = mix_count(len(train), len(extra), MIX_RATIO)
    if count == 0:
        return train
    extra_set = examples_dataset(random.Random(SEED).sample(extra, count), with_tools="tools" in train.column_names)
    if set(extra_set.column_names) != set(train.column_names):
        raise SystemExit("the second dataset has a different shape (chat rows vs plain text)")
    return concatenate_datasets([train, extra_set.cast(train.features)]).shuffle(seed=SEED)


# ---- model and training settings ---------------------------------------------------------------
def model_kwargs(cuda: bool, bf16_supported: bool) -> dict:
    """Keyword arguments for the base model's from_pretrained."""
    import torch

    dtype = resolve_dtype(DTYPE, cuda, bf16_supported)
    kwargs = {"dtype": getattr(torch, dtype)}
    if QUANTIZATION is not None:
        from transformers import BitsAndBytesConfig

        compute = {"bnb_4bit_compute_dtype": getattr(torch, dtype)} if QUANTIZATION.get("load_in_4bit") else {}
        kwargs["quantization_config"] = BitsAndBytesConfig(**QUANTIZATION, **compute)
        if cuda:
            kwargs["device_map"] = {"": 0}
    return kwargs


def build_configs(checkpoint_dir: Path, cuda: bool, has_eval: bool):
    """The SFTConfig and LoraConfig of this run (nothing is loaded)."""
    from peft import LoraConfig
    from trl import SFTConfig

    settings = SFT if has_eval else {**SFT, **SFT_WITHOUT_EVAL}
    return SFTConfig(output_dir=str(checkpoint_dir), use_cpu=not cuda, **settings), LoraConfig(**LORA)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--model, --dataset and --output, defaulting to the settings above."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="a local model folder or hub id (default: %(default)s)")
    parser.add_argument("--dataset", default=DATASET, help="the dataset file (default: %(default)s)")
    parser.add_argument("--output", default=OUTPUT_DIR, help="where the adapter goes (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Read and split the data, load the model, train the LoRA adapter and save it with the tokenizer."""
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, EarlyStoppingCallback

    tokenizer = ready_tokenizer(AutoTokenizer.from_pretrained(args.model))
    train, evaluation = split(load_examples(args.dataset, tokenizer))
    if MIX_DATASET and MIX_RATIO > 0:
        train = mix_in(train, load_examples(MIX_DATASET, tokenizer, AUTO, AUTO))  # detected, as the studio does
    cuda = torch.cuda.is_available()
    bf16_supported = cuda and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(args.model, **model_kwargs(cuda, bf16_supported))
    output = Path(args.output)
    sft, lora = build_configs(output / "checkpoints", cuda, has_eval=evaluation is not None)
    callbacks = []
    if EARLY_STOPPING_PATIENCE > 0 and sft.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=EARLY_STOPPING_PATIENCE))
    # On a CPU the studio trains with the model's own full-logits loss (faster there than TRL's fused head).
    trainer = trainer_class(cuda)(model=model, args=sft, train_dataset=train, eval_dataset=evaluation,
                                  processing_class=tokenizer, peft_config=lora, callbacks=callbacks)
    trainer.train()
    trainer.save_model(str(output / "adapter"))
    tokenizer.save_pretrained(str(output / "adapter"))
    print(f"Adapter saved in {output / 'adapter'}")


if __name__ == "__main__":
    main()
