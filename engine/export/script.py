"""Export a run as a standalone Python script: plain TRL + PEFT + transformers + datasets.

The script a programmer colleague would run to reproduce the studio's run without the studio: it
reads the dataset file, turns every row into TRL's conversational prompt/completion form exactly as
`engine.data` does (format and columns detected from the column names with `engine.mapping`'s
tables, which are copied into the script), makes the same train/eval split and mix, and builds the
same LoraConfig, BitsAndBytesConfig, model kwargs and SFTConfig as `engine.build`. It never imports
the studio. Its `build_configs()` and data helpers can be exec'd without training (`main()` runs
only under `__main__`), which is how the tests hold it to `engine.build`.
"""
from __future__ import annotations

from pathlib import Path

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.data import mapping
from engine.data.reading import ROLE_ALIASES
from engine.models.loader import FALLBACK_CHAT_TEMPLATE, is_bundled

SCRIPT_NAME = "train_lora.py"


def python_script(config: TrainConfig, output_dir: str = "output") -> str:
    """The script's source text for `config`; the adapter goes to `output_dir`/adapter."""
    model, model_note = _model_source(config.model_name_or_path)
    values = {
        "model_note": model_note,
        "model": repr(model),
        "dataset": repr(_local_path(config.dataset_path)),
        "output_dir": repr(str(output_dir)),
        "mix_dataset": repr(_local_path(config.mix_dataset_path)),
        "mix_ratio": repr(config.mix_ratio),
        "eval_split": repr(config.eval_split),
        "eval_rows": repr(config.eval_rows),
        "seed": repr(config.seed),
        "patience": repr(config.early_stopping_patience),
        "format_fields": _table(mapping.FORMAT_FIELDS),
        "synonyms": _table(mapping.SYNONYMS),
        "detection_order": repr(mapping.DETECTION_ORDER),
        "list_fields": repr(sorted(mapping.LIST_FIELDS)),
        "role_aliases": _table(ROLE_ALIASES),
        "chat_template": repr(FALLBACK_CHAT_TEMPLATE),
        "model_kwargs": _model_kwargs_body(config),
        "sft_kwargs": _sft_kwargs(config),
        "lora_kwargs": _lora_kwargs(config),
        "script_name": SCRIPT_NAME,
        "title": f"LoRA fine-tuning of {model} on {Path(config.dataset_path).name or 'a dataset'}",
    }
    return TEMPLATE.format(**values)


def _model_source(name: str) -> tuple[str, str]:
    """The model id or path the script loads, and the comment above it."""
    if is_bundled(name):
        return BUNDLED_MODEL_ID, (
            "# The studio's bundled model. Its id is also a Hugging Face hub id, so this downloads it on the\n"
            "# first run; offline, pass --model with a local folder (config.json + safetensors + tokenizer),\n"
            "# e.g. the studio's converted copy under ~/.cache/finetune-studio/models/.")
    if name.lower().endswith(".gguf"):
        return _local_path(name), (
            "# A .gguf file: transformers cannot train a GGUF checkpoint directly. Pass --model with a\n"
            "# converted folder (the studio keeps one under ~/.cache/finetune-studio/models/).")
    if Path(name).expanduser().exists():
        return _local_path(name), "# A local model folder; --model points elsewhere."
    return name, "# A Hugging Face hub id (downloaded on the first run); --model points at a local folder instead."


def _local_path(path: str) -> str:
    """An existing local path made absolute, so the script runs from any folder; anything else as is."""
    if path and Path(path).expanduser().exists():
        return str(Path(path).expanduser().resolve())
    return path


def _table(value: dict) -> str:
    """A dict as source text, one entry a line."""
    return "{\n" + "".join(f"    {key!r}: {item!r},\n" for key, item in value.items()) + "}"


def _kwargs(pairs: list[tuple[str, str]], indent: str) -> str:
    return "".join(f"{indent}{name}={value},\n" for name, value in pairs)


def _model_kwargs_body(config: TrainConfig) -> str:
    """The body of the script's model_kwargs(): `engine.build.model_kwargs` with the values filled in."""
    quantized = config.load_in_4bit or config.load_in_8bit
    lines = ["    import torch"]
    if quantized:
        lines.append("    from transformers import BitsAndBytesConfig")
    lines.append("")
    if config.dtype != "auto":
        lines.append(f"    dtype = {config.dtype!r}")
    else:
        lines.append('    dtype = ("bfloat16" if bf16_supported else "float16") if cuda else "float32"')
    lines.append('    kwargs = {"dtype": getattr(torch, dtype)}')
    if config.load_in_8bit:
        lines.append('    kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)')
    elif config.load_in_4bit:
        lines += ['    kwargs["quantization_config"] = BitsAndBytesConfig(',
                  "        load_in_4bit=True,",
                  f"        bnb_4bit_quant_type={config.bnb_4bit_quant_type!r},",
                  f"        bnb_4bit_use_double_quant={config.use_bnb_nested_quant!r},",
                  "        bnb_4bit_compute_dtype=getattr(torch, dtype),",
                  "    )"]
    if quantized:
        lines += ["    if cuda:", '        kwargs["device_map"] = {"": 0}']
    lines.append("    return kwargs")
    return "\n".join(lines)


