"""Export a run as a standalone Python script: plain TRL + PEFT + transformers + datasets.

The script is `train_lora.py` next to this module, a template that is valid Python (tests import and
lint it). Exporting rewrites only its settings block, with the run's values computed by the engine's
own factories (`sft_settings`, `lora_settings`, `quantization_settings`: the one table of SFT fields
serves both), and copies the studio code it imports into the file verbatim (a copied module's own
imports join the script's import block): `engine.data.convert` whole (format detection, column
mapping, rows into TRL examples, how many rows are held out and mixed in), `engine.data.encoding` whole (the
encoding and CSV delimiter, detected as the studio does), `engine.data.plain_text` whole (a .txt/.md file's
chunks), `splits.examples_dataset` (the `datasets` columns, tool calls kept as JSON), `loader.ready_tokenizer`,
`factories.resolve_dtype` (the weights' dtype) and `factories.trainer_class` (the CPU's full-logits
loss). So the result is ONE self-contained file (one text to show and save) that a programmer colleague
runs without the studio, and it cannot convert a row, count the held-out or mixed-in rows, choose the
dtype, load the tokenizer or set SFT/LoRA/quantization arguments differently from the studio.

The few lines of glue that need a third-party library stay the template's own, held equal to the
engine's by tests/test_script_export.py: `read_rows` (reading.read_rows: file types into rows; test
`test_the_scripts_conversion_equals_the_engines_row_by_row`), `split` and `mix_in` (splits.build_splits:
the `datasets` shuffles; `test_split_and_mix_match_the_studio`) and `model_kwargs`
(factories.model_kwargs: the BitsAndBytesConfig and device map; `test_model_kwargs_match_engine_build`).
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Any

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.models.loader import FALLBACK_CHAT_TEMPLATE, is_bundled
from engine.training import factories

SCRIPT_NAME = "train_lora.py"
TEMPLATE = Path(__file__).with_name(SCRIPT_NAME)
SETTINGS_START = "# ---- settings (written by the studio's exporter) "
SETTINGS_END = "# ---- end of settings "
MAIN_GUARD = 'if __name__ == "__main__":'
# Copied whole: their names depend on each other.
WHOLE_MODULES = {"engine.data.convert", "engine.data.encoding", "engine.data.plain_text"}
LINE_LENGTH = 120
# A comment above some settings, by the setting's name.
COMMENTS = {
    "ENCODING": "The dataset file's text encoding and CSV delimiter, as the studio read it (auto: detected).",
    "SFT_ON_CHOSEN": "For a preference file (chosen/rejected): train on each prompt with its chosen answer.",
    "MIX_DATASET": "A second dataset mixed into the training rows (empty: none), MIX_RATIO times as many as train.",
    "EVAL_SPLIT": "The share of rows held out for evaluation (EVAL_ROWS > 0 holds out that many instead).",
    "EARLY_STOPPING_PATIENCE": "Stop after this many evaluations without a better eval loss (0: off).",
    "DTYPE": "The weights' dtype: auto is bfloat16 (float16 without bf16 support) on CUDA, float32 on a CPU.",
    "QUANTIZATION": "BitsAndBytesConfig arguments for 4-bit or 8-bit loading (None: not quantized).",
    "SFT": "SFTConfig arguments with an eval split held out (output_dir and use_cpu are set when the script runs).",
    "SFT_WITHOUT_EVAL": "What changes in SFT when nothing is held out for evaluation.",
    "FALLBACK_CHAT_TEMPLATE": "The chat template for a tokenizer that has none.",
}


def python_script(config: TrainConfig, output_dir: str = "output") -> str:
    """The script's source text for `config`; the adapter goes to `output_dir`/adapter."""
    source = TEMPLATE.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(SETTINGS_START))
    end = next(i for i, line in enumerate(lines) if line.startswith(SETTINGS_END))
    studio = _studio_imports(source)
    copies = [_copied(module, names) for module, names in studio.values() if names]
    own = [node for node in ast.parse(source).body if _plain_import(node) and node.lineno <= start]
    first, last = own[0].lineno, own[-1].end_lineno
    block = _import_block(own + [node for _code, hoisted in copies for node in hoisted])
    gap = min(studio) - 1  # the blank line between the script's imports and the studio's goes with the latter
    head = [block if number == first else line for number, line in enumerate(lines[:start + 1], start=1)
            if number not in studio and not first < number <= last and not (number == gap and not line.strip())]
    copied = "".join(code for code, _hoisted in copies)
    tail = "".join(lines[end:])
    return "".join(head) + settings_block(config, output_dir) + tail.replace(MAIN_GUARD, copied + MAIN_GUARD)


