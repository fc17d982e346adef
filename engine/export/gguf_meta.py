"""What a GGUF file says besides its tensors, the way llama.cpp's own converter writes it for the Llama family:
the architecture and its hyperparameters (context length, heads, RoPE base and scaling, norm epsilon), and the
tokenizer (tokens and their types, BPE merges, the pre-tokenizer's name, special token ids, the chat template).

Llama and Mistral are written as llama.cpp's `llama` architecture, Qwen2/Qwen2.5 as `qwen2`, Qwen3 as `qwen3`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.models import loader

GGUF_ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}  # HF -> llama.cpp
PERMUTED_ARCHITECTURES = {"llama"}  # llama.cpp's `llama` rotates pairs (i, i+1): Q and K rows are interleaved
SMOLLM_VOCAB_SIZE = 49152  # SmolLM/SmolLM2's GPT-2 style BPE, pre-tokenized as llama.cpp's "smollm"
LLAMA3_VOCAB_SIZE = 128000  # Llama 3's tiktoken-style BPE (128256 tokens): llama.cpp's "llama-bpe"


@dataclass(frozen=True)
class ModelShape:
    """The hyperparameters of a Hugging Face config.json that a GGUF file needs."""

    model_type: str
    arch: str  # llama.cpp's architecture name
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tied: bool
    config: dict[str, Any]

    @classmethod
    def of(cls, config: dict[str, Any]) -> ModelShape:
        """The shape of a model from its config.json; raises `gguf_unsupported_architecture` outside the Llama
        family (nothing has been written when it does)."""
        model_type = str(config.get("model_type", "?"))
        if model_type not in GGUF_ARCHITECTURES:
            raise EngineError("gguf_unsupported_architecture", {"architecture": model_type,
                                                                "supported": ", ".join(GGUF_ARCHITECTURES)},
                              hint="hint_gguf_architecture")
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        return cls(model_type, GGUF_ARCHITECTURES[model_type], int(config["num_hidden_layers"]), hidden, heads,
                   int(config.get("num_key_value_heads") or heads), int(config.get("head_dim") or hidden // heads),
                   int(config["vocab_size"]), bool(config.get("tie_word_embeddings", False)), config)

    @classmethod
    def of_folder(cls, folder: Path) -> ModelShape:
        """The shape of the model saved in `folder` (its config.json)."""
        return cls.of(json.loads((folder / "config.json").read_text(encoding="utf-8")))

    @property
    def permuted(self) -> bool:
        """Whether llama.cpp expects this architecture's Q and K weights permuted (llama and mistral)."""
        return self.arch in PERMUTED_ARCHITECTURES

    def rope(self) -> dict[str, Any]:
        """The RoPE settings: transformers 5's `rope_parameters`, else the older `rope_scaling` plus `rope_theta`."""
        settings = dict(self.config.get("rope_parameters") or self.config.get("rope_scaling") or {})
        settings.setdefault("rope_theta", self.config.get("rope_theta", 10000.0))
        settings.setdefault("rope_type", settings.get("type") or "default")
        return settings


def write_hyperparameters(writer, shape: ModelShape, file_type: int, name: str) -> None:
    """The architecture's hyperparameters, the file type and the model's name, as llama.cpp reads them."""
    import gguf

    config = shape.config
    writer.add_name(name)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(int(config.get("max_position_embeddings", 4096)))
    writer.add_embedding_length(shape.hidden)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_rope_dimension_count(shape.head_dim)
    if shape.head_dim != shape.hidden // shape.heads:  # e.g. Qwen3-0.6B: 16 heads of 128 in a width of 1024
        writer.add_key_length(shape.head_dim)
        writer.add_value_length(shape.head_dim)
    writer.add_vocab_size(shape.vocab_size)
    write_rope_scaling(writer, shape.rope())


def write_rope_scaling(writer, rope: dict[str, Any]) -> None:
    """RoPE's base frequency and its scaling (linear or YaRN as metadata; Llama 3's as the `rope_freqs` tensor,
    see `llama3_rope_factors`); raises `gguf_unsupported_rope` for a scaling llama.cpp's Llama family lacks."""
    import gguf

    kind = str(rope["rope_type"]).lower()
    if kind not in ("default", "none", "llama3", "linear", "yarn"):
        raise EngineError("gguf_unsupported_rope", {"rope": kind}, hint="hint_gguf_architecture")
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    if kind in ("default", "none", "llama3"):
        return
    writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR if kind == "linear" else gguf.RopeScalingType.YARN)
    writer.add_rope_scaling_factor(float(rope.get("factor", 1.0)))
    if kind == "yarn" and rope.get("original_max_position_embeddings"):
        writer.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))


