"""The Dataset tab reads the file as chosen next to it (encoding, delimiter, SFT on the chosen answers) and shows
a plain-text file's chunks; those three fields are laid out there, not on the Hyperparameters tab."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from engine import Studio
from tests.test_dataset_handlers import dataset_view
from ui import build_app, dataset_tab, forms
from ui.dataset_tab import DatasetView

FORM = ["max_length", *forms.DATASET_TAB_FIELDS]


@pytest.fixture
def studio(tmp_path) -> Studio:
    return Studio(tmp_path / "runs", data_root=tmp_path / "data")


@pytest.fixture
def view() -> DatasetView:
    return dataset_view(FORM)


def check(studio, view, path, lang="en", max_length=64, encoding="auto", delimiter="auto", chosen=False) -> dict:
    return dataset_tab.check_dataset(studio, view, lang, str(path), SimpleNamespace(session_hash="s1"), max_length,
                                     encoding, delimiter, chosen)


def messages_of(out: dict) -> list[str]:
    """The worded problems of a check's output."""
    return [row[3] for row in out["issues"].values.tolist()]


def test_the_chosen_encoding_delimiter_and_chosen_answers_are_used(studio, view, tmp_path):
    path = tmp_path / "faq.csv"
    path.write_bytes("问题;回答\n你好;你好啊\n几点开门？;九点。\n".encode("gbk"))
    auto = check(studio, view, path)
    assert "gb18030" in auto["summary"] and "cells separated by ;" in auto["summary"]
    wrong = check(studio, view, path, encoding="utf-8")
    assert any("utf-8" in message for message in messages_of(wrong))
    whole_lines = check(studio, view, path, delimiter=",")
    assert any("问题;回答" in message for message in messages_of(whole_lines))  # one column: not a format
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Q{n}?", "chosen": "Yes, gladly.", "rejected": "No."}) + "\n"
                             for n in range(3)), encoding="utf-8")
    assert any("DPO" in message for message in messages_of(check(studio, view, pairs)))
    assert not any("DPO" in message for message in messages_of(check(studio, view, pairs, chosen=True)))


def test_a_text_file_shows_its_chunks(studio, view, tmp_path):
    path = tmp_path / "chapter.txt"
    path.write_text("\n\n".join(f"Paragraph {n}. The keeper climbed the stairs again. " * 3 for n in range(8)),
                    encoding="utf-8")
    out = check(studio, view, path)
    assert "chunk(s) of up to 64 tokens" in out["summary"] and "> Chunk 1: Paragraph 0." in out["summary"]
    assert "Chunk 4:" not in out["summary"]  # the first three only
    zh = check(studio, view, path, lang="zh")
    assert "个文本块" in zh["summary"] and "第 1 块：Paragraph 0." in zh["summary"]
    other = tmp_path / "qa.jsonl"
    other.write_text(json.dumps({"prompt": "Q?", "completion": "An answer."}) + "\n", encoding="utf-8")
    assert "Chunk" not in check(studio, view, other)["summary"]


def _tab_of(node: dict, ids: dict[int, dict], tab: str | None = None) -> dict[str, str | None]:
    """elem_id -> the elem_id of the tab it is laid out in, for every component below `node`."""
    component = ids.get(node["id"], {})
    props = component.get("props", {})
    if component.get("type") == "tabitem":
        tab = props.get("elem_id")
    found = {props["elem_id"]: tab} if props.get("elem_id") else {}
    for child in node.get("children", ()):
        found.update(_tab_of(child, ids, tab))
    return found


def test_the_reading_fields_sit_next_to_the_file_on_the_dataset_tab(studio):
    assert set(forms.DATASET_TAB_FIELDS) <= set(forms.form_fields())  # still the run's settings
    app = build_app(studio)
    ids = {component["id"]: component for component in app.config["components"]}
    tabs = _tab_of(app.config["layout"], ids)
    assert tabs["dataset-path"] == "tab-dataset" and tabs["field-max_steps"] == "tab-params"
    assert all(tabs[f"field-{name}"] == "tab-dataset" for name in forms.DATASET_TAB_FIELDS)