def settings(config: TrainConfig, output_dir: str = "output") -> dict[str, Any]:
    """The values of the script's settings block, by name (the factories' arguments for `config`)."""
    with_eval = factories.sft_settings(config, has_eval=True)
    without_eval = factories.sft_settings(config, has_eval=False)
    return {
        "MODEL": _model_source(config.model_name_or_path)[0],
        "DATASET": _local_path(config.dataset_path),
        "OUTPUT_DIR": str(output_dir),
        "ENCODING": config.dataset_encoding,
        "DELIMITER": config.dataset_delimiter,
        "SFT_ON_CHOSEN": config.sft_on_chosen,
        "MIX_DATASET": _local_path(config.mix_dataset_path),
        "MIX_RATIO": config.mix_ratio,
        "EVAL_SPLIT": config.eval_split,
        "EVAL_ROWS": config.eval_rows,
        "SEED": config.seed,
        "EARLY_STOPPING_PATIENCE": config.early_stopping_patience,
        "DTYPE": config.dtype,
        "QUANTIZATION": factories.quantization_settings(config),
        "LORA": factories.lora_settings(config),
        "SFT": with_eval,
        "SFT_WITHOUT_EVAL": {name: value for name, value in without_eval.items() if with_eval[name] != value},
        "FALLBACK_CHAT_TEMPLATE": FALLBACK_CHAT_TEMPLATE,
    }


def settings_block(config: TrainConfig, output_dir: str = "output") -> str:
    """The lines between the template's settings markers: a title, the model's note, then one setting a line."""
    model, note = _model_source(config.model_name_or_path)
    lines = [f"# LoRA fine-tuning of {model} on {Path(config.dataset_path).name or 'a dataset'}.", *note]
    for name, value in settings(config, output_dir).items():
        if name in COMMENTS:
            lines.append(f"# {COMMENTS[name]}")
        lines.append(f"{name} = {_literal(value, len(name) + 3)}")
    return "\n".join(lines) + "\n"


