"""Real-world dataset files: encodings and delimiters, content blocks, tool calls, preference pairs, KTO labels
and plain text, each checked for its format, rows, issues and the examples the trainer receives."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.config import BUNDLED_MODEL_ID
from engine.data import plain_text, splits
from engine.data.checks import check_dataset
from engine.data.reading import ReadOptions, load_report, tokenizer_for
from engine.errors import EngineError
from engine.training.events import RunState

QUESTIONS = ["如何退货？", "运费是多少？", "几点开门？"]
ANSWERS = ["请在七天内联系客服办理退货。", "满九十九元包邮，否则十元。", "每天早上九点到晚上九点。"]
WEATHER_TOOL = {"name": "get_weather", "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def frame() -> pd.DataFrame:
    return pd.DataFrame({"问题": QUESTIONS, "回答": ANSWERS})


def expected_examples() -> list[dict]:
    return [{"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}]}
            for q, a in zip(QUESTIONS, ANSWERS)]


# ---- encodings and delimiters ------------------------------------------------------------------
@pytest.mark.parametrize(("encoding", "sep", "found", "delimiter"), [
    ("gbk", ",", "gb18030", ","), ("gb18030", ";", "gb18030", ";"), ("utf-16", "\t", "utf-16", "tab"),
    ("utf-8-sig", "|", "utf-8-sig", "|"), ("utf-8", ";", "utf-8", ";")])
def test_excel_csv_files_are_read_in_their_encoding_and_delimiter(tmp_path, encoding, sep, found, delimiter):
    path = tmp_path / "faq.csv"
    frame().to_csv(path, index=False, sep=sep, encoding=encoding)
    report = load_report(path)
    assert report.issues == [] and report.format == "prompt_completion"
    assert report.examples == expected_examples() and report.example_rows == [1, 2, 3]
    assert report.to_dict()["encoding"] == found and report.to_dict()["delimiter"] == delimiter


def test_big5_and_a_chosen_encoding_and_delimiter(tmp_path):
    path = tmp_path / "tw.csv"
    answers = ["每天九點到晚上九點。", "滿九十九元免運費。"]
    pd.DataFrame({"question": ["營業時間是幾點？", "運費多少錢？"], "answer": answers}).to_csv(
        path, index=False, sep=";", encoding="big5")
    assert load_report(path).examples[1]["completion"][0]["content"] == "滿九十九元免運費。"
    forced = load_report(path, options=ReadOptions(encoding="big5", delimiter=";"))
    assert (forced.encoding, forced.delimiter, len(forced.examples)) == ("big5", ";", 2)
    wrong = load_report(path, options=ReadOptions(delimiter=","))  # the whole line is one column
    assert wrong.format is None and [i.code for i in wrong.errors] == ["dataset_unknown_format"]
    refused = load_report(path, options=ReadOptions(encoding="utf-8"))
    message = refused.errors[0].to_dict("zh")["message"]
    assert refused.errors[0].code == "dataset_bad_encoding" and "utf-8" in message and "编码" in message


def test_gbk_jsonl_and_utf16_txt_are_detected(tmp_path):
    path = tmp_path / "gbk.jsonl"
    path.write_bytes("".join(json.dumps({"instruction": q, "output": a}, ensure_ascii=False) + "\n"
                             for q, a in zip(QUESTIONS, ANSWERS)).encode("gbk"))
    report = load_report(path)
    assert report.encoding == "gb18030" and report.examples == expected_examples()


# ---- content blocks ----------------------------------------------------------------------------
def test_content_blocks_are_joined_and_a_picture_is_a_worded_row_error(tmp_path):
    good = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text",
                                                                                         "value": "there"}]},
                         {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]}]}
    bad = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}]},
                        {"role": "assistant", "content": "A cat."}]}
    report = load_report(write_jsonl(tmp_path / "blocks.jsonl", [good, bad]))
    assert report.examples == [{"prompt": [{"role": "user", "content": "Hello\nthere"}],
                                "completion": [{"role": "assistant", "content": "Hi!"}]}]
    (issue,) = report.errors
    assert (issue.code, issue.row, issue.field) == ("dataset_content_block", 2, "messages[1]")
    assert "Row 2" in issue.to_dict("en")["message"] and "image_url" in issue.to_dict("en")["message"]
    assert "第 2 行" in issue.to_dict("zh")["message"] and "image_url" in issue.to_dict("zh")["message"]


# ---- tool calls --------------------------------------------------------------------------------
def openai_row() -> dict:
    return {"messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "18C, sunny"},
        {"role": "assistant", "content": "It is 18C and sunny in Paris."}], "tools": [WEATHER_TOOL]}


def sharegpt_row() -> dict:
    return {"conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
        {"from": "observation", "value": "18C, sunny"},
        {"from": "gpt", "value": "It is 18C and sunny in Paris."}], "tools": json.dumps([WEATHER_TOOL])}


@pytest.mark.parametrize("row", [openai_row(), sharegpt_row()], ids=["openai", "sharegpt"])
def test_tool_calling_rows_become_trls_messages_with_tools(tmp_path, row):
    report = load_report(write_jsonl(tmp_path / "tools.jsonl", [row]))
    assert report.issues == [] and report.kind == "sft"
    (example,) = report.examples
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    assert example["prompt"][1] == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert example["prompt"][2]["role"] == "tool" and example["prompt"][2]["content"] == "18C, sunny"
    assert example["completion"] == [{"role": "assistant", "content": "It is 18C and sunny in Paris."}]
    assert json.loads(example["tools"]) == [{"type": "function", "function": WEATHER_TOOL}]
    train, _eval = splits.split_examples(report.examples * 4, 0.0, 1)
    assert train[0]["prompt"][1]["tool_calls"] == [call]  # each call keeps exactly its own arguments


def test_bundled_models_template_cannot_show_tools_so_the_data_is_refused(tmp_path):
    report = load_report(write_jsonl(tmp_path / "tools.jsonl", [openai_row()]))
    tokenizer = tokenizer_for(BUNDLED_MODEL_ID)
    issues, _summary = check_dataset(report, tokenizer, 128)
    refused = [i for i in issues if i.code == "dataset_tools_unsupported"]
    assert refused and refused[0].severity == "error" and refused[0].row is None
    assert "tool" in refused[0].to_dict("en")["message"] and "工具" in refused[0].to_dict("zh")["message"]
    from engine.data.tools import renders_tools, require_tool_template

    assert not renders_tools(tokenizer)
    with pytest.raises(EngineError) as raised:
        require_tool_template(report.examples, tokenizer, BUNDLED_MODEL_ID)
    assert raised.value.code == "dataset_tools_unsupported"


def test_a_template_with_tools_renders_the_calls():
    from engine.data.tools import renders_tools

    tokenizer = tokenizer_for(BUNDLED_MODEL_ID)
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = (
        "{% for t in tools or [] %}TOOL {{ t.function.name }}\n{% endfor %}{% for m in messages %}{{ m.role }}: "
        "{{ m.content }}{% for c in m.tool_calls or [] %}CALL {{ c.function.name }}{% endfor %}\n{% endfor %}")
    assert renders_tools(tokenizer)


def test_bad_tool_turns_name_the_row(tmp_path):
    broken = sharegpt_row()
    broken["conversations"][1]["value"] = "get_weather(Paris)"
    disorder = openai_row()
    disorder["messages"].pop(2)  # the call has no tool result
    report = load_report(write_jsonl(tmp_path / "bad.jsonl", [broken, disorder]))
    assert [(i.code, i.row) for i in report.errors][:1] == [("dataset_wrong_type", 1)]
    order = load_report(write_jsonl(tmp_path / "order.jsonl", [disorder]))
    first = order.errors[0]
    assert (first.code, first.row, first.params["turn"]) == ("dataset_role_order", 1, 3)
    assert first.params["expected"] == "tool"
    assert "第 1 行" in order.errors[0].to_dict("zh")["message"]


# ---- preference data ---------------------------------------------------------------------------
PAIR = {"prompt": [{"role": "user", "content": "Capital of France?"}],
        "chosen": [{"role": "assistant", "content": "Paris."}],
        "rejected": [{"role": "assistant", "content": "Lyon."}]}


@pytest.mark.parametrize("row", [
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
    {"chosen": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}],
     "rejected": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Lyon."}]},
    {"conversations": [{"from": "human", "value": "Capital of France?"}],
     "chosen": {"from": "gpt", "value": "Paris."}, "rejected": {"from": "gpt", "value": "Lyon."}},
], ids=["strings", "conversational", "sharegpt"])
def test_preference_rows_are_their_own_kind(tmp_path, row):
    path = write_jsonl(tmp_path / "pairs.jsonl", [row, row])
    report = load_report(path)
    assert report.format == "preference" and report.kind == "preference"
    assert report.preference_examples == [PAIR, PAIR] and report.preference_rows == [1, 2]
    assert not report.usable and report.errors[0].code == "dataset_is_preference"
    assert "DPO" in report.errors[0].to_dict("en")["message"] and "优选" in report.errors[0].to_dict("zh")["message"]
    chosen = load_report(path, options=ReadOptions(sft_on_chosen=True))
    assert chosen.usable and chosen.errors == []
    assert chosen.examples[0] == {"prompt": PAIR["prompt"], "completion": PAIR["chosen"]}


def test_a_preference_row_without_a_rejected_answer_is_named(tmp_path):
    rows = [{"prompt": "Q?", "chosen": "A.", "rejected": "B."}, {"prompt": "Q2?", "chosen": "A.", "rejected": ""}]
    report = load_report(write_jsonl(tmp_path / "pairs.jsonl", rows), options=ReadOptions(sft_on_chosen=True))
    (issue,) = report.errors
    assert (issue.code, issue.row, issue.field) == ("dataset_missing_field", 2, "rejected")
    assert "第 2 行" in issue.to_dict("zh")["message"]


# ---- KTO labels --------------------------------------------------------------------------------
def test_rows_labelled_bad_are_left_out_counted_and_named(tmp_path):
    labels = [True, "bad", "good", 0, "1", "false"]
    rows = [{"prompt": f"Q{i}?", "completion": f"Answer number {i}.", "label": label} for i, label in enumerate(labels)]
    rows.append({"prompt": "Q?", "completion": "A b.", "label": "maybe"})
    report = load_report(write_jsonl(tmp_path / "kto.jsonl", rows))
    assert report.example_rows == [1, 3, 5]
    (left_out,) = [i for i in report.warnings if i.code == "dataset_labelled_bad_rows"]
    assert left_out.params == {"count": 3, "rows": "2, 4, 6"}
    assert "2, 4, 6" in left_out.to_dict("en")["message"] and "3" in left_out.to_dict("zh")["message"]
    (unknown,) = report.errors
    assert (unknown.code, unknown.row) == ("dataset_bad_label", 7) and "maybe" in unknown.to_dict("zh")["message"]


# ---- plain text --------------------------------------------------------------------------------
CHAPTER = "\n\n".join(
    f"Chapter one, paragraph {n}. The old lighthouse keeper climbed the stairs again. " * (1 + n % 3)
    for n in range(12)) + "\n\n" + " ".join(f"word{n}" for n in range(400))


def test_a_book_chapter_becomes_chunks_of_up_to_max_length_tokens(tmp_path):
    path = tmp_path / "chapter.txt"
    path.write_text("# Chapter 1\n\n" + CHAPTER, encoding="utf-16")
    report = load_report(path, options=ReadOptions(max_length=64))
    assert report.issues == [] and report.format == "text" and report.kind == "text" and report.chunked
    assert report.encoding == "utf-16" and report.example_rows[0] == 1
    tokenizer = tokenizer_for(BUNDLED_MODEL_ID)
    lengths = [len(tokenizer(e["text"] + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
               for e in report.examples]
    assert max(lengths) <= 64 and len(report.examples) > 5
    assert report.examples[0]["text"].startswith("# Chapter 1\n\nChapter one, paragraph 0.")
    preview = plain_text.preview([e["text"] for e in report.examples], tokenizer)
    assert preview.chunks == len(report.examples) and preview.first == [e["text"] for e in report.examples[:3]]
    _issues, summary = check_dataset(report, tokenizer, 64)
    assert summary.truncated_rows == 0


def test_paragraph_line_numbers():
    assert plain_text.paragraphs("a\nb\n\n\nc\n \n  d") == [(1, "a\nb"), (5, "c"), (7, "d")]


@pytest.mark.slow
def test_a_plain_text_file_trains_two_steps_through_the_studio(tmp_path):
    from engine.studio import Studio

    path = tmp_path / "chapter.md"
    path.write_text(CHAPTER, encoding="utf-8")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    config = studio.default_config().replace(dataset_path=str(path), max_steps=2, logging_steps=1, max_length=64,
                                             per_device_train_batch_size=2, eval_split=0.0, eval_strategy="no")
    run_id = studio.start(config)
    assert studio.runner.wait(900) is RunState.DONE, (tmp_path / "runs" / run_id / "train.log").read_text()[-3000:]
    assert (tmp_path / "runs" / run_id / "adapter" / "adapter_model.safetensors").is_file()
