"""The studio's web UI (Gradio 6). `build_app(studio)` returns the Blocks; it talks only to the engine API."""
from __future__ import annotations

import gradio as gr

from engine import Studio
from ui import chat_tab, dataset_tab, export_tab, forms, journey, params_tab, study_tab, system_panel, training_tab
from ui.i18n import LANG_CHOICES, Texts, follow_frontend_locale, t
from ui.page import Page

# the module with `build(page)` of each tab, by tab id (`journey.TAB_STEPS` orders and labels them)
TAB_MODULES = {"tab-dataset": dataset_tab, "tab-params": params_tab, "tab-training": training_tab,
               "tab-chat": chat_tab, "tab-study": study_tab, "tab-export": export_tab}


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
        marks = {mark: gr.State(False) for mark in journey.MARKS}
        with gr.Tabs(elem_id="tabs") as tabs:
            page = Page(demo, studio, texts, language, forms.create_form(studio.default_config(), texts), tabs,
                        marks, public_url)
            shown = []
            for elem_id, label, _mark in journey.TAB_STEPS:
                with gr.Tab(label=t(label, lang), id=elem_id, elem_id=elem_id) as shown_tab:
                    TAB_MODULES[elem_id].build(page)
                shown.append(shown_tab)
        system_panel.build(page)  # the system check, below the tabs
        # on `input`, not `change`: Gradio runs one event's handlers one after another, so the page's words and the
        # tabs are relabelled at once, in their own chain, while the tabs' rewordings (on `change`) follow, gathered
        language.input(texts.updates, [language], texts.components, api_name="set_language", queue=False)
        journey.wire_marks(page, shown)
        follow_frontend_locale(demo, language)
        page.language_switch.wire([language.change], api_name="reword_tabs")
        page.tab_switch.wire([tabs.change], api_name="tab_shown")
    return demo
