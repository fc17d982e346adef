"""The row editor on the Dataset tab: a searchable, paged grid with row and bulk actions, undo and saves.

Each browser session edits its own dataset (the studio keeps one per session id), so two people on
one studio never change or save each other's rows. Closing the page does not drop it (a network drop or a
sleeping laptop closes the connection too, while Gradio keeps the session): the studio forgets an editor
left idle for an hour, or the least recently used one beyond its limit of sessions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from engine import Studio
from ui.i18n import Texts, t
from ui.page import Page
from ui.wiring import bind, session_of, worded_errors

PAGE_SIZE = 20


@dataclass
class EditorView:
    """The editor's components that handlers fill (plain names in tests)."""

    grid: Any
    page: Any
    info: Any
    exported: Any
    path: Any  # the Dataset tab's path box: a saved version goes there
    box: Any = None  # the editor's accordion, shown once rows are open

    @property
    def shown(self) -> list:
        """The redrawn page, in the order of the editor events' outputs."""
        return [self.grid, self.page, self.info]


@dataclass
class EditorPanel:
    """What the Dataset tab needs from the editor: its view and the save event (a check follows it)."""

    view: EditorView
    saved: Any


def page_update(studio: Studio, view: EditorView, lang: str, number: Any, query: str, session: str) -> dict:
    """Inputs: language, page number, search, session id. Outputs: grid, page number and page line for the
    session's dataset (an empty grid when none is open)."""
    found = studio.editor_page(session, number, PAGE_SIZE, query or "")
    if found is None:
        return {view.grid: pd.DataFrame(), view.page: 1, view.info: t("editor_empty", lang)}
    line = t("editor_page", lang, page=found.number, pages=found.pages, rows=found.rows)
    return {view.grid: found.frame, view.page: found.number, view.info: line}


@worded_errors
def show_page(studio: Studio, view: EditorView, lang: str, current: float, search: str,
              request: gr.Request) -> dict:
    """Inputs: language, page number, search. Outputs: grid, page number, page line."""
    return page_update(studio, view, lang, current, search, session_of(request))


@worded_errors
def previous_page(studio: Studio, view: EditorView, lang: str, current: float, search: str,
                  request: gr.Request) -> dict:
    """Inputs: language, page number, search. Outputs: the page before (grid, page number, page line)."""
    return page_update(studio, view, lang, (current or 1) - 1, search, session_of(request))


@worded_errors
def next_page(studio: Studio, view: EditorView, lang: str, current: float, search: str,
              request: gr.Request) -> dict:
    """Inputs: language, page number, search. Outputs: the page after (grid, page number, page line)."""
    return page_update(studio, view, lang, (current or 1) + 1, search, session_of(request))


@worded_errors
def search_rows(studio: Studio, view: EditorView, lang: str, search: str, request: gr.Request) -> dict:
    """Inputs: language, search. Outputs: the first page of matching rows (grid, page number, page line)."""
    return page_update(studio, view, lang, 1, search, session_of(request))


def _edit(studio: Studio, view: EditorView, lang: str, current: float, search: str, request: gr.Request,
          change: str, announce: str, *args: Any) -> dict:
    """Make the change to the session's rows, announce its count with the `announce` words, redraw the page."""
    count = studio.edit_dataset(session_of(request), change, *args)
    if count is None:
        raise gr.Error(t("editor_empty", lang))
    gr.Info(t(announce, lang, count=count))
    return page_update(studio, view, lang, current, search, session_of(request))


@worded_errors
def apply_edits(studio: Studio, view: EditorView, lang: str, current: float, search: str, frame: pd.DataFrame,
                request: gr.Request) -> dict:
    """Inputs: language, page number, search, the edited grid. Writes the changed cells (one undo step per
    row). Outputs: grid, page number, page line."""
    records = frame.to_dict(orient="records") if frame is not None else []
    return _edit(studio, view, lang, current, search, request, "apply", "editor_applied", records)


