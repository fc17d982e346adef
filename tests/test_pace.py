"""The time estimate learns from this computer: a finished run's start and speed, read from its events."""
from __future__ import annotations

import json

import yaml

from engine.config import TrainConfig
from engine.models.shapes import ModelShape
from engine.planning import pace
from engine.studio import Studio
from tests.conftest import FakeJob


def recorded_run(root, name: str, config: TrainConfig, rates: list[float], state: str = "DONE",
                 start: float = 21.0) -> None:
    """A run folder with `config` and the events of a run that took `start` s to its first step, logged `rates`
    and ended in `state` (half a second of saving)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()), encoding="utf-8")
    events = [("status", {"state": "LOADING"}, 0.0), ("status", {"state": "TRAINING"}, start)]
    events += [("log", {"step": n + 1, "loss": 1.0, "tokens_per_second": rate}, start + 9.0 * (n + 1))
               for n, rate in enumerate(rates)]
    end = start + 9.0 * len(rates)
    events += [("status", {"state": "SAVING"}, end), ("status", {"state": state}, end + 0.5)]
    lines = [json.dumps({"seq": n, "time": 1000.0 + at, "kind": kind, "data": data})
             for n, (kind, data, at) in enumerate(events)]
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_newest_finished_run_of_the_model_gives_the_start_and_one_with_the_settings_the_speed(tmp_path):
    config = TrainConfig()
    assert pace.measured_pace(tmp_path, config) == pace.MeasuredPace(None, None)  # nothing on record
    recorded_run(tmp_path, "a-same-settings", config, [10.0, 30.0, 31.0, 29.0], start=25.0)
    recorded_run(tmp_path, "b-other-length", config.replace(max_length=config.max_length * 2), [12.0, 15.0], start=21.0)
    recorded_run(tmp_path, "c-stopped", config, [99.0], state="STOPPED")
    recorded_run(tmp_path, "d-other-model", config.replace(model_name_or_path="other/model"), [50.0], start=5.0)
    measured = pace.measured_pace(tmp_path, config)
    assert measured.start_seconds == 21.5  # the newest finished run of the model, whatever its settings
    assert measured.tokens_per_second == 30.0  # the median of its logged speeds but the first (warm-up) one
    assert pace.measured_pace(tmp_path, config.replace(max_length=config.max_length * 2)).tokens_per_second == 15.0
    assert pace.measured_pace(tmp_path, config.replace(lora_r=64)) == pace.MeasuredPace(None, 21.5)


def test_a_broken_run_folder_is_passed_over(tmp_path):
    config = TrainConfig()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "events.jsonl").write_text("{not json\n", encoding="utf-8")
    (tmp_path / "broken" / "config.yaml").write_text("a: [", encoding="utf-8")
    assert pace.measured_pace(tmp_path, config) == pace.MeasuredPace(None, None)


def test_without_a_record_the_start_is_the_imports_and_the_weights_read():
    small = ModelShape(name="small", hidden_size=576, num_hidden_layers=30, intermediate_size=1536,
                       num_attention_heads=9, num_key_value_heads=3, vocab_size=49152)
    assert pace.start_seconds(small, 3.0) == 3.0
    seconds = pace.start_seconds(small, None)
    assert seconds == pace.IMPORT_SECONDS + 2 * small.total_params / pace.LOAD_BYTES_PER_SECOND
    assert pace.IMPORT_SECONDS < seconds < pace.IMPORT_SECONDS + 1  # 135M parameters: under a second to read


def test_the_studios_plan_counts_the_start_and_uses_what_the_last_run_measured(tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    config = studio.default_config().replace(max_steps=2)
    before = studio.plan(config)
    assert before.time.source == "table" and not before.measured_start
    assert before.start_seconds > pace.IMPORT_SECONDS
    recorded_run(tmp_path / "runs", "20261201-120000", config, [5.0, 40.0, 40.0], start=30.0)
    after = studio.plan(config)
    assert after.measured_start and after.start_seconds == 30.5
    assert after.time.source == "measured" and after.time.tokens_per_second == 40.0
