"""Training throughput, measured side by side in one run on the bundled model (CPU or GPU).

1. The studio's engine against a bare TRL script with the same config: real tokens/s (goal: the
   engine costs under 3%).
2. The studio's default settings against TRL's defaults and against the seed guide's recipe (every
   row padded to max_length=512, plain transformers Trainer), on instruction rows with a realistic
   spread of lengths (many of 100-400 tokens, some over 512): real (non-padding) tokens per second
   (goal: at least 1.5x the pad-to-512 recipe).
3. How long an event takes from the trainer's on_log to being on the page (goal: under 1 s).

Each training measurement runs BENCH_STEPS optimizer steps after one warm-up step.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

from transformers import TrainerCallback

from engine import build, data, models, preview
from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.presets import SAMPLE_DATASET

STEPS = int(os.environ.get("BENCH_STEPS", "8"))
BATCH = 4
MAX_LENGTH = 512


def spread_dataset(folder: Path, rows: int = 96, seed: int = 0) -> Path:
    """Alpaca rows whose answers are the sample's answers repeated to 100-400 tokens, some over 512."""
    rng = random.Random(seed)
    sample = [json.loads(line) for line in SAMPLE_DATASET.read_text(encoding="utf-8").splitlines()]
    out = []
    for i in range(rows):
        row = rng.choice(sample)
        target_words = rng.choice([60, 90, 120, 160, 200, 240]) if i % 8 else rng.choice([420, 520])
        words = (row["output"] + " ") * 40
        answer = " ".join(words.split()[:target_words]) if row["output"].startswith("Thanks") \
            else words[: target_words * 2]
        out.append({"instruction": row["instruction"], "input": row["input"], "output": answer})
    path = folder / "spread.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    return path


def _config(dataset: Path, **changes) -> TrainConfig:
    base = TrainConfig(dataset_path=str(dataset), max_steps=STEPS + 1, per_device_train_batch_size=BATCH,
                       max_length=MAX_LENGTH, eval_split=0.0, eval_strategy="no", save_steps=10_000,
                       logging_steps=1, learning_rate=2e-4)
    return base.replace(**changes)


class Throughput(TrainerCallback):
    """Counts non-padding tokens and time after the first (warm-up) step."""

    def __init__(self) -> None:
        self.start = self.end = None
        self.tokens0 = self.tokens = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            self.start, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen
        self.tokens, self.end = state.num_input_tokens_seen, time.perf_counter()

    def rate(self) -> float:
        return (self.tokens - self.tokens0) / (self.end - self.start)


def _bare_trl(config: TrainConfig, folder: Path, sft_overrides: dict | None = None) -> float:
    """TRL's SFTTrainer driven directly (no studio engine): real tokens/s."""
    from trl import SFTConfig, SFTTrainer

    examples = data.load_report(config.dataset_path).examples
    train, _ = data.split_examples(examples, 0.0, config.seed)
    model_folder = models.resolve_model(config.model_name_or_path)
    model = models.load_model(model_folder, build.model_kwargs(config, False, False))
    if sft_overrides is None:
        args = build.sft_config(config, folder, cuda=False, has_eval=False)
    else:  # TRL's own defaults, with only what the comparison needs
        args = SFTConfig(output_dir=str(folder), max_steps=config.max_steps, per_device_train_batch_size=BATCH,
                         max_length=MAX_LENGTH, learning_rate=config.learning_rate, report_to="none",
                         use_cpu=True, save_strategy="no", include_num_input_tokens_seen="non_padding",
                         disable_tqdm=True, **sft_overrides)
    meter = Throughput()
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=models.load_tokenizer(model_folder),
                         peft_config=build.lora_config(config), callbacks=[meter])
    trainer.train()
    return meter.rate()


def _engine(config: TrainConfig, folder: Path) -> float:
    """The studio's runner (event log, callback, thread): real tokens/s from its own events."""
    from engine.studio import Studio

    studio = Studio(folder / "runs")
    run_id = studio.start(config)
    studio.runner.wait()
    logs = [e for e in studio.events_since(run_id, 0)[0] if e.kind == "log" and "tokens_seen" in e.data]
    first, last = logs[0], logs[-1]  # step 1 is the warm-up
    return (last.data["tokens_seen"] - first.data["tokens_seen"]) / (last.time - first.time)


