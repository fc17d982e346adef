"""DatasetEditor: every edit and its undo, paging and search, versioned atomic saves, errors, 50k rows."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.data.editor import UNDO_LIMIT, DatasetEditor
from engine.data.reading import load_report
from engine.errors import EngineError

ALPACA = [
    {"instruction": "Say hi", "input": "", "output": "Hi!"},
    {"instruction": "Translate", "input": "bonjour", "output": "hello"},
    {"instruction": "发货要多久？", "input": "订单号：OL-1", "output": "一般1到3天送达。"},
    {"instruction": "Say hi", "input": "", "output": "Hi!"},
    {"instruction": "Refund?", "input": "", "output": "Yes, within 30 days."},
]
SHAREGPT = [
    {"conversations": [{"from": "human", "value": "  你好  "}, {"from": "gpt", "value": "您好！有什么可以帮您？ "}],
     "system": "You are helpful."},
    {"conversations": [{"from": "human", "value": "Track my order"}, {"from": "gpt", "value": "Sure, the number?"}]},
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def editor(tmp_path) -> DatasetEditor:
    return DatasetEditor.open(write_jsonl(tmp_path / "faq.jsonl", ALPACA), tmp_path / "data")


@pytest.fixture
def chat(tmp_path) -> DatasetEditor:
    return DatasetEditor.open(write_jsonl(tmp_path / "chat.jsonl", SHAREGPT), tmp_path / "data")


def test_open_keeps_columns_and_rows(editor):
    assert editor.rows == 5
    assert editor.columns == ["instruction", "input", "output"]
    assert editor.to_records() == ALPACA
    assert editor.undo() is False


def test_open_csv_and_missing_cells(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("instruction,output\n问,答\nq,a\n", encoding="utf-8")
    ed = DatasetEditor.open(csv, tmp_path / "data")
    assert ed.to_records() == [{"instruction": "问", "output": "答"}, {"instruction": "q", "output": "a"}]
    ragged = DatasetEditor.open(write_jsonl(tmp_path / "r.jsonl", [{"text": "a"}, {"text": "b", "meta": 1}]),
                                tmp_path / "data")
    assert ragged.columns == ["text", "meta"]
    assert ragged.to_records() == [{"text": "a", "meta": ""}, {"text": "b", "meta": 1}]


def test_update_row_and_undo(editor):
    editor.update_row(2, {"output": "你好 hello"})
    assert editor.to_records()[1]["output"] == "你好 hello"
    assert editor.to_records()[0] == ALPACA[0]
    assert editor.undo() is True
    assert editor.to_records() == ALPACA
    editor.update_row(1, {"output": "Hi!"})  # unchanged value: nothing to undo
    assert editor.undo() is False


def test_add_row_and_undo(editor):
    assert editor.add_row({"instruction": "新问题"}) == 6
    assert editor.rows == 6
    assert editor.to_records()[-1] == {"instruction": "新问题", "input": "", "output": ""}
    assert editor.add_row() == 7
    assert editor.to_records()[-1] == {"instruction": "", "input": "", "output": ""}
    assert editor.undo() and editor.undo()
    assert editor.to_records() == ALPACA


def test_duplicate_row_and_undo(editor):
    assert editor.duplicate_row(3) == 4
    records = editor.to_records()
    assert records[2] == records[3] == ALPACA[2] and len(records) == 6
    assert records[4:] == ALPACA[3:]
    editor.update_row(4, {"output": "changed"})
    assert editor.to_records()[2] == ALPACA[2]  # the copy is independent
    assert editor.undo() and editor.undo()
    assert editor.to_records() == ALPACA


def test_delete_rows_and_undo(editor):
    assert editor.delete_rows([4, 2, 2]) == 2
    assert editor.to_records() == [ALPACA[0], ALPACA[2], ALPACA[4]]
    assert editor.delete_rows([]) == 0
    assert editor.undo() is True
    assert editor.to_records() == ALPACA
    assert editor.delete_rows([1, 2, 3, 4, 5]) == 5 and editor.rows == 0
    assert editor.undo() and editor.to_records() == ALPACA


def test_remove_exact_duplicates_and_undo(editor):
    assert editor.remove_exact_duplicates() == 1
    assert editor.to_records() == ALPACA[:3] + ALPACA[4:]
    assert editor.remove_exact_duplicates() == 0
    assert editor.undo() and editor.to_records() == ALPACA


def test_missing_and_empty_cells_count_as_duplicates(tmp_path):
    rows = [{"text": "a", "meta": ""}, {"text": "a"}, {"text": "a", "meta": 0}]
    ed = DatasetEditor.open(write_jsonl(tmp_path / "d.jsonl", rows), tmp_path / "data")
    assert ed.remove_exact_duplicates() == 1
    assert ed.to_records() == [{"text": "a", "meta": ""}, {"text": "a", "meta": 0}]


def test_strip_whitespace_and_undo(tmp_path):
    rows = [{"instruction": "  padded\n", "input": " ", "output": "fine"},
            {"instruction": "ok", "input": "", "output": "ok"}]
    ed = DatasetEditor.open(write_jsonl(tmp_path / "w.jsonl", rows), tmp_path / "data")
    assert ed.strip_whitespace() == 2
    assert ed.to_records()[0] == {"instruction": "padded", "input": "", "output": "fine"}
    assert ed.strip_whitespace() == 0
    assert ed.undo() and ed.to_records() == rows


def test_strip_whitespace_inside_conversations(chat):
    before = chat.to_records()
    assert before[1]["system"] == ""  # a missing cell reads as empty text
    assert chat.strip_whitespace() == 1
    turns = chat.to_records()[0]["conversations"]
    assert [t["value"] for t in turns] == ["你好", "您好！有什么可以帮您？"]
    assert [t["from"] for t in turns] == ["human", "gpt"]
    assert chat.undo() and chat.to_records() == before


def test_drop_empty_rows_and_undo(tmp_path):
    rows = [{"instruction": "q", "output": "a"}, {"instruction": " ", "output": ""}, {"instruction": "\t"},
            {"instruction": "", "output": "a"}]
    ed = DatasetEditor.open(write_jsonl(tmp_path / "e.jsonl", rows), tmp_path / "data")
    before = ed.to_records()
    assert ed.drop_empty_rows() == 2
    assert ed.to_records() == [before[0], before[3]]
    assert ed.undo() and ed.to_records() == before


def test_undo_keeps_at_least_twenty_steps(editor):
    assert UNDO_LIMIT >= 20
    for n in range(25):
        editor.update_row(1, {"output": f"v{n}"})
    for _ in range(25):
        assert editor.undo() is True
    assert editor.to_records() == ALPACA
    assert editor.undo() is False


def test_mixed_changes_undo_in_reverse_order(editor):
    editor.delete_rows([1])
    editor.add_row({"output": "new"})
    editor.update_row(1, {"input": "x"})
    editor.duplicate_row(2)
    editor.strip_whitespace()
    while editor.undo():
        pass
    assert editor.to_records() == ALPACA


def test_page_numbers_and_totals(tmp_path):
    rows = [{"text": f"row {n}"} for n in range(1, 46)]
    ed = DatasetEditor.open(write_jsonl(tmp_path / "p.jsonl", rows), tmp_path / "data")
    frame, pages = ed.page(1)
    assert pages == 3 and list(frame.columns) == ["#", "text"]
    assert list(frame["#"]) == list(range(1, 21)) and frame["text"].iloc[0] == "row 1"
    frame, _ = ed.page(3)
    assert list(frame["#"]) == list(range(41, 46))
    assert list(ed.page(99)[0]["#"]) == list(range(41, 46))  # clamped to the last page
    assert list(ed.page(0, size=10)[0]["#"]) == list(range(1, 11))
    assert ed.page(1, size=10)[1] == 5


def test_search_is_case_insensitive_and_reports_positions(editor):
    frame, pages = editor.page(1, query="SAY HI")
    assert pages == 1 and list(frame["#"]) == [1, 4]
    frame, _ = editor.page(1, query="送达")
    assert list(frame["#"]) == [3] and frame["instruction"].iloc[0] == "发货要多久？"
    frame, pages = editor.page(1, query="nothing like this")
    assert len(frame) == 0 and pages == 1 and list(frame.columns) == ["#", *editor.columns]


def test_search_follows_edits_and_undo(editor):
    editor.update_row(5, {"output": "退款 within 30 days"})
    assert list(editor.page(1, query="退款")[0]["#"]) == [5]
    editor.delete_rows([1])
    assert list(editor.page(1, query="退款")[0]["#"]) == [4]
    editor.undo()
    editor.undo()
    assert len(editor.page(1, query="退款")[0]) == 0
    assert list(editor.page(1, query="refund")[0]["#"]) == [5]


def test_search_inside_nested_conversations(chat):
    frame, _ = chat.page(1, query="track MY")
    assert list(frame["#"]) == [2]
    assert isinstance(frame["conversations"].iloc[0], list)
    assert list(chat.page(1, query="有什么")[0]["#"]) == [1]


def test_sharegpt_rows_survive_edit_and_save(chat):
    new_turns = [{"from": "human", "value": "退货怎么办？"}, {"from": "gpt", "value": "请在30天内联系我们。"}]
    chat.update_row(2, {"conversations": new_turns})
    chat.update_row(1, {"conversations": json.dumps(SHAREGPT[1]["conversations"])})  # grid text is parsed back
    saved = read_jsonl(chat.save())
    assert saved[1]["conversations"] == new_turns
    assert saved[0]["conversations"] == SHAREGPT[1]["conversations"]
    assert saved[1]["system"] == ""
    report = load_report(chat.folder / "latest.jsonl")
    assert report.format == "sharegpt" and not report.errors and len(report.examples) == 2


def test_versions_increase_and_never_overwrite(editor, tmp_path):
    assert editor.versions() == []
    first = editor.save()
    assert first == tmp_path / "data" / "faq" / "v0001.jsonl"
    first_text = first.read_text(encoding="utf-8")
    editor.update_row(1, {"output": "改过了"})
    second = editor.save()
    assert second.name == "v0002.jsonl"
    assert first.read_text(encoding="utf-8") == first_text
    assert editor.versions() == [first, second]
    latest = editor.folder / "latest.jsonl"
    assert latest.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")
    assert "改过了" in latest.read_text(encoding="utf-8")  # ensure_ascii=False
    # another editor on the same dataset (or a stray file) never gets its version replaced
    (editor.folder / "v0003.jsonl").write_text("{}\n", encoding="utf-8")
    third = editor.save()
    assert third.name == "v0004.jsonl" and (editor.folder / "v0003.jsonl").read_text() == "{}\n"
    assert latest.read_text(encoding="utf-8") == third.read_text(encoding="utf-8")
    assert not [p for p in editor.folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_reopening_a_saved_version_keeps_the_dataset_folder(editor, tmp_path):
    editor.save()
    again = DatasetEditor.open(editor.folder / "latest.jsonl", tmp_path / "data")
    assert again.name == "faq" and again.to_records() == ALPACA
    assert again.save().name == "v0002.jsonl"


def test_saved_lines_keep_column_order_and_no_nan(tmp_path):
    rows = [{"b": "1", "a": None, "c": float("nan")}, {"a": "x"}]
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n", encoding="utf-8")
    ed = DatasetEditor.open(path, tmp_path / "data")
    lines = ed.save().read_text(encoding="utf-8").splitlines()
    assert [list(json.loads(line)) for line in lines] == [["b", "a", "c"]] * 2
    assert "NaN" not in "".join(lines) and "null" not in "".join(lines)
    assert json.loads(lines[1]) == {"b": "", "a": "x", "c": ""}


def test_export_round_trips_through_load_report(editor, tmp_path):
    editor.update_row(2, {"input": "中文输入"})
    out = editor.export_jsonl(tmp_path / "out" / "export.jsonl")
    assert out.is_file()
    report = load_report(out)
    assert report.rows == editor.to_records()
    assert report.format == "alpaca" and not report.errors
    assert DatasetEditor.open(out, tmp_path / "data").to_records() == editor.to_records()


def test_out_of_range_positions(editor):
    for call in (lambda: editor.update_row(6, {"output": "x"}), lambda: editor.update_row(0, {}),
                 lambda: editor.duplicate_row(-1), lambda: editor.delete_rows([1, 99])):
        with pytest.raises(EngineError) as caught:
            call()
        assert caught.value.code == "row_out_of_range"
        assert caught.value.params["rows"] == 5
    assert editor.rows == 5 and editor.undo() is False  # nothing half-done


def test_unknown_columns(editor):
    for call in (lambda: editor.update_row(1, {"answer": "x"}), lambda: editor.add_row({"answer": "x"})):
        with pytest.raises(EngineError) as caught:
            call()
        assert caught.value.code == "column_unknown" and caught.value.params["column"] == "answer"
    assert editor.to_records() == ALPACA


def test_fifty_thousand_rows(tmp_path):
    rows = [{"instruction": f"Question {n} 问题", "input": "", "output": f"Answer number {n}。"}
            for n in range(50_000)]
    rows[31_337]["output"] = "The needle 针 is here"
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    timings = {}

    def timed(name, call):
        start = time.perf_counter()
        result = call()
        timings[name] = time.perf_counter() - start
        return result

    ed = timed("open", lambda: DatasetEditor.open(path, tmp_path / "data"))
    assert ed.rows == 50_000
    frame, pages = timed("page", lambda: ed.page(1234))
    assert pages == 2500 and list(frame["#"])[:2] == [24661, 24662]
    frame, pages = timed("search first", lambda: ed.page(1, query="NEEDLE 针"))
    assert list(frame["#"]) == [31338] and pages == 1
    frame, _ = timed("search again", lambda: ed.page(1, query="number 4999"))
    assert list(frame["#"])[:2] == [5000, 49991]
    timed("update_row", lambda: ed.update_row(10, {"output": "edited needle"}))
    frame, _ = timed("search after edit", lambda: ed.page(1, query="needle"))
    assert list(frame["#"]) == [10, 31338]
    timed("delete_rows", lambda: ed.delete_rows([1, 2, 3]))
    timed("duplicate_row", lambda: ed.duplicate_row(100))
    assert timed("strip_whitespace", ed.strip_whitespace) == 0
    assert timed("remove_exact_duplicates", ed.remove_exact_duplicates) == 1
    for _ in range(3):
        timed("undo", ed.undo)
    assert ed.rows == 50_000 and ed.to_records()[9]["output"] == "edited needle"
    timed("save", ed.save)
    print("\n50k rows x 3 columns: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in timings.items()))
