"""Dataset tab: import a file, map its columns, check it, fix rows in a grid, preview what the model sees.

The page opens with the file in the path box (the bundled sample) already checked, so the first screen shows a
summary, a length histogram and the first rows; an upload (drag and drop) is checked as soon as it arrives.

The check runs the same engine function as `python app.py validate` and the training pre-flight,
with the model and max length chosen on the Hyperparameters tab (the form's fields are inputs here) and the
file's encoding, delimiter and "train on the chosen answers" chosen here, next to the file (changing one checks
the file again). A plain-text file's summary shows its chunks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from engine import FORMAT_FIELDS, FORMATS, ColumnMapping, DatasetCheck, Studio
from ui import editor_panel, forms, journey, present
from ui.editor_panel import EditorView
from ui.i18n import Texts, t
from ui.page import Page
from ui.wiring import bind, session_of, worded_errors

MAPPING_FIELDS = list(dict.fromkeys(name for fields in FORMAT_FIELDS.values() for name, _required in fields))
FILE_TYPES = [".jsonl", ".json", ".csv", ".tsv", ".parquet", ".xlsx", ".txt", ".md"]
ISSUE_COLUMN_WIDTHS = ["12%", "8%", "16%", "64%"]  # severity, row, field, message: short words keep their width
CHUNK_SHOWN = 300  # characters of each first chunk the summary shows
# the queue lane of every handler that checks the file: one at a time, in the order asked, so an earlier check's
# answer (the first screen's, in the old language) cannot land after a later one
CHECKS_IN_ORDER = "dataset-checks"


@dataclass
class DatasetView:
    """The Dataset tab's components that handlers fill (plain names in tests)."""

    path: Any
    summary: Any
    histogram: Any
    issues: Any
    format: Any
    columns: dict[str, Any]  # one column picker per field of `MAPPING_FIELDS`
    model_view: Any
    editor: EditorView
    form: list[str]  # the form's field names, in the order of the values handlers receive
    usable: Any = None  # the page's "data checked" mark (session state): whether the last check found usable rows

    @property
    def checked(self) -> list:
        """What a check redraws, in the order of the check events' outputs (then the mark, where there is one)."""
        shown = [self.summary, self.histogram, self.issues, self.format, *self.columns.values(), *self.editor.shown]
        return shown + ([self.usable] if self.usable is not None else [])


def wanted_fields(chosen_format: str | None) -> set[str]:
    """The mapping fields format `chosen_format` reads (none for an unknown or blank format)."""
    return {name for name, _required in FORMAT_FIELDS.get(chosen_format, ())}


def _checked(studio: Studio, view: DatasetView, lang: str, file_path: str, session: str, values: tuple,
             mapping: ColumnMapping | None = None) -> dict:
    """Check the dataset with the form's settings and open it in the session's editor; the check's outputs."""
    path = (file_path or "").strip()
    config = forms.config_of(studio, view.form, values)
    result = studio.check_dataset(path, config, mapping)
    if result.report.rows:
        studio.open_editor(session, path)
    mark = {view.usable: bool(result.report.usable)} if view.usable is not None else {}
    return {**_check_outputs(view, result, lang, config.max_length), **_mapping_outputs(view, result),
            **editor_panel.page_update(studio, view.editor, lang, 1, "", session), **mark}


@worded_errors
def check_dataset(studio: Studio, view: DatasetView, lang: str, file_path: str, request: gr.Request,
                  *values) -> dict:
    """Inputs: language, dataset path, the form's values (one per field). Outputs: summary, length histogram,
    problems, mapping (format + one column per field), editor page (grid, page number, page line)."""
    return _checked(studio, view, lang, file_path, session_of(request), values)


def check_on_open(studio: Studio, view: DatasetView, lang: str, file_path: str, request: gr.Request,
                  *values) -> dict:
    """Inputs: as `check_dataset`, when the page opens or the language changes. Outputs: as `check_dataset` for
    the file in the path box (the bundled sample at first); nothing changes when the box is blank."""
    if not (file_path or "").strip():
        return {component: gr.skip() for component in view.checked}
    return check_dataset(studio, view, lang, file_path, request, *values)


@worded_errors
def check_with_mapping(studio: Studio, view: DatasetView, lang: str, file_path: str, chosen_format: str,
                       request: gr.Request, *columns_and_values) -> dict:
    """Inputs: language, path, chosen format, one column per mapping field, the form's values.
    Outputs: as `check_dataset`, read with that mapping."""
    columns, values = columns_and_values[:len(MAPPING_FIELDS)], columns_and_values[len(MAPPING_FIELDS):]
    wanted = wanted_fields(chosen_format)
    chosen = {name: column for name, column in zip(MAPPING_FIELDS, columns) if column and name in wanted}
    mapping = ColumnMapping(chosen_format or None, chosen)
    return _checked(studio, view, lang, file_path, session_of(request), values, mapping)


