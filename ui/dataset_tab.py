"""Dataset tab: import a file, map its columns, check it, fix rows in a grid, preview what the model sees.

The check runs the same engine function as `python app.py validate` and the training pre-flight,
with the model and max length chosen on the Hyperparameters tab (wired in `wire`).
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from engine.config import TrainConfig
from engine.data.mapping import FORMAT_FIELDS, FORMATS, ColumnMapping
from engine.errors import EngineError
from engine.studio import DatasetCheck, Studio
from ui import editor_panel, present
from ui.i18n import Texts, t

MAPPING_FIELDS = list(dict.fromkeys(name for fields in FORMAT_FIELDS.values() for name, _required in fields))


@dataclass
class DatasetTab:
    path: gr.Textbox
    wire: object = None  # wire(form names, form components): connects the checks to the form


def build(studio: Studio, texts: Texts, lang_input: gr.Radio, default_path: str) -> DatasetTab:
    texts.add(gr.Markdown(), value="dataset_intro")
    with gr.Row():
        path = texts.add(gr.Textbox(value=default_path, elem_id="dataset-path", scale=3),
                         label="dataset_path", info="dataset_path_info")
        upload = texts.add(gr.File(file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet", ".xlsx"], scale=1),
                           label="dataset_upload")
    check = texts.add(gr.Button(variant="primary", elem_id="dataset-check"), value="dataset_check")
    with texts.add(gr.Accordion(open=False, elem_id="mapping"), label="mapping_title"):
        texts.add(gr.Markdown(), value="mapping_intro")
        with gr.Row():
            fmt = texts.add(gr.Dropdown(choices=list(FORMATS), elem_id="mapping-format"), label="mapping_format")
            field_boxes = [gr.Dropdown(choices=[], label=name, allow_custom_value=False, visible=False,
                                       elem_id=f"mapping-{name}") for name in MAPPING_FIELDS]
        apply_mapping = texts.add(gr.Button(elem_id="mapping-apply"), value="mapping_apply")
    summary = gr.Markdown(elem_id="dataset-summary")
    histogram = texts.add(gr.Plot(elem_id="length-histogram"), label="length_histogram")
    issues = texts.add(gr.Dataframe(interactive=False, wrap=True, elem_id="dataset-issues"), label="issues_table")
    exclude = texts.add(gr.Button(elem_id="exclude-bad"), value="exclude_bad")
    editor = editor_panel.build(studio, texts, lang_input, path)
    with texts.add(gr.Accordion(open=False, elem_id="model-view"), label="preview_title"):
        texts.add(gr.Markdown(), value="preview_intro")
        with gr.Row():
            preview_row = texts.add(gr.Number(value=1, precision=0, minimum=1, elem_id="preview-row", scale=1),
                                    label="col_row")
            show = texts.add(gr.Button(elem_id="preview-show", scale=1), value="preview_show")
        model_view = gr.HighlightedText(combine_adjacent=True, show_legend=True, elem_id="preview-text",
                                        color_map={"trained": "green", "context": "gray", "cut": "red"})
    tab = DatasetTab(path=path)

    def wire(form_names: list[str], form_components: list) -> None:
        """Connect the checks to the Hyperparameters form (model, max length, epochs, split)."""
        def config_of(values: list) -> TrainConfig:
            return _form_config(studio, form_names, values)

        def run_check(lang: str, file_path: str, mapping: ColumnMapping | None, values: list):
            try:
                result = studio.check_dataset(file_path.strip(), config_of(values), mapping)
            except EngineError as error:
                raise gr.Error(present.error_message(error, lang)) from None
            if result.report.rows:
                studio.open_editor(file_path.strip())
            return (_check_outputs(result, lang) + _mapping_outputs(result) +
                    editor_panel.page_outputs(studio, lang, 1, ""))

        def check_dataset(lang: str, file_path: str, *values):
            """Inputs: language, dataset path, form values. Outputs: summary, histogram, problems,
            mapping (format + columns), editor page."""
            return run_check(lang, file_path, None, list(values))

        def check_with_mapping(lang: str, file_path: str, chosen_format: str, *rest):
            """Inputs: language, path, chosen format, one column per canonical field, form values."""
            columns, values = rest[:len(MAPPING_FIELDS)], list(rest[len(MAPPING_FIELDS):])
            wanted = {name for name, _required in FORMAT_FIELDS.get(chosen_format, ())}
            mapping = ColumnMapping(chosen_format or None,
                                    {n: c for n, c in zip(MAPPING_FIELDS, columns) if c and n in wanted})
            return run_check(lang, file_path, mapping, values)

        def exclude_rows_with_errors(lang: str, file_path: str, *values):
            """Remove the rows with errors (undoable), save a version, re-check. Outputs as check."""
            result = studio.check_dataset(file_path.strip(), config_of(list(values)))
            bad = sorted({i.row for i in result.report.errors if i.row is not None})
            if not bad or studio.editor is None:
                raise gr.Error(t("nothing_to_exclude", lang))
            numbers = result.report.row_numbers
            studio.editor.delete_rows([numbers.index(row) + 1 for row in bad if row in numbers])
            saved = str(studio.editor.save())
            gr.Info(t("excluded", lang, count=len(bad), path=saved))
            return (saved,) + run_check(lang, saved, result.report.mapping, list(values))

        def show_model_view(lang: str, file_path: str, row: float, *values):
            """Inputs: language, path, row number, form values. Output: highlighted training text."""
            config = config_of(list(values))
            report = studio.inspect_dataset(file_path.strip())
            number = int(row or 1)
            if number not in report.example_rows:
                raise gr.Error(t("preview_no_row", lang, row=number))
            example = report.examples[report.example_rows.index(number)]
            try:
                runs = studio.training_view(example, config)
            except EngineError as error:
                raise gr.Error(present.error_message(error, lang)) from None
            return [(text, kind) for text, kind in runs]

        outputs = [summary, histogram, issues, fmt] + field_boxes + editor.page_outputs
        check.click(check_dataset, [lang_input, path] + form_components, outputs, api_name="check_dataset")
        apply_mapping.click(check_with_mapping, [lang_input, path, fmt] + field_boxes + form_components, outputs,
                            api_name="check_with_mapping")
        upload.upload(lambda f: f or "", [upload], [path], api_visibility="private").then(
            check_dataset, [lang_input, path] + form_components, outputs, api_visibility="private")
        exclude.click(exclude_rows_with_errors, [lang_input, path] + form_components, [path] + outputs,
                      api_name="exclude_rows_with_errors")
        editor.saved_then_check(check_dataset, [lang_input, path] + form_components, outputs)
        show.click(show_model_view, [lang_input, path, preview_row] + form_components, [model_view],
                   api_name="model_view")
        fmt.change(lambda chosen: [gr.Dropdown(visible=n in {f for f, _r in FORMAT_FIELDS.get(chosen, ())})
                                   for n in MAPPING_FIELDS], [fmt], field_boxes, api_visibility="private")

    tab.wire = wire
    return tab


def _form_config(studio: Studio, names: list[str], values: list) -> TrainConfig:
    from ui import forms

    return forms.config_from(studio.default_config(), names, values)


def _check_outputs(result: DatasetCheck, lang: str) -> tuple:
    report = result.report
    problems = pd.DataFrame(present.issue_rows(report, lang), columns=present.issue_headers(lang))
    return (present.dataset_summary(result, lang), present.length_histogram(result.summary, lang), problems)


def _mapping_outputs(result: DatasetCheck) -> tuple:
    mapping, columns = result.report.mapping, [""] + result.report.columns
    wanted = {name for name, _required in FORMAT_FIELDS.get(mapping.format, ())}
    boxes = tuple(gr.Dropdown(choices=columns, value=mapping.columns.get(name, ""), visible=name in wanted)
                  for name in MAPPING_FIELDS)
    return (gr.Dropdown(value=mapping.format),) + boxes
