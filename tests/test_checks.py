"""Dataset-level checks: each warning on a crafted dataset, none on the clean sample; token counts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import BUNDLED_MODEL_ID
from engine.data import checks, reading, splits
from engine.locales import render, wordings
from engine.models import loader
from engine.presets import SAMPLE_DATASET
from tests.conftest import HELDOUT

CODES = ("dataset_near_duplicate", "dataset_conflicting_answers", "dataset_too_long", "dataset_row_too_long",
         "dataset_short_answer", "dataset_control_chars", "dataset_eval_overlap", "dataset_too_few_rows")


@pytest.fixture(scope="module")
def tokenizer():
    return loader.load_tokenizer(loader.resolve_model(BUNDLED_MODEL_ID))


def filler(count: int, start: int = 0) -> list[dict]:
    return [{"instruction": f"Tell me fact number {i} about the ocean.", "input": "",
             "output": f"Fact {i}: the ocean covers most of the planet and holds most of its water."}
            for i in range(start, start + count)]


def report_of(tmp_path: Path, rows: list[dict], name: str = "data.jsonl") -> reading.DatasetReport:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return reading.load_report(path)


def codes(issues) -> list[str]:
    return [i.code for i in issues]


def of(issues, code: str) -> list:
    return [i for i in issues if i.code == code]


# ---- the clean sample -------------------------------------------------------------------------
def test_the_bundled_sample_is_clean(tokenizer):
    report = reading.load_report(SAMPLE_DATASET)
    issues, summary = checks.check_dataset(report, tokenizer, max_length=512, num_train_epochs=3)
    assert issues == []
    assert summary.rows == len(report.examples) == 120
    assert summary.format == "alpaca"
    assert summary.languages == {"zh": 60, "en": 60, "other": 0}
    assert len(summary.token_lengths) == 120 and min(summary.token_lengths) > 20
    assert summary.truncated_rows == 0
    assert summary.tokens_per_epoch == sum(summary.token_lengths)


def test_a_clean_crafted_dataset_has_no_warnings(tmp_path):
    issues, summary = checks.check_dataset(report_of(tmp_path, filler(30)), num_train_epochs=3)
    assert issues == []
    assert summary.languages == {"zh": 0, "en": 30, "other": 0}


# ---- duplicates and conflicts -----------------------------------------------------------------
def test_near_duplicates_differ_only_in_case_space_and_punctuation(tmp_path):
    answer = "Open Settings, choose Security and press Reset password."
    rows = filler(25) + [
        {"instruction": "How do I reset my password?", "output": answer},                 # row 26
        {"instruction": "how do i reset my  password", "output": answer},                 # 27 near
        {"instruction": "ＨＯＷ ｄｏ Ｉ ｒｅｓｅｔ ｍｙ ｐａｓｓｗｏｒｄ？", "output": answer},    # 28 full-width
        {"instruction": "How do I reset my password?", "output": answer},                 # 29 exact copy
        {"instruction": "怎么重置密码？", "output": "打开设置，选择安全，然后点击重置密码。"},      # 30
        {"instruction": "怎么 重置密码", "output": "打开设置，选择安全，然后点击重置密码"},        # 31 near
    ]
    report = report_of(tmp_path, rows)
    assert [(i.row, i.params["first"]) for i in of(report.issues, "dataset_duplicate")] == [(29, 26)]
    issues, _ = checks.check_dataset(report, num_train_epochs=3)
    near = of(issues, "dataset_near_duplicate")
    assert [(i.row, i.params["first"], i.field) for i in near] == \
        [(27, 26, "instruction"), (28, 26, "instruction"), (31, 30, "instruction")]
    assert codes(issues) == ["dataset_near_duplicate"] * 3  # the exact copy is reading.load_report's, not repeated


def test_conflicting_answers(tmp_path):
    rows = filler(25) + [
        {"instruction": "What are your opening hours?", "output": "We are open 9 to 5 on weekdays."},  # 26
        {"instruction": "what are your opening hours", "output": "We are open around the clock."},     # 27
        {"instruction": "What are your opening hours?", "output": "We are open 9 to 5 on weekdays!"},  # 28 near 26
        {"instruction": "What are your opening hours?", "input": "On Sunday",
         "output": "We are closed on Sundays."},                                              # 29 other question
    ]
    issues, _ = checks.check_dataset(report_of(tmp_path, rows), num_train_epochs=3)
    assert [(i.row, i.params["first"], i.field) for i in of(issues, "dataset_conflicting_answers")] == \
        [(27, 26, "output")]
    assert [(i.row, i.params["first"]) for i in of(issues, "dataset_near_duplicate")] == [(28, 26)]
    assert len(issues) == 2


def test_normalise():
    assert checks.normalise("Hello,  World!") == checks.normalise("hello world") == "helloworld"
    assert checks.normalise("ＡＢＣ！ｘ") == "abcx"
    assert checks.normalise("你好，世界。") == "你好世界"


# ---- lengths ----------------------------------------------------------------------------------
def test_token_lengths_match_the_chat_template(tmp_path, tokenizer):
    rows = [{"instruction": "How long does shipping take?", "output": "Usually two to three days."},
            {"instruction": "多久发货？", "input": "订单号 123", "system": "你是客服。", "output": "24小时内发货。"},
            {"instruction": "Again?", "history": [["Hi", "Hello! How can I help?"]], "output": "Sure, again."}]
    report = report_of(tmp_path, rows)
    lengths = checks.token_lengths(report.examples, tokenizer)
    for example, length in zip(report.examples, lengths):
        ids = tokenizer.apply_chat_template(example["prompt"] + example["completion"])["input_ids"]
        assert length == len(ids)
    assert checks.token_lengths([], tokenizer) == []
    assert checks.token_lengths(report.examples[:1], tokenizer) == lengths[:1]


def test_text_rows_count_the_eos_training_adds(tokenizer):
    text = "Once upon a time there was a tokenizer."
    expected = len(tokenizer(text + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
    assert checks.token_lengths([{"text": text}, {"text": text + tokenizer.eos_token}], tokenizer) == \
        [expected, expected]


def test_too_long_rows_are_counted_and_only_the_first_20_listed(tmp_path, tokenizer):
    long_answer = "This answer goes on and on about shipping times and parcels. " * 8
    rows = filler(10) + [{"instruction": f"Long question {i}?", "output": long_answer} for i in range(25)]
    report = report_of(tmp_path, rows)
    lengths = checks.token_lengths(report.examples, tokenizer)
    limit = 100
    assert max(lengths[:10]) < limit < min(lengths[10:])
    issues, summary = checks.check_dataset(report, tokenizer, max_length=limit, num_train_epochs=3)
    total = of(issues, "dataset_too_long")
    assert len(total) == 1 and total[0].row is None
    excess = [n - limit for n in lengths[10:]]
    assert total[0].params == {"count": 25, "max_length": limit, "longest": max(lengths),
                               "mean_excess": round(sum(excess) / 25)}
    per_row = of(issues, "dataset_row_too_long")
    assert [i.row for i in per_row] == list(range(11, 31))
    assert per_row[0].params == {"length": lengths[10], "max_length": limit}
    assert summary.truncated_rows == 25
    assert summary.tokens_per_epoch == sum(min(n, limit) for n in lengths)
    assert summary.token_lengths == lengths and summary.max_length == limit
    wording = total[0].to_dict("en")["message"]
    assert "25" in wording and str(limit) in wording and "max_length" in wording


def test_without_a_tokenizer_lengths_are_skipped(tmp_path):
    issues, summary = checks.check_dataset(report_of(tmp_path, filler(30)), max_length=8)
    assert summary.token_lengths == [] and summary.tokens_per_epoch == 0 and summary.truncated_rows == 0
    assert not of(issues, "dataset_too_long")


# ---- content ----------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, short", [
    ("Yes.", True), ("42", True), ("Supercalifragilistic", True), ("Yes, sure.", False),
    ("好的", True), ("好的。", True), ("好的，马上为您处理。", False), ("  OK  ", True), ("I do", False),
])
def test_very_short_answers(answer, short):
    assert checks.is_very_short(answer) is short


def test_short_answer_warnings(tmp_path):
    rows = filler(25) + [{"instruction": "Is it free?", "output": "Yes."},
                         {"instruction": "免费吗？", "output": "是的"},
                         {"instruction": "可以退货吗？", "output": "可以，七天内无理由退货。"},
                         {"instruction": "Is it free?", "output": "Yes."}]  # exact repeat: load_report's warning
    issues, _ = checks.check_dataset(report_of(tmp_path, rows), num_train_epochs=3)
    assert [(i.row, i.field) for i in issues] == [(26, "output"), (27, "output")]
    assert codes(issues) == ["dataset_short_answer"] * 2


def test_control_characters(tmp_path):
    rows = filler(25) + [
        {"instruction": "Bell\x07 here", "output": "Tabs\tand\r\nnew lines are fine here."},          # 26: user
        {"instruction": "Fine question", "output": "Null \x00 and escape \x1b in the answer."},      # 27: assistant
    ]
    issues, _ = checks.check_dataset(report_of(tmp_path, rows), num_train_epochs=3)
    found = of(issues, "dataset_control_chars")
    assert [(i.row, i.field, i.params["chars"]) for i in found] == \
        [(26, "user", "U+0007"), (27, "assistant", "U+0000, U+001B")]
    assert len(issues) == 2


def test_control_characters_in_text_rows(tmp_path):
    rows = [{"text": f"Plain text row number {i}, long enough."} for i in range(25)] + [{"text": "Bad \x0c row"}]
    issues, _ = checks.check_dataset(report_of(tmp_path, rows), num_train_epochs=3)
    assert [(i.code, i.row, i.field) for i in issues] == [("dataset_control_chars", 26, "text")]


# ---- eval overlap and size --------------------------------------------------------------------
def test_eval_overlap(tmp_path):
    train = report_of(tmp_path, filler(30), "train.jsonl")
    held = report_of(tmp_path, filler(2, start=10) + filler(3, start=100), "eval.jsonl")
    issues, _ = checks.check_dataset(train, num_train_epochs=3, eval_examples=held.examples)
    assert [(i.code, i.row, i.params) for i in issues] == [("dataset_eval_overlap", None, {"count": 2})]


def test_an_eval_split_overlaps_only_through_duplicates(tmp_path):
    rows = filler(30) + filler(1, start=5)  # row 31 repeats row 6
    report = report_of(tmp_path, rows)
    examples = report.examples
    assert checks.eval_overlap(examples, [examples[5]]) == 1   # its copy stays on the training side
    assert checks.eval_overlap(examples, [examples[5], examples[30]]) == 0  # both copies held out
    assert checks.eval_overlap(examples, [examples[7], examples[8]]) == 0


def test_the_studio_eval_split_of_the_sample_does_not_overlap():
    report = reading.load_report(SAMPLE_DATASET)
    _train, held_out = splits.split_examples(report.examples, 0.1, 42)
    issues, _ = checks.check_dataset(report, num_train_epochs=3, eval_examples=list(held_out))
    assert len(held_out) == 12 and issues == []


def test_the_bundled_heldout_file_does_not_overlap():
    train, held = reading.load_report(SAMPLE_DATASET), reading.load_report(HELDOUT)
    issues, _ = checks.check_dataset(train, num_train_epochs=3, eval_examples=held.examples)
    assert not of(issues, "dataset_eval_overlap")


@pytest.mark.parametrize("rows, epochs, warned", [(10, 10, True), (19, 3, True), (30, 1, True),
                                                  (30, 2, False), (20, 2.5, False), (60, None, False),
                                                  (16, None, True)])
def test_too_few_rows(tmp_path, rows, epochs, warned):
    issues, _ = checks.check_dataset(report_of(tmp_path, filler(rows)), num_train_epochs=epochs)
    found = of(issues, "dataset_too_few_rows")
    assert bool(found) is warned
    if found:
        assert found[0].params["rows"] == rows and found[0].row is None
        assert "epoch" in found[0].to_dict("en")["message"]


# ---- summary, languages and wording -----------------------------------------------------------
def test_languages():
    assert checks.detect_language("How long does shipping take?") == "en"
    assert checks.detect_language("下单后多久发货？") == "zh"
    assert checks.detect_language("我的 iPhone 订单什么时候发货？") == "zh"
    assert checks.detect_language("Café crème, s'il vous plaît.") == "en"
    assert checks.detect_language("Привет, как дела?") == "other"
    assert checks.detect_language("12345 !!!") == "other"


def test_languages_are_counted(tmp_path):
    rows = filler(22) + [{"instruction": "多久发货？", "output": "工作日下单会在24小时内发货。"},
                         {"instruction": "退货怎么办？", "output": "七天内可以无理由退货，请联系客服。"},
                         {"instruction": "Как дела?", "output": "Всё хорошо, спасибо большое."}]
    _, summary = checks.check_dataset(report_of(tmp_path, rows), num_train_epochs=3)
    assert summary.languages == {"zh": 2, "en": 22, "other": 1}
    assert summary.rows == 25


def test_summary_to_dict_is_json(tmp_path, tokenizer):
    _, summary = checks.check_dataset(report_of(tmp_path, filler(25)), tokenizer, max_length=64)
    out = json.loads(json.dumps(summary.to_dict()))
    assert {"rows", "format", "languages", "token_lengths", "max_length", "truncated_rows",
            "tokens_per_epoch"} <= set(out)
    assert out["longest"] == max(summary.token_lengths)


def test_an_unusable_report_gives_no_warnings(tmp_path):
    report = report_of(tmp_path, [{"instruction": "", "output": ""}])
    issues, summary = checks.check_dataset(report, max_length=64, num_train_epochs=3)
    assert issues == [] and summary.rows == 0


@pytest.mark.parametrize("code", CODES)
def test_every_check_is_worded_in_both_languages(code):
    en, zh = wordings(code, "en", "zh")
    assert en != zh
    params = {"row": 7, "first": 3, "count": 4, "max_length": 512, "longest": 900, "mean_excess": 120,
              "length": 700, "field": "user", "chars": "U+0007", "rows": 12, "epochs": 3}
    for lang in ("en", "zh"):
        text = render(code, params, lang)
        assert "{" not in text and text != code