@worded_errors
def exclude_rows_with_errors(studio: Studio, view: DatasetView, lang: str, file_path: str, request: gr.Request,
                             *values) -> dict:
    """Inputs: language, path, the form's values. Removes the rows with errors (undoable) and saves a version.
    Outputs: the path box (the saved version), then as `check_dataset` for that version."""
    session = session_of(request)
    excluded = studio.exclude_rows_with_errors(session, (file_path or "").strip(),
                                                forms.config_of(studio, view.form, values))
    if excluded is None:
        raise gr.Error(t("nothing_to_exclude", lang))
    saved = str(excluded.saved)
    gr.Info(t("excluded", lang, count=excluded.count, path=saved))
    return {view.path: saved, **_checked(studio, view, lang, saved, session, values, excluded.mapping)}


@worded_errors
def show_model_view(studio: Studio, view: DatasetView, lang: str, file_path: str, row: float, *values) -> dict:
    """Inputs: language, path, row number, the form's values. Output: the row's text as the model is trained
    on it (trained, context and cut spans)."""
    config = forms.config_of(studio, view.form, values)
    report = studio.inspect_dataset((file_path or "").strip())
    number = int(row or 1)
    if number not in report.example_rows:
        raise gr.Error(t("preview_no_row", lang, row=number))
    example = report.examples[report.example_rows.index(number)]
    return {view.model_view: [(text, kind) for text, kind in studio.training_view(example, config)]}


def show_mapping_columns(studio: Studio, view: DatasetView, lang: str, chosen_format: str) -> dict:
    """Inputs: language, chosen format. Outputs: the column pickers, only those of the format's fields shown."""
    wanted = wanted_fields(chosen_format)
    return {box: gr.Dropdown(visible=name in wanted) for name, box in view.columns.items()}


def _check_outputs(view: DatasetView, result: DatasetCheck, lang: str, max_length: int) -> dict:
    """The summary (with how the file was read and a plain-text file's chunks), histogram and problems table."""
    problems = pd.DataFrame(present.issue_rows(result.report, lang), columns=present.issue_headers(lang))
    summary = present.dataset_summary(result, lang) + read_as(result, lang) + chunk_lines(result, lang, max_length)
    return {view.summary: summary,
            view.histogram: present.length_histogram(result.summary, lang), view.issues: problems}


def read_as(result: DatasetCheck, lang: str) -> str:
    """The line saying which encoding and delimiter the file was read with and what kind of data it holds."""
    report = result.report
    if report.format is None:
        return ""
    delimiter = report.to_dict(lang)["delimiter"]
    cells = t("dataset_read_delimiter", lang, delimiter=delimiter) if delimiter else ""
    kind = t(f"dataset_kind_{report.kind}", lang)
    return "\n\n" + t("dataset_read_as", lang, encoding=report.encoding or "-", kind=kind, delimiter=cells)


def chunk_lines(result: DatasetCheck, lang: str, max_length: int) -> str:
    """A plain-text file's chunks: how many, their mean size in tokens, and the first few (cut to CHUNK_SHOWN
    characters); empty for other files."""
    preview = result.report.chunk_preview
    if preview is None:
        return ""
    lines = [t("dataset_chunks", lang, chunks=preview.chunks, max_length=max_length, mean=preview.mean_tokens)]
    for number, text in enumerate(preview.first, start=1):
        shown = text if len(text) <= CHUNK_SHOWN else text[:CHUNK_SHOWN] + " …"
        lines.append("> " + t("dataset_chunk_first", lang, number=number, text=" ".join(shown.split())))
    return "\n\n" + "\n\n".join(lines)


def _mapping_outputs(view: DatasetView, result: DatasetCheck) -> dict:
    mapping, columns = result.report.mapping, [""] + result.report.columns
    wanted = wanted_fields(mapping.format)
    boxes = {box: gr.Dropdown(choices=columns, value=mapping.columns.get(name, ""), visible=name in wanted)
             for name, box in view.columns.items()}
    return {view.format: gr.Dropdown(choices=list(FORMATS), value=mapping.format), **boxes}


