"""Dataset tab: choose or upload a file, check it, see its problems and first rows."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from engine.studio import Studio
from ui import present
from ui.i18n import Texts, t


@dataclass
class DatasetTab:
    path: gr.Textbox


def build(studio: Studio, texts: Texts, lang_input: gr.Radio, default_path: str) -> DatasetTab:
    texts.add(gr.Markdown(), value="dataset_intro")
    with gr.Row():
        path = texts.add(gr.Textbox(value=default_path, elem_id="dataset-path", scale=3),
                         label="dataset_path", info="dataset_path_info")
        upload = texts.add(gr.File(file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet"], scale=1),
                           label="dataset_upload")
    check = texts.add(gr.Button(variant="primary", elem_id="dataset-check"), value="dataset_check")
    summary = gr.Markdown(elem_id="dataset-summary")
    issues = texts.add(gr.Dataframe(interactive=False, wrap=True), label="issues_table")
    preview = texts.add(gr.Dataframe(interactive=False, wrap=True, max_height=400), label="preview_table")

    def check_dataset(lang: str, file_path: str):
        """Inputs: language, dataset path. Outputs: summary markdown, problems table, preview table."""
        report = studio.inspect_dataset(file_path.strip())
        problems = pd.DataFrame(present.issue_rows(report, lang), columns=present.issue_headers(lang))
        rows = pd.DataFrame(present.preview_rows(report), columns=["#", t("prompt", lang), t("answer_adapter", lang)])
        return present.dataset_summary(report, lang), problems, rows

    check.click(check_dataset, [lang_input, path], [summary, issues, preview], api_name="check_dataset")
    upload.upload(lambda f: f or "", [upload], [path], api_visibility="private").then(
        check_dataset, [lang_input, path], [summary, issues, preview], api_visibility="private")
    return DatasetTab(path=path)
