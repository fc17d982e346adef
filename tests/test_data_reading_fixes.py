"""Reading real-world files without a traceback: mixed tool and plain conversations, short GBK and BOM-less
UTF-16 files, a guessed Korean/Japanese encoding, a plain-text file without a tokenizer, empty error messages and
a chat template that cannot render the rows."""
from __future__ import annotations

import json

import pytest

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.data import encoding, reading, splits
from engine.data.checks import check_dataset
from engine.data.reading import ReadOptions, load_report, tokenizer_for
from engine.studio import Studio


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def plain_row(number: int) -> dict:
    return {"messages": [{"role": "user", "content": f"Question {number}?"},
                         {"role": "assistant", "content": f"Answer number {number}."}]}


def tool_row(city: str) -> dict:
    """A conversation calling a weather tool (OpenAI style), without tool definitions."""
    return {"messages": [
        {"role": "user", "content": f"Weather in {city}?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}]},
        {"role": "tool", "name": "get_weather", "content": "18C"},
        {"role": "assistant", "content": f"It is 18C in {city}."}]}


# ---- 1. tool and plain conversations in one file ------------------------------------------------
def mixed_file(tmp_path):
    """A plain conversation first, then tool calls among others, in a file without a `tools` column."""
    return write_jsonl(tmp_path / "mixed.jsonl", [plain_row(1), tool_row("Paris"), plain_row(2),
                                                  plain_row(3), plain_row(4), tool_row("Oslo")])


def test_a_file_mixing_tool_and_plain_conversations_splits(tmp_path):
    report = load_report(mixed_file(tmp_path))
    assert report.errors == [] and len(report.examples) == 6
    assert "tools" not in report.examples[0] and report.examples[1]["tools"] is None
    train, evaluation = splits.split_examples(report.examples, 0.34, 1)
    rows = [*train, *evaluation]
    assert len(train) == 4 and len(evaluation) == 2 and all("tools" in row for row in rows)
    by_question = {row["prompt"][0]["content"]: row for row in rows}
    assert by_question["Question 1?"]["tools"] is None and by_question["Weather in Paris?"]["tools"] is None
    assert by_question["Weather in Oslo?"]["prompt"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}
    mix = write_jsonl(tmp_path / "mix.jsonl", [plain_row(n) for n in range(10, 20)])
    config = TrainConfig(dataset_path=str(mixed_file(tmp_path)), mix_dataset_path=str(mix), mix_ratio=0.5,
                         eval_split=0.0)
    mixed, _none = splits.build_splits(config, report.examples)
    assert len(mixed) == 9 and all(row["tools"] is None for row in mixed)  # 3 rows drawn from the second file
    assert sum(row["prompt"][0]["content"] in {f"Question {n}?" for n in range(10, 20)} for row in mixed) == 3


def test_the_studio_checks_a_file_mixing_tool_and_plain_conversations(tmp_path):
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    config = studio.default_config().replace(eval_split=0.34)
    result = studio.check_dataset(mixed_file(tmp_path), config)
    assert len(result.report.examples) == 6
    assert [i.code for i in result.report.errors] == ["dataset_tools_unsupported"]  # the bundled model's template


# ---- 2. encodings -------------------------------------------------------------------------------
def test_a_short_gbk_csv_is_read_as_gb18030(tmp_path):
    path = tmp_path / "short.csv"
    path.write_bytes("问题,回答\n你好,你好啊\n".encode("gbk"))
    assert encoding.detect_encoding(path.read_bytes()) == "gb18030"
    report = load_report(path)
    assert report.encoding == "gb18030" and report.warnings == []
    assert report.examples == [{"prompt": [{"role": "user", "content": "你好"}],
                                "completion": [{"role": "assistant", "content": "你好啊"}]}]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_recognised(tmp_path, codec):
    path = tmp_path / "faq.csv"
    path.write_bytes("question,answer\nWhat time do you open?,At nine.\n运费多少？,十元。\n".encode(codec))
    report = load_report(path)
    assert report.encoding == codec and report.errors == []
    assert [e["completion"][0]["content"] for e in report.examples] == ["At nine.", "十元。"]


def test_big5_stays_big5_and_chinese_wins_against_a_korean_guess():
    traditional = "營業時間是幾點？;每天九點到晚上九點。\n運費多少錢？;滿九十九元免運費。\n"
    assert encoding.detect_encoding(traditional.encode("big5")) == "big5"
    assert encoding.decode(traditional.encode("big5"))[0] == traditional
    simplified = "问题,回答\n你好,你好啊\n"
    assert encoding.decode(simplified.encode("gbk")) == (simplified, "gb18030")


def test_a_remaining_japanese_guess_is_named_in_a_warning(tmp_path):
    path = tmp_path / "kana.csv"
    path.write_bytes("質問,回答\nｱｲｳｴｵ,ｶｷｸｹｺ\nこんにちは,ありがとう\n".encode("shift_jis"))
    report = load_report(path)
    assert report.encoding == "cp932" and encoding.is_guess(report.encoding)
    (warning,) = [i for i in report.warnings if i.code == "dataset_guessed_encoding"]
    assert "cp932" in warning.to_dict("en")["message"] and "gb18030" in warning.to_dict("en")["message"]
    assert "cp932" in warning.to_dict("zh")["message"] and "编码" in warning.to_dict("zh")["message"]
    assert not encoding.is_guess("gb18030") and not encoding.is_guess(None)


# ---- 4. no tracebacks ----------------------------------------------------------------------------
def test_a_text_file_without_a_tokenizer_is_a_worded_error(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("A paragraph.\n\nAnother one.\n", encoding="utf-8")
    report = load_report(path, options=ReadOptions(model_name_or_path=str(tmp_path / "no-such-model")))
    (error,) = report.errors
    assert error.code == "dataset_no_tokenizer" and error.params["reason"] == "model_not_found"
    assert "no-such-model" in error.to_dict("en")["message"] and "tokenizer" in error.to_dict("en")["message"]
    assert "分词器" in error.to_dict("zh")["message"]


def test_an_empty_error_message_is_worded_by_its_type(tmp_path, monkeypatch):
    assert reading.first_line(ValueError("")) == "ValueError"
    assert reading.first_line(ValueError("first\nsecond")) == "first"

    def unreadable(_text):
        raise ValueError("")

    monkeypatch.setattr(reading.convert, "json_document_rows", unreadable)
    path = tmp_path / "rows.json"
    path.write_text("[]", encoding="utf-8")
    (error,) = load_report(path).errors
    assert error.code == "dataset_unreadable" and error.params["detail"] == "ValueError"


def test_a_template_that_cannot_render_the_rows_skips_the_token_count(tmp_path):
    report = load_report(mixed_file(tmp_path))
    tokenizer = tokenizer_for(BUNDLED_MODEL_ID)
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = ("{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools') }}"
                               "{% endif %}{{ m.role }}: {{ m.content }}\n{% endfor %}")
    issues, summary = check_dataset(report, tokenizer, 128)
    codes = [i.code for i in issues]
    assert "dataset_tools_unsupported" in codes and summary.token_lengths == []
    (skipped,) = [i for i in issues if i.code == "dataset_template_no_count"]
    assert skipped.severity == "warning" and "no tools" in skipped.to_dict("en")["message"]
    assert "对话模板" in skipped.to_dict("zh")["message"]
