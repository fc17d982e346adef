"""GGUF export: worded refusals before any file, the metadata llama.cpp needs, q4_k_m through llama-quantize, and
the round trip (transformers reads each written type back and its logits match the merged model)."""
from __future__ import annotations

import shutil
import stat

import numpy as np
import pytest

from engine.errors import EngineError
from engine.export import gguf_export
from engine.export.gguf_export import (
    GGUF_TYPES,
    check_type,
    export_gguf,
    gguf_path,
    gguf_types,
    permute_for_llama_cpp,
    tensor_type,
)
from engine.export.gguf_meta import ModelShape, bpe_pre_tokenizer, llama3_rope_factors, write_rope_scaling
from engine.export.merge import merged_dir
from engine.export.source import ExportSource
from tests.test_merge import fake_source

LLAMA = {"model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
         "num_hidden_layers": 2, "intermediate_size": 512, "vocab_size": 1000, "max_position_embeddings": 2048}
COPY = shutil.which("cp")  # found before the tests empty PATH


def fake_llama_quantize(folder, body: str) -> None:
    """A `llama-quantize` script on PATH that records its arguments and runs `body`."""
    script = folder / "llama-quantize"
    script.write_text(f'#!/bin/sh\necho "$@" > "{folder}/args.txt"\n{body}\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def no_llama_quantize(monkeypatch, tmp_path):
    """PATH without any llama-quantize."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_an_unknown_type_or_q4_k_m_without_the_binary_names_the_available_types(no_llama_quantize):
    assert gguf_types() == list(GGUF_TYPES) and check_type(" Q8_0 ") == "q8_0"
    for wanted, hint in (("q4_k_m", "hint_llama_quantize"), ("q3_x", "hint_gguf_type")):
        with pytest.raises(EngineError) as caught:
            check_type(wanted)
        assert caught.value.code == "gguf_type_unavailable" and caught.value.hint == hint
        assert wanted in str(caught.value) and "f16, bf16, q8_0, q4_0" in str(caught.value)
    fake_llama_quantize(no_llama_quantize, "exit 0")
    assert gguf_types() == [*GGUF_TYPES, "q4_k_m"]


def test_an_unsupported_architecture_is_refused_before_anything_is_written(tmp_path):
    source = fake_source(tmp_path, {"model_type": "gpt_neox", "hidden_size": 64})
    with pytest.raises(EngineError) as caught:
        export_gguf(source, "f16")
    assert caught.value.code == "gguf_unsupported_architecture" and caught.value.params["architecture"] == "gpt_neox"
    assert "gpt_neox" in str(caught.value) and "qwen2" in str(caught.value)
    assert not source.export_dir.exists()


def test_q4_k_m_runs_llama_quantize_on_the_f16_file(tmp_path, no_llama_quantize):
    fake_llama_quantize(no_llama_quantize, f'{COPY} "$1" "$2"')
    source = fake_source(tmp_path, LLAMA)
    f16 = gguf_path(source, "f16")
    f16.parent.mkdir(parents=True)
    f16.write_bytes(b"GGUF f16 stand-in")
    steps = []
    written = export_gguf(source, "Q4_K_M", progress=lambda code, done: steps.append(code))
    assert written == source.export_dir / "r1-q4_k_m.gguf" and written.read_bytes() == b"GGUF f16 stand-in"
    called = (no_llama_quantize / "args.txt").read_text(encoding="utf-8").split()
    assert called[0] == str(f16) and called[2] == "Q4_K_M" and called[1] != str(written)  # a staging name first
    assert steps == ["engine.gguf_step_llama_quantize", "engine.gguf_step_done"]


def test_a_failing_llama_quantize_is_worded_and_leaves_no_file(tmp_path, no_llama_quantize):
    fake_llama_quantize(no_llama_quantize, 'echo "llama_model_quantize: failed to read magic" >&2; exit 3')
    source = fake_source(tmp_path, LLAMA)
    gguf_path(source, "f16").parent.mkdir(parents=True)
    gguf_path(source, "f16").write_bytes(b"x")
    with pytest.raises(EngineError) as caught:
        export_gguf(source, "q4_k_m")
    assert caught.value.code == "gguf_quantize_failed" and "exit 3" in str(caught.value)
    assert "failed to read magic" in str(caught.value)
    assert sorted(p.name for p in source.export_dir.iterdir()) == ["r1-f16.gguf"]


def test_tensor_types_keep_norms_in_f32_and_the_head_above_4_bits():
    from gguf import GGMLQuantizationType as Q

    assert tensor_type("blk.0.attn_norm.weight", (576,), "q4_0") is Q.F32
    assert tensor_type("blk.0.attn_q.weight", (576, 576), "q4_0") is Q.Q4_0
    assert tensor_type("token_embd.weight", (49152, 576), "q4_0") is Q.Q8_0
    assert tensor_type("blk.0.ffn_down.weight", (576, 1530), "q8_0") is Q.F16  # rows not in 32-value blocks
    assert [tensor_type("output.weight", (10, 64), kind) for kind in GGUF_TYPES] == [Q.F16, Q.BF16, Q.Q8_0, Q.Q8_0]


def test_the_q_k_permutation_is_what_transformers_reverses():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weights = np.arange(192 * 8, dtype=np.float32).reshape(192, 8)  # 3 KV heads of 64
    permuted = permute_for_llama_cpp(weights, 3)
    assert not np.array_equal(permuted, weights)
    assert np.array_equal(LlamaTensorProcessor()._reverse_permute_weights(permuted, 9, 3), weights)


def test_shapes_refuse_unknown_rope_scaling_and_compute_llama3_factors_as_transformers_does():
    import torch
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    qwen3 = ModelShape.of({**LLAMA, "model_type": "qwen3", "head_dim": 128})
    assert (qwen3.arch, qwen3.head_dim, qwen3.permuted, bpe_pre_tokenizer(qwen3)) == ("qwen3", 128, False, "qwen2")
    assert ModelShape.of({**LLAMA, "model_type": "mistral"}).arch == "llama"
    assert bpe_pre_tokenizer(ModelShape.of({**LLAMA, "vocab_size": 128256})) == "llama-bpe"
    with pytest.raises(EngineError) as caught:
        write_rope_scaling(None, {"rope_theta": 1e4, "rope_type": "longrope"})
    assert caught.value.code == "gguf_unsupported_rope" and "longrope" in str(caught.value)
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    config = LlamaConfig(hidden_size=256, num_attention_heads=4, rope_parameters=rope, max_position_embeddings=131072)
    scaled, _attention = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    plain = 1.0 / (500000.0 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64))
    factors = torch.tensor(llama3_rope_factors(ModelShape.of(config.to_dict())))
    assert torch.allclose(factors, plain / scaled, rtol=1e-4) and factors.max() == 8.0
    assert llama3_rope_factors(ModelShape.of(LLAMA)) is None


def test_the_vocabulary_matches_what_llama_cpp_wrote_for_the_bundled_model(tmp_path):
    import gguf

    from engine.export.gguf_meta import write_vocabulary
    from engine.models import loader

    folder = loader.resolve_model("bundled")
    writer = gguf.GGUFWriter(tmp_path / "vocab.gguf", "llama")
    write_vocabulary(writer, folder, ModelShape.of_folder(folder))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    ours, theirs = (gguf.GGUFReader(path).fields for path in (tmp_path / "vocab.gguf", loader.bundled_gguf()))
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.chat_template"):
        assert ours[key].contents() == theirs[key].contents(), key


@pytest.fixture(scope="module")
def merged_source(trained_run, tmp_path_factory):
    """The session's trained run copied once for this module, merged, with its merged model and an input."""
    from engine.export.merge import merge_adapter

    copy = tmp_path_factory.mktemp("gguf") / "runs" / trained_run.name
    shutil.copytree(trained_run, copy)
    source = ExportSource.of(copy)
    merge_adapter(source)
    return source, *merged_model_and_input(merged_dir(source))


def merged_model_and_input(folder):
    """The merged model in `folder` (float32, eval mode) and a chat question's token ids for it."""
    import torch
    from transformers import AutoModelForCausalLM

    from engine.models import loader

    tokenizer = loader.load_tokenizer(folder)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "My parcel arrived damaged. What can I do?"}],
                                         tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt").input_ids
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(), ids


