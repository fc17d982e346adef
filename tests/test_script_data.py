"""The exported training script reads real-world files as the studio does: the run's encoding and delimiter
(or both detected the same way), tool-calling rows, preference pairs and plain-text chunks."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.data import reading, splits
from engine.data.reading import ReadOptions
from tests.test_script_export import exported

QUESTIONS = ["如何退货？", "运费是多少？", "几点开门？", "可以开发票吗？"]
ANSWERS = ["请在七天内联系客服办理退货。", "满九十九元包邮。", "每天早上九点。", "可以，请联系客服。"]


def config_for(path, **changes) -> TrainConfig:
    return TrainConfig(dataset_path=str(path)).replace(**changes)


def studio_examples(config: TrainConfig) -> list[dict]:
    return reading.load_config_dataset(config).examples


@pytest.mark.parametrize(("encoding", "sep", "chosen"), [
    ("gbk", ";", {}), ("utf-16-le", "\t", {}), ("utf-8-sig", "|", {"dataset_delimiter": "|"}),
    ("gb18030", ",", {"dataset_encoding": "gb18030"})])
def test_the_script_reads_a_csv_in_the_runs_encoding_and_delimiter(tmp_path, encoding, sep, chosen):
    path = tmp_path / "faq.csv"
    text = pd.DataFrame({"问题": QUESTIONS, "回答": ANSWERS}).to_csv(index=False, sep=sep)
    path.write_bytes(text.encode(encoding))
    config = config_for(path, **chosen)
    script = exported(config)
    assert (script["ENCODING"], script["DELIMITER"]) == (config.dataset_encoding, config.dataset_delimiter)
    expected = studio_examples(config)
    assert len(expected) == 4 and expected[0]["completion"][0]["content"] == ANSWERS[0]
    assert script["load_examples"](str(path), None) == expected


def test_a_wrong_chosen_encoding_stops_the_script_with_a_sentence(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_bytes("问题,回答\n你好,你好啊\n".encode("gbk"))
    script = exported(config_for(path, dataset_encoding="utf-8"))
    with pytest.raises(SystemExit, match="encoding 'utf-8'"):
        script["load_examples"](str(path), None)


def tool_rows() -> list[dict]:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    with_tools = {"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "",
                                                                          "tool_calls": [call]},
                               {"role": "tool", "content": "18C"}, {"role": "assistant", "content": "18C."}]}
    return [{"messages": [{"role": "user", "content": f"Q{n}"}, {"role": "assistant", "content": f"A{n}"}]}
            if n % 3 else with_tools for n in range(1, 10)]


def test_the_script_splits_and_mixes_tool_rows_as_the_studio(tmp_path):
    path = tmp_path / "tools.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in tool_rows()), encoding="utf-8")
    mix = tmp_path / "mix.jsonl"
    mix.write_text("".join(json.dumps({"prompt": f"m{n}", "completion": f"n{n}"}) + "\n" for n in range(9)),
                   encoding="utf-8")
    config = config_for(path, eval_split=0.2, mix_dataset_path=str(mix), mix_ratio=0.5)
    script = exported(config)
    examples = script["load_examples"](str(path), None)
    assert examples == studio_examples(config) and "tools" not in examples[0]
    train, evaluation = script["split"](examples)
    train = script["mix_in"](train, script["load_examples"](str(mix), None))
    expected_train, expected_eval = splits.build_splits(config, examples)
    assert list(train) == list(expected_train) and list(evaluation) == list(expected_eval)
    assert all("tools" in row for row in train) and train.features == expected_train.features


def test_preference_pairs_need_sft_on_chosen_in_the_script(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{n}?", "chosen": f"Good {n}.", "rejected": f"Bad {n}."}) + "\n"
                            for n in range(3)), encoding="utf-8")
    with pytest.raises(SystemExit, match="SFT_ON_CHOSEN"):
        exported(config_for(path))["load_examples"](str(path), None)
    config = config_for(path, sft_on_chosen=True)
    examples = exported(config)["load_examples"](str(path), None)
    assert examples == studio_examples(config) and examples[0]["completion"][0]["content"] == "Good 0."


def test_the_script_cuts_a_text_file_into_the_studios_chunks(tmp_path):
    path = tmp_path / "chapter.md"
    paragraphs = [f"Paragraph {n}. The keeper climbed the stairs of the old lighthouse again. " * (1 + n % 3)
                  for n in range(10)]
    path.write_text("\n\n".join(paragraphs), encoding="utf-16")
    config = config_for(path, max_length=64)
    expected = studio_examples(config)
    assert len(expected) > 3 and reading.load_report(path, options=ReadOptions.of(config)).chunked
    script = exported(config)
    tokenizer = reading.tokenizer_for(BUNDLED_MODEL_ID)
    assert script["load_examples"](str(path), tokenizer) == expected
