"""The UI's words come from the engine's catalogue through `ui.i18n`, whose API the tabs rely on."""
from __future__ import annotations

import ast
from pathlib import Path

import gradio as gr
import pytest

from engine import FIELDS, LANGS, render
from ui.i18n import LANG_CHOICES, Texts, field_help, field_label, t

UI = Path(__file__).resolve().parent.parent / "ui"


def test_the_language_switch_lists_every_catalogue_language_by_its_own_name():
    assert LANG_CHOICES == [("中文", "zh"), ("English", "en")]
    assert sorted(value for _name, value in LANG_CHOICES) == sorted(LANGS)


def test_t_words_ui_strings_with_params_and_falls_back_to_engine_codes():
    assert t("title", "en") == "## Fine-tuning studio" and t("title", "zh") == "## 微调工作室"
    assert t("runs_deleted", "zh", run_id="r7") == "训练 r7 已删除。"
    assert t("runs_deleted", "fr", run_id="r7") == "Run r7 deleted."
    assert t("dataset_empty", "zh") == render("dataset_empty", lang="zh") == "数据集中没有任何数据行。"
    assert t("hint_fix_config", "en", row=1) == "Correct the named setting and start again."
    assert t("no_such_key", "zh") == "no_such_key"
    with pytest.raises(KeyError):
        t("runs_deleted", "en", other=1)  # a UI string still needs its params


@pytest.mark.parametrize("lang", LANGS)
def test_every_setting_has_a_label_and_help(lang):
    for name in FIELDS:
        assert field_label(name, lang).strip() and field_help(name, lang).strip()
    assert field_label("lora_r", "zh") == "LoRA 秩 r" and field_help("seed", "en").startswith("Same seed")
    with pytest.raises(KeyError):
        field_label("no_such_field", lang)


def test_texts_reword_registered_components_on_a_switch():
    texts = Texts("en")
    button = texts.add(gr.Button(), value="refresh")
    slider = texts.add_field(gr.Slider(), "lora_r")
    radio = texts.add_choices(gr.Radio(choices=texts.worded_choices([("portal_choice_A", "A")])),
                              [("portal_choice_A", "A")])
    assert button.value == "Refresh" and texts.components == [button, slider, radio]
    updates = texts.updates("zh")
    assert updates[0]["value"] == "刷新"
    assert updates[1]["label"] == "LoRA 秩 r" and updates[1]["info"] == field_help("lora_r", "zh")
    assert updates[2]["choices"] == [("A 更好（1）", "A")]


def _literal_keys(path: Path) -> set[str]:
    """The string keys written literally in `t("key", ...)` and `texts.add(component, prop="key")` calls."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name == "t" and node.args:
            keys.add(node.args[0])
        if name == "add":
            keys.update(keyword.value for keyword in node.keywords)
    return {node.value for node in keys if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@pytest.mark.parametrize("path", sorted(UI.glob("*.py")), ids=lambda path: path.name)
def test_every_key_the_ui_names_is_worded(path):
    missing = {key for key in _literal_keys(path) if t(key, "en") == key}
    assert missing == set(), f"add these keys to engine/locales/*.yaml (ui.<key>): {sorted(missing)}"