@worded_errors
def add_row(studio: Studio, view: EditorView, lang: str, current: float, search: str, request: gr.Request) -> dict:
    """Inputs: language, page number, search. Appends an empty row. Outputs: grid, page number, page line."""
    return _edit(studio, view, lang, current, search, request, "add", "editor_added")


@worded_errors
def duplicate_row(studio: Studio, view: EditorView, lang: str, current: float, search: str, row: float,
                  request: gr.Request) -> dict:
    """Inputs: language, page number, search, row number. Inserts a copy after the row. Outputs: grid, page
    number, page line."""
    return _edit(studio, view, lang, current, search, request, "duplicate", "editor_duplicated", row)


@worded_errors
def delete_row(studio: Studio, view: EditorView, lang: str, current: float, search: str, row: float,
               request: gr.Request) -> dict:
    """Inputs: language, page number, search, row number. Deletes the row. Outputs: grid, page number, page
    line."""
    return _edit(studio, view, lang, current, search, request, "delete", "editor_deleted", [row])


@worded_errors
def remove_duplicates(studio: Studio, view: EditorView, lang: str, current: float, search: str,
                      request: gr.Request) -> dict:
    """Inputs: language, page number, search. Removes rows equal to an earlier row. Outputs: grid, page
    number, page line."""
    return _edit(studio, view, lang, current, search, request, "dedup", "editor_deduped")


@worded_errors
def strip_whitespace(studio: Studio, view: EditorView, lang: str, current: float, search: str,
                     request: gr.Request) -> dict:
    """Inputs: language, page number, search. Trims the text cells. Outputs: grid, page number, page line."""
    return _edit(studio, view, lang, current, search, request, "strip", "editor_stripped")


@worded_errors
def drop_empty_rows(studio: Studio, view: EditorView, lang: str, current: float, search: str,
                    request: gr.Request) -> dict:
    """Inputs: language, page number, search. Removes rows with no text. Outputs: grid, page number, page line."""
    return _edit(studio, view, lang, current, search, request, "drop_empty", "editor_dropped")


@worded_errors
def undo(studio: Studio, view: EditorView, lang: str, current: float, search: str, request: gr.Request) -> dict:
    """Inputs: language, page number, search. Reverts the last change. Outputs: grid, page number, page line."""
    return _edit(studio, view, lang, current, search, request, "undo", "editor_undone")


@worded_errors
def save_version(studio: Studio, view: EditorView, lang: str, request: gr.Request) -> dict:
    """Input: language. Saves the session's rows as the dataset's next version. Output: its path (the
    dataset path box)."""
    saved = studio.save_dataset(session_of(request))
    if saved is None:
        raise gr.Error(t("editor_empty", lang))
    gr.Info(t("editor_saved", lang, path=str(saved)))
    return {view.path: str(saved)}


@worded_errors
def export_jsonl(studio: Studio, view: EditorView, lang: str, request: gr.Request) -> dict:
    """Input: language. Output: a JSONL file of the session's rows, to download."""
    exported = studio.export_dataset(session_of(request))
    if exported is None:
        raise gr.Error(t("editor_empty", lang))
    return {view.exported: str(exported)}


def editor_shown(studio: Studio, view: EditorView, lang: str, request: gr.Request) -> dict:
    """Input: language. Output: the editor, shown once the session has rows open (hidden before: no empty grid,
    no buttons for rows that are not there)."""
    return {view.box: gr.Accordion(visible=studio.editor_page(session_of(request), 1, 1, "") is not None)}


def build(page: Page) -> EditorPanel:
    """Lay out the editor inside the Dataset tab (hidden until rows are open) and wire its events."""
    texts = page.texts
    with texts.add(gr.Accordion(open=True, visible=False, elem_id="editor"), label="editor_title") as box:
        query, number, moves = _navigation(texts)
        info = gr.Markdown(elem_id="editor-info")
        grid = gr.Dataframe(interactive=True, wrap=True, max_height=520, elem_id="editor-grid")
        row, buttons = _actions(texts)
    view = EditorView(grid=grid, page=number, info=info, exported=buttons.pop("exported"),
                      path=page.form.dataset_path, box=box)
    saved = _wire(page, view, query, row, moves, buttons)
    return EditorPanel(view=view, saved=saved)


