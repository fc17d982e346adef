"""The studio's web UI (Gradio 6). `build_app(studio)` returns the Blocks; it talks only to the engine API."""
from __future__ import annotations

import gradio as gr

from engine.studio import Studio
from ui import chat_tab, dataset_tab, params_tab, study_tab, training_tab
from ui.i18n import LANG_CHOICES, Texts


def build_app(studio: Studio, lang: str = "en") -> gr.Blocks:
    """Four tabs wired to `studio`, labelled in `lang` with a switch between 中文 and English."""
    config = studio.default_config()
    texts = Texts(lang)
    with gr.Blocks(title="Fine-tuning studio") as demo:
        with gr.Row():
            texts.add(gr.Markdown(), value="title")
            language = texts.add(gr.Radio(choices=LANG_CHOICES, value=lang, elem_id="language", scale=0,
                                          min_width=220), label="language")
        texts.add(gr.Markdown(), value="subtitle")
        with gr.Tabs():
            with texts.add(gr.Tab(elem_id="tab-dataset"), label="tab_dataset"):
                data = dataset_tab.build(studio, texts, language, config.dataset_path)
            with texts.add(gr.Tab(elem_id="tab-params"), label="tab_params"):
                params = params_tab.build(studio, texts, config, language, data.path)
            data.wire(params.names, params.components)
            with texts.add(gr.Tab(elem_id="tab-training"), label="tab_training"):
                training_tab.build(demo, studio, texts, language, data.path, params.names, params.components)
            with texts.add(gr.Tab(elem_id="tab-chat"), label="tab_chat"):
                chat_tab.build(demo, studio, texts, language)
            with texts.add(gr.Tab(elem_id="tab-study"), label="tab_study"):
                study_tab.build(demo, studio, texts, language)
        for fn, inputs, outputs in params.on_load:
            demo.load(fn, inputs, outputs, api_visibility="private")
        language.change(texts.updates, [language], texts.components, api_name="set_language")
    return demo
