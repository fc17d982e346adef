"""Ollama's Modelfile per chat family (FROM, TEMPLATE, stop tokens, SYSTEM) and the `ollama create` line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.export import ollama
from engine.export.ollama import chat_family, model_name, modelfile, ollama_command, write_modelfile
from engine.locales import render
from engine.models import loader
from tests.go_template import ollama_prompt
from tests.share_fixtures import bundled_folder, make_run

LLAMA3_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                   "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
MISTRAL_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}"
                    "{% endif %}{% endfor %}")
GGUF = Path("/somewhere/20260101-120000-q8_0.gguf")


def lines_of(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def template_of(text: str) -> str:
    return text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]


CHAT = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]


def test_smollm2s_chatml_modelfile(tmp_path):
    text = modelfile(make_run(tmp_path), GGUF)
    assert text.splitlines()[0] == "FROM ./20260101-120000-q8_0.gguf"
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert "{{ .System }}" in template and "{{- range .Messages }}" in template
    assert '{{- if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n' in template
    assert template.endswith("<|im_start|>assistant\n")  # the prompt ends with the assistant's turn opened
    assert lines_of(text, "PARAMETER stop") == ['PARAMETER stop "<|im_end|>"', 'PARAMETER stop "<|im_start|>"']
    # SmolLM2's chat template adds its own system prompt when a conversation has none: Ollama gets the same one
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text


def test_the_datas_shared_system_prompt_becomes_system(tmp_path):
    rows = [{"instruction": f"Q{i}", "output": "A", "system": 'Answer as "Orchard Lane" support.'} for i in range(3)]
    text = modelfile(make_run(tmp_path, rows=rows), GGUF)
    assert lines_of(text, "SYSTEM") == ['SYSTEM """Answer as "Orchard Lane" support."""']


def test_llama3s_modelfile(tmp_path):
    text = modelfile(make_run(tmp_path, chat_template=LLAMA3_TEMPLATE), GGUF)
    assert "<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>" in text
    assert lines_of(text, "PARAMETER stop")[:3] == ['PARAMETER stop "<|eot_id|>"',
                                                    'PARAMETER stop "<|start_header_id|>"',
                                                    'PARAMETER stop "<|end_header_id|>"']
    assert 'PARAMETER stop "<|im_end|>"' in text  # the tokenizer's own end-of-sequence token is kept
    assert lines_of(text, "SYSTEM") == []  # this template adds no system prompt of its own


def test_mistrals_modelfile(tmp_path):
    source = make_run(tmp_path, chat_template=MISTRAL_TEMPLATE)
    config = json.loads((source.adapter_dir / "tokenizer_config.json").read_text())
    (source.adapter_dir / "tokenizer_config.json").write_text(json.dumps({**config, "eos_token": "</s>"}))
    text = modelfile(source, GGUF)
    assert "[INST] {{ if $system }}{{ $system }}" in text and "{{ .Content }}[/INST]" in text
    assert lines_of(text, "PARAMETER stop") == ['PARAMETER stop "[INST]"', 'PARAMETER stop "[/INST]"',
                                                'PARAMETER stop "</s>"']


def test_mistrals_system_prompt_opens_the_first_user_turn_as_ollama_renders_it(tmp_path):
    template = template_of(modelfile(make_run(tmp_path, chat_template=MISTRAL_TEMPLATE), GGUF))
    # Ollama puts the Modelfile's SYSTEM first in .Messages, so the first message is the system's, not a user's
    assert ollama_prompt(template, CHAT, system="Be brief.") == "[INST] Be brief.\n\nQ1[/INST] A1</s>[INST] Q2[/INST]"
    asked = [{"role": "system", "content": "Be kind."}, *CHAT]
    assert ollama_prompt(template, asked, system="Be brief.").startswith("[INST] Be kind.\n\nQ1[/INST]")
    assert ollama_prompt(template, CHAT) == "[INST] Q1[/INST] A1</s>[INST] Q2[/INST]"


@pytest.mark.parametrize("chat_template", [None, LLAMA3_TEMPLATE])
def test_ollama_prompts_the_model_as_its_chat_template_does(tmp_path, chat_template):
    source = make_run(tmp_path, chat_template=chat_template)
    tokenizer = loader.load_tokenizer(source.adapter_dir)
    chat = [{"role": "system", "content": "Be brief."}, *CHAT]
    expected = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    rendered = ollama_prompt(template_of(modelfile(source, GGUF)), chat)
    bos = tokenizer.bos_token if "bos_token" in (chat_template or "") else ""  # Ollama's runner adds it itself
    assert rendered == expected.removeprefix(bos)


def test_a_thinking_chatml_template_opens_the_answer_with_an_empty_think_block(tmp_path):
    thinking = (bundled_folder() / "chat_template.jinja").read_text(encoding="utf-8") + "{# <think> #}"
    template = template_of(modelfile(make_run(tmp_path, chat_template=thinking), GGUF))
    assert ollama_prompt(template, CHAT[:1]).endswith("<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n"
                                                      "<think>\n\n</think>\n\n")
    assert not template_of(modelfile(make_run(tmp_path / "plain"), GGUF)).endswith("</think>\n\n")


def test_an_unreadable_dataset_leaves_the_system_prompt_out_rather_than_the_modelfile(tmp_path, monkeypatch):
    source = make_run(tmp_path, rows=[{"instruction": "Q", "output": "A", "system": "Be brief."}])

    def unreadable(_config):
        raise EngineError("dataset_unreadable", {"path": "my_data.jsonl", "reason": "encrypted"})

    monkeypatch.setattr("engine.data.reading.load_config_dataset", unreadable)
    assert ollama.training_system(source) == ""
    assert modelfile(source, GGUF).splitlines()[0] == "FROM ./20260101-120000-q8_0.gguf"


def test_an_unknown_template_is_worded(tmp_path):
    source = make_run(tmp_path, chat_template="{% for m in messages %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(EngineError) as raised:
        modelfile(source, GGUF)
    assert raised.value.code == "ollama_unknown_template" and raised.value.hint == "hint_ollama_template"
    for lang in ("en", "zh"):
        assert "chatml, llama3, mistral" in render(raised.value.code, raised.value.params, lang)


def test_the_family_is_read_from_the_template():
    assert chat_family("<|im_start|>user").name == "chatml"
    assert chat_family(LLAMA3_TEMPLATE).name == "llama3"
    assert chat_family(MISTRAL_TEMPLATE).name == "mistral"


def test_the_modelfile_is_written_beside_the_exports(tmp_path):
    source = make_run(tmp_path)
    gguf = source.export_dir / "20260101-120000-f16.gguf"
    path = write_modelfile(source, gguf)
    assert path == source.export_dir / "Modelfile"
    assert path.read_text(encoding="utf-8") == modelfile(source, gguf)
    assert sorted(p.name for p in path.parent.iterdir()) == ["Modelfile"]


@pytest.mark.parametrize("name, expected", [("20260101-120000", "20260101-120000"), ("My Run: v2!", "my-run-v2"),
                                            ("--_x__", "x__"), ("客服", "adapter"), ("a" * 100, "a" * 80)])
def test_names_are_made_acceptable_to_ollama(name, expected):
    assert model_name(name) == expected


def test_the_create_command_quotes_the_path():
    assert ollama_command("Run 1", Path("/runs/a b/Modelfile")) == "ollama create run-1 -f '/runs/a b/Modelfile'"
    assert ollama_command("x", Path("/runs/Modelfile")) == "ollama create x -f /runs/Modelfile"