CUT_LAYERS = 2


@pytest.fixture(scope="module")
def cut_source(merged_source, tmp_path_factory):
    """The merged model's first two layers (its real weights, embeddings, norm and tokenizer) as a run already
    merged, with that model and an input: every GGUF type's round trip in seconds rather than a minute each."""
    source, merged, _ids = merged_source
    run_dir = tmp_path_factory.mktemp("cut") / "runs" / "cut"
    folder = run_dir / "export" / "adapter" / "merged"
    merged.config.num_hidden_layers = CUT_LAYERS
    kept = {name: value for name, value in merged.state_dict().items()
            if not name.startswith("model.layers.") or int(name.split(".")[2]) < CUT_LAYERS}
    type(merged)(merged.config).save_pretrained(folder, state_dict=kept)
    merged.config.num_hidden_layers = len(merged.model.layers)
    for tokenizer_file in merged_dir(source).glob("*token*"):
        shutil.copy(tokenizer_file, folder)
    cut = ExportSource(run_dir, run_dir / "adapter", source.config.replace(model_name_or_path=str(folder)))
    assert merged_dir(cut) == folder
    return cut, *merged_model_and_input(folder)


def through_the_quantizer(model, merged_dir, gguf_type: str):
    """`model` with each weight replaced by what `gguf_type` stores of it (quantized and de-quantized by gguf),
    so that a correct file must give exactly these logits."""
    import torch
    from gguf.quants import dequantize, quantize

    shape = ModelShape.of_folder(merged_dir)
    kinds = {tensor.source_name: tensor.qtype for _shard, tensor in gguf_export.plan_tensors(merged_dir, shape,
                                                                                             gguf_type)}
    state = {}
    for name, value in model.state_dict().items():
        qtype = kinds.get(name, kinds.get("model.embed_tokens.weight") if name == "lm_head.weight" else None)
        array = value.numpy()
        state[name] = torch.from_numpy(dequantize(quantize(array, qtype), qtype).reshape(array.shape).copy())
    copy = type(model)(model.config)
    copy.load_state_dict(state)
    return copy.eval()


