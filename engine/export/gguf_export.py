"""GGUF files of a merged model, written in pure Python with the `gguf` package (no compiled llama.cpp): f16, bf16,
q8_0 and q4_0; q4_k_m through a `llama-quantize` binary on PATH (llama.cpp's), from the f16 file.

Tensors stream from the merged safetensors shards to the file one at a time (a 7–8B model is never held twice in
memory). Per tensor: 1-D tensors (norms, biases) stay float32, as llama.cpp keeps them; 2-D weights take the
chosen type, with float16 where a row does not split into 32-value blocks; in q4_0 the token embeddings and the
output head are written in q8_0 (llama.cpp's own q4_0 keeps the head above 4 bits too; in a tied model the
embeddings are the head). Llama/Mistral Q and K weights are permuted into llama.cpp's rotary layout.
"""
from __future__ import annotations

import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.export.gguf_meta import ModelShape, llama3_rope_factors, write_hyperparameters, write_vocabulary
from engine.export.merge import merge_adapter, merged_dir
from engine.export.source import ExportSource, Progress, no_progress
from engine.export.space import ensure_free_space, staged_file
from engine.locales import message_key
from engine.system.threads import on_own_thread

GGUF_TYPES = ("f16", "bf16", "q8_0", "q4_0")  # written by gguf.quants
LLAMA_QUANTIZE_TYPES = ("q4_k_m",)  # written by llama.cpp's llama-quantize from the f16 file
LLAMA_QUANTIZE = "llama-quantize"
QUANTIZE_BITS = {"q4_k_m": 4.9}  # bits per weight of a llama-quantize type (for the free-space check)
BLOCK = 32  # values per block of q8_0 and q4_0
HEAD_TENSORS = ("token_embd.weight", "output.weight")
METADATA_MARGIN = 16 * 2**20  # room for the vocabulary and other metadata


def gguf_types() -> list[str]:
    """The GGUF types this machine can write now: the pure-Python ones, and q4_k_m when llama-quantize is on PATH."""
    return [*GGUF_TYPES, *(LLAMA_QUANTIZE_TYPES if shutil.which(LLAMA_QUANTIZE) else ())]


def check_type(gguf_type: str) -> str:
    """`gguf_type` in lower case; raises `gguf_type_unavailable` (naming the available types) for an unknown type
    or for q4_k_m without llama-quantize on PATH."""
    wanted = str(gguf_type).strip().lower()
    available = gguf_types()
    if wanted not in available:
        hint = "hint_llama_quantize" if wanted in LLAMA_QUANTIZE_TYPES else "hint_gguf_type"
        raise EngineError("gguf_type_unavailable", {"type": wanted, "available": ", ".join(available)}, hint=hint)
    return wanted


def gguf_path(source: ExportSource, gguf_type: str) -> Path:
    """Where the `gguf_type` file of `source` goes: `export_dir/<run id>-<type>.gguf`."""
    return source.export_dir / f"{source.run_id}-{gguf_type}.gguf"


def scaled(progress: Progress, start: float, end: float) -> Progress:
    """`progress` with its fractions mapped into [start, end] (one stage of a longer export)."""
    return lambda code, fraction: progress(code, start + (end - start) * fraction)


@dataclass(frozen=True, eq=False)
class PlannedTensor:
    """One tensor of the file: its GGUF name, shape and type, and where its values come from (a tensor of the
    merged safetensors, or values computed for the file such as `rope_freqs`)."""

    name: str
    shape: tuple[int, ...]
    qtype: Any  # gguf.GGMLQuantizationType
    source_name: str | None = None
    values: Any = None  # numpy array, when not read from the shards

    @property
    def nbytes(self) -> int:
        """The bytes this tensor takes in the file."""
        from gguf.quants import quant_shape_to_byte_shape

        count = 1
        for size in quant_shape_to_byte_shape(self.shape, self.qtype):
            count *= size
        return count


