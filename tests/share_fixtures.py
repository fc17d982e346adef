"""Hand-written runs for the sharing exports' fast tests (card, package, Ollama, vLLM, report): a run folder with a
config, an adapter folder with the files PEFT and the tokenizer leave, events, and a small dataset."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.export.source import ExportSource
from engine.models import loader
from engine.training.events import EventLog, LogEvent, RunState, StatusEvent

RUN_ID = "20260101-120000"
ADAPTER_CONFIG = {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"],
                  "base_model_name_or_path": "/root/.cache/somewhere/base", "modules_to_save": None,
                  "use_dora": False, "bias": "none", "rank_pattern": {}}


def bundled_folder() -> Path:
    """The bundled model's converted folder (tokenizer, chat template)."""
    return loader.resolve_model(BUNDLED_MODEL_ID)


def write_rows(path: Path, rows: list[dict]) -> Path:
    """`rows` as a JSONL dataset at `path`."""
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def make_run(tmp_path: Path, *, rows: list[dict] | None = None, adapter_config: dict | None = None,
             chat_template: str | None = None, events: list | None = None, **config) -> ExportSource:
    """A run folder under `tmp_path/runs` with config.yaml, events.jsonl, a dataset and an adapter folder holding the
    bundled tokenizer (with `chat_template` instead of its own when given) and stand-in weights."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rows = rows if rows is not None else [{"instruction": f"Question {i}?", "output": f"Answer {i}."}
                                          for i in range(6)]
    dataset = write_rows(tmp_path / "my_data.jsonl", rows)
    run_dir = tmp_path / "runs" / RUN_ID
    adapter = run_dir / "adapter"
    adapter.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(TrainConfig(dataset_path=str(dataset), **config).to_yaml(), encoding="utf-8")
    (adapter / "adapter_config.json").write_text(json.dumps({**ADAPTER_CONFIG, **(adapter_config or {})}))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(bundled_folder() / name, adapter / name)
    if chat_template is not None:
        (adapter / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    log = EventLog(run_dir / "events.jsonl")
    (run_dir / "events.jsonl").touch()
    for event in events if events is not None else default_events():
        log.append(event)
    return ExportSource.of(run_dir)


def default_events() -> list:
    """A short finished run: loading, 10 falling loss points with an eval point at steps 5 and 10, done."""
    logs = [LogEvent(step, loss=3.0 - 0.2 * step, learning_rate=2e-4, grad_norm=1.0 + step / 10, memory_mb=900.0 + step)
            for step in range(1, 11)]
    evals = [LogEvent(5, eval_loss=2.4), LogEvent(10, eval_loss=1.5)]
    return [StatusEvent(RunState.LOADING, rows=6), StatusEvent(RunState.TRAINING, max_steps=10), *logs[:5], evals[0],
            *logs[5:], evals[1], StatusEvent(RunState.SAVING), StatusEvent(RunState.DONE)]
