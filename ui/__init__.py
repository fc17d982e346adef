"""The studio's web UI (Gradio 6). `build_app(studio)` returns the Blocks; it talks only to the engine API."""
from __future__ import annotations

import gradio as gr

from engine import Studio
from ui import chat_tab, dataset_tab, export_tab, forms, params_tab, study_tab, training_tab
from ui.i18n import LANG_CHOICES, Texts
from ui.page import Page

# (element id, label key, module with `build(page)`), in the order the tabs are shown
TABS = (("tab-dataset", "tab_dataset", dataset_tab), ("tab-params", "tab_params", params_tab),
        ("tab-training", "tab_training", training_tab), ("tab-chat", "tab_chat", chat_tab),
        ("tab-study", "tab_study", study_tab), ("tab-export", "tab_export", export_tab))


def build_app(studio: Studio, lang: str = "en", public_url: str | None = None) -> gr.Blocks:
    """Six tabs wired to `studio`, labelled in `lang` with a switch between 中文 and English. `public_url`
    (e.g. `http://192.168.1.20:7860`) is the address raters' invitation links start with; by default, the one the
    organiser's browser used."""
    texts = Texts(lang)
    with gr.Blocks(title="Fine-tuning studio") as demo:
        with gr.Row():
            texts.add(gr.Markdown(), value="title")
            language = texts.add(gr.Radio(choices=LANG_CHOICES, value=lang, elem_id="language", scale=0,
                                          min_width=220), label="language")
        texts.add(gr.Markdown(), value="subtitle")
        page = Page(demo, studio, texts, language, forms.create_form(studio.default_config(), texts), public_url)
        with gr.Tabs():
            for elem_id, label, tab in TABS:
                with texts.add(gr.Tab(elem_id=elem_id), label=label):
                    tab.build(page)
        language.change(texts.updates, [language], texts.components, api_name="set_language")
    return demo
