"""Question sets for blind studies: reading files with row-named errors, and identity flags."""
from __future__ import annotations

import json

import pytest

from engine.errors import EngineError
from engine.locales import render_error
from engine.study.store import identity_flags, load_questions, reveals_identity


def test_load_questions_errors_name_rows(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("prompt,domain\nfine,law\n  ,law\n", encoding="utf-8")
    with pytest.raises(EngineError) as err:
        load_questions(path)
    assert err.value.code == "study_question_empty" and err.value.params["row"] == 2
    assert "第 2 行" in render_error(err.value, "zh")
    path.write_text("title,body\nx,y\n", encoding="utf-8")
    with pytest.raises(EngineError) as err:
        load_questions(path)
    assert err.value.code == "study_questions_no_prompt" and "title" in err.value.params["columns"]
    path = tmp_path / "q.jsonl"
    path.write_text('{"prompt": "ok"}\n{broken\n', encoding="utf-8")
    with pytest.raises(EngineError) as err:
        load_questions(path)
    assert err.value.code == "dataset_bad_json" and err.value.params["row"] == 2
    path.write_text('{"prompt": ["a", "list"]}\n', encoding="utf-8")
    with pytest.raises(EngineError) as err:
        load_questions(path)
    assert err.value.code == "study_question_not_text" and err.value.params["row"] == 1
    path.write_text("", encoding="utf-8")
    with pytest.raises(EngineError) as err:
        load_questions(path)
    assert err.value.code == "study_no_questions"
    with pytest.raises(EngineError) as err:
        load_questions(tmp_path / "missing.csv")
    assert err.value.code == "dataset_not_found"


@pytest.mark.parametrize("text", [
    "I am SmolLM, made by Hugging Face.", "I'm an AI assistant and cannot do that.", "I am an AI language model.",
    "我是一个人工智能助手。", "我是通义千问。", "我是由 OpenAI 开发的 AI 语言模型。",
    "As an AI language model, I think",
    "This is Qwen speaking.", "I am Llama 3.", "Ask ChatGPT instead.", "I am an AI.", "我是AI助手"])
def test_identity_is_flagged(text):
    assert reveals_identity(text), text


@pytest.mark.parametrize("text", [
    "您好，我是客服小王，很高兴为您服务。", "The contract is void if signed under duress.",
    "AI can help radiologists read scans.", "根据《民法典》第577条，违约方应承担责任。", "I am an accountant."])
def test_ordinary_text_is_not_flagged(text):
    assert not reveals_identity(text), identity_flags(text)


def test_held_out_questions_are_the_runs_eval_rows_with_references(tmp_path, english_dataset):
    from engine.config import TrainConfig
    from engine.study.questions import held_out_questions, load_questions, write_questions

    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(dataset_path=str(english_dataset), eval_rows=6, seed=7)
    (run / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    questions = held_out_questions(run)
    sample = {row["instruction"] + ("\n\n" + row["input"] if row["input"] else ""): row["output"]
              for row in (json.loads(line) for line in english_dataset.read_text(encoding="utf-8").splitlines())}
    assert len(questions) == 6
    assert all(sample[q["prompt"]] == q["reference"] for q in questions)  # prompt and its trained answer
    assert load_questions(write_questions(tmp_path / "q.jsonl", questions)) == questions

    (run / "config.yaml").write_text(config.replace(eval_rows=0, eval_split=0.0).to_yaml(), encoding="utf-8")
    with pytest.raises(EngineError) as caught:
        held_out_questions(run)
    assert caught.value.code == "study_no_held_out"
