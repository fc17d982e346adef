"""Hyperparameters tab: a preset picker and the form generated from TrainConfig."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.studio import Studio
from ui import forms, present
from ui.i18n import Texts


@dataclass
class ParamsTab:
    names: list[str]
    components: list


def build(studio: Studio, texts: Texts, config: TrainConfig, lang_input: gr.Radio) -> ParamsTab:
    texts.add(gr.Markdown(), value="params_intro")
    preset_names = [p.name for p in studio.presets()]
    preset = texts.add(gr.Dropdown(choices=[""] + preset_names, value="", elem_id="preset"),
                       label="preset", info="preset_info")
    fields = forms.build_form(config, texts)
    names = list(fields)
    components = [fields[name] for name in names]

    def apply_preset(lang: str, name: str):
        """Inputs: language, preset name. Outputs: every form field, set to the defaults plus the preset."""
        chosen = studio.default_config()
        if name:
            try:
                chosen = studio.apply_preset(name, chosen)
            except EngineError as error:
                raise gr.Error(present.error_message(error, lang)) from None
        return forms.values_of(chosen, names)

    preset.change(apply_preset, [lang_input, preset], components, api_name="apply_preset")
    return ParamsTab(names=names, components=components)
