"""The base-model picker under the Hyperparameters tab's base-model field: the models recommended for this computer
(those on disk first) with size, licence, languages and the memory estimate's verdict for the current settings;
choosing one fills the base-model field. A download source (the Hugging Face hub, a mirror, ModelScope) and a
Download button with a progress bar fetch the chosen model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from engine import DOWNLOAD_SOURCES, ModelChoice, Studio, duration, mirror_endpoint
from ui import forms
from ui.i18n import t
from ui.page import Page
from ui.wiring import bind, worded_errors

SOURCE_CHOICES = [(f"picker_source_{source}", source) for source in DOWNLOAD_SOURCES]
COLUMNS = ("model", "size", "licence", "languages", "context", "memory", "time", "where")
GB = 2**30


@dataclass
class PickerView:
    """The picker's components that handlers fill (plain names in tests)."""

    machine: Any    # this computer and what suits it
    table: Any      # the models as a table
    choice: Any     # the radio choosing one
    listing: Any    # state: the last listing {"tier": MachineTier, "models": [ModelChoice]}
    source: Any
    endpoint: Any
    status: Any
    model: Any      # the form's base-model field
    form: list[str]  # the form's field names, in the order of the values handlers receive


def machine_text(tier, lang: str) -> str:
    """The line saying which computer this is and which models suit it."""
    return t("picker_machine", lang, device=tier.device, memory_gb=tier.memory_gb,
             advice=t(f"picker_tier_{tier.name}", lang))


def _memory(choice: ModelChoice, lang: str) -> str:
    if choice.verdict is None:
        return t("picker_verdict_unknown", lang)
    extra = f", {t('picker_four_bit', lang)}" if choice.four_bit else ""
    return f"{t('picker_verdict_' + choice.verdict, lang)} ({choice.memory_gb} GB{extra})"


def _cells(choice: ModelChoice, lang: str) -> list[str]:
    """One table row of `choice`, worded in `lang`, in COLUMNS order."""
    languages = ", ".join(t("picker_more_languages", lang) if code == "+" else code for code in choice.languages)
    licence = choice.licence + (f" ({t('picker_gated', lang)})" if choice.gated else "")
    context = f"{choice.context // 1024}k" if choice.context else "-"
    size = t("picker_size", lang, params=choice.params_b) if choice.params_b else "-"
    where = t("picker_on_disk" if choice.on_disk else "picker_not_on_disk", lang)
    return [f"`{choice.name}`", size, licence or "-", languages or "-", context, _memory(choice, lang),
            duration(choice.seconds_per_epoch), where]


def table_markdown(models: list[ModelChoice], lang: str) -> str:
    """The models as a Markdown table worded in `lang` (the hint to list them when there are none)."""
    if not models:
        return t("picker_empty", lang)
    lines = ["| " + " | ".join(t(f"picker_col_{column}", lang) for column in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in _cells(choice, lang)) + " |" for choice in models]
    return "\n".join(lines)


def radio_choices(models: list[ModelChoice], lang: str) -> list[tuple[str, str]]:
    """(label, model name) for each model: the name, on disk or not, and the verdict."""
    marks = {"fits": "✅", "tight": "⚠️", "will_not_fit": "❌"}
    return [(("💾 " if m.on_disk else "") + f"{m.name} {marks.get(m.verdict or '', '')}".rstrip(), m.name)
            for m in models]


def _shown(view: PickerView, listing: dict | None, lang: str, chosen: str | None = None) -> dict:
    """The machine line, table and radio for `listing`, worded in `lang` (the radio keeps `chosen` if listed)."""
    models = (listing or {}).get("models", [])
    names = [m.name for m in models]
    return {view.machine: machine_text(listing["tier"], lang) if listing else "",
            view.table: table_markdown(models, lang),
            view.choice: gr.Radio(choices=radio_choices(models, lang), value=chosen if chosen in names else None)}


@worded_errors
def list_models(studio: Studio, view: PickerView, lang: str, every: bool, chosen: str | None, dataset_path: str,
                *values) -> dict:
    """Inputs: language, whether to show the whole list, the radio's choice, dataset path, the form's values.
    Outputs: this computer's line, the table and radio of its models (on disk first), the listing state."""
    config = forms.config_of(studio, view.form, values, dataset_path or "")
    listing = {"tier": studio.machine_tier(), "models": studio.recommended_models(config, bool(every))}
    return {**_shown(view, listing, lang, chosen), view.listing: listing}


def reword(studio: Studio, view: PickerView, lang: str, listing: dict | None, chosen: str | None) -> dict:
    """Inputs: language, the listing state, the radio's choice. Outputs: the machine line, table and radio in
    that language."""
    return _shown(view, listing, lang, chosen)


def _find(listing: dict | None, name: str | None) -> ModelChoice | None:
    return next((m for m in (listing or {}).get("models", []) if m.name == name), None)


