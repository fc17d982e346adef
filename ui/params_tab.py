"""Hyperparameters tab: presets (shipped and saved), the form generated from TrainConfig, the YAML view."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import EngineError, Studio, render_error
from ui import forms, journey, model_picker, present
from ui.i18n import Texts, t
from ui.page import Page
from ui.wiring import bind, worded_errors

# Changing one of these changes how many parameters the adapter trains.
TRAINABLE_FIELDS = ("model_name_or_path", "lora_r", "lora_target_modules", "use_dora")


@dataclass
class ParamsView:
    """The Hyperparameters tab's components that handlers fill (plain names in tests)."""

    preset: Any
    about: Any
    fields: dict[str, Any]  # the form: field name -> its input (handlers fill them from a preset)
    trainable: Any
    plan: Any
    as_yaml: Any
    as_script: Any
    settled: Any = None  # the page's "settings checked" mark (session state): whether the last check found no errors

    @property
    def form(self) -> list[str]:
        """The form's field names, in the order of the values handlers receive (as `DatasetView.form`)."""
        return list(self.fields)

    @property
    def modules(self) -> Any:
        """The form's LoRA target modules input (`lora_target_modules`)."""
        return self.fields["lora_target_modules"]


def preset_choices(studio: Studio) -> list[str]:
    """The preset picker's choices: none, then every shipped and saved preset."""
    return [""] + [p.name for p in studio.presets()]


@worded_errors
def apply_preset(studio: Studio, view: ParamsView, lang: str, name: str) -> dict:
    """Inputs: language, preset name. Outputs: its description and every form field (defaults + preset)."""
    chosen = studio.apply_preset(name, studio.default_config()) if name else studio.default_config()
    return {**describe_preset(studio, view, lang, name),
            **dict(zip(view.fields.values(), forms.values_of(chosen, view.form)))}


@worded_errors
def describe_preset(studio: Studio, view: ParamsView, lang: str, name: str) -> dict:
    """Inputs: language, preset name. Output: its description in the language (empty without a preset)."""
    return {view.about: studio.preset_description(name, lang) if name else ""}


@worded_errors
def save_preset(studio: Studio, view: ParamsView, lang: str, name: str, *values) -> dict:
    """Inputs: language, new preset name, the form's values (one per field). Output: the preset picker with
    the new preset chosen."""
    saved = studio.save_preset(name or "", forms.config_of(studio, view.form, values))
    gr.Info(t("preset_saved", lang, name=saved))
    return {view.preset: gr.Dropdown(choices=preset_choices(studio), value=saved)}


def show_config(studio: Studio, view: ParamsView, lang: str, dataset_path: str, *values) -> dict:
    """Inputs: language, dataset path, the form's values. Outputs: the config as YAML (what config.yaml will
    hold) and as a standalone TRL + PEFT script; a commented message when a field does not fit."""
    try:
        config = forms.config_of(studio, view.form, values, dataset_path or "")
    except EngineError as error:
        message = f"# {render_error(error, lang)}"
        return {view.as_yaml: message, view.as_script: message}
    return {view.as_yaml: config.to_yaml(), view.as_script: studio.training_script(config)}


@worded_errors
def check_plan(studio: Studio, view: ParamsView, lang: str, dataset_path: str, *values) -> dict:
    """Inputs: language, dataset path, the form's values (one per field). Output: problems, advice, memory and
    time estimate (and the page's "settings checked" mark: no errors)."""
    config = forms.config_of(studio, view.form, values, dataset_path or "")
    plan = studio.plan(config)
    mark = {view.settled: not plan.errors} if view.settled is not None else {}
    return {view.plan: present.plan_markdown(plan, lang), **mark}


def discover_modules(studio: Studio, view: ParamsView, lang: str, model: str, chosen: list[str]) -> dict:
    """Inputs: language, model, chosen modules. Output: the module checkboxes listing the model's own linear
    layers (kept as they are when the model cannot be inspected offline)."""
    try:
        found = studio.linear_names(model)
    except EngineError:
        return {view.modules: gr.skip()}
    choices = ["all-linear"] + found
    kept = [module for module in (chosen or []) if module in choices] or ["all-linear"]
    return {view.modules: gr.CheckboxGroup(choices=choices, value=kept)}


def trainable_text(studio: Studio, view: ParamsView, lang: str, *values) -> dict:
    """Inputs: language, the form's values. Output: trainable parameters and their share of the model (empty
    when the settings do not fit or the model is unknown)."""
    try:
        counts = studio.trainable_parameters(forms.config_of(studio, view.form, values))
    except EngineError:
        counts = None
    if counts is None:
        return {view.trainable: ""}
    count, total = counts
    line = t("trainable_line", lang, trainable=f"{count:,}", total=f"{total:,}", pct=100 * count / max(total, 1))
    return {view.trainable: line}


