"""Training throughput, measured side by side in one run on the bundled model (CPU or GPU).

1. The studio's engine (runner thread, event log, callback, a poller reading events like the Training
   tab) against a bare TRL script with the same config, alternated BENCH_ROUNDS times: the engine's
   cost is the median over steps of the per-step time ratio (every run trains the same batches in the
   same order, so step i is the same work in each; goal: under 3%).
2. The studio's default settings against TRL's defaults and against the seed guide's recipe (every
   row padded to max_length=512, plain transformers Trainer), on instruction rows with a realistic
   spread of lengths (nine in ten of 100-400 tokens, one in ten over 512): real (non-padding) tokens per second
   (goal: at least 1.5x the pad-to-512 recipe). The studio's length-grouped batches are timed over a
   whole epoch of BENCH_SPREAD_ROWS rows; the others draw random batches and are timed over
   BENCH_SPREAD_STEPS steps (TRL's defaults, bf16 autocast and gradient checkpointing, take minutes a
   step on a CPU: they stop after BENCH_SPREAD_BUDGET seconds once one step after the warm-up is timed).
3. How long an event takes from the trainer's on_log to being read by the Training tab's poll, measured
   during the engine's runs (goal: under 1 s).

Every measurement runs in its own process.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.data import preview, reading, splits
from engine.models import loader
from engine.presets import SAMPLE_DATASET
from engine.training import factories

STEPS = int(os.environ.get("BENCH_STEPS", "8"))
SPREAD_ROWS = int(os.environ.get("BENCH_SPREAD_ROWS", "48"))
SPREAD_STEPS = int(os.environ.get("BENCH_SPREAD_STEPS", "3"))
SPREAD_BUDGET = float(os.environ.get("BENCH_SPREAD_BUDGET", "300"))  # seconds; TRL's defaults on a CPU are slow
BATCH = 4
MAX_LENGTH = 512


def spread_dataset(folder: Path, rows: int = SPREAD_ROWS, seed: int = 0) -> Path:
    """Alpaca rows of the sample's questions whose answers are the sample's answers repeated and cut so
    that nine rows in ten are 100-400 tokens long in all and one in ten 520-700 (over max_length)."""
    rng = random.Random(seed)
    tokenizer = loader.load_tokenizer(loader.resolve_model(BUNDLED_MODEL_ID))
    sample = [json.loads(line) for line in SAMPLE_DATASET.read_text(encoding="utf-8").splitlines()]
    out = []
    for i in range(rows):
        row = rng.choice(sample)
        target = rng.randint(520, 700) if i % 10 == 9 else rng.randint(100, 400)
        prompt = len(preview.training_view({"prompt": [{"role": "user", "content": row["instruction"]}],
                                            "completion": [{"role": "assistant", "content": "."}]},
                                           tokenizer, 10_000).input_ids)
        answer_ids = tokenizer.encode((row["output"] + " ") * 60, add_special_tokens=False)[:max(target - prompt, 8)]
        out.append({"instruction": row["instruction"], "input": "", "output": tokenizer.decode(answer_ids).strip()})
    path = folder / "spread.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    return path


def _config(dataset: Path, **changes) -> TrainConfig:
    base = TrainConfig(dataset_path=str(dataset), max_steps=STEPS + 1, per_device_train_batch_size=BATCH,
                       max_length=MAX_LENGTH, eval_split=0.0, eval_strategy="no", save_steps=10_000,
                       logging_steps=1, learning_rate=2e-4)
    return base.replace(**changes)


class Throughput(TrainerCallback):
    """Records when each optimizer step ends and the non-padding tokens seen by then."""

    def __init__(self, budget_seconds: float | None = None) -> None:
        self.begin = 0.0
        self.budget = budget_seconds  # stop once this is spent and one step after the warm-up is timed
        self.times: list[float] = []
        self.tokens: list[int] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())
        self.tokens.append(state.num_input_tokens_seen)
        if self.budget is not None and len(self.times) >= 2 and self.times[-1] - self.begin > self.budget:
            control.should_training_stop = True

    def result(self) -> dict:
        return _result(self.times, self.tokens)

    def epoch_rate(self) -> dict:
        """Real tokens/s over the whole run, its first step included."""
        return {"rate": self.tokens[-1] / (self.times[-1] - self.begin)}


def _result(times: list[float], tokens: list[int]) -> dict:
    """Real tokens/s after the first (warm-up) step, and each later step's seconds."""
    return {"rate": (tokens[-1] - tokens[0]) / (times[-1] - times[0]),
            "steps": [later - earlier for earlier, later in zip(times, times[1:])]}


