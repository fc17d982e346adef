"""The Dataset tab's and the row editor's handlers, called directly with a fake Studio (no server)."""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd
import pytest

from engine import ColumnMapping, DatasetCheck, EngineError, Studio, TrainConfig, Workspace
from engine.data import checks
from engine.data.reading import load_report
from engine.data.sessions import EditorPage, Exclusion
from ui import (
    chat_tab,
    dataset_tab,
    editor_panel,
    forms,
    study_dashboard,
    study_invite,
    study_organise,
    study_results,
    study_tab,
    training_tab,
)
from ui.dataset_tab import MAPPING_FIELDS, DatasetView
from ui.editor_panel import EditorView

ROWS = [{"instruction": "Where is my order?", "output": "It ships today."},
        {"instruction": "Can I return it?", "output": ""},
        {"instruction": "发货要多久？", "output": "一般1到3天送达。"}]
FORM = ["max_length", "lora_r"]


class FakeStudio:
    """Stands in for Studio: checks read the file for real (no tokenizer); each session's open dataset is
    just its path; every call the handlers make is recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.opened: dict[str, str] = {}
        self.exclusion: Exclusion | None = None

    def config_from_form(self, values: dict) -> TrainConfig:
        self.calls.append(("config", values))
        return TrainConfig().replace(**{name: v for name, v in values.items() if v is not None})

    def check_dataset(self, path, config: TrainConfig, mapping: ColumnMapping | None = None) -> DatasetCheck:
        self.calls.append(("check", path, config.max_length, mapping))
        report = load_report(path, mapping)
        extra, summary = checks.check_dataset(report, None, config.max_length)
        report.issues.extend(extra)
        return DatasetCheck(report, summary)

    def inspect_dataset(self, path):
        return load_report(path)

    def training_view(self, example: dict, config: TrainConfig):
        return [(example["prompt"][0]["content"], "context"), (example["completion"][0]["content"], "trained")]

    def open_editor(self, session: str, path) -> None:
        self.opened[session] = str(path)

    def editor_page(self, session: str, number, size: int, query: str) -> EditorPage | None:
        self.calls.append(("page", session, number, query))
        if session not in self.opened:
            return None
        return EditorPage(pd.DataFrame({"#": [1], "source": [self.opened[session]]}), max(1, int(number)), 4, 61)

    def edit_dataset(self, session: str, change: str, *args) -> int | None:
        self.calls.append(("edit", session, change, args))
        return 7 if session in self.opened else None

    def save_dataset(self, session: str) -> Path | None:
        return Path("data", session, "v0001.jsonl") if session in self.opened else None

    def export_dataset(self, session: str) -> Path | None:
        return Path("exports", f"{session}.jsonl") if session in self.opened else None

    def exclude_rows_with_errors(self, session: str, path, config: TrainConfig) -> Exclusion | None:
        self.calls.append(("exclude", session, path, config.max_length))
        return self.exclusion


def request(session: str) -> SimpleNamespace:
    return SimpleNamespace(session_hash=session)


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def dataset_view(form: list[str]) -> DatasetView:
    """The Dataset tab's view with plain names for its components, and the form fields `form`."""
    editor = EditorView(grid="grid", page="page", info="info", exported="exported", path="path")
    return DatasetView(path="path", summary="summary", histogram="histogram", issues="issues", format="format",
                       columns={name: f"column-{name}" for name in MAPPING_FIELDS}, model_view="model_view",
                       editor=editor, form=form)


@pytest.fixture
def view() -> DatasetView:
    return dataset_view(FORM)


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_rows(tmp_path / "support.jsonl", ROWS)


def test_check_reports_the_problems_and_opens_the_dataset_for_this_session_only(view, dataset):
    studio = FakeStudio()
    out = dataset_tab.check_dataset(studio, view, "en", f"  {dataset} ", request("s1"), 64, None)
    assert list(out) == view.checked
    assert "1 errors" in out["summary"]
    errors = [row for row in out["issues"].values.tolist() if row[0] == "error"]
    assert errors == [["error", 2, "output", "Row 2: the field 'output' is missing or empty."]]
    assert out["format"].value == "alpaca"
    assert out["column-instruction"].value == "instruction" and out["column-instruction"].visible is True
    assert out["column-messages"].visible is False and out["column-instruction"].choices[0] == ("", "")
    assert out["grid"]["source"].tolist() == [str(dataset)] and out["page"] == 1
    assert out["info"].startswith("Page 1 of 4 · 61 rows")
    assert studio.opened == {"s1": str(dataset)}
    assert ("config", {"max_length": 64, "lora_r": None}) in studio.calls
    assert ("check", str(dataset), 64, None) in studio.calls