def build(page: Page) -> None:
    """Lay out the Dataset tab (upload or a path, mapping, check results, row editor, model view, the next step)
    and wire its events; the file in the path box (the bundled sample at first) is checked when the page opens."""
    texts, form = page.texts, page.form
    texts.add(gr.Markdown(), value="dataset_intro")
    upload, check = _file_section(page)
    fmt, columns, apply_mapping = _mapping_section(texts)
    summary = gr.Markdown(elem_id="dataset-summary")
    histogram = texts.add(gr.Plot(elem_id="length-histogram"), label="length_histogram")
    issues = texts.add(gr.Dataframe(interactive=False, wrap=True, elem_id="dataset-issues",
                                    column_widths=ISSUE_COLUMN_WIDTHS), label="issues_table")
    exclude = texts.add(gr.Button(elem_id="exclude-bad"), value="exclude_bad")
    editor = editor_panel.build(page)
    preview_row, show, model_view = _preview_section(texts)
    journey.next_button(page, "tab-params", "next_to_params", "next-params")
    view = DatasetView(path=form.dataset_path, summary=summary, histogram=histogram, issues=issues, format=fmt,
                       columns=columns, model_view=model_view, editor=editor.view, form=form.names,
                       usable=page.marks["data"])

    studio, lang, names, values = page.studio, page.language, form.names, form.components
    checking, ordered = bind(check_dataset, studio, view, fields=names), {"concurrency_id": CHECKS_IN_ORDER}
    check.click(checking, [lang, view.path] + values, view.checked, api_name="check_dataset", **ordered)
    gr.on([page.demo.load, lang.change], bind(check_on_open, studio, view, fields=names), [lang, view.path] + values,
          view.checked, api_visibility="private", trigger_mode="always_last",  # a switch while the first check runs
          **ordered)  # the first screen is checked; a language switch rewords it
    apply_mapping.click(bind(check_with_mapping, studio, view, fields=MAPPING_FIELDS + names),
                        [lang, view.path, fmt] + list(columns.values()) + values, view.checked,
                        api_name="check_with_mapping", **ordered)
    upload.upload(bind(forms.take_upload, studio, view.path), [lang, upload], [view.path],
                  api_visibility="private").then(
        checking, [lang, view.path] + values, view.checked, api_visibility="private", **ordered)
    exclude.click(bind(exclude_rows_with_errors, studio, view, fields=names), [lang, view.path] + values,
                  [view.path] + view.checked, api_name="exclude_rows_with_errors", **ordered)
    editor.saved.then(checking, [lang, view.path] + values, view.checked, api_visibility="private", **ordered)
    reading = [form.fields[name].input for name in forms.DATASET_TAB_FIELDS]  # the user chose how to read the file
    gr.on(reading, checking, [lang, view.path] + values, view.checked, api_visibility="private", **ordered)
    show.click(bind(show_model_view, studio, view, fields=names), [lang, view.path, preview_row] + values,
               [model_view], api_name="model_view")
    fmt.change(bind(show_mapping_columns, studio, view), [lang, fmt], list(columns.values()),
               api_visibility="private")


def _file_section(page: Page) -> tuple[gr.File, gr.Button]:
    """The upload box (the main way to bring a file), then closed accordions: a path on the server's disk with
    *Load and check*, and how the file is read (encoding, delimiter, SFT on chosen answers)."""
    texts, form = page.texts, page.form
    upload = texts.add(gr.File(file_types=FILE_TYPES, elem_id="dataset-upload", height=140), label="upload_primary")
    with texts.add(gr.Accordion(open=False, elem_id="disk-file"), label="disk_file_title"):
        with gr.Row(equal_height=True):
            texts.add(form.dataset_path, label="dataset_path", info="dataset_path_info").render()
            check = texts.add(gr.Button(variant="primary", elem_id="dataset-check", scale=0, min_width=160),
                              value="dataset_check")
    with texts.add(gr.Accordion(open=False, elem_id="reading"), label="reading_title"):
        forms.render_dataset_fields(form, texts)
    return upload, check


def _mapping_section(texts: Texts) -> tuple[gr.Dropdown, dict[str, gr.Dropdown], gr.Button]:
    """The column mapping accordion: the format, one column picker per mapping field, and Apply."""
    with texts.add(gr.Accordion(open=False, elem_id="mapping"), label="mapping_title"):
        texts.add(gr.Markdown(), value="mapping_intro")
        with gr.Row():
            fmt = texts.add(gr.Dropdown(choices=list(FORMATS), elem_id="mapping-format"), label="mapping_format")
            columns = {name: gr.Dropdown(choices=[], label=name, allow_custom_value=False, visible=False,
                                         elem_id=f"mapping-{name}") for name in MAPPING_FIELDS}
        apply_mapping = texts.add(gr.Button(elem_id="mapping-apply"), value="mapping_apply")
    return fmt, columns, apply_mapping


def _preview_section(texts: Texts) -> tuple[gr.Number, gr.Button, gr.HighlightedText]:
    """The "what the model sees" accordion: a row number, Show, and the highlighted training text."""
    with texts.add(gr.Accordion(open=False, elem_id="model-view"), label="preview_title"):
        texts.add(gr.Markdown(), value="preview_intro")
        with gr.Row():
            preview_row = texts.add(gr.Number(value=1, precision=0, minimum=1, elem_id="preview-row", scale=1),
                                    label="col_row")
            show = texts.add(gr.Button(elem_id="preview-show", scale=1), value="preview_show")
        model_view = gr.HighlightedText(combine_adjacent=True, show_legend=True, elem_id="preview-text",
                                        color_map={"trained": "green", "context": "gray", "cut": "red"})
    return preview_row, show, model_view
