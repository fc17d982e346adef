"""The Hyperparameters tab through gradio_client: the pre-training check, modules of the model."""
from __future__ import annotations

from gradio_client import Client

from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from tests.conftest import FakeJob


def test_check_before_training_reports_advice_fit_and_time(serve, tmp_path):
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob))
    client = Client(url, verbose=False)
    plan = client.predict(dataset_path=str(SAMPLE_DATASET), learning_rate=0.005, lora_alpha=256, api_name="/plan")
    assert "learning_rate = 0.005 is above 0.001" in plan  # advice: far too high for LoRA
    assert "Fits:" in plan and "Trainable parameters" in plan and "per epoch" in plan
    plan_zh = client.predict(lang="zh", dataset_path=str(SAMPLE_DATASET), api_name="/plan")
    assert "放得下" in plan_zh and "每轮约" in plan_zh


def test_target_modules_come_from_the_model(serve, tmp_path):
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob))
    client = Client(url, verbose=False)
    update = client.predict("en", "HuggingFaceTB/SmolLM2-135M-Instruct", ["q_proj"], api_name="/discover_modules")
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in update["choices"]]
    assert choices == ["all-linear", "down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert update["value"] == ["q_proj"]
