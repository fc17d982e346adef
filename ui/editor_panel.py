"""The row editor on the Dataset tab: a searchable, paged grid with row and bulk actions, undo and saves."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import pandas as pd

from engine.errors import EngineError
from engine.studio import Studio
from ui import present
from ui.i18n import Texts, t

PAGE_SIZE = 20


@dataclass
class EditorPanel:
    page_outputs: list
    saved_then_check: Callable


def page_outputs(studio: Studio, lang: str, page: int, query: str) -> tuple:
    """Grid frame, page slider and page line for the open dataset (empty when none is open)."""
    editor = studio.editor
    if editor is None:
        return pd.DataFrame(), 1, t("editor_empty", lang)
    frame, pages = editor.page(page, PAGE_SIZE, query)
    page = min(max(1, int(page)), pages)
    shown = frame.map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
    line = t("editor_page", lang, page=page, pages=pages, rows=editor.rows)
    return shown, page, line


def build(studio: Studio, texts: Texts, lang_input: gr.Radio, path: gr.Textbox) -> EditorPanel:
    with texts.add(gr.Accordion(open=True, elem_id="editor"), label="editor_title"):
        with gr.Row():
            query = texts.add(gr.Textbox(elem_id="editor-search", scale=3), label="editor_search")
            previous = texts.add(gr.Button(elem_id="editor-previous", scale=0, min_width=60), value="editor_previous")
            page = texts.add(gr.Number(value=1, minimum=1, precision=0, elem_id="editor-page", scale=1, min_width=80),
                             label="editor_page_label")
            following = texts.add(gr.Button(elem_id="editor-next", scale=0, min_width=60), value="editor_next")
        info = gr.Markdown(elem_id="editor-info")
        grid = gr.Dataframe(interactive=True, wrap=True, max_height=520, elem_id="editor-grid")
        with gr.Row():
            apply_edits = texts.add(gr.Button(variant="primary", elem_id="editor-apply"), value="editor_apply")
            row = texts.add(gr.Number(value=1, precision=0, minimum=1, elem_id="editor-row", min_width=100),
                            label="col_row")
            add = texts.add(gr.Button(elem_id="editor-add"), value="editor_add")
            duplicate = texts.add(gr.Button(elem_id="editor-duplicate"), value="editor_duplicate")
            delete = texts.add(gr.Button(variant="stop", elem_id="editor-delete"), value="editor_delete")
        with gr.Row():
            dedup = texts.add(gr.Button(elem_id="editor-dedup"), value="editor_dedup")
            strip = texts.add(gr.Button(elem_id="editor-strip"), value="editor_strip")
            drop_empty = texts.add(gr.Button(elem_id="editor-drop-empty"), value="editor_drop_empty")
            undo = texts.add(gr.Button(elem_id="editor-undo"), value="editor_undo")
        with gr.Row():
            save = texts.add(gr.Button(variant="primary", elem_id="editor-save"), value="editor_save")
            export = texts.add(gr.Button(elem_id="editor-export"), value="editor_export")
            exported = texts.add(gr.File(interactive=False, elem_id="editor-exported"), label="editor_exported")
    shown = [grid, page, info]

    def act(action: Callable[[Any], Any], message: str):
        """A handler running `action(editor)`, announcing `message`, and redrawing the page."""
        def handler(lang: str, current: float, search: str, *args):
            editor = studio.editor
            if editor is None:
                raise gr.Error(t("editor_empty", lang))
            try:
                result = action(editor, *args)
            except EngineError as error:
                raise gr.Error(present.error_message(error, lang)) from None
            gr.Info(t(message, lang, count=result))
            return page_outputs(studio, lang, current, search)
        handler.__name__ = message
        return handler

    def apply_grid(editor, frame: pd.DataFrame) -> int:
        changed = 0
        for record in frame.to_dict(orient="records"):
            position = int(record.pop("#"))
            current = editor.row(position)
            values = {k: v for k, v in record.items() if _shown(current.get(k)) != v}
            if values:
                editor.update_row(position, values)
                changed += 1
        return changed

    inputs = [lang_input, page, query]
    apply_edits.click(act(apply_grid, "editor_applied"), inputs + [grid], shown, api_name="editor_apply")
    add.click(act(lambda e: e.add_row(), "editor_added"), inputs, shown, api_name="editor_add")
    duplicate.click(act(lambda e, r: e.duplicate_row(int(r)), "editor_duplicated"), inputs + [row], shown,
                    api_name="editor_duplicate")
    delete.click(act(lambda e, r: e.delete_rows([int(r)]), "editor_deleted"), inputs + [row], shown,
                 api_name="editor_delete")
    dedup.click(act(lambda e: e.remove_exact_duplicates(), "editor_deduped"), inputs, shown, api_name="editor_dedup")
    strip.click(act(lambda e: e.strip_whitespace(), "editor_stripped"), inputs, shown, api_name="editor_strip")
    drop_empty.click(act(lambda e: e.drop_empty_rows(), "editor_dropped"), inputs, shown,
                     api_name="editor_drop_empty")
    undo.click(act(lambda e: int(e.undo()), "editor_undone"), inputs, shown, api_name="editor_undo")
    page.submit(lambda lang, p, q: page_outputs(studio, lang, p, q), inputs, shown, api_name="editor_page")
    previous.click(lambda lang, p, q: page_outputs(studio, lang, (p or 1) - 1, q), inputs, shown,
                   api_visibility="private")
    following.click(lambda lang, p, q: page_outputs(studio, lang, (p or 1) + 1, q), inputs, shown,
                    api_visibility="private")
    query.submit(lambda lang, q: page_outputs(studio, lang, 1, q), [lang_input, query], shown,
                 api_name="editor_search")

    def save_version(lang: str) -> str:
        """Input: language. Output: the path of the new saved version (the dataset path box)."""
        if studio.editor is None:
            raise gr.Error(t("editor_empty", lang))
        saved = studio.editor.save()
        gr.Info(t("editor_saved", lang, path=str(saved)))
        return str(saved)

    def export_jsonl(lang: str) -> str:
        """Input: language. Output: a JSONL file of the current rows to download."""
        if studio.editor is None:
            raise gr.Error(t("editor_empty", lang))
        target = Path(tempfile.mkdtemp(prefix="export-")) / f"{studio.editor.name}.jsonl"
        return str(studio.editor.export_jsonl(target))

    export.click(export_jsonl, [lang_input], [exported], api_name="editor_export")

    def saved_then_check(check: Callable, check_inputs: list, check_outputs: list) -> None:
        save.click(save_version, [lang_input], [path], api_name="editor_save").then(
            check, check_inputs, check_outputs, api_visibility="private")

    return EditorPanel(page_outputs=shown, saved_then_check=saved_then_check)


def _shown(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value