def _bare_trl(config: TrainConfig, folder: Path, sft_overrides: dict | None = None, whole_run: bool = False,
              budget_seconds: float | None = None) -> dict:
    """TRL's SFTTrainer driven directly (no studio engine): real tokens/s."""
    from trl import SFTConfig, SFTTrainer

    examples = reading.load_report(config.dataset_path).examples
    train, _ = splits.split_examples(examples, 0.0, config.seed)
    model_folder = loader.resolve_model(config.model_name_or_path)
    model = loader.load_model(model_folder, factories.model_kwargs(config, False, False))
    if sft_overrides is None:
        args = factories.sft_config(config, folder, cuda=False, has_eval=False)
    else:  # TRL's own defaults, with only what the comparison needs
        args = SFTConfig(output_dir=str(folder), max_steps=config.max_steps, per_device_train_batch_size=BATCH,
                         max_length=MAX_LENGTH, learning_rate=config.learning_rate, report_to="none",
                         use_cpu=True, save_strategy="no", include_num_input_tokens_seen="non_padding",
                         disable_tqdm=True, **sft_overrides)
    meter = Throughput(budget_seconds)
    trainer_class = SFTTrainer if sft_overrides is not None else factories.trainer_class(cuda=False)
    trainer = trainer_class(model=model, args=args, train_dataset=train,
                            processing_class=loader.load_tokenizer(model_folder),
                            peft_config=factories.lora_config(config), callbacks=[meter])
    trainer.train()
    return meter.epoch_rate() if whole_run else meter.result()


def _engine(config: TrainConfig, folder: Path) -> dict:
    """The studio's runner (event log, callback, thread) while a poller reads events the way the Training
    tab does: real tokens/s from its own events, and each log event's delay from on_log to the poll."""
    from engine.studio import Studio
    from ui.training_tab import POLL_SECONDS

    studio = Studio(folder / "runs")
    run_id = studio.start(config)
    delays: list[float] = []
    cursor = 0
    while True:
        live = studio.is_live()
        events, cursor = studio.events_since(run_id, cursor)
        now = time.time()
        delays += [now - e.time for e in events if e.kind == "log"]
        if not live:
            break
        time.sleep(POLL_SECONDS)
    logs = [e for e in studio.events_since(run_id, 0)[0] if e.kind == "log" and e.tokens_seen is not None]
    return {**_result([e.time for e in logs], [e.tokens_seen for e in logs]), "delays": delays}


def _padded_recipe(config: TrainConfig, folder: Path) -> dict:
    """The seed guide's recipe: every row padded to max_length, plain transformers Trainer."""
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    model_folder = loader.resolve_model(config.model_name_or_path)
    tokenizer = loader.load_tokenizer(model_folder)
    rows = []
    for example in reading.load_report(config.dataset_path).examples:
        view = preview.training_view(example, tokenizer, MAX_LENGTH)
        ids = view.input_ids[:MAX_LENGTH]
        labels = [i if k == preview.TRAINED else -100 for i, k in zip(ids, view.kinds)]
        pad = MAX_LENGTH - len(ids)
        rows.append({"input_ids": ids + [tokenizer.pad_token_id] * pad, "attention_mask": [1] * len(ids) + [0] * pad,
                     "labels": labels + [-100] * pad})
    from datasets import Dataset

    model = get_peft_model(loader.load_model(model_folder, factories.model_kwargs(config, False, False)),
                           factories.lora_config(config))
    meter = Throughput()
    args = TrainingArguments(output_dir=str(folder), max_steps=config.max_steps, per_device_train_batch_size=BATCH,
                             learning_rate=config.learning_rate, report_to="none", use_cpu=True, save_strategy="no",
                             include_num_input_tokens_seen="non_padding", disable_tqdm=True, logging_steps=1)
    Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=default_data_collator,
            callbacks=[meter]).train()
    return meter.result()


