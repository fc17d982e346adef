"""Train/eval split by ratio or count, and mixing in a second dataset, reproducibly with a seed."""
from __future__ import annotations

import json

import pytest

from engine.config import TrainConfig
from engine.data import splits
from engine.errors import EngineError


def examples(n: int, tag: str = "q") -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"{tag}{i}"}],
             "completion": [{"role": "assistant", "content": f"a{i}"}]} for i in range(n)]


def questions(dataset) -> list[str]:
    return [row["prompt"][0]["content"] for row in dataset]


def test_split_by_count_overrides_ratio_and_is_seeded():
    train, evaluation = splits.split_examples(examples(50), eval_split=0.5, seed=3, eval_rows=7)
    assert len(evaluation) == 7 and len(train) == 43
    again, _ = splits.split_examples(examples(50), eval_split=0.5, seed=3, eval_rows=7)
    assert questions(train) == questions(again)
    other, _ = splits.split_examples(examples(50), eval_split=0.5, seed=4, eval_rows=7)
    assert questions(other) != questions(train)


def test_mix_in_adds_the_ratio_of_rows_to_train_only(tmp_path):
    extra = tmp_path / "general.jsonl"
    extra.write_text("".join(json.dumps({"prompt": f"g{i}", "completion": f"c{i}"}) + "\n" for i in range(100)),
                     encoding="utf-8")
    config = TrainConfig(eval_split=0.2, mix_dataset_path=str(extra), mix_ratio=0.5, seed=1)
    train, evaluation = splits.build_splits(config, examples(40))
    assert len(evaluation) == 8
    assert len(train) == 32 + 16
    assert sum(q.startswith("g") for q in questions(train)) == 16
    assert not any(q.startswith("g") for q in questions(evaluation))
    again, _ = splits.build_splits(config, examples(40))
    assert questions(again) == questions(train)


def test_mix_in_of_plain_text_into_chat_rows_is_refused(tmp_path):
    extra = tmp_path / "text.jsonl"
    extra.write_text(json.dumps({"text": "hello"}) + "\n", encoding="utf-8")
    config = TrainConfig(eval_split=0.0, mix_dataset_path=str(extra), mix_ratio=1.0)
    with pytest.raises(EngineError) as caught:
        splits.build_splits(config, examples(4))
    assert caught.value.code == "dataset_mix_mismatch"


def test_missing_mix_dataset_is_a_config_error(tmp_path):
    issues = TrainConfig(dataset_path=__file__, mix_dataset_path=str(tmp_path / "no.jsonl"), mix_ratio=0.2).validate()
    assert [(i.code, i.field) for i in issues if i.severity == "error"] == [("dataset_not_found", "mix_dataset_path")]