def llama3_rope_factors(shape: ModelShape) -> list[float] | None:
    """The per-frequency divisors of Llama 3.1's RoPE scaling (llama.cpp's `rope_freqs.weight`, computed as its
    converter does), or None when the model does not use that scaling."""
    rope = shape.rope()
    if str(rope["rope_type"]).lower() != "llama3":
        return None
    factor, low, high = (float(rope.get(key, default)) for key, default in
                         (("factor", 8.0), ("low_freq_factor", 1.0), ("high_freq_factor", 4.0)))
    old_context = float(rope.get("original_max_position_embeddings", 8192))
    factors = []
    for index in range(0, shape.head_dim, 2):
        wavelength = 2 * math.pi * float(rope["rope_theta"]) ** (index / shape.head_dim)
        if wavelength < old_context / high:
            factors.append(1.0)
        elif wavelength > old_context / low:
            factors.append(factor)
        else:
            smooth = (old_context / wavelength - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return factors


def tokenizer_kind(folder: Path) -> str:
    """"gpt2" for a byte-level BPE tokenizer.json (SmolLM, Llama 3, Qwen), "llama" for a BPE with byte fallback
    (a SentencePiece vocabulary converted by transformers: Llama 2, Mistral); raises `gguf_unsupported_tokenizer`."""
    path = folder / "tokenizer.json"
    model = json.loads(path.read_text(encoding="utf-8")).get("model", {}) if path.is_file() else {}
    if model.get("type") == "BPE":
        return "llama" if model.get("byte_fallback") else "gpt2"
    raise EngineError("gguf_unsupported_tokenizer", {"tokenizer": model.get("type") or "-"},
                      hint="hint_gguf_architecture")


def bpe_pre_tokenizer(shape: ModelShape) -> str:
    """llama.cpp's name for the pre-tokenizer of a byte-level BPE vocabulary of this family ("default" when the
    family is not recognised: llama.cpp loads it and warns)."""
    if shape.arch in ("qwen2", "qwen3"):
        return "qwen2"
    if shape.model_type == "mistral" and shape.vocab_size >= LLAMA3_VOCAB_SIZE:
        return "tekken"  # Mistral NeMo's tiktoken-style vocabulary
    if shape.vocab_size >= LLAMA3_VOCAB_SIZE:
        return "llama-bpe"
    return "smollm" if shape.vocab_size == SMOLLM_VOCAB_SIZE else "default"


def write_vocabulary(writer, folder: Path, shape: ModelShape) -> None:
    """The tokenizer saved in `folder` (tokens, types, merges or scores, special ids, chat template)."""
    import gguf

    kind = tokenizer_kind(folder)
    writer.add_tokenizer_model(kind)
    if kind == "gpt2":
        writer.add_tokenizer_pre(bpe_pre_tokenizer(shape))
        tokens, types = bpe_tokens(folder, shape.vocab_size)
    else:
        vocab = gguf.LlamaHfVocab(folder)
        tokens, scores, types = [], [], []
        for text, score, kind_of_token in vocab.all_tokens():
            tokens.append(text)
            scores.append(score)
            types.append(kind_of_token)
        tokens, types = pad_vocabulary(tokens, types, shape.vocab_size)
        writer.add_token_scores(scores + [-1000.0] * (len(tokens) - len(scores)))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(folder, load_merges=kind == "gpt2", n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)


def pad_vocabulary(tokens: list, types: list, size: int) -> tuple[list, list]:
    """The token list filled up to the model's embedding rows with unused `[PADn]` tokens, as llama.cpp does."""
    import gguf

    missing = range(len(tokens), size)
    return tokens + [f"[PAD{i}]" for i in missing], types + [gguf.TokenType.UNUSED] * len(missing)


def bpe_tokens(folder: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Every token of a byte-level BPE tokenizer by id with its type (CONTROL for special added tokens,
    USER_DEFINED for other added ones, NORMAL otherwise), as llama.cpp's converter lists them."""
    import gguf

    tokenizer = loader.auto_class("AutoTokenizer").from_pretrained(folder)
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(max(vocab_size, len(by_id))):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types
