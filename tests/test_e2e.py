"""End to end with the real bundled model and TRL's SFTTrainer on CPU: the adapter learns the house style."""
from __future__ import annotations

import json

import pytest

from engine.chat.inference import ChatModel, GenParams
from engine.studio import Studio
from engine.training.events import RunState
from tests.conftest import EN_GREETING, HELDOUT, sample_rows

pytestmark = pytest.mark.slow


def test_adapter_learns_the_house_style(tmp_path, english_dataset):
    studio = Studio(tmp_path / "runs")
    config = studio.default_config().replace(
        dataset_path=str(english_dataset), learning_rate=1e-3, num_train_epochs=1, max_length=128,
        per_device_train_batch_size=4, eval_split=0.1, eval_strategy="epoch", save_steps=1000)
    run_id = studio.start(config)
    assert studio.runner.wait(timeout=1200) is RunState.DONE, studio.snapshot(run_id)

    events, _ = studio.events_since(run_id, 0)
    assert [e.seq for e in events] == list(range(len(events)))
    losses = [e.loss for e in events if e.kind == "log" and e.loss is not None]
    assert len(losses) >= 10
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5, losses
    logs = [e.payload() for e in events if e.kind == "log"]
    assert any("eval_loss" in d for d in logs)
    assert all(d.get("tokens_per_second", 1) > 0 for d in logs)
    assert any("learning_rate" in d and "grad_norm" in d for d in logs)

    run_dir = studio.runner.run_dir(run_id)
    for name in ("config.yaml", "events.jsonl", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "adapter" / "adapter_config.json").read_text())["r"] == config.lora_r

    # a fresh chat model reloads the adapter from disk; one base model serves both sides
    chat = ChatModel()
    questions = [r for r in sample_rows(HELDOUT) if r["output"].startswith(EN_GREETING)][:3]
    short = GenParams(max_new_tokens=24)  # the house greeting is the answer's first dozen tokens
    pairs = chat.compare_batch(run_dir, [[{"role": "user", "content": row["instruction"]}] for row in questions], short)
    assert not any("Orchard Lane" in pair.base for pair in pairs)
    styled = sum(pair.adapter.startswith(EN_GREETING) for pair in pairs)
    assert styled >= 2, "the adapter should answer held-out questions in the house style"
    assert chat.loads == 1