def test_a_missing_file_is_reported_and_bad_settings_are_refused_in_the_page_language(view, tmp_path):
    studio = FakeStudio()
    missing = dataset_tab.check_dataset(studio, view, "zh", str(tmp_path / "missing.jsonl"), request("s1"), None, None)
    assert "不存在" in missing["issues"].values.tolist()[0][3] and missing["grid"].empty
    with pytest.raises(gr.Error, match="设置项“max_length”需要 int 类型的值"):
        dataset_tab.check_dataset(studio, view, "zh", str(tmp_path / "x.jsonl"), request("s1"), "long", None)
    assert studio.opened == {}


def test_check_with_mapping_reads_only_the_chosen_formats_columns(view, tmp_path):
    path = write_rows(tmp_path / "qa.jsonl", [{"q": "Where is order 1?", "a": "It ships today."}])
    studio = FakeStudio()
    columns = {name: "" for name in MAPPING_FIELDS} | {"prompt": "q", "completion": "a", "instruction": "q"}
    out = dataset_tab.check_with_mapping(studio, view, "en", str(path), "prompt_completion", request("s1"),
                                         *columns.values(), 128, 8)
    mapping = ColumnMapping("prompt_completion", {"prompt": "q", "completion": "a"})
    assert ("check", str(path), 128, mapping) in studio.calls
    assert out["format"].value == "prompt_completion" and "0 errors" in out["summary"]
    assert out["column-prompt"].value == "q" and out["column-instruction"].visible is False


def test_exclude_puts_the_saved_version_in_the_path_box_and_checks_it(view, dataset, tmp_path, capsys):
    saved = write_rows(tmp_path / "v0001.jsonl", [ROWS[0], ROWS[2]])
    studio = FakeStudio()
    studio.exclusion = Exclusion(saved, 1, ColumnMapping("alpaca", {"instruction": "instruction", "output": "output"}))
    out = dataset_tab.exclude_rows_with_errors(studio, view, "en", f"{dataset} ", request("s1"), 32, None)
    assert list(out) == ["path"] + view.checked
    assert out["path"] == str(saved) and "0 errors" in out["summary"]
    assert ("exclude", "s1", str(dataset), 32) in studio.calls and studio.opened == {"s1": str(saved)}
    assert f"1 row(s) excluded; saved as {saved}" in capsys.readouterr().out


def test_exclude_with_nothing_to_exclude_says_so(view, dataset):
    with pytest.raises(gr.Error, match="没有需要排除的错误行"):
        dataset_tab.exclude_rows_with_errors(FakeStudio(), view, "zh", str(dataset), request("s1"), None, None)


def test_model_view_shows_a_usable_row_and_refuses_others(view, dataset):
    out = dataset_tab.show_model_view(FakeStudio(), view, "en", str(dataset), 3, None, None)
    assert out == {"model_view": [("发货要多久？", "context"), ("一般1到3天送达。", "trained")]}
    with pytest.raises(gr.Error, match="Row 2 is not a usable row"):
        dataset_tab.show_model_view(FakeStudio(), view, "en", str(dataset), 2, None, None)


def test_upload_and_format_choice(view, tmp_path):
    uploaded = tmp_path / "upload-folder" / "up.csv"
    uploaded.parent.mkdir()
    uploaded.write_text("instruction,output\nq,a\n", encoding="utf-8")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data", workspace=Workspace.of(tmp_path / "data",
                                                                                            uploaded.parent))
    kept = tmp_path / "data" / "uploads" / "up.csv"
    assert forms.take_upload(studio, view.path, "en", str(uploaded)) == {"path": str(kept)}
    assert kept.read_text(encoding="utf-8") == uploaded.read_text(encoding="utf-8")
    assert forms.take_upload(FakeStudio(), view.path, "en", None) == {"path": ""}
    with pytest.raises(gr.Error, match="上传|工作室"):
        forms.take_upload(studio, view.path, "zh", str(tmp_path / "elsewhere.csv"))
    shown = dataset_tab.show_mapping_columns(FakeStudio(), view, "en", "sharegpt")
    visible = {box for box, update in shown.items() if update.visible}
    assert visible == {"column-conversations", "column-system", "column-tools", "column-label"}


EDITS = [  # handler, its extra inputs, the change it asks for, that change's arguments, the words it announces
    (editor_panel.apply_edits, (pd.DataFrame({"#": [2], "output": ["Yes"]}),), "apply", ([{"#": 2, "output": "Yes"}],),
     "7 row(s) changed."),
    (editor_panel.add_row, (), "add", (), "Row 7 added."),
    (editor_panel.duplicate_row, (3,), "duplicate", (3,), "Copy added as row 7."),
    (editor_panel.delete_row, (3,), "delete", ([3],), "7 row(s) deleted."),
    (editor_panel.remove_duplicates, (), "dedup", (), "7 duplicate row(s) removed."),
    (editor_panel.strip_whitespace, (), "strip", (), "7 cell(s) trimmed."),
    (editor_panel.drop_empty_rows, (), "drop_empty", (), "7 empty row(s) dropped."),
    (editor_panel.undo, (), "undo", (), "Undone."),
]