MEASURES = {
    "engine": lambda dataset, folder: _engine(_config(dataset, max_length=256), folder),
    "bare": lambda dataset, folder: _bare_trl(_config(dataset, max_length=256), folder),
    # Length-grouped batches differ in cost, so the studio's defaults are timed over a whole epoch; the
    # other two draw random batches (and the recipe always computes 512 tokens a row): a few steps do.
    "studio-defaults": lambda dataset, folder: _bare_trl(_config(dataset, max_steps=-1, num_train_epochs=1.0), folder,
                                                         whole_run=True),
    "trl-defaults": lambda dataset, folder: _bare_trl(_config(dataset, max_steps=SPREAD_STEPS + 1), folder,
                                                      sft_overrides={}, budget_seconds=SPREAD_BUDGET),
    "pad-to-512": lambda dataset, folder: _padded_recipe(_config(dataset, max_steps=SPREAD_STEPS + 1), folder),
}


def _measure(name: str, dataset: Path, folder: Path) -> dict:
    """One measurement in a fresh Python process, as a user would run it (no state shared between
    measurements: loaded models, allocator arenas, OpenMP teams)."""
    child = subprocess.run([sys.executable, "-m", "bench.training_bench", name, str(dataset), str(folder / name)],
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if child.returncode != 0:
        raise SystemExit(f"[training] {name} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def _typical_steps(runs: list[dict]) -> list[float]:
    """Per step (the same batch in every run), the median seconds over the runs."""
    return [statistics.median(seconds) for seconds in zip(*(run["steps"] for run in runs))]


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loader.resolve_model(BUNDLED_MODEL_ID)
        print(f"[training] batch {BATCH}, bundled model, CPU threads {os.cpu_count()}; every measurement in its own "
              f"process; sample set: {STEPS} measured steps after 1 warm-up")
        runs: dict[str, list[dict]] = {"engine": [], "bare": []}
        for index in range(rounds):  # alternated so that drift of the machine's speed cancels out
            for name in (("bare", "engine") if index % 2 == 0 else ("engine", "bare")):
                runs[name].append(_measure(name, SAMPLE_DATASET, folder))
        engine_steps, bare_steps = _typical_steps(runs["engine"]), _typical_steps(runs["bare"])
        cost = statistics.median(e / b for e, b in zip(engine_steps, bare_steps)) - 1
        print(f"[training] sample set, {rounds} runs each: engine {_mean_rate(runs['engine']):.1f} tok/s vs bare TRL "
              f"{_mean_rate(runs['bare']):.1f} tok/s (runs: {_rates(runs['engine'])} vs {_rates(runs['bare'])}); "
              f"median step-by-step time ratio: engine cost {100 * cost:+.1f}% (goal < 3%)")
        delays = [d for run in runs["engine"] for d in run["delays"]]
        print(f"[training] on_log -> readable by the Training tab's poll: mean {sum(delays) / len(delays):.2f} s, "
              f"max {max(delays):.2f} s over {len(delays)} events (goal < 1 s)")

        spread = spread_dataset(folder)
        lengths = sorted(token_lengths(spread))
        print(f"[training] spread set: {len(lengths)} rows, median {lengths[len(lengths) // 2]} tokens, "
              f"{sum(n > MAX_LENGTH for n in lengths)} over {MAX_LENGTH}")
        spread_rates = {name: _measure(name, spread, folder)["rate"]
                        for name in ("studio-defaults", "pad-to-512", "trl-defaults")}
        studio_rate = spread_rates["studio-defaults"]
        print("[training] real tokens/s: " + ", ".join(f"{n} {r:.1f}" for n, r in spread_rates.items()))
        print(f"[training] studio defaults / pad-to-512 = {studio_rate / spread_rates['pad-to-512']:.2f}x "
              f"(goal >= 1.5x); / TRL defaults = {studio_rate / spread_rates['trl-defaults']:.2f}x")


def _mean_rate(runs: list[dict]) -> float:
    return sum(run["rate"] for run in runs) / len(runs)


def _rates(runs: list[dict]) -> str:
    return ", ".join(f"{run['rate']:.1f}" for run in runs)


def token_lengths(path: Path) -> list[int]:
    """Each row's length in tokens as training sees it."""
    tokenizer = loader.load_tokenizer(loader.resolve_model(BUNDLED_MODEL_ID))
    return [len(preview.training_view(e, tokenizer, 10_000).input_ids) for e in reading.load_report(path).examples]


def _child(name: str, dataset: str, folder: str) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    print(json.dumps(MEASURES[name](Path(dataset), Path(folder))))


if __name__ == "__main__":
    _child(*sys.argv[1:]) if len(sys.argv) == 4 else main()
