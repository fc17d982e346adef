"""Hyperparameters tab: presets (shipped and saved), the form generated from TrainConfig, the YAML view."""
from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from engine import presets
from engine.config import TrainConfig
from engine.errors import EngineError
from engine.studio import Studio
from ui import forms, present
from ui.i18n import Texts, t


@dataclass
class ParamsTab:
    names: list[str]
    components: list
    on_load: list = field(default_factory=list)  # (fn, inputs, outputs) to run when the page loads


def preset_choices(studio: Studio) -> list[str]:
    return [""] + [p.name for p in studio.presets()]


def build(studio: Studio, texts: Texts, config: TrainConfig, lang_input: gr.Radio, dataset_path: gr.Textbox) -> ParamsTab:
    texts.add(gr.Markdown(), value="params_intro")
    with gr.Row():
        preset = texts.add(gr.Dropdown(choices=preset_choices(studio), value="", elem_id="preset", scale=3),
                           label="preset", info="preset_info")
        preset_about = gr.Markdown(elem_id="preset-about")
    fields = forms.build_form(config, texts)
    names = list(fields)
    components = [fields[name] for name in names]
    with gr.Row():
        attention_only = texts.add(gr.Button(elem_id="modules-attention", scale=1), value="modules_attention")
        all_linear = texts.add(gr.Button(elem_id="modules-all", scale=1), value="modules_all")
        trainable = gr.Markdown(elem_id="trainable", min_height=40)
    check = texts.add(gr.Button(variant="primary", elem_id="plan-check"), value="plan_check")
    plan_md = gr.Markdown(elem_id="plan")
    with gr.Row():
        new_name = texts.add(gr.Textbox(elem_id="preset-name", scale=2), label="preset_name", info="preset_name_info")
        save = texts.add(gr.Button(elem_id="preset-save", scale=1), value="preset_save")
    with texts.add(gr.Accordion(open=False, elem_id="as-yaml"), label="show_yaml"):
        as_yaml = gr.Code(language="yaml", elem_id="config-yaml")
    with texts.add(gr.Accordion(open=False, elem_id="as-script"), label="as_script"):
        as_script = gr.Code(language="python", elem_id="config-script")

    def current(path: str, values: list) -> TrainConfig:
        config = forms.config_from(studio.default_config(), names, values)
        return config.replace(dataset_path=path.strip()) if path and path.strip() else config

    def apply_preset(lang: str, name: str):
        """Inputs: language, preset name. Outputs: its description and every form field (defaults + preset)."""
        chosen, about = studio.default_config(), ""
        if name:
            try:
                chosen = studio.apply_preset(name, chosen)
                description = presets.load_preset(name).description
                about = description.get(lang) or description.get("en", "")
            except EngineError as error:
                raise gr.Error(present.error_message(error, lang)) from None
        return [about] + forms.values_of(chosen, names)

    def save_preset(lang: str, name: str, *values):
        """Inputs: language, new preset name, form values. Output: the preset list with the new one chosen."""
        try:
            config = forms.config_from(studio.default_config(), names, list(values))
            presets.save_preset(name, config)
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        gr.Info(t("preset_saved", lang, name=name.strip().lower()))
        return gr.Dropdown(choices=preset_choices(studio), value=name.strip().lower())

    def show_config(lang: str, path: str, *values):
        """Inputs: language, dataset path, form values. Outputs: the config as YAML (what config.yaml
        will hold) and as a standalone TRL + PEFT script."""
        from engine.export.script import python_script

        try:
            config = current(path, list(values))
        except EngineError as error:
            message = present.error_message(error, lang)
            return f"# {message}", f"# {message}"
        return config.to_yaml(), python_script(config)

    def check_plan(lang: str, path: str, *values) -> str:
        """Inputs: language, dataset path, form values. Output: problems, advice, memory and time estimate."""
        try:
            return present.plan_markdown(studio.plan(current(path, list(values))), lang)
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None

    def discover_modules(lang: str, model: str, chosen: list[str]):
        """Inputs: language, model, chosen modules. Output: the module checkboxes listing the model's
        own linear layers (kept as they are when the model cannot be inspected offline)."""
        try:
            found = studio.linear_names(model)
        except EngineError:
            return gr.skip()
        choices = ["all-linear"] + found
        return gr.CheckboxGroup(choices=choices, value=[m for m in chosen if m in choices] or ["all-linear"])

    def trainable_text(lang: str, *values) -> str:
        """Inputs: language, form values. Output: trainable parameters and their share of the model."""
        try:
            counts = studio.trainable_parameters(forms.config_from(studio.default_config(), names, list(values)))
        except EngineError:
            return ""
        if counts is None:
            return ""
        count, total = counts
        return t("trainable_line", lang, trainable=f"{count:,}", total=f"{total:,}", pct=100 * count / max(total, 1))

    modules, model = fields["lora_target_modules"], fields["model_name_or_path"]
    attention_only.click(lambda: forms.ATTENTION_MODULES, None, [modules], api_visibility="private")
    all_linear.click(lambda: ["all-linear"], None, [modules], api_visibility="private")
    model.change(discover_modules, [lang_input, model, modules], [modules], api_name="discover_modules")
    for name in ("model_name_or_path", "lora_r", "lora_target_modules", "use_dora"):
        fields[name].change(trainable_text, [lang_input] + components, [trainable], api_visibility="private",
                            show_progress="hidden")
    demo_load_trainable = (trainable_text, [lang_input] + components, [trainable])
    preset.change(apply_preset, [lang_input, preset], [preset_about] + components, api_name="apply_preset")
    save.click(forms.named_form_handler(save_preset, ["lang", "name"], names), [lang_input, new_name] + components,
               [preset], api_name="save_preset")
    for component in components:
        component.change(show_config, [lang_input, dataset_path] + components, [as_yaml, as_script],
                         api_visibility="private", show_progress="hidden")
    check.click(forms.named_form_handler(check_plan, ["lang", "dataset_path"], names),
                [lang_input, dataset_path] + components, [plan_md], api_name="plan")
    return ParamsTab(names=names, components=components, on_load=[demo_load_trainable])