def tensor_type(name: str, shape: tuple[int, ...], gguf_type: str):
    """The GGML type one tensor is written in (this module's docstring says the rules)."""
    from gguf import GGMLQuantizationType as Q

    if len(shape) < 2:
        return Q.F32
    wanted = {"f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[gguf_type]
    if wanted is Q.Q4_0 and name in HEAD_TENSORS:
        wanted = Q.Q8_0
    if wanted in (Q.Q8_0, Q.Q4_0) and shape[-1] % BLOCK:
        return Q.F16
    return wanted


def shard_files(merged: Path) -> list[Path]:
    """The safetensors shards of a merged model folder."""
    return sorted(p for p in merged.glob("*.safetensors") if not p.name.startswith("."))


def plan_tensors(merged: Path, shape: ModelShape, gguf_type: str) -> list[tuple[Path | None, PlannedTensor]]:
    """Every tensor the file will hold, in order, with the shard it is read from; raises `gguf_unknown_tensor`
    for a weight llama.cpp's tensor map does not know (before anything is written)."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[shape.arch.upper()], shape.layers)
    planned: list[tuple[Path | None, PlannedTensor]] = []
    for shard in shard_files(merged):
        with safe_open(shard, framework="pt") as handle:
            for key in handle.keys():
                if key == "lm_head.weight" and shape.tied:
                    continue
                name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise EngineError("gguf_unknown_tensor", {"tensor": key}, hint="hint_gguf_architecture")
                dims = tuple(handle.get_slice(key).get_shape())
                planned.append((shard, PlannedTensor(name, dims, tensor_type(name, dims, gguf_type), key)))
    factors = llama3_rope_factors(shape)
    if factors is not None:
        values = np.asarray(factors, dtype=np.float32)
        planned.append((None, PlannedTensor("rope_freqs.weight", values.shape, gguf.GGMLQuantizationType.F32,
                                            values=values)))
    return planned


def permute_for_llama_cpp(weights, heads: int):
    """Q or K rows (weights or bias) reordered from transformers' rotate-half layout into llama.cpp's interleaved
    one (its converter's `permute`; transformers' GGUF loader reverses it); `heads` is K's KV-head count for K."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def tensor_values(planned: PlannedTensor, handle, shape: ModelShape):
    """The values of one tensor as they go into the file: read, permuted where llama.cpp needs it, quantized."""
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import quantize

    if planned.values is not None:
        return planned.values
    values = handle.get_tensor(planned.source_name).float().numpy()
    if shape.permuted and ".attn_q." in planned.name:
        values = permute_for_llama_cpp(values, shape.heads)
    elif shape.permuted and ".attn_k." in planned.name:
        values = permute_for_llama_cpp(values, shape.kv_heads)
    return values if planned.qtype is Q.F32 else quantize(values, planned.qtype)


def add_tensor_info(writer, planned: PlannedTensor) -> None:
    """Announce one tensor to the writer (name, shape, type, size) before the data section is written."""
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import quant_shape_to_byte_shape

    if planned.qtype is Q.F32:
        writer.add_tensor_info(planned.name, planned.shape, np.dtype(np.float32), planned.nbytes)
    elif planned.qtype is Q.F16:
        writer.add_tensor_info(planned.name, planned.shape, np.dtype(np.float16), planned.nbytes)
    else:
        writer.add_tensor_info(planned.name, quant_shape_to_byte_shape(planned.shape, planned.qtype),
                               np.dtype(np.uint8), planned.nbytes, raw_dtype=planned.qtype)


def file_type(gguf_type: str) -> int:
    """llama.cpp's `general.file_type` number of a GGUF type."""
    from gguf import LlamaFileType as F

    return int({"f16": F.MOSTLY_F16, "bf16": F.MOSTLY_BF16, "q8_0": F.MOSTLY_Q8_0, "q4_0": F.MOSTLY_Q4_0}[gguf_type])


def write_gguf(merged: Path, target: Path, gguf_type: str, name: str, progress: Progress = no_progress) -> Path:
    """Write the merged model folder `merged` as one GGUF file `target` of `gguf_type` (free space checked first,
    written under a temporary name, tensors streamed one at a time with progress per tensor)."""
    import gguf
    from safetensors import safe_open

    shape = ModelShape.of_folder(merged)
    planned = plan_tensors(merged, shape, gguf_type)
    ensure_free_space(target.parent, sum(tensor.nbytes for _shard, tensor in planned) + METADATA_MARGIN)
    with staged_file(target) as staging, ExitStack() as files:
        writer = gguf.GGUFWriter(staging, shape.arch)
        write_hyperparameters(writer, shape, file_type(gguf_type), name)
        write_vocabulary(writer, merged, shape)
        for _shard, tensor in planned:
            add_tensor_info(writer, tensor)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        handles = {shard: files.enter_context(safe_open(shard, framework="pt")) for shard in shard_files(merged)}
        for index, (shard, tensor) in enumerate(planned):
            writer.write_tensor_data(tensor_values(tensor, handles.get(shard), shape))
            progress(message_key("gguf_step_tensors"), (index + 1) / len(planned))
        writer.close()
    return target


def quantize_with_llama(source: ExportSource, gguf_type: str, progress: Progress) -> Path:
    """A llama-quantize type (q4_k_m) made by the `llama-quantize` binary on PATH from the f16 file (written first
    when missing); raises `gguf_quantize_failed` with the tool's last words when it fails."""
    f16 = gguf_path(source, "f16")
    if not f16.is_file():
        export_gguf(source, "f16", progress=scaled(progress, 0.0, 0.6))
    target = gguf_path(source, gguf_type)
    ensure_free_space(target.parent, int(f16.stat().st_size * QUANTIZE_BITS[gguf_type] / 16))
    progress(message_key("gguf_step_llama_quantize"), 0.6)
    with staged_file(target) as staging:
        done = subprocess.run([shutil.which(LLAMA_QUANTIZE) or LLAMA_QUANTIZE, str(f16), str(staging),
                               gguf_type.upper()], capture_output=True, text=True)
        if done.returncode != 0 or not staging.is_file():
            said = (done.stderr or done.stdout).strip().splitlines()
            raise EngineError("gguf_quantize_failed", {"type": gguf_type, "exit": done.returncode,
                                                       "detail": said[-1][:200] if said else "-"},
                              hint="hint_llama_quantize")
    progress(message_key("gguf_step_done"), 1.0)
    return target


@on_own_thread  # torch work off the web server's long-lived threads
def export_gguf(source: ExportSource, gguf_type: str, *, progress: Progress = no_progress) -> Path:
    """Write `source`'s model as a `gguf_type` GGUF file in its export folder and return its path; merges first
    when `merged/` is missing. Refuses an unavailable type (`gguf_type_unavailable`) and an architecture outside
    the Llama family (`gguf_unsupported_architecture`) before anything is written."""
    gguf_type = check_type(gguf_type)
    ModelShape.of_folder(source.base_folder())
    if gguf_type in LLAMA_QUANTIZE_TYPES:
        return quantize_with_llama(source, gguf_type, progress)
    merged = merged_dir(source)
    if not (merged / "config.json").is_file():
        merge_adapter(source, progress=scaled(progress, 0.0, 0.5))
        progress = scaled(progress, 0.5, 1.0)
    written = write_gguf(merged, gguf_path(source, gguf_type), gguf_type, source.run_id, progress)
    progress(message_key("gguf_step_done"), 1.0)
    return written
