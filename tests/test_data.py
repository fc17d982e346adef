"""Dataset files: every format and file type, malformed rows, splits and the report contract."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.data import reading
from engine.data.reading import load_report, to_example
from engine.data.splits import split_examples

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "engine" / "data" / "samples" / "customer_service.jsonl"

ALPACA_ROWS = [
    {"instruction": "Say hi", "input": "", "output": "Hi!"},
    {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "You translate."},
    {"instruction": "And again?", "output": "Sure.", "history": [["first q", "first a"], ["second q", "second a"]]},
    {"instruction": "发货要多久？", "input": "订单号：OL-1", "output": "一般1到3天送达。"},
]


def write_jsonl(path: Path, rows, newline="\n", bom=False) -> Path:
    text = newline.join(json.dumps(row, ensure_ascii=False) for row in rows) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def issue_tuples(report):
    return [(i.severity, i.code, i.row, i.field) for i in report.issues]


def check_prompt_completion(example):
    prompt, completion = example["prompt"], example["completion"]
    assert isinstance(prompt, list) and prompt
    assert all(set(m) == {"role", "content"} for m in prompt)
    assert prompt[-1]["role"] == "user"
    assert len(completion) == 1 and completion[0]["role"] == "assistant"
    assert isinstance(completion[0]["content"], str) and completion[0]["content"]


# ---- formats --------------------------------------------------------------------------------
def test_alpaca_jsonl(tmp_path):
    report = load_report(write_jsonl(tmp_path / "a.jsonl", ALPACA_ROWS))
    assert report.format == "alpaca"
    assert report.issues == [] and report.usable
    assert len(report.rows) == len(report.examples) == 4
    assert report.example_rows == [1, 2, 3, 4]
    for example in report.examples:
        check_prompt_completion(example)
    plain, with_input, with_history, chinese = report.examples
    assert plain == {"prompt": [{"role": "user", "content": "Say hi"}],
                     "completion": [{"role": "assistant", "content": "Hi!"}]}
    assert with_input["prompt"] == [{"role": "system", "content": "You translate."},
                                    {"role": "user", "content": "Translate\n\nbonjour"}]
    assert [m["role"] for m in with_history["prompt"]] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in with_history["prompt"]] == ["first q", "first a", "second q", "second a",
                                                              "And again?"]
    assert chinese["prompt"][-1]["content"] == "发货要多久？\n\n订单号：OL-1"
    assert chinese["completion"][0]["content"] == "一般1到3天送达。"


def test_sharegpt_from_value(tmp_path):
    rows = [{"conversations": [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Hello"},
        {"from": "gpt", "value": "Hi."},
        {"from": "human", "value": "你好"},
        {"from": "gpt", "value": "你好！"},
    ]}]
    report = load_report(write_jsonl(tmp_path / "s.jsonl", rows))
    assert report.format == "sharegpt" and report.issues == []
    example = report.examples[0]
    check_prompt_completion(example)
    assert [m["role"] for m in example["prompt"]] == ["system", "user", "assistant", "user"]
    assert example["completion"] == [{"role": "assistant", "content": "你好！"}]


def test_sharegpt_role_content_variant(tmp_path):
    rows = [{"conversations": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
            {"conversations": [{"role": "Human", "content": "Q2"}, {"role": "GPT", "content": "A2"}]}]
    report = load_report(write_jsonl(tmp_path / "s.jsonl", rows))
    assert report.format == "sharegpt" and report.issues == []
    assert report.examples[0] == {"prompt": [{"role": "user", "content": "Q"}],
                                  "completion": [{"role": "assistant", "content": "A"}]}
    assert report.examples[1]["completion"] == [{"role": "assistant", "content": "A2"}]


def test_messages(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                          {"role": "assistant", "content": "A"}]}]
    report = load_report(write_jsonl(tmp_path / "m.jsonl", rows))
    assert report.format == "messages" and report.issues == []
    assert report.examples[0] == {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
                                  "completion": [{"role": "assistant", "content": "A"}]}


def test_prompt_completion(tmp_path):
    rows = [{"prompt": "2+2?", "completion": "4"}, {"prompt": "首都？", "completion": "北京"}]
    report = load_report(write_jsonl(tmp_path / "p.jsonl", rows))
    assert report.format == "prompt_completion" and report.issues == []
    assert report.examples[0] == {"prompt": [{"role": "user", "content": "2+2?"}],
                                  "completion": [{"role": "assistant", "content": "4"}]}


def test_text(tmp_path):
    rows = [{"text": "Once upon a time."}, {"text": "从前有座山。"}]
    report = load_report(write_jsonl(tmp_path / "t.jsonl", rows))
    assert report.format == "text" and report.issues == []
    assert report.examples == [{"text": "Once upon a time."}, {"text": "从前有座山。"}]


def test_json_with_data_key(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"version": 1, "data": ALPACA_ROWS}, ensure_ascii=False), encoding="utf-8")
    report = load_report(path)
    assert report.format == "alpaca" and report.issues == [] and len(report.examples) == 4


def test_csv(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('instruction,input,output\nSay hi,,Hi!\n"Translate, please",bonjour,hello\n问题,,回答\n',
                    encoding="utf-8")
    report = load_report(path)
    assert report.format == "alpaca" and report.issues == []
    assert report.examples[1]["prompt"][-1]["content"] == "Translate, please\n\nbonjour"
    assert report.examples[2]["completion"][0]["content"] == "回答"


def test_csv_numbers_stay_text(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("prompt,completion\n2+2?,4\n", encoding="utf-8")
    report = load_report(path)
    assert report.issues == [] and report.examples[0]["completion"][0]["content"] == "4"


def test_tsv(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("prompt\tcompletion\nHello, there\tHi\n你好\t您好\n", encoding="utf-8")
    report = load_report(path)
    assert report.format == "prompt_completion" and report.issues == []
    assert report.examples[0]["prompt"][0]["content"] == "Hello, there"


def test_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "a.parquet"
    pd.DataFrame([{"instruction": r["instruction"], "input": r.get("input", ""), "output": r["output"]}
                  for r in ALPACA_ROWS]).to_parquet(path)
    report = load_report(path)
    assert report.format == "alpaca" and report.issues == [] and len(report.examples) == 4


def test_parquet_wrong_type(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "n.parquet"
    pd.DataFrame({"prompt": ["a", "b"], "completion": [1, 2]}).to_parquet(path)
    report = load_report(path)
    assert [(i.code, i.row, i.field) for i in report.errors][:2] == [
        ("dataset_wrong_type", 1, "completion"), ("dataset_wrong_type", 2, "completion")]


@pytest.mark.parametrize("column,turns", [
    ("messages", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]),
    ("conversations", [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]),
])
def test_parquet_conversations(tmp_path, column, turns):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "c.parquet"
    pd.DataFrame({column: [turns, turns[::1]]}).to_parquet(path)
    report = load_report(path)
    assert report.errors == []
    assert report.examples[0]["completion"] == [{"role": "assistant", "content": "yo"}]


def test_utf8_bom_and_crlf_jsonl(tmp_path):
    report = load_report(write_jsonl(tmp_path / "bom.jsonl", ALPACA_ROWS, newline="\r\n", bom=True))
    assert report.format == "alpaca" and report.issues == [] and len(report.examples) == 4
    assert report.examples[3]["completion"][0]["content"] == "一般1到3天送达。"
    assert not any("\r" in m["content"] for e in report.examples for m in e["prompt"] + e["completion"])


def test_utf8_bom_and_crlf_csv(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "instruction,output\r\n你好,您好\r\nHi,Hello\r\n".encode("utf-8"))
    report = load_report(path)
    assert report.format == "alpaca" and report.issues == []
    assert report.examples[0]["completion"][0]["content"] == "您好"
    assert report.examples[1]["completion"][0]["content"] == "Hello"


def test_utf8_bom_json(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ALPACA_ROWS, ensure_ascii=False).encode("utf-8"))
    report = load_report(path)
    assert report.issues == [] and len(report.examples) == 4


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text('{"text": "a"}\n\n   \n{"text": ""}\n', encoding="utf-8")
    report = load_report(path)
    assert len(report.rows) == 2
    assert [(i.code, i.field) for i in report.issues] == [("dataset_missing_field", "text")]


# ---- malformed ------------------------------------------------------------------------------
def test_bad_json_line_keeps_good_rows(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n'
                    '{"instruction": "d", "output": "e"}\n', encoding="utf-8")
    report = load_report(path)
    assert issue_tuples(report) == [("error", "dataset_bad_json", 2, None)]
    assert report.issues[0].params["detail"]
    assert report.format == "alpaca" and report.usable and len(report.examples) == 2


def test_missing_output(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c"}, {"instruction": "e", "output": "  "}]
    report = load_report(write_jsonl(tmp_path / "m.jsonl", rows))
    assert issue_tuples(report) == [("error", "dataset_missing_field", 2, "output"),
                                    ("error", "dataset_missing_field", 3, "output")]
    assert report.usable and report.example_rows == [1]


def test_missing_instruction(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "", "output": "c"}]
    report = load_report(write_jsonl(tmp_path / "m.jsonl", rows))
    assert issue_tuples(report) == [("error", "dataset_missing_field", 2, "instruction")]


def test_non_string_output(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": 5},
            {"instruction": "d", "output": ["x"]}]
    report = load_report(write_jsonl(tmp_path / "t.jsonl", rows))
    assert issue_tuples(report) == [("error", "dataset_wrong_type", 2, "output"),
                                    ("error", "dataset_wrong_type", 3, "output")]


def test_bad_history(tmp_path):
    rows = [{"instruction": "a", "output": "b", "history": "not a list"},
            {"instruction": "a", "output": "b", "history": [["only one"]]}]
    report = load_report(write_jsonl(tmp_path / "h.jsonl", rows))
    assert [(i.code, i.row, i.field) for i in report.errors][:2] == [
        ("dataset_wrong_type", 1, "history"), ("dataset_wrong_type", 2, "history")]


def test_bad_role(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "narrator", "content": "a"}]}]
    report = load_report(write_jsonl(tmp_path / "r.jsonl", rows))
    assert issue_tuples(report) == [("error", "dataset_bad_role", 2, "messages")]
    assert report.issues[0].params == {"turn": 2, "role": "narrator"}
    assert report.usable


def test_conversation_without_assistant(tmp_path):
    rows = [{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}]}]
    report = load_report(write_jsonl(tmp_path / "n.jsonl", rows))
    assert ("error", "dataset_no_assistant", 1, "conversations") in issue_tuples(report)
    assert not report.usable
    assert "dataset_nothing_usable" in [i.code for i in report.errors]


def test_conversation_ending_with_user(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                          {"role": "user", "content": "and?"}]}]
    report = load_report(write_jsonl(tmp_path / "e.jsonl", rows))
    assert issue_tuples(report)[0] == ("error", "dataset_last_not_assistant", 1, "messages")


def test_conversation_empty_turn(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]},
            {"messages": []}, {"messages": "text"}, {"messages": ["not a dict"]}]
    report = load_report(write_jsonl(tmp_path / "e.jsonl", rows))
    assert [(i.code, i.row, i.field) for i in report.errors] == [
        ("dataset_missing_field", 1, "messages[2]"),
        ("dataset_missing_field", 2, "messages"),
        ("dataset_missing_field", 3, "messages"),
        ("dataset_wrong_type", 4, "messages"),
        ("dataset_nothing_usable", None, None),
    ]


def test_unknown_columns(tmp_path):
    report = load_report(write_jsonl(tmp_path / "u.jsonl", [{"query_text": "q", "reply_text": "a"}]))
    assert report.format is None and not report.usable
    assert [i.code for i in report.issues] == ["dataset_unknown_format"]
    assert report.issues[0].params["columns"] == "query_text, reply_text"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    report = load_report(path)
    assert [i.code for i in report.issues] == ["dataset_empty"] and not report.usable


def test_only_blank_lines(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n  \n", encoding="utf-8")
    assert [i.code for i in load_report(path).issues] == ["dataset_empty"]


def test_only_bad_json(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n[1,\n", encoding="utf-8")
    report = load_report(path)
    assert [(i.code, i.row) for i in report.issues] == [("dataset_bad_json", 1), ("dataset_bad_json", 2)]
    assert not report.usable


def test_header_only_csv_is_empty(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("instruction,output\n", encoding="utf-8")
    assert [i.code for i in load_report(path).issues] == ["dataset_empty"]


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "notes.docx"
    path.write_text("hello", encoding="utf-8")
    report = load_report(path)
    assert [i.code for i in report.issues] == ["dataset_bad_type"]
    assert report.issues[0].params["suffix"] == ".docx"
    assert not report.usable


def test_missing_file(tmp_path):
    report = load_report(tmp_path / "missing.jsonl")
    assert [i.code for i in report.issues] == ["dataset_not_found"]
    assert report.issues[0].params["path"] == str(tmp_path / "missing.jsonl")
    assert report.format is None and report.rows == []


def test_directory_is_not_a_dataset(tmp_path):
    assert [i.code for i in load_report(tmp_path).issues] == ["dataset_not_found"]


def test_invalid_utf8_is_detected_or_refused_when_the_encoding_is_forced(tmp_path):
    from engine.data.reading import ReadOptions

    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text": "café"}\n'.encode("latin-1"))
    report = load_report(path, options=ReadOptions(encoding="utf-8"))
    assert [i.code for i in report.issues] == ["dataset_bad_encoding"]
    assert report.issues[0].params["encoding"] == "utf-8"
    detected = load_report(path)
    assert detected.issues == [] and detected.examples == [{"text": "café"}] and detected.encoding != "utf-8"


def test_broken_json_file_is_unreadable(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[{", encoding="utf-8")
    assert [i.code for i in load_report(path).issues] == ["dataset_unreadable"]


@pytest.mark.parametrize("content", ["42", "null", "true"])
def test_json_scalar_does_not_raise(tmp_path, content):
    path = tmp_path / "scalar.json"
    path.write_text(content, encoding="utf-8")
    report = load_report(path)
    assert report.errors and not report.usable


def test_exact_duplicates(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"},
            {"instruction": "a", "output": "b"}, {"instruction": "a", "output": "b"}]
    report = load_report(write_jsonl(tmp_path / "d.jsonl", rows))
    assert report.errors == []
    assert [(i.severity, i.code, i.row, i.params["first"]) for i in report.warnings] == [
        ("warning", "dataset_duplicate", 3, 1), ("warning", "dataset_duplicate", 4, 1)]
    assert len(report.examples) == 4  # duplicates are kept, only flagged


def test_near_duplicates_are_not_flagged(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "a", "output": "b."}]
    assert load_report(write_jsonl(tmp_path / "d.jsonl", rows)).warnings == []


def test_some_bad_rows_stay_usable(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(5)]
    lines[1] = "not json"
    lines[3] = json.dumps({"instruction": "q3"})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_report(path)
    assert report.usable
    assert [e["completion"][0]["content"] for e in report.examples] == ["a0", "a2", "a4"]
    assert [i.code for i in report.errors] == ["dataset_bad_json", "dataset_missing_field"]
    assert report.errors[0].row == 2


def test_bad_json_line_number_with_later_row_error(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{bad\n{"instruction": "c"}\n'
                    '{"instruction": "d", "output": "e"}\n', encoding="utf-8")
    report = load_report(path)
    assert [(i.code, i.row) for i in report.errors] == [("dataset_bad_json", 2), ("dataset_missing_field", 3)]
    assert report.example_rows == [1, 4]


# ---- to_example -----------------------------------------------------------------------------
def test_to_example_raises_row_problem():
    with pytest.raises(reading.RowProblem) as info:
        to_example({"instruction": "x"}, "alpaca", 7)
    assert (info.value.issue.code, info.value.issue.row, info.value.issue.field) == (
        "dataset_missing_field", 7, "output")


# ---- split ----------------------------------------------------------------------------------
def sample_examples():
    return load_report(SAMPLE).examples


def test_split_without_eval():
    train, evaluation = split_examples(sample_examples(), 0.0, 42)
    assert evaluation is None and len(train) == 120


def test_split_sizes_and_seed():
    examples = sample_examples()
    train, evaluation = split_examples(examples, 0.1, 42)
    assert (len(train), len(evaluation)) == (108, 12)
    again_train, again_eval = split_examples(examples, 0.1, 42)
    assert evaluation.to_list() == again_eval.to_list() and train.to_list() == again_train.to_list()
    _, other_eval = split_examples(examples, 0.1, 7)
    assert other_eval.to_list() != evaluation.to_list()
    # train and eval together are the whole set
    key = lambda e: json.dumps(e, sort_keys=True, ensure_ascii=False)  # noqa: E731
    assert sorted(map(key, train.to_list() + evaluation.to_list())) == sorted(map(key, examples))


def test_split_too_small_gives_no_eval():
    train, evaluation = split_examples(sample_examples()[:2], 0.1, 42)
    assert evaluation is None and len(train) == 2


# ---- the bundled sample and the report contract ---------------------------------------------
def test_bundled_sample():
    report = load_report(SAMPLE)
    assert report.format == "alpaca"
    assert len(report.rows) == 120 and len(report.examples) == 120
    assert report.issues == []


def test_report_to_dict_contract(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c"}, {"instruction": "a", "output": "b"}]
    report = load_report(write_jsonl(tmp_path / "r.jsonl", rows))
    en, zh = report.to_dict("en"), report.to_dict("zh")
    assert set(en) == {"format", "rows", "errors", "warnings", "kind", "encoding", "delimiter"}
    assert (en["kind"], en["encoding"], en["delimiter"]) == ("sft", "utf-8", None)
    assert en["format"] == "alpaca" and en["rows"] == 3
    assert len(en["errors"]) == 1 and len(en["warnings"]) == 1
    for issue in en["errors"] + en["warnings"] + zh["errors"] + zh["warnings"]:
        assert set(issue) == {"code", "row", "field", "message"}
    assert en["errors"][0] == {"code": "dataset_missing_field", "row": 2, "field": "output",
                               "message": en["errors"][0]["message"]}
    assert "2" in en["errors"][0]["message"] and "output" in en["errors"][0]["message"]
    assert zh["errors"][0]["message"] != en["errors"][0]["message"]
    assert zh["warnings"][0]["message"] != en["warnings"][0]["message"]
    assert "第 3 行" in zh["warnings"][0]["message"]
    json.dumps(en), json.dumps(zh, ensure_ascii=False)  # plain JSON values only


def test_report_to_dict_of_missing_file(tmp_path):
    result = load_report(tmp_path / "x.jsonl").to_dict()
    assert result["format"] is None and result["rows"] == 0 and result["warnings"] == []
    assert result["errors"][0]["code"] == "dataset_not_found" and result["errors"][0]["row"] is None


# ---- file types -----------------------------------------------------------------------------
def test_json_list(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(ALPACA_ROWS, ensure_ascii=False), encoding="utf-8")
    report = load_report(path)
    assert report.format == "alpaca" and report.issues == [] and len(report.examples) == 4