# max |Δlogit| / std(logits) against the merged float32 model, measured about 1/5 of these on the bundled model:
# f16 and bf16 keep 11 and 8 bits of mantissa; q8_0 stores 8-bit blocks; q4_0 4-bit blocks on a model whose
# weights were already 4-bit (the bundled GGUF is Q4_1), so its error is the largest.
TOLERANCE = {"f16": 0.03, "bf16": 0.15, "q8_0": 0.8, "q4_0": 8.0}
TOP1 = {"f16": 1.0, "bf16": 0.9, "q8_0": 0.85, "q4_0": 0.3}  # share of positions whose best next token agrees


def round_trip(source, merged, ids, gguf_type: str):
    """Write `source` as `gguf_type`, read it back with transformers and check its logits: exactly what the
    quantizer keeps of the merged model, and within the type's tolerance of the merged model itself. Returns the
    file and the progress steps reported."""
    import torch
    from transformers import AutoModelForCausalLM

    steps = []
    written = export_gguf(source, gguf_type, progress=lambda code, done: steps.append((code, done)))
    assert written == source.export_dir / f"{source.run_id}-{gguf_type}.gguf"
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]
    assert steps.count(("engine.gguf_step_tensors", 1.0)) == 1 and steps[-1] == ("engine.gguf_step_done", 1.0)
    loaded = AutoModelForCausalLM.from_pretrained(written.parent, gguf_file=written.name, dtype=torch.float32).eval()
    expected = through_the_quantizer(merged, merged_dir(source), gguf_type)
    with torch.no_grad():
        got, exact, full = loaded(ids).logits, expected(ids).logits, merged(ids).logits
    assert torch.allclose(got, exact, atol=2e-3), (got - exact).abs().max()  # the file holds what it should
    drift = ((got - full).abs().max() / full.std()).item()
    agree = (got.argmax(-1) == full.argmax(-1)).float().mean().item()
    assert drift <= TOLERANCE[gguf_type] and agree >= TOP1[gguf_type], (gguf_type, drift, agree)
    planned = sum(t.nbytes for _s, t in gguf_export.plan_tensors(merged_dir(source), ModelShape.of_folder(
        merged_dir(source)), gguf_type))
    assert planned < written.stat().st_size < planned + gguf_export.METADATA_MARGIN  # what the free-space check asks
    return written, steps


@pytest.mark.slow
def test_the_trained_model_as_f16_reads_back_in_transformers_with_llama_cpps_metadata(merged_source):
    import gguf

    written, steps = round_trip(*merged_source, "f16")
    assert len([code for code, _done in steps if code == "engine.gguf_step_tensors"]) == 272
    fields = gguf.GGUFReader(written).fields
    assert fields["general.architecture"].contents() == "llama" and fields["llama.context_length"].contents() == 8192
    assert fields["llama.rope.freq_base"].contents() == 100000.0
    assert fields["llama.attention.head_count_kv"].contents() == 3
    assert "<|im_start|>" in fields["tokenizer.chat_template"].contents()


@pytest.mark.slow
@pytest.mark.parametrize("gguf_type", [kind for kind in GGUF_TYPES if kind != "f16"])  # f16: the whole model, above
def test_transformers_reads_each_type_back_with_the_merged_models_logits(cut_source, gguf_type):
    import gguf

    written, steps = round_trip(*cut_source, gguf_type)
    assert len([code for code, _done in steps if code == "engine.gguf_step_tensors"]) == 2 + 9 * CUT_LAYERS
    assert gguf.GGUFReader(written).fields["llama.block_count"].contents() == CUT_LAYERS
