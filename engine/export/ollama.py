"""Ollama's Modelfile beside an exported GGUF (FROM, the chat family's Go TEMPLATE, its stop tokens, the SYSTEM
prompt the model was trained with) and the exact `ollama create` line to copy.

The chat family is read from the adapter's saved chat template (ChatML as SmolLM2 and Qwen use, Llama 3, Mistral);
the templates follow Ollama's own for those families: `.System` first (Mistral's in its first user turn: Ollama
keeps the system messages in `.Messages` too, so the first message is not always a user's), then `.Messages` by
role, ending with the assistant's turn opened (after an empty think block for a template that thinks, as Qwen3's
does when thinking is off). The system prompt is the one every training row shared, else the default one the chat
template adds when a conversation has none (SmolLM2's), so Ollama prompts the model as training did.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.export.source import ExportSource
from engine.system.files import write_text_atomic

MODELFILE = "Modelfile"
PROBE = "\x00probe\x00"  # a user message the default system prompt is found before


@dataclass(frozen=True)
class ChatFamily:
    """One chat format: how its template is recognised, Ollama's Go template for it, its stop tokens, and the
    pattern of a system turn in a rendered prompt."""

    name: str
    marker: str
    template: str
    stops: tuple[str, ...]
    system_turn: str


CHATML = ChatFamily("chatml", "<|im_start|>", """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ .Content }}<|im_end|>
{{ end }}
{{- end }}<|im_start|>assistant
""", ("<|im_end|>", "<|im_start|>"), r"<\|im_start\|>system\n(.*?)<\|im_end\|>")
LLAMA3 = ChatFamily("llama3", "<|start_header_id|>", """{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range .Messages }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}
{{- end }}<|start_header_id|>assistant<|end_header_id|>

""", ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"),
    r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>")
MISTRAL = ChatFamily("mistral", "[INST]", """{{- $system := $.System }}
{{- range .Messages }}
{{- if eq .Role "user" }}[INST] {{ if $system }}{{ $system }}

{{ end }}{{ $system = "" }}{{ .Content }}[/INST]
{{- else if eq .Role "assistant" }} {{ .Content }}</s>
{{- end }}
{{- end }}""", ("[INST]", "[/INST]", "</s>"), r"\[INST\] (.*?)\n\n")
FAMILIES = (CHATML, LLAMA3, MISTRAL)
THINK_MARKER = "<think>"
EMPTY_THINK = "<think>\n\n</think>\n\n"  # what a thinking ChatML template (Qwen3's) opens the answer with, thinking off


def chat_template(adapter_dir: Path) -> str:
    """The chat template saved with the adapter (`chat_template.jinja`, else the tokenizer config's)."""
    saved = adapter_dir / "chat_template.jinja"
    if saved.is_file():
        return saved.read_text(encoding="utf-8")
    config = _tokenizer_config(adapter_dir)
    template = config.get("chat_template")
    return template if isinstance(template, str) else ""


def chat_family(template: str) -> ChatFamily:
    """The chat family whose marker the template uses; `ollama_unknown_template` when none does."""
    for family in FAMILIES:
        if family.marker in template:
            return family
    raise EngineError("ollama_unknown_template", {"families": ", ".join(f.name for f in FAMILIES)},
                      hint="hint_ollama_template")


def go_template(template: str, family: ChatFamily) -> str:
    """Ollama's TEMPLATE for a chat template of `family`: the family's, with the empty think block after the
    final assistant header when a ChatML template thinks (has THINK_MARKER)."""
    if family is CHATML and THINK_MARKER in template:
        return family.template + EMPTY_THINK
    return family.template


def default_system(template: str, family: ChatFamily) -> str:
    """The system prompt the chat template adds to a conversation that has none ("" when it adds none or cannot be
    rendered here: a template that needs the tokenizer's own helpers)."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        rendered = environment.from_string(template).render(
            messages=[{"role": "user", "content": PROBE}], add_generation_prompt=True, bos_token="", eos_token="")
    except (jinja2.TemplateError, TypeError, ValueError):
        return ""
    found = re.search(family.system_turn, rendered.split(PROBE, 1)[0], re.DOTALL)
    return found.group(1).strip() if found else ""


def training_system(source: ExportSource) -> str:
    """The system prompt every example of the run's data starts with ("" when the examples differ, have none, or
    the data is gone or can no longer be read: the Modelfile is written without it)."""
    from engine.data.reading import load_config_dataset

    dataset = source.config.dataset_path
    if not dataset or not Path(dataset).is_file():
        return ""
    try:
        examples = load_config_dataset(source.config).examples
    except (EngineError, OSError):
        return ""
    prompts = {_system_of(example) for example in examples}
    return prompts.pop() if len(prompts) == 1 else ""


def stop_tokens(family: ChatFamily, adapter_dir: Path) -> list[str]:
    """The family's stop tokens, then the tokenizer's end-of-sequence token when it is another."""
    eos = _tokenizer_config(adapter_dir).get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    return [*family.stops, *([eos] if isinstance(eos, str) and eos and eos not in family.stops else [])]


def modelfile(source: ExportSource, gguf_file: Path) -> str:
    """The Modelfile text for `gguf_file` (written beside it): FROM, TEMPLATE, PARAMETER stop, and SYSTEM when the
    model was trained with a system prompt."""
    template = chat_template(source.adapter_dir)
    family = chat_family(template)
    system = training_system(source) or default_system(template, family)
    lines = [f"FROM ./{gguf_file.name}", "", f'TEMPLATE """{go_template(template, family)}"""', ""]
    lines += [f"PARAMETER stop {json.dumps(stop)}" for stop in stop_tokens(family, source.adapter_dir)]
    if system:
        lines += ["", f'SYSTEM """{_quoted(system)}"""']
    return "\n".join(lines) + "\n"


def write_modelfile(source: ExportSource, gguf_file: Path) -> Path:
    """Write the Modelfile into the adapter's export folder (atomically) and return its path."""
    path = source.export_dir / MODELFILE
    write_text_atomic(path, modelfile(source, gguf_file))
    return path


def model_name(name: str) -> str:
    """`name` as Ollama accepts a model name: lower case letters, digits, '.', '_' and '-', starting with a letter
    or digit (anything else becomes '-'); "adapter" when nothing is left."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned).lstrip("._-").rstrip("-")
    return cleaned[:80] or "adapter"


def ollama_command(name: str, modelfile_path: Path) -> str:
    """The exact `ollama create NAME -f PATH` line (the name made acceptable to Ollama, the path shell-quoted)."""
    return f"ollama create {model_name(name)} -f {shlex.quote(str(modelfile_path))}"


def _system_of(example: dict) -> str:
    """The first system message of a TRL example ("" when it starts with none)."""
    prompt = example.get("prompt") or example.get("messages") or []
    first = prompt[0] if isinstance(prompt, list) and prompt else {}
    return str(first.get("content", "")) if isinstance(first, dict) and first.get("role") == "system" else ""


def _tokenizer_config(adapter_dir: Path) -> dict:
    """The adapter folder's tokenizer_config.json ({} when absent)."""
    path = adapter_dir / "tokenizer_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _quoted(text: str) -> str:
    """`text` safe inside a Modelfile's triple quotes."""
    return text.replace('"""', '\\"\\"\\"')
