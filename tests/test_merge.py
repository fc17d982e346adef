"""The merged model: the precision rule, the notes, worded refusals, and logits equal to base + adapter."""
from __future__ import annotations

import json

import pytest

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.export import merge
from engine.export.merge import check_shard_size, merge_adapter, merge_dtype, merge_notes
from engine.export.source import ExportSource
from engine.locales import render


def fake_source(tmp_path, base_config: dict, **settings) -> ExportSource:
    """An ExportSource over a local base folder holding only `base_config` (enough for the rules, no weights)."""
    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    (base / "config.json").write_text(json.dumps(base_config), encoding="utf-8")
    run_dir = tmp_path / "runs" / "r1"
    config = TrainConfig(model_name_or_path=str(base), **settings)
    return ExportSource(run_dir, run_dir / "adapter", config)


@pytest.mark.parametrize("base_dtype, settings, cuda, bf16, expected", [
    ("float32", {"dtype": "float16"}, False, False, "float16"),  # the run's dtype setting first
    ("float32", {"bf16": True}, False, False, "bfloat16"),  # then its training precision
    ("float32", {"fp16": True}, True, True, "float16"),
    ("bfloat16", {}, False, False, "bfloat16"),  # then the checkpoint's own 16-bit precision
    ("float32", {}, True, True, "bfloat16"),  # then the machine
    ("float32", {}, True, False, "float16"),
    ("float32", {}, False, False, "float32"),
])
def test_merge_dtype_follows_the_documented_rule(tmp_path, monkeypatch, base_dtype, settings, cuda, bf16, expected):
    monkeypatch.setattr(merge.device, "cuda_available", lambda: cuda)
    monkeypatch.setattr(merge.device, "bf16_supported", lambda: bf16)
    assert merge_dtype(fake_source(tmp_path, {"model_type": "llama", "dtype": base_dtype}, **settings)) == expected


def test_a_qlora_run_is_told_it_merges_into_a_16_bit_reload(tmp_path):
    qlora = fake_source(tmp_path, {"model_type": "llama", "torch_dtype": "bfloat16"}, load_in_4bit=True)
    notes = dict(merge_notes(qlora))
    assert notes["merge_note_dtype"] == {"dtype": "bfloat16"} and "merge_note_qlora" in notes
    for lang in ("en", "zh"):
        assert "16" in render("merge_note_qlora", {}, lang) and "4" in render("merge_note_qlora", {}, lang)
    plain = fake_source(tmp_path, {"model_type": "llama", "dtype": "float32"})
    assert [code for code, _params in merge_notes(plain)] == ["merge_note_dtype"]


def test_shard_sizes_are_read_or_refused_with_a_worded_error():
    assert check_shard_size("2GB") == 2_000_000_000 and check_shard_size(" 500MB ") == 500_000_000
    for bad in ("big", "", "0"):
        with pytest.raises(EngineError) as caught:
            check_shard_size(bad)
        assert caught.value.code == "merge_bad_shard_size" and caught.value.hint == "hint_shard_size"
        assert bad in str(caught.value) and "2GB" in str(caught.value)


def test_a_base_stored_quantized_is_refused_before_loading(tmp_path):
    source = fake_source(tmp_path, {"model_type": "llama", "quantization_config": {"quant_method": "gptq"}})
    with pytest.raises(EngineError) as caught:
        merge_adapter(source)
    assert caught.value.code == "merge_quantized_base" and "base" in str(caught.value)
    assert not source.export_dir.exists()


@pytest.mark.slow
def test_the_merged_model_equals_base_plus_adapter(run_copy):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import loader

    source = ExportSource.of(run_copy / "checkpoints" / "checkpoint-2")
    steps = []
    merged_dir = merge_adapter(source, max_shard_size="200MB", progress=lambda code, done: steps.append((code, done)))
    assert merged_dir == run_copy / "export" / "checkpoint-2" / "merged"
    names = {path.name for path in merged_dir.iterdir()}
    assert len([n for n in names if n.endswith(".safetensors")]) > 1 and "model.safetensors.index.json" in names
    assert {"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= names
    assert not [p for p in merged_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    assert steps[0][0] == "engine.merge_step_load_base" and steps[-1] == ("engine.merge_step_done", 1.0)
    tokenizer = loader.load_tokenizer(merged_dir)
    assert tokenizer.chat_template == loader.load_tokenizer(source.adapter_dir).chat_template
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Where is my order?"}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(source.base_folder(), dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, str(source.adapter_dir)).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        expected, got = with_adapter(ids).logits, merged(ids).logits
        with with_adapter.disable_adapter():
            assert (with_adapter(ids).logits - expected).abs().max() > 1e-3  # the adapter changes the answer
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()
