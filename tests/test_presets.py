"""Presets: every bundled preset loads, applies over the defaults and validates; machine defaults."""
from __future__ import annotations

from pathlib import Path

import pytest

import engine.system.device
from engine import presets
from engine.config import FIELDS, TrainConfig
from engine.errors import EngineError, errors_of
from engine.locales import render_error

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "engine" / "data" / "samples" / "customer_service.jsonl"
PRESET_NAMES = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))


def test_presets_folder_is_found():
    assert presets.PRESETS_DIR == ROOT / "presets"
    assert presets.SAMPLE_DATASET == SAMPLE and SAMPLE.is_file()
    assert {"cpu-demo", "smoke-test"} <= set(PRESET_NAMES)


def test_list_presets_lists_every_file():
    assert [p.name for p in presets.list_presets()] == PRESET_NAMES


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_loads_with_description_and_known_settings(name):
    preset = presets.load_preset(name)
    assert preset.name == name
    assert set(preset.description) == {"en", "zh"}
    assert all(preset.description.values())
    assert preset.description["en"] != preset.description["zh"]
    assert preset.settings, "a preset holds at least one setting"
    assert set(preset.settings) <= set(FIELDS)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_applies_and_validates(name):
    config = presets.apply_preset(name, TrainConfig())
    assert [(i.code, i.field) for i in errors_of(config.validate())] == [("config_no_dataset", "dataset_path")]
    config = config.replace(dataset_path=str(SAMPLE))
    assert errors_of(config.validate()) == []
    for key in presets.load_preset(name).settings:
        assert key in config.diff() or getattr(config, key) == getattr(TrainConfig(), key)


def test_preset_values_are_typed():
    qlora = presets.apply_preset("qlora-7b-12gb", TrainConfig())
    assert qlora.lora_target_modules == ("q_proj", "v_proj")
    assert qlora.load_in_4bit is True and qlora.lora_r == 8
    smoke = presets.apply_preset("smoke-test", TrainConfig())
    assert smoke.eval_strategy == "no" and smoke.max_steps == 2 and smoke.eval_split == 0.0


def test_preset_keeps_unrelated_base_values():
    base = TrainConfig(seed=7, dataset_path=str(SAMPLE))
    config = presets.apply_preset("smoke-test", base)
    assert config.seed == 7 and config.dataset_path == str(SAMPLE)


def test_unknown_preset():
    with pytest.raises(EngineError) as info:
        presets.apply_preset("no-such-preset", TrainConfig())
    assert info.value.code == "preset_unknown"
    assert info.value.params["name"] == "no-such-preset"
    assert "cpu-demo" in info.value.params["available"]


@pytest.mark.parametrize("name", ["../secret", "sub/inner", "/etc/x", "Upper", "", None])
def test_a_name_that_cannot_be_a_preset_reads_no_file(name, tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.yaml").write_text("settings:\n  lora_r: 4\n", encoding="utf-8")
    for outside in (tmp_path / "secret.yaml", tmp_path / "presets" / "sub" / "inner.yaml"):
        outside.parent.mkdir(parents=True, exist_ok=True)
        outside.write_text("settings:\n  lora_r: 4\n", encoding="utf-8")
    (tmp_path / "presets" / "Upper.yaml").write_text("settings:\n  lora_r: 4\n", encoding="utf-8")
    with pytest.raises(EngineError) as info:
        presets.load_preset(name, tmp_path / "presets")
    assert info.value.code == "preset_unknown" and info.value.params["available"] == "mine"
    assert [p.name for p in presets.list_presets(tmp_path / "presets")] == ["mine"]


@pytest.mark.parametrize("text, code", [("- a list\n- of rows\n", "preset_file_shape"),
                                        ("just words\n", "preset_file_shape"),
                                        ("settings: [lora_r, 4]\n", "preset_file_shape"),
                                        ("description: hello\nsettings:\n  lora_r: 4\n", "preset_file_shape"),
                                        ("settings: {lora_r: 4\n", "preset_file_invalid")])
def test_a_file_that_is_not_a_preset_is_a_worded_error(text, code, tmp_path):
    (tmp_path / "broken.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(EngineError) as info:
        presets.load_preset("broken", tmp_path)
    assert info.value.code == code and info.value.params["path"] == str(tmp_path / "broken.yaml")
    for lang in ("en", "zh"):
        assert str(tmp_path / "broken.yaml") in render_error(info.value, lang)


def test_preset_with_unknown_key_is_refused(tmp_path):
    (tmp_path / "typo.yaml").write_text("settings:\n  lora_rank: 4\n", encoding="utf-8")
    preset = presets.load_preset("typo", tmp_path)
    with pytest.raises(EngineError) as info:
        TrainConfig().replace(**preset.settings)
    assert info.value.code == "config_unknown_key"


def test_default_config_cpu():
    config = presets.default_config(cuda=False)
    assert config.dataset_path == str(SAMPLE)
    assert config.load_in_4bit is False
    assert config == presets.apply_preset("cpu-demo", TrainConfig(dataset_path=str(SAMPLE)))
    assert config.validate() == []


@pytest.mark.parametrize("bf16", [True, False])
def test_default_config_cuda(monkeypatch, bf16):
    monkeypatch.setattr(engine.system.device, "bf16_supported", lambda: bf16)
    config = presets.default_config(cuda=True)
    assert config.load_in_4bit is True
    assert (config.bf16, config.fp16) == (bf16, not bf16)
    assert config.dataset_path == str(SAMPLE)
    assert errors_of(config.validate()) == []


def test_default_config_detects_the_machine(monkeypatch):
    monkeypatch.setattr(engine.system.device, "cuda_available", lambda: False)
    assert presets.default_config() == presets.default_config(cuda=False)
