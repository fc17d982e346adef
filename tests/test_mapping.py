"""Column mapping (guessed and chosen), Excel cells, conversation role order, ShareGPT system column."""
from __future__ import annotations

import pytest

from engine.data import reading
from engine.data.reading import load_report
from tests.test_data import write_jsonl


@pytest.mark.parametrize("columns,expected", [
    ({"conversations", "text"}, "sharegpt"),
    ({"messages"}, "messages"),
    ({"instruction", "output", "input"}, "alpaca"),
    ({"instruction", "response"}, "alpaca"),  # response is a synonym of output
    ({"prompt", "completion"}, "prompt_completion"),
    ({"text", "meta"}, "text"),
    ({"question", "answer"}, "prompt_completion"),  # proposed mapping: question -> prompt, answer -> completion
    ({"问题", "答案"}, "prompt_completion"),
    ({"foo", "bar"}, None),
])
def test_detect_format(columns, expected):
    assert reading.detect_format([{c: "x" for c in columns}]) == expected



def test_proposed_mapping_and_a_user_mapping(tmp_path):
    from engine.data.mapping import ColumnMapping

    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "Where is it?", "answer": "On its way.", "note": "x"}])
    report = load_report(path)
    assert report.format == "prompt_completion"
    assert report.mapping.columns == {"prompt": "question", "completion": "answer"}
    assert report.examples[0]["completion"][0]["content"] == "On its way."
    chosen = load_report(path, ColumnMapping("prompt_completion", {"prompt": "question", "completion": "note"}))
    assert chosen.examples[0]["completion"][0]["content"] == "x"
    missing = load_report(write_jsonl(tmp_path / "m.jsonl", [{"question": "q", "answer": ""}]))
    assert missing.issues[0].field == "answer"  # issues name the user's column, not the canonical field


def test_excel_with_json_history_cells(tmp_path):
    import pandas as pd

    path = tmp_path / "rows.xlsx"
    pd.DataFrame([{"instruction": "退货怎么办？", "output": "您好，感谢联系果园巷！",
                   "history": '[["你好", "您好"]]'}]).to_excel(path, index=False)
    report = load_report(path)
    assert report.format == "alpaca" and report.issues == []
    assert [m["content"] for m in report.examples[0]["prompt"]] == ["你好", "您好", "退货怎么办？"]


@pytest.mark.parametrize("turns,turn,expected", [
    ([("assistant", "hi"), ("user", "q"), ("assistant", "a")], 1, "user"),
    ([("user", "q1"), ("user", "q2"), ("assistant", "a")], 2, "assistant"),
    ([("user", "q"), ("system", "s"), ("assistant", "a")], 2, "assistant"),
])
def test_out_of_order_roles_are_errors(tmp_path, turns, turn, expected):
    row = {"messages": [{"role": r, "content": c} for r, c in turns]}
    report = load_report(write_jsonl(tmp_path / "order.jsonl", [row, {"messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]))
    issue = report.errors[0]
    assert (issue.code, issue.row, issue.params["turn"], issue.params["expected"]) == \
        ("dataset_role_order", 1, turn, expected)
    assert report.usable and len(report.examples) == 1


def test_sharegpt_system_column_becomes_the_system_message(tmp_path):
    row = {"system": "You are Orchard Lane's assistant.",
           "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    example = load_report(write_jsonl(tmp_path / "sys.jsonl", [row])).examples[0]
    assert example["prompt"][0] == {"role": "system", "content": "You are Orchard Lane's assistant."}