def _sft_kwargs(config: TrainConfig) -> str:
    """The SFTConfig keyword arguments of `engine.build.sft_config`, as source text."""
    c = config
    pairs = [
        ("output_dir", "str(checkpoint_dir)"),
        ("learning_rate", repr(c.learning_rate)),
        ("num_train_epochs", repr(c.num_train_epochs)),
        ("max_steps", repr(c.max_steps)),
        ("per_device_train_batch_size", repr(c.per_device_train_batch_size)),
        ("per_device_eval_batch_size", repr(c.per_device_train_batch_size)),
        ("gradient_accumulation_steps", repr(c.gradient_accumulation_steps)),
        ("lr_scheduler_type", repr(c.lr_scheduler_type)),
        ("warmup_steps", repr(c.warmup_steps)),
        ("weight_decay", repr(c.weight_decay)),
        ("optim", repr(c.optim)),
        ("gradient_checkpointing", repr(c.gradient_checkpointing)),
        ("train_sampling_strategy", repr(c.train_sampling_strategy)),
        ("bf16", repr(c.bf16)),
        ("fp16", repr(c.fp16)),
        ("seed", repr(c.seed)),
        ("logging_steps", repr(c.logging_steps)),
        ("logging_first_step", "True"),
        ("eval_strategy", "eval_strategy"),
        ("eval_steps", f'{c.eval_steps!r} if eval_strategy == "steps" else None'),
        ("save_strategy", "save_strategy"),
        ("save_steps", "save_steps"),
        ("save_total_limit", repr(c.save_total_limit)),
        ("load_best_model_at_end", "keep_best"),
        ("metric_for_best_model", '"eval_loss" if keep_best else None'),
        ("greater_is_better", "False if keep_best else None"),
        ("max_length", repr(c.max_length)),
        ("packing", "False"),
        ("include_num_input_tokens_seen", '"non_padding"'),
        ("report_to", '"none"'),
        ("use_cpu", "not cuda"),
        ("disable_tqdm", "True"),
        ("dataloader_num_workers", "0"),
    ]
    wants_best = c.load_best_model_at_end or c.early_stopping_patience > 0
    return (f"    eval_strategy = {c.eval_strategy!r} if has_eval else \"no\"\n"
            f"    keep_best = eval_strategy != \"no\" and {wants_best!r}  # keeping the best needs a save per eval\n"
            "    save_strategy = eval_strategy if keep_best else \"steps\"\n"
            f"    save_steps = {c.eval_steps!r} if keep_best and eval_strategy == \"steps\" else {c.save_steps!r}\n"
            "    sft = SFTConfig(\n" + _kwargs(pairs, " " * 8) + "    )")


def _lora_kwargs(config: TrainConfig) -> str:
    modules = list(config.lora_target_modules)
    pairs = [
        ("r", repr(config.lora_r)),
        ("lora_alpha", repr(config.lora_alpha)),
        ("lora_dropout", repr(config.lora_dropout)),
        ("target_modules", '"all-linear"' if modules == ["all-linear"] else repr(modules)),
        ("use_rslora", repr(config.use_rslora)),
        ("use_dora", repr(config.use_dora)),
        ("task_type", '"CAUSAL_LM"'),
    ]
    return "    lora = LoraConfig(\n" + _kwargs(pairs, " " * 8) + "    )"