def _navigation(texts: Texts) -> tuple[gr.Textbox, gr.Number, dict[str, gr.Button]]:
    """The search box, page number and the previous / next buttons."""
    with gr.Row():
        query = texts.add(gr.Textbox(elem_id="editor-search", scale=3), label="editor_search")
        previous = texts.add(gr.Button(elem_id="editor-previous", scale=0, min_width=60), value="editor_previous")
        number = texts.add(gr.Number(value=1, minimum=1, precision=0, elem_id="editor-page", scale=1, min_width=80),
                           label="editor_page_label")
        following = texts.add(gr.Button(elem_id="editor-next", scale=0, min_width=60), value="editor_next")
    return query, number, {"previous": previous, "next": following}


def _actions(texts: Texts) -> tuple[gr.Number, dict[str, Any]]:
    """A compact toolbar (apply, the row number, add, duplicate, delete, undo, save), the rarer actions (remove
    duplicates, strip whitespace, drop empty rows, export) behind "More", and the exported file."""
    buttons: dict[str, Any] = {}

    def button(name: str, elem_id: str, **style) -> None:
        buttons[name] = texts.add(gr.Button(elem_id=elem_id, **style), value=f"editor_{name}")

    with gr.Row(elem_id="editor-toolbar"):
        button("apply", "editor-apply", variant="primary", size="sm")
        row = texts.add(gr.Number(value=1, precision=0, minimum=1, elem_id="editor-row", min_width=100),
                        label="col_row")
        button("add", "editor-add", size="sm")
        button("duplicate", "editor-duplicate", size="sm")
        button("delete", "editor-delete", variant="stop", size="sm")
        button("undo", "editor-undo", size="sm")
        button("save", "editor-save", variant="primary", size="sm")
    with texts.add(gr.Accordion(open=False, elem_id="editor-more"), label="editor_more"):
        with gr.Row():
            button("dedup", "editor-dedup", size="sm")
            button("strip", "editor-strip", size="sm")
            button("drop_empty", "editor-drop-empty", size="sm")
            button("export", "editor-export", size="sm")
        buttons["exported"] = texts.add(gr.File(interactive=False, elem_id="editor-exported"),
                                        label="editor_exported")
    return row, buttons


def _wire(page: Page, view: EditorView, query: gr.Textbox, row: gr.Number, moves: dict[str, gr.Button],
          buttons: dict[str, gr.Button]):
    """Connect the editor's events to its handlers; returns the save event."""
    studio, lang, shown = page.studio, page.language, view.shown
    inputs = [lang, view.page, query]
    edits = {"apply": (apply_edits, [view.grid]), "add": (add_row, []), "duplicate": (duplicate_row, [row]),
             "delete": (delete_row, [row]), "dedup": (remove_duplicates, []), "strip": (strip_whitespace, []),
             "drop_empty": (drop_empty_rows, []), "undo": (undo, [])}
    for name, (handler, extra) in edits.items():
        buttons[name].click(bind(handler, studio, view), inputs + extra, shown, api_name=f"editor_{name}")
    view.page.submit(bind(show_page, studio, view), inputs, shown, api_name="editor_page")
    moves["previous"].click(bind(previous_page, studio, view), inputs, shown, api_visibility="private")
    moves["next"].click(bind(next_page, studio, view), inputs, shown, api_visibility="private")
    query.submit(bind(search_rows, studio, view), [lang, query], shown, api_name="editor_search")
    view.grid.change(bind(editor_shown, studio, view), [lang], [view.box], api_visibility="private",
                     queue=False, show_progress="hidden")
    buttons["export"].click(bind(export_jsonl, studio, view), [lang], [view.exported], api_name="editor_export")
    return buttons["save"].click(bind(save_version, studio, view), [lang], [view.path], api_name="editor_save")