def attention_only(studio: Studio, view: ParamsView, lang: str) -> dict:
    """Input: language. Output: the module checkboxes with the attention projections chosen."""
    return {view.modules: forms.ATTENTION_MODULES}


def all_linear(studio: Studio, view: ParamsView, lang: str) -> dict:
    """Input: language. Output: the module checkboxes with every linear layer chosen."""
    return {view.modules: ["all-linear"]}


def build(page: Page) -> None:
    """Lay out the Hyperparameters tab (presets, the form, modules, the check, YAML and script) and wire it."""
    texts, studio = page.texts, page.studio
    texts.add(gr.Markdown(), value="params_intro")
    with gr.Row():
        preset = texts.add(gr.Dropdown(choices=preset_choices(studio), value="", elem_id="preset", scale=3),
                           label="preset", info="preset_info")
        about = gr.Markdown(elem_id="preset-about")
    forms.render_fields(page.form, texts)
    model_picker.build(page)  # under the base-model field: recommended models, downloads
    with gr.Row():
        attention = texts.add(gr.Button(elem_id="modules-attention", scale=1), value="modules_attention")
        linear = texts.add(gr.Button(elem_id="modules-all", scale=1), value="modules_all")
        trainable = gr.Markdown(elem_id="trainable", min_height=40)
    check = texts.add(gr.Button(variant="primary", elem_id="plan-check"), value="plan_check")
    plan = gr.Markdown(elem_id="plan")
    with gr.Row():
        new_name = texts.add(gr.Textbox(elem_id="preset-name", scale=2), label="preset_name", info="preset_name_info")
        save = texts.add(gr.Button(elem_id="preset-save", scale=1), value="preset_save")
    as_yaml, as_script = _exports(texts)
    journey.next_button(page, "tab-training", "next_to_training", "next-training")
    view = ParamsView(preset=preset, about=about, fields=page.form.fields, trainable=trainable, plan=plan,
                      as_yaml=as_yaml, as_script=as_script, settled=page.marks["settings"])
    _wire(page, view, attention, linear, check, new_name, save)


def _exports(texts: Texts) -> tuple[gr.Code, gr.Code]:
    """The closed accordions showing the config as YAML and as a script."""
    with texts.add(gr.Accordion(open=False, elem_id="as-yaml"), label="show_yaml"):
        as_yaml = gr.Code(language="yaml", elem_id="config-yaml")
    with texts.add(gr.Accordion(open=False, elem_id="as-script"), label="as_script"):
        as_script = gr.Code(language="python", elem_id="config-script")
    return as_yaml, as_script


def _wire(page: Page, view: ParamsView, attention: gr.Button, linear: gr.Button, check: gr.Button,
          new_name: gr.Textbox, save: gr.Button) -> None:
    """Connect the tab's events to its handlers."""
    studio, lang, form = page.studio, page.language, page.form
    names, values, path = form.names, form.components, form.dataset_path
    attention.click(bind(attention_only, studio, view), [lang], [view.modules], api_visibility="private")
    linear.click(bind(all_linear, studio, view), [lang], [view.modules], api_visibility="private")
    model = view.fields["model_name_or_path"]
    model.change(bind(discover_modules, studio, view), [lang, model, view.modules], [view.modules],
                 api_name="discover_modules")
    counting = bind(trainable_text, studio, view)
    recount = [page.demo.load] + [view.fields[name].change for name in TRAINABLE_FIELDS]
    gr.on(recount, counting, [lang] + values, [view.trainable], api_visibility="private", show_progress="hidden",
          trigger_mode="always_last")  # a slider dragged on: count its final value
    page.language_switch.add(counting, [lang] + values, [view.trainable])
    view.preset.change(bind(apply_preset, studio, view), [lang, view.preset], [view.about] + values,
                       api_name="apply_preset")
    page.language_switch.add(bind(describe_preset, studio, view), [lang, view.preset], [view.about])
    save.click(bind(save_preset, studio, view, fields=names), [lang, new_name] + values, [view.preset],
               api_name="save_preset")
    gr.on([value.change for value in values], bind(show_config, studio, view), [lang, path] + values,
          [view.as_yaml, view.as_script], api_visibility="private", show_progress="hidden")
    check.click(bind(check_plan, studio, view, fields=names), [lang, path] + values, [view.plan, view.settled],
                api_name="plan")
