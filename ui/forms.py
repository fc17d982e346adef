"""Form components generated from TrainConfig's field metadata (no hand-written field list).

Booleans become checkboxes, fields with choices dropdowns, numbers sliders (learning rate a dropdown
of common values that also accepts a typed one); simple fields are shown, the rest sit in
"Advanced" grouped like the config. The components are created before the tabs (`create_form`) and
laid out on the Hyperparameters tab (`render_fields`), except how the file is read (`DATASET_TAB_FIELDS`, laid
out next to the file on the Dataset tab), so every tab can read them; every tab turns their
values into a config with `config_of`, and fills a path box from an upload with `take_upload`.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from engine import BUNDLED_MODEL_ID, FIELDS, GROUPS, Studio, TrainConfig, cuda_device_count, field_kind
from ui.i18n import Texts, field_help, field_label
from ui.page import Form
from ui.wiring import worded_errors

FIELD_MIN_WIDTH = 280  # rows of fields wrap instead of squeezing labels into narrow columns
# Fields chosen elsewhere in the UI (the Dataset tab picks the file).
HIDDEN_FIELDS = ("dataset_path",)
# Fields of the form laid out on the Dataset tab next to the file, not on the Hyperparameters tab.
DATASET_TAB_FIELDS = ("dataset_encoding", "dataset_delimiter", "sft_on_chosen")
# Slider ends for fields whose valid range is far wider than a slider can show.
SLIDER_MAX = {"max_steps": 2000, "seed": 9999, "eval_steps": 1000, "save_steps": 1000, "max_length": 4096,
              "lora_alpha": 256, "per_device_train_batch_size": 64, "gradient_accumulation_steps": 64,
              "num_train_epochs": 20, "warmup_steps": 1.0, "logging_steps": 100}
LEARNING_RATES = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3]
MODEL_CHOICES = [BUNDLED_MODEL_ID, "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
                 "meta-llama/Llama-3.1-8B-Instruct"]
MODULE_CHOICES = ["all-linear", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


def form_fields() -> list[str]:
    """The fields the form shows, in the form's order: the simple ones, then the rest group by group (*GPUs to
    use* only where more than one CUDA device is present)."""
    hidden = HIDDEN_FIELDS + (() if cuda_device_count() > 1 else ("num_gpus",))
    shown = [name for name in FIELDS if name not in hidden]
    simple = [name for name in shown if FIELDS[name].metadata.get("simple")]
    return simple + [name for group in GROUPS for name in shown
                     if FIELDS[name].metadata["group"] == group and name not in simple]


def make_component(name: str, value: Any, lang: str):
    """One input component for field `name`, showing `value` (not rendered yet)."""
    meta, kind = FIELDS[name].metadata, field_kind(name)
    common = {"label": field_label(name, lang), "info": field_help(name, lang), "elem_id": f"field-{name}",
              "min_width": FIELD_MIN_WIDTH, "render": False}
    if kind is bool:
        return gr.Checkbox(value=value, **common)
    if meta.get("choices"):
        return gr.Dropdown(choices=list(meta["choices"]), value=value, **common)
    if name == "learning_rate":
        return gr.Dropdown(choices=LEARNING_RATES, value=value, allow_custom_value=True, **common)
    if name == "model_name_or_path":
        return gr.Dropdown(choices=MODEL_CHOICES, value=value, allow_custom_value=True, **common)
    if kind is tuple:
        return gr.CheckboxGroup(choices=sorted(set(MODULE_CHOICES) | set(value)), value=list(value), **common)
    if kind in (int, float):
        top = SLIDER_MAX.get(name, meta.get("max"))
        return gr.Slider(minimum=meta.get("min"), maximum=top, value=value, step=meta.get("step") or 1, **common)
    return gr.Textbox(value=value, **common)


def create_form(config: TrainConfig, texts: Texts) -> Form:
    """The dataset path box and one input per shown field, holding `config`'s values; nothing is rendered or
    registered for the language switch yet (the Dataset tab renders the path box, `render_fields` the fields, each
    registering them where they appear, so the switch's outputs keep the page's order)."""
    path = gr.Textbox(value=config.dataset_path, elem_id="dataset-path", scale=3, render=False)
    fields = {name: make_component(name, getattr(config, name), texts.lang) for name in form_fields()}
    return Form(dataset_path=path, fields=fields)


def render_fields(form: Form, texts: Texts) -> None:
    """Lay out the form's fields in the current Blocks context: the simple ones in a row, the rest in
    "Advanced", one titled row per config group (the Dataset tab's fields are left to it)."""
    shown = [name for name in form.names if name not in DATASET_TAB_FIELDS]
    simple = [name for name in shown if FIELDS[name].metadata.get("simple")]
    _render_row(form, simple, texts)
    with texts.add(gr.Accordion(label="", open=False), label="advanced"):
        for group in GROUPS:
            names = [name for name in shown if FIELDS[name].metadata["group"] == group and name not in simple]
            if names:
                texts.add(gr.Markdown(), value=f"group_{group}")
                _render_row(form, names, texts)


def render_dataset_fields(form: Form, texts: Texts) -> None:
    """Lay out how the file is read (`DATASET_TAB_FIELDS`: encoding, delimiter, SFT on chosen answers) in a row."""
    _render_row(form, list(DATASET_TAB_FIELDS), texts)


def _render_row(form: Form, names: list[str], texts: Texts) -> None:
    """One row of the form's fields `names`, each registered for the language switch where it appears."""
    with gr.Row(equal_height=False):
        for name in names:
            texts.add_field(form.fields[name], name).render()


def values_of(config: TrainConfig, names: list[str]) -> list[Any]:
    """Component values for `config`, in the order of `names` (tuples as lists)."""
    return [list(v) if isinstance(v := getattr(config, name), tuple) else v for name in names]


def config_of(studio: Studio, names: list[str], values: tuple, dataset_path: str | None = None) -> TrainConfig:
    """The config the form's `values` (one per field in `names`) make; with `dataset_path` (the Dataset tab's
    path box), the run's whole config, that path stripped. Raises EngineError naming a field that does not fit."""
    config = studio.config_from_form(dict(zip(names, values)))
    return config if dataset_path is None else config.replace(dataset_path=dataset_path.strip())


@worded_errors
def take_upload(studio: Studio, view: Any, lang: str, uploaded: str | None) -> dict:
    """Inputs: language, an uploaded file. Output: the path box it fills (bound as the `view`: the Dataset tab's
    path box, the study's question file), now the path of the studio's kept copy of the file (blank when the
    upload was cleared)."""
    return {view: str(studio.keep_upload(uploaded, "upload")) if uploaded else ""}
