"""One edited dataset per browser session: sessions never see each other's rows; idle ones are dropped."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.data.sessions import EditorSessions
from engine.studio import Studio
from tests.conftest import FakeJob


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


FAQ = [{"instruction": f"Question {i}", "output": f"Answer {i}"} for i in range(1, 6)]
CHAT = [{"prompt": f"Hi {i}", "completion": f"Hello {i}"} for i in range(1, 4)]


def test_each_session_edits_and_saves_its_own_dataset(tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.open_editor("a", write_jsonl(tmp_path / "faq.jsonl", FAQ))
    studio.open_editor("b", write_jsonl(tmp_path / "chat.jsonl", CHAT))
    assert studio.edit_dataset("a", "delete", [1, 2]) == 2
    assert studio.edit_dataset("b", "add") == 4
    assert studio.editor_page("a").rows == 3 and studio.editor_page("b").rows == 4
    saved_a, saved_b = studio.save_dataset("a"), studio.save_dataset("b")
    assert saved_a == tmp_path / "data" / "faq" / "v0001.jsonl"
    assert saved_b == tmp_path / "data" / "chat" / "v0001.jsonl"
    assert read_jsonl(saved_a) == FAQ[2:]
    assert read_jsonl(saved_b) == CHAT + [{"prompt": "", "completion": ""}]
    assert studio.edit_dataset("a", "undo") == 1 and studio.editor_page("b").rows == 4  # b's rows stay


def test_a_session_without_a_dataset_gets_none(tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.open_editor("a", write_jsonl(tmp_path / "faq.jsonl", FAQ))
    assert studio.editor_page("b") is None
    assert studio.edit_dataset("b", "add") is None
    assert studio.save_dataset("b") is None and studio.export_dataset("b") is None
    assert not (tmp_path / "data").exists()  # nothing was saved for anyone


def test_the_page_shows_nested_cells_as_json_and_clamps_the_number(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "你好"}]}]
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.open_editor("a", write_jsonl(tmp_path / "m.jsonl", rows))
    page = studio.editor_page("a", 7)
    assert page.number == 1 and page.pages == 1 and page.rows == 1
    assert page.frame.to_dict(orient="records") == [{"#": 1, "messages": '[{"role": "user", "content": "你好"}]'}]


@pytest.mark.parametrize("number, shown", [("abc", 1), ("", 1), (None, 1), ("2.5", 1), (float("nan"), 1),
                                           (float("inf"), 1), ([3], 1), ("3", 3), (" 2 ", 2), (2.0, 2), (99, 3),
                                           (-4, 1)])
def test_a_page_number_that_is_not_a_number_shows_the_first_page(number, shown, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.open_editor("a", write_jsonl(tmp_path / "faq.jsonl", [{"prompt": f"q{i}", "completion": "a"}
                                                                 for i in range(1, 6)]))
    page = studio.editor_page("a", number, 2)
    assert page.number == shown and page.pages == 3 and page.rows == 5
    assert list(page.frame["#"]) == [2 * shown - 1, 2 * shown][:5 - 2 * (shown - 1)]


def test_excluding_rows_with_errors_touches_only_the_session_dataset(tmp_path):
    bad = [{"instruction": f"Q{i}", "output": "" if i % 2 else f"A{i}"} for i in range(1, 7)]
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.open_editor("a", write_jsonl(tmp_path / "bad.jsonl", bad))
    studio.open_editor("b", write_jsonl(tmp_path / "faq.jsonl", FAQ))
    config = studio.default_config().replace(model_name_or_path="no/such-model-offline")
    by_c = studio.exclude_rows_with_errors("c", tmp_path / "bad.jsonl", config)  # c opened nothing: its own copy
    assert by_c.count == 3 and studio.editor_page("a").rows == 6  # a's rows are untouched
    excluded = studio.exclude_rows_with_errors("a", tmp_path / "bad.jsonl", config)
    assert excluded.count == 3 and excluded.mapping.format == "alpaca"
    assert read_jsonl(excluded.saved) == [r for r in bad if r["output"]]
    assert studio.editor_page("b").rows == 5 and not (tmp_path / "data" / "faq").exists()
    assert studio.exclude_rows_with_errors("b", tmp_path / "faq.jsonl", config) is None  # nothing to exclude


def test_idle_sessions_are_forgotten(tmp_path):
    clock = Clock()
    sessions = EditorSessions(tmp_path / "data", idle_seconds=60, clock=clock)
    path = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    sessions.open("a", path)
    clock.now = 30
    sessions.open("b", path)
    clock.now = 70  # a was last used at 0, b at 30
    assert sessions.get("a") is None and sessions.get("b") is not None
    clock.now = 120  # b was used again at 70
    assert sessions.sessions() == ["b"]
    clock.now = 200
    assert sessions.sessions() == []


def test_the_least_recently_used_session_goes_first_when_too_many_are_open(tmp_path):
    sessions = EditorSessions(tmp_path / "data", limit=2)
    path = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    sessions.open("a", path)
    sessions.open("b", path)
    sessions.get("a")
    sessions.open("c", path)
    assert sessions.sessions() == ["a", "c"]