def choose(studio: Studio, view: PickerView, lang: str, name: str | None, listing: dict | None) -> dict:
    """Inputs: language, the radio's choice, the listing state. Output: the base-model field naming that model
    (its folder or hub id); left as it is when nothing is chosen."""
    found = _find(listing, name)
    return {view.model: found.value if found is not None else gr.skip()}


def pick_source(studio: Studio, view: PickerView, lang: str, source: str, endpoint: str) -> dict:
    """Inputs: language, download source, mirror address. Output: the address box, shown for a mirror only
    (filled with HF_ENDPOINT or hf-mirror.com when empty)."""
    return {view.endpoint: gr.Textbox(visible=source == "mirror", value=endpoint or mirror_endpoint())}


def download_reporter(progress: Callable, lang: str, name: str) -> Callable[[int, int], None]:
    """An engine download callback (bytes on disk, bytes in all) driving a `gr.Progress` worded in `lang`."""
    def report(done: int, total: int) -> None:
        text = t("picker_downloading", lang, name=name, done_gb=f"{done / GB:.2f}", total_gb=f"{total / GB:.2f}")
        progress(done / total if total else 0.0, desc=text)
    return report


@worded_errors
def download(studio: Studio, view: PickerView, lang: str, name: str | None, field: str | None, source: str,
             endpoint: str, listing: dict | None, progress=gr.Progress()) -> dict:
    """Inputs: language, the radio's choice (else the base-model field's hub id), download source, mirror address,
    the listing state. Outputs: a status line and the base-model field naming the downloaded folder."""
    found = _find(listing, name)
    if found is not None and found.on_disk:
        return {view.status: t("picker_already", lang, name=found.name), view.model: found.value}
    target = (found.name if found is not None else (field or "")).strip()
    if not target:
        return {view.status: t("picker_choose_first", lang), view.model: gr.skip()}
    path = studio.download_model(target, source or "hub", endpoint or "", download_reporter(progress, lang, target))
    return {view.status: t("picker_downloaded", lang, name=target, path=str(path)), view.model: str(path)}


def build(page: Page) -> PickerView:
    """Lay out the picker (closed until opened: listing counts the dataset's tokens) and wire it."""
    texts, lang = page.texts, page.texts.lang
    with texts.add(gr.Accordion(open=False, elem_id="model-picker"), label="picker_title") as accordion:
        texts.add(gr.Markdown(), value="picker_intro")
        machine = gr.Markdown(elem_id="picker-machine")
        table = gr.Markdown(t("picker_empty", lang), elem_id="picker-table")
        with gr.Row():
            every = texts.add(gr.Checkbox(value=False, elem_id="picker-all"), label="picker_show_all")
            refresh = texts.add(gr.Button(elem_id="picker-refresh", size="sm"), value="picker_refresh")
        choice = texts.add(gr.Radio(choices=[], elem_id="picker-choice"), label="picker_choice",
                           info="picker_choice_info")
        with gr.Row():
            source = gr.Dropdown(choices=texts.worded_choices(SOURCE_CHOICES), value="hub", elem_id="picker-source")
            source = texts.add_choices(texts.add(source, label="picker_source", info="picker_source_info"),
                                       SOURCE_CHOICES)
            endpoint = texts.add(gr.Textbox(value=mirror_endpoint(), visible=False, elem_id="picker-endpoint"),
                                 label="picker_endpoint", info="picker_endpoint_info")
        fetch = texts.add(gr.Button(variant="primary", elem_id="picker-download"), value="picker_download")
        status = gr.Markdown(elem_id="picker-status")
    view = PickerView(machine=machine, table=table, choice=choice, listing=gr.State(None), source=source,
                      endpoint=endpoint, status=status, model=page.form.fields["model_name_or_path"],
                      form=page.form.names)
    _wire(page, view, accordion, every, refresh, fetch)
    return view


def _wire(page: Page, view: PickerView, accordion: gr.Accordion, every: gr.Checkbox, refresh: gr.Button,
          fetch: gr.Button) -> None:
    """Connect the picker's events to its handlers (private endpoints, named `model_picker_*`)."""
    studio, lang, form = page.studio, page.language, page.form
    shown = [view.machine, view.table, view.choice]
    listing = bind(list_models, studio, view)
    list_inputs = [lang, every, view.choice, form.dataset_path] + form.components
    gr.on([accordion.expand, refresh.click, every.change], listing, list_inputs, shown + [view.listing],
          api_name="model_picker_list", api_visibility="private")
    page.language_switch.add(bind(reword, studio, view), [lang, view.listing, view.choice], shown)
    view.choice.input(bind(choose, studio, view), [lang, view.choice, view.listing], [view.model],
                      api_name="model_picker_choose", api_visibility="private")
    view.source.change(bind(pick_source, studio, view), [lang, view.source, view.endpoint], [view.endpoint],
                       api_name="model_picker_source", api_visibility="private")
    fetch.click(bind(download, studio, view), [lang, view.choice, view.model, view.source, view.endpoint,
                                               view.listing], [view.status, view.model],
                api_name="model_picker_download", api_visibility="private").success(
        listing, list_inputs, shown + [view.listing], api_name="model_picker_relist", api_visibility="private")