TEMPLATE = '''#!/usr/bin/env python3
"""{title}.

Exported from the fine-tuning studio: the same data conversion, split and settings, with plain
TRL + PEFT + transformers + datasets.

    pip install torch transformers datasets peft trl accelerate   # bitsandbytes too for 4/8-bit
    python {script_name} [--model PATH] [--dataset FILE] [--output DIR]

The adapter is written to OUTPUT/adapter (with the tokenizer), checkpoints to OUTPUT/checkpoints.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

{model_note}
MODEL = {model}
DATASET = {dataset}
OUTPUT_DIR = {output_dir}
MIX_DATASET = {mix_dataset}  # a second dataset mixed into the training rows (empty: none)
MIX_RATIO = {mix_ratio}
EVAL_SPLIT = {eval_split}  # share of rows held out for evaluation (EVAL_ROWS > 0 holds out that many)
EVAL_ROWS = {eval_rows}
SEED = {seed}
EARLY_STOPPING_PATIENCE = {patience}  # stop after this many evaluations without a better eval loss (0: off)

# ---- data: every format becomes TRL conversational prompt/completion rows ----------------------
# Canonical fields of each format (name, required), alternative column names, detection order.
FORMAT_FIELDS = {format_fields}
SYNONYMS = {synonyms}
DETECTION_ORDER = {detection_order}
LIST_FIELDS = {list_fields}
ROLE_ALIASES = {role_aliases}
FALLBACK_CHAT_TEMPLATE = {chat_template}


class BadRow(ValueError):
    """A row that cannot become a training example (it is left out, as in the studio)."""


def read_rows(path):
    """The rows of a .jsonl, .json, .csv, .tsv, .parquet or .xlsx file, as dicts."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                print(f"{{path}}: line {{number}} is not valid JSON ({{exc.msg}}); skipped", file=sys.stderr)
                continue
            rows.append(row if isinstance(row, dict) else {{"text": row}})
        return rows
    if suffix == ".json":
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text) if text.strip() else []
        if isinstance(data, dict):
            if propose_mapping(list(data))[0] is None:
                data = next((v for v in data.values() if isinstance(v, list)), [data])
            else:
                data = [data]
        return [row if isinstance(row, dict) else {{"text": row}} for row in data]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    import pandas as pd

    if suffix == ".xlsx":
        return pd.read_excel(path, dtype=str, keep_default_na=False).to_dict(orient="records")
    if suffix in (".csv", ".tsv"):
        try:
            frame = pd.read_csv(path, sep="\\t" if suffix == ".tsv" else ",", dtype=str,
                                keep_default_na=False, encoding="utf-8-sig")
        except pd.errors.EmptyDataError:
            return []
        return frame.to_dict(orient="records")
    raise SystemExit(f"{{path}}: unsupported file type {{suffix!r}}")


def propose_mapping(columns):
    """(format, {{canonical field: column}}) from the column names; (None, {{}}) if no format fits."""
    lowered = {{c.strip().lower(): c for c in columns}}
    for fmt in DETECTION_ORDER:
        found = {{}}
        for name, _required in FORMAT_FIELDS[fmt]:
            for candidate in (name,) + tuple(SYNONYMS.get(name, ())):
                if candidate in lowered:
                    found[name] = lowered[candidate]
                    break
        if all(name in found for name, required in FORMAT_FIELDS[fmt] if required):
            return fmt, found
    return None, {{}}


def apply_mapping(row, columns):
    """The row with canonical field names; JSON text in list fields (CSV/Excel cells) is parsed."""
    out = {{}}
    for canonical, column in columns.items():
        value = row.get(column)
        if canonical in LIST_FIELDS and isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[canonical] = value
    return out


def text(row, name, required=True):
    value = row.get(name)
    if value is None or (isinstance(value, float) and value != value):
        value = ""
    if not isinstance(value, str):
        raise BadRow(f"{{name}} is not text")
    if required and not value.strip():
        raise BadRow(f"{{name}} is missing or empty")
    return value


def to_example(row, fmt):
    """One row (canonical field names) as a TRL example; raises BadRow."""
    if fmt == "text":
        return {{"text": text(row, "text")}}
    if fmt == "prompt_completion":
        return {{"prompt": [{{"role": "user", "content": text(row, "prompt")}}],
                "completion": [{{"role": "assistant", "content": text(row, "completion")}}]}}
    if fmt == "alpaca":
        instruction, extra, answer = text(row, "instruction"), text(row, "input", False), text(row, "output")
        messages = []
        system = text(row, "system", False)
        if system.strip():
            messages.append({{"role": "system", "content": system}})
        history = row.get("history") or []
        if not isinstance(history, list):
            raise BadRow("history is not a list")
        for pair in history:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise BadRow("history is not a list of [question, answer] pairs")
            messages += [{{"role": "user", "content": pair[0]}}, {{"role": "assistant", "content": pair[1]}}]
        question = f"{{instruction}}\\n\\n{{extra}}" if extra.strip() else instruction
        messages.append({{"role": "user", "content": question}})
        return {{"prompt": messages, "completion": [{{"role": "assistant", "content": answer}}]}}
    turns = row.get("conversations" if fmt == "sharegpt" else "messages")
    if not isinstance(turns, list) or not turns:
        raise BadRow("no turns")
    messages = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise BadRow("a turn is not an object with role and content")
        raw_role = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        role = ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
        if role is None:
            raise BadRow(f"unknown role {{raw_role!r}}")
        if not isinstance(content, str) or not content.strip():
            raise BadRow("a turn has no content")
        messages.append({{"role": role, "content": content}})
    if not any(m["role"] == "assistant" for m in messages) or messages[-1]["role"] != "assistant":
        raise BadRow("the conversation does not end with an assistant answer")
    start = 1 if messages[0]["role"] == "system" else 0
    for index, message in enumerate(messages[start:]):
        if message["role"] != ("user" if index % 2 == 0 else "assistant"):
            raise BadRow("turns do not alternate user and assistant")
    system = row.get("system")
    if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
        messages.insert(0, {{"role": "system", "content": system}})
    return {{"prompt": messages[:-1], "completion": messages[-1:]}}


def load_examples(path):
    """The usable examples of a dataset file, in file order (rows that cannot be used are left out)."""
    rows = read_rows(path)
    fmt, columns = propose_mapping(list(dict.fromkeys(key for row in rows[:200] for key in row)))
    if fmt is None:
        raise SystemExit(f"{{path}}: could not recognise the format from the column names")
    examples, skipped = [], 0
    for row in rows:
        try:
            examples.append(to_example(apply_mapping(row, columns), fmt))
        except BadRow:
            skipped += 1
    if skipped:
        print(f"{{path}}: {{skipped}} row(s) left out because they cannot be used", file=sys.stderr)
    if not examples:
        raise SystemExit(f"{{path}}: no usable rows")
    print(f"{{path}}: {{len(examples)}} examples ({{fmt}})")
    return examples


def split(examples):
    """Train and eval sets (eval None when nothing is held out), shuffled with SEED."""
    from datasets import Dataset

    dataset = Dataset.from_list(examples)
    held_out = EVAL_ROWS if EVAL_ROWS > 0 else int(round(len(examples) * EVAL_SPLIT))
    if held_out == 0:
        return dataset, None
    if len(examples) - held_out < 1:
        raise SystemExit(f"only {{len(examples)}} usable row(s): too few to hold out an eval split")
    parts = dataset.train_test_split(test_size=held_out, seed=SEED)
    return parts["train"], parts["test"]


def mix_in(train, extra):
    """`train` plus round(len(train) * MIX_RATIO) rows drawn from `extra`, shuffled together."""
    from datasets import Dataset, concatenate_datasets

    count = min(len(extra), int(round(len(train) * MIX_RATIO)))
    if count == 0:
        return train
    extra_set = Dataset.from_list(random.Random(SEED).sample(extra, count))
    if set(extra_set.column_names) != set(train.column_names):
        raise SystemExit("the second dataset has a different shape (chat rows vs plain text)")
    return concatenate_datasets([train, extra_set.cast(train.features)]).shuffle(seed=SEED)


# ---- model and training settings ---------------------------------------------------------------
def model_kwargs(cuda, bf16_supported):
    """Keyword arguments for the base model's from_pretrained."""
{model_kwargs}


def build_configs(checkpoint_dir, cuda, has_eval):
    """The SFTConfig and LoraConfig of this run (nothing is loaded)."""
    from peft import LoraConfig
    from trl import SFTConfig

{sft_kwargs}
{lora_kwargs}
    return sft, lora


def load_tokenizer(model_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not tokenizer.chat_template:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="a local model folder or hub id (default: %(default)s)")
    parser.add_argument("--dataset", default=DATASET, help="the dataset file (default: %(default)s)")
    parser.add_argument("--output", default=OUTPUT_DIR, help="where the adapter goes (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    train, evaluation = split(load_examples(args.dataset))
    if MIX_DATASET and MIX_RATIO > 0:
        train = mix_in(train, load_examples(MIX_DATASET))
    cuda = torch.cuda.is_available()
    bf16_supported = cuda and torch.cuda.is_bf16_supported()
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, **model_kwargs(cuda, bf16_supported))
    output = Path(args.output)
    sft, lora = build_configs(output / "checkpoints", cuda, has_eval=evaluation is not None)
    callbacks = []
    if EARLY_STOPPING_PATIENCE > 0 and sft.load_best_model_at_end:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=EARLY_STOPPING_PATIENCE))
    trainer = SFTTrainer(model=model, args=sft, train_dataset=train, eval_dataset=evaluation,
                         processing_class=tokenizer, peft_config=lora, callbacks=callbacks)
    trainer.train()
    trainer.save_model(str(output / "adapter"))
    tokenizer.save_pretrained(str(output / "adapter"))
    print(f"Adapter saved in {{output / 'adapter'}}")


if __name__ == "__main__":
    main()
'''