def _padded_recipe(config: TrainConfig, folder: Path) -> float:
    """The seed guide's recipe: every row padded to max_length, plain transformers Trainer."""
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    model_folder = models.resolve_model(config.model_name_or_path)
    tokenizer = models.load_tokenizer(model_folder)
    rows = []
    for example in data.load_report(config.dataset_path).examples:
        view = preview.training_view(example, tokenizer, MAX_LENGTH)
        ids = view.input_ids[:MAX_LENGTH]
        labels = [i if k == preview.TRAINED else -100 for i, k in zip(ids, view.kinds)]
        pad = MAX_LENGTH - len(ids)
        rows.append({"input_ids": ids + [tokenizer.pad_token_id] * pad, "attention_mask": [1] * len(ids) + [0] * pad,
                     "labels": labels + [-100] * pad})
    from datasets import Dataset

    model = get_peft_model(models.load_model(model_folder, build.model_kwargs(config, False, False)),
                           build.lora_config(config))
    meter = Throughput()
    args = TrainingArguments(output_dir=str(folder), max_steps=config.max_steps, per_device_train_batch_size=BATCH,
                             learning_rate=config.learning_rate, report_to="none", use_cpu=True, save_strategy="no",
                             include_num_input_tokens_seen="non_padding", disable_tqdm=True, logging_steps=1)
    Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=default_data_collator,
            callbacks=[meter]).train()
    return meter.rate()


def event_latency(polls: int = 40) -> tuple[float, float]:
    """Seconds from on_log to the event being in the page's poll result (mean, max), through the UI's
    own poll handler at its own interval."""
    from types import SimpleNamespace

    from engine.callbacks import EventCallback
    from engine.events import EventLog
    from ui.training_tab import POLL_SECONDS

    log, stop = EventLog(), threading.Event()
    callback = EventCallback(log, stop)
    delays, seen = [], 0
    state = SimpleNamespace(global_step=0, epoch=0.0, max_steps=polls, num_input_tokens_seen=0)

    def produce():
        for step in range(1, polls + 1):
            time.sleep(random.uniform(0.05, 0.6))
            state.global_step, state.num_input_tokens_seen = step, step * 100
            callback.on_log(None, state, SimpleNamespace(), logs={"loss": 1.0 / step})

    producer = threading.Thread(target=produce)
    producer.start()
    while producer.is_alive() or seen < len(log):
        time.sleep(POLL_SECONDS)
        events, seen = log.since(seen)
        now = time.time()
        delays += [now - e.time for e in events]
    producer.join()
    return sum(delays) / len(delays), max(delays)


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models.resolve_model(BUNDLED_MODEL_ID)
        sample = _config(SAMPLE_DATASET, max_length=256)
        print(f"[training] {STEPS} measured steps, batch {BATCH}, bundled model, CPU threads {os.cpu_count()}")
        engine_rate = _engine(sample, folder / "engine")
        bare_rate = _bare_trl(sample, folder / "bare")
        print(f"[training] engine {engine_rate:.1f} tok/s vs bare TRL {bare_rate:.1f} tok/s: "
              f"engine cost {100 * (1 - engine_rate / bare_rate):+.1f}% (goal < 3%)")

        spread = spread_dataset(folder)
        lengths = sorted(token_lengths(spread))
        print(f"[training] spread set: {len(lengths)} rows, median {lengths[len(lengths) // 2]} tokens, "
              f"{sum(n > MAX_LENGTH for n in lengths)} over {MAX_LENGTH}")
        studio_default = _bare_trl(_config(spread), folder / "default")
        trl_default = _bare_trl(_config(spread), folder / "trl", sft_overrides={})
        padded = _padded_recipe(_config(spread), folder / "padded")
        print(f"[training] real tokens/s: studio defaults {studio_default:.1f}, TRL defaults {trl_default:.1f}, "
              f"pad-to-512 recipe {padded:.1f}")
        print(f"[training] studio defaults / pad-to-512 = {studio_default / padded:.2f}x (goal >= 1.5x); "
              f"/ TRL defaults = {studio_default / trl_default:.2f}x")
    mean, worst = event_latency()
    print(f"[training] on_log -> page: mean {mean:.2f} s, max {worst:.2f} s (goal < 1 s)")


def token_lengths(path: Path) -> list[int]:
    """Each row's length in tokens as training sees it."""
    tokenizer = models.load_tokenizer(models.resolve_model(BUNDLED_MODEL_ID))
    return [len(preview.training_view(e, tokenizer, 10_000).input_ids) for e in data.load_report(path).examples]


if __name__ == "__main__":
    main()