def _studio_imports(source: str) -> dict[int, tuple[str, list[str]]]:
    """The template's lines that import the studio, by line number: (module, names) on an import's first line,
    (module, []) on its other lines and on the comment line right above."""
    found: dict[int, tuple[str, list[str]]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "engine":
            found[node.lineno] = (node.module, [alias.name for alias in node.names])
            found.update({number: (node.module, []) for number in range(node.lineno + 1, node.end_lineno + 1)})
    lines = source.splitlines()
    first = min(found)
    if lines[first - 2].startswith("#"):
        found[first - 1] = ("", [])
    return found


def _copied(module_name: str, names: list[str]) -> tuple[str, list[ast.stmt]]:
    """The studio code an import brings in, verbatim, under a heading that says where it comes from, and
    the top-level imports taken out of it (they go to the script's import block)."""
    module = importlib.import_module(module_name)
    path = module_name.replace(".", "/") + ".py"
    if module_name in WHOLE_MODULES:
        heading, code = path, inspect.getsource(module)
    else:
        heading = f"{path}: {', '.join(names)}"
        code = "\n\n".join(inspect.getsource(getattr(module, name)) for name in names)
    hoisted = [node for node in ast.parse(code).body if isinstance(node, (ast.Import, ast.ImportFrom))]
    taken = {number for node in hoisted for number in range(node.lineno, node.end_lineno + 1)}
    kept = "".join(line for number, line in enumerate(code.splitlines(keepends=True), start=1) if number not in taken)
    return f"# ---- copied verbatim from the studio: {heading} ----\n{kept}\n\n", hoisted


def _plain_import(node: ast.stmt) -> bool:
    """Whether `node` is a top-level import of the script's own block: not `__future__`, not the studio."""
    if isinstance(node, ast.Import):
        return True
    return isinstance(node, ast.ImportFrom) and node.module != "__future__" and node.module.split(".")[0] != "engine"


def _import_block(statements: list[ast.stmt]) -> str:
    """The import statements as one block in ruff's (isort's) order: `import x` lines, then `from x import`
    lines, each by module, names merged per module (constants, classes, then the rest), wrapped at 120."""
    plain: set[str] = set()
    members: dict[str, set[str]] = {}
    for node in statements:
        names = {alias.name + (f" as {alias.asname}" if alias.asname else "") for alias in node.names}
        if isinstance(node, ast.Import):
            plain |= names
        elif node.module != "__future__":
            members.setdefault(node.module, set()).update(names)
    lines = [f"import {name}\n" for name in sorted(plain, key=str.lower)]
    for module in sorted(members, key=str.lower):
        names = sorted(members[module], key=lambda name: (not name.isupper(), not name[:1].isupper(), name))
        line = f"from {module} import {', '.join(names)}\n"
        if len(line) > LINE_LENGTH + 1:
            line = f"from {module} import (\n" + "".join(f"    {name},\n" for name in names) + ")\n"
        lines.append(line)
    return "".join(lines)


def _model_source(name: str) -> tuple[str, list[str]]:
    """The model id or path the script loads, and the comment lines above it."""
    if is_bundled(name):
        return BUNDLED_MODEL_ID, [
            "# The studio's bundled model. Its id is also a Hugging Face hub id, so this downloads it on the",
            "# first run; offline, pass --model with a local folder (config.json + safetensors + tokenizer),",
            "# e.g. the studio's converted copy under ~/.cache/finetune-studio/models/."]
    if name.lower().endswith(".gguf"):
        return _local_path(name), [
            "# A .gguf file: transformers cannot train a GGUF checkpoint directly. Pass --model with a",
            "# converted folder (the studio keeps one under ~/.cache/finetune-studio/models/)."]
    if Path(name).expanduser().exists():
        return _local_path(name), ["# A local model folder; --model points elsewhere."]
    return name, ["# A Hugging Face hub id (downloaded on the first run); --model points at a local folder instead."]


def _local_path(path: str) -> str:
    """An existing local path made absolute, so the script runs from any folder; anything else as is."""
    if path and Path(path).expanduser().exists():
        return str(Path(path).expanduser().resolve())
    return path


def _literal(value: Any, indent: int = 0) -> str:
    """`value` as Python source: dicts one entry a line, strings in double quotes, long strings in parts."""
    if isinstance(value, dict):
        return "{\n" + "".join(f"    {_literal(key)}: {_literal(item)},\n" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if not isinstance(value, str):
        return repr(value)
    if indent + len(_quoted(value)) <= LINE_LENGTH:
        return _quoted(value)
    return "(\n" + "".join(f"    {_quoted(part)}\n" for part in _parts(value, LINE_LENGTH - 4)) + ")"


def _quoted(text: str) -> str:
    """A string literal, in double quotes unless the text holds one."""
    literal = repr(text)
    return '"' + literal[1:-1] + '"' if literal.startswith("'") and '"' not in text else literal


def _parts(text: str, width: int) -> list[str]:
    """`text` cut into pieces whose literals fit in `width`, each ending a word where one ends near its end."""
    parts = []
    while text:
        size = len(text)
        while size > 1 and len(_quoted(text[:size])) > width:
            size -= 1
        if size < len(text):
            size = next((cut for cut in range(size, size // 2, -1) if _ends_a_word(text, cut)), size)
        parts.append(text[:size])
        text = text[size:]
    return parts


def _ends_a_word(text: str, cut: int) -> bool:
    """Whether cutting `text` before index `cut` ends a word: after a space, or after a run of closing braces."""
    return text[cut - 1] == " " or (text[cut - 1] == "}" and text[cut] != "}")