@pytest.mark.parametrize("handler, extra, change, args, announced", EDITS, ids=[e[2] for e in EDITS])
def test_an_edit_changes_only_the_requesting_sessions_rows(view, handler, extra, change, args, announced, capsys):
    studio = FakeStudio()
    studio.opened = {"s1": "support.jsonl"}
    out = handler(studio, view.editor, "en", 2, "ship", *extra, request("s1"))
    assert list(out) == view.editor.shown and out["page"] == 2
    assert [c for c in studio.calls if c[0] == "edit"] == [("edit", "s1", change, args)]
    assert ("page", "s1", 2, "ship") in studio.calls
    assert announced in capsys.readouterr().out
    with pytest.raises(gr.Error, match="No dataset is open"):
        handler(studio, view.editor, "en", 2, "ship", *extra, request("s2"))


def test_paging_and_search_move_through_the_sessions_rows(view):
    studio = FakeStudio()
    studio.opened = {"s1": "support.jsonl"}
    editor, session = view.editor, request("s1")
    assert editor_panel.show_page(studio, editor, "en", 3, "", session)["page"] == 3
    assert editor_panel.previous_page(studio, editor, "en", 3, "", session)["page"] == 2
    assert editor_panel.next_page(studio, editor, "en", None, "", session)["page"] == 2
    assert editor_panel.search_rows(studio, editor, "en", "order", session)["page"] == 1
    assert studio.calls[-1] == ("page", "s1", 1, "order")
    empty = editor_panel.show_page(studio, editor, "zh", 1, "", request("s2"))
    assert empty["grid"].empty and empty["page"] == 1 and empty["info"].startswith("还没有打开数据集")


def test_save_and_export_use_the_sessions_dataset(view, capsys):
    studio = FakeStudio()
    studio.opened = {"s1": "support.jsonl"}
    saved = str(Path("data", "s1", "v0001.jsonl"))
    assert editor_panel.save_version(studio, view.editor, "en", request("s1")) == {"path": saved}
    assert f"Saved as {saved}" in capsys.readouterr().out
    assert editor_panel.export_jsonl(studio, view.editor, "en", request("s1")) == {
        "exported": str(Path("exports", "s1.jsonl"))}
    for handler in (editor_panel.save_version, editor_panel.export_jsonl):
        with pytest.raises(gr.Error, match="No dataset is open"):
            handler(studio, view.editor, "en", request("s2"))


def test_engine_errors_from_an_edit_are_worded(view):
    class Refusing(FakeStudio):
        def edit_dataset(self, session, change, *args):
            raise EngineError("row_out_of_range", {"position": 9, "rows": 3})

    with pytest.raises(gr.Error, match="第 9 行不存在"):
        editor_panel.delete_row(Refusing(), view.editor, "zh", 1, "", 9, request("s1"))


@pytest.mark.parametrize(("module", "least"), [
    (dataset_tab, 5), (editor_panel, 6), (training_tab, 9), (chat_tab, 3), (study_organise, 4), (study_invite, 4),
    (study_dashboard, 2), (study_results, 3), (forms, 1)])
def test_every_handler_says_its_inputs_and_outputs(module, least):
    handlers = [fn for name, fn in inspect.getmembers(module, inspect.isfunction)
                if fn.__module__ == module.__name__ and not name.startswith("_")
                and list(inspect.signature(fn).parameters)[:2] == ["studio", "view"]]
    assert len(handlers) >= least
    silent = [fn.__name__ for fn in handlers if not ("Input" in fn.__doc__ and "Output" in fn.__doc__)]
    assert silent == []


def test_the_study_tab_only_lays_out_and_wires():
    handlers = [name for name, fn in inspect.getmembers(study_tab, inspect.isfunction)
                if fn.__module__ == study_tab.__name__ and list(inspect.signature(fn).parameters)[:1] == ["studio"]]
    assert handlers == []  # its handlers live in the study_* modules checked above


def test_the_form_config_takes_the_path_box_as_the_run_dataset_when_given():
    studio = FakeStudio()
    assert forms.config_of(studio, FORM, (64, None)).dataset_path == TrainConfig().dataset_path
    assert forms.config_of(studio, FORM, (64, None), "  data/x.jsonl ").dataset_path == "data/x.jsonl"
    assert forms.config_of(studio, FORM, (64, 8), "").dataset_path == ""
    assert studio.calls == [("config", {"max_length": 64, "lora_r": None})] * 2 + [("config",
                                                                                     {"max_length": 64, "lora_r": 8})]
