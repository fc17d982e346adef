"""Model sources: bundled GGUF conversion and cache, local folders and .gguf files, hub ids offline."""
from __future__ import annotations

import time

import pytest

from engine.config import BUNDLED_MODEL_ID
from engine.errors import EngineError
from engine.models import loader


def test_bundled_model_is_installed_and_converted_once():
    assert loader.bundled_gguf() is not None
    folder = loader.resolve_model(BUNDLED_MODEL_ID)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (folder / name).is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()
    seen = []
    started = time.monotonic()
    assert loader.resolve_model("bundled", progress=seen.append) == folder
    assert seen == [] and time.monotonic() - started < 2  # cached: no second conversion


def test_local_folder_and_gguf_file_resolve(tmp_path):
    folder = loader.resolve_model(BUNDLED_MODEL_ID)
    assert loader.resolve_model(str(folder)) == folder
    assert loader.resolve_model(str(loader.bundled_gguf())) == folder


def test_tokenizer_has_the_chat_template():
    tokenizer = loader.load_tokenizer(loader.resolve_model(BUNDLED_MODEL_ID))
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert "<|im_start|>user\nhi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("name", ["./no/such/model", "/definitely/missing", "missing.gguf", "a/b/c"])
def test_missing_local_paths_name_the_alternatives(name):
    with pytest.raises(EngineError) as caught:
        loader.resolve_model(name)
    assert caught.value.code == "model_not_found" and caught.value.hint == "hint_local_model"


def test_hub_id_offline_fails_fast_with_alternatives(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loader, "hub_reachable", lambda timeout=3.0: False)
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        loader.resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    assert caught.value.code == "model_offline" and time.monotonic() - started < 10
    assert "bundled model" in str(caught.value)


def test_hub_reachable_is_bounded_in_time(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://nonexistent.invalid")
    started = time.monotonic()
    assert loader.hub_reachable(timeout=2) is False
    assert time.monotonic() - started < 5


def test_linear_module_names_of_the_bundled_model():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(loader.resolve_model(BUNDLED_MODEL_ID))
    assert loader.linear_module_names(model) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj",
                                                 "up_proj", "v_proj"]
