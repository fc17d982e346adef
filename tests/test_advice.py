"""advise(): the guides' classic mistakes as warnings naming the field, worded in both languages."""
from __future__ import annotations

import re

import pytest

from engine.config import TrainConfig
from engine.locales import message_codes, render
from engine.planning import advice
from engine.planning.advice import advise
from engine.system import device

BASE = TrainConfig()


def codes(issues):
    return [i.code for i in issues]


def only(issues, code):
    found = [i for i in issues if i.code == code]
    assert len(found) == 1, codes(issues)
    return found[0]


def test_defaults_with_ordinary_data_give_no_advice():
    assert advise(BASE, rows=800, longest_tokens=300, truncated_rows=0, cuda=False) == []
    assert advise(BASE, cuda=True) == []


def test_every_issue_is_a_worded_warning_on_a_real_field():
    bad = BASE.replace(learning_rate=5e-3, lora_r=128, lora_alpha=8, num_train_epochs=20, max_length=4096,
                       load_in_4bit=True, optim="paged_adamw_8bit", bf16=True)
    issues = advise(bad, rows=100, longest_tokens=200, truncated_rows=0, cuda=False)
    assert len(issues) >= 7
    for issue in issues:
        assert issue.severity == "warning"
        assert issue.field in TrainConfig.__dataclass_fields__
        for lang in ("en", "zh"):
            text = issue.to_dict(lang)["message"]
            assert text != issue.code and not re.search(r"\{\w+\}", text), text


def test_learning_rate_limits():
    assert codes(advise(BASE.replace(learning_rate=advice.LR_HIGH), cuda=True)) == []
    assert codes(advise(BASE.replace(learning_rate=advice.LR_LOW), cuda=True)) == []
    high = only(advise(BASE.replace(learning_rate=2e-3), cuda=True), "advice_lr_high")
    assert high.field == "learning_rate" and "0.002" in high.to_dict()["message"]
    low = only(advise(BASE.replace(learning_rate=5e-6), cuda=True), "advice_lr_low")
    assert "5e-06" in low.to_dict()["message"] and "1e-05" in low.to_dict()["message"]


@pytest.mark.parametrize("r, alpha, code", [
    (16, 16, None), (16, 32, None), (16, 8, None), (16, 64, None),
    (16, 7, "advice_alpha_low"), (16, 65, "advice_alpha_high"), (8, 256, "advice_alpha_high"),
])
def test_alpha_ratio(r, alpha, code):
    issues = advise(BASE.replace(lora_r=r, lora_alpha=alpha), cuda=True)
    assert codes(issues) == ([code] if code else [])
    if code:
        assert issues[0].field == "lora_alpha"
        assert f"{r}-{2 * r}" in issues[0].to_dict()["message"]


@pytest.mark.parametrize("changes, rows, expected", [
    ({"num_train_epochs": 5, "eval_split": 0}, 100, None),            # at the small-data limit
    ({"num_train_epochs": 6, "eval_split": 0}, 100, "num_train_epochs"),
    ({"num_train_epochs": 6, "eval_split": 0}, 500, None),            # not small: up to 10 passes
    ({"num_train_epochs": 11, "eval_split": 0}, 5000, "num_train_epochs"),
    ({"max_steps": 100, "per_device_train_batch_size": 4, "eval_split": 0}, 100, None),  # 4 passes
    ({"max_steps": 200, "per_device_train_batch_size": 4, "eval_split": 0}, 100, "max_steps"),  # 8 passes
    ({"max_steps": 200, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2,
      "eval_split": 0}, 1000, None),                                  # 0.8 passes
])
def test_overfitting_passes(changes, rows, expected):
    found = [i for i in advise(BASE.replace(**changes), rows=rows, cuda=True) if i.code == "advice_overfit"]
    if expected is None:
        assert found == []
        return
    assert len(found) == 1 and found[0].field == expected
    if expected == "max_steps":
        # 3 passes over 100 rows at 4 rows a step
        assert found[0].params["suggested"] == 75 and found[0].params["passes"] == "8"
        assert "max_steps" in found[0].to_dict()["message"]
    if changes.get("max_steps", -1) < 0:
        assert found[0].params["suggested"] == advice.SUGGESTED_PASSES


def test_passes_count_only_training_rows():
    # 110 rows with a 10% eval split leave 99 training rows: 400 steps x 2 = 800 samples = 8.08 passes
    config = BASE.replace(max_steps=400, per_device_train_batch_size=2, eval_split=0.1)
    assert advice.training_rows(config, 110) == 99
    assert advice.passes(config, 110) == pytest.approx(800 / 99)
    assert advice.training_rows(config.replace(eval_rows=10), 110) == 100
    issue = only(advise(config, rows=110, cuda=True), "advice_overfit")
    assert issue.params["rows"] == 99 and issue.params["passes"] == "8.08"


def test_high_rank_on_few_rows():
    assert "advice_rank_high_few_rows" not in codes(advise(BASE.replace(lora_r=64, lora_alpha=128), rows=100,
                                                           cuda=True))
    assert "advice_rank_high_few_rows" not in codes(advise(BASE.replace(lora_r=128, lora_alpha=256), rows=1000,
                                                           cuda=True))
    issue = only(advise(BASE.replace(lora_r=128, lora_alpha=256), rows=999, cuda=True), "advice_rank_high_few_rows")
    assert issue.field == "lora_r"
    assert "advice_rank_high_few_rows" not in codes(advise(BASE.replace(lora_r=128, lora_alpha=256), cuda=True))


@pytest.mark.parametrize("max_length, longest, warned", [
    (512, 256, False),     # 2x: not more
    (400, 190, False),     # above 2x but within longest + 256
    (1024, 300, True),
    (4096, 2000, True),
    (2048, 1024, False),
])
def test_max_length_far_above_the_longest_row(max_length, longest, warned):
    issues = advise(BASE.replace(max_length=max_length), longest_tokens=longest, cuda=True)
    assert ("advice_max_length_unused" in codes(issues)) is warned
    if warned:
        issue = only(issues, "advice_max_length_unused")
        assert issue.field == "max_length"
        assert issue.params["suggested"] >= longest and issue.params["suggested"] % advice.LENGTH_ROUNDING == 0


def test_many_truncated_rows():
    config = BASE.replace(max_length=256)
    assert "advice_many_truncated" not in codes(advise(config, rows=100, truncated_rows=5, cuda=True))
    issue = only(advise(config, rows=100, longest_tokens=900, truncated_rows=6, cuda=True), "advice_many_truncated")
    assert issue.field == "max_length" and issue.params["share"] == 6
    assert "900" in issue.to_dict()["message"] and "256" in issue.to_dict("zh")["message"]
    assert "advice_many_truncated" not in codes(advise(config, truncated_rows=50, cuda=True))  # rows unknown


@pytest.mark.parametrize("changes, code, field", [
    ({"load_in_4bit": True}, "advice_4bit_without_cuda", "load_in_4bit"),
    ({"load_in_8bit": True}, "advice_8bit_without_cuda", "load_in_8bit"),
    ({"optim": "paged_adamw_8bit"}, "advice_optim_without_cuda", "optim"),
    ({"optim": "adamw_8bit"}, "advice_optim_without_cuda", "optim"),
    ({"bf16": True}, "advice_precision_without_cuda", "bf16"),
    ({"fp16": True}, "advice_precision_without_cuda", "fp16"),
])
def test_gpu_only_settings_on_a_cpu(changes, code, field):
    config = BASE.replace(**changes)
    assert only(advise(config, cuda=False), code).field == field
    assert advise(config, cuda=True) == []


def test_gradient_checkpointing_is_not_advice():
    assert advise(BASE.replace(gradient_checkpointing=True), rows=5000, longest_tokens=400, cuda=False) == []


def test_cuda_none_asks_the_device(monkeypatch):
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    assert codes(advise(BASE.replace(bf16=True))) == ["advice_precision_without_cuda"]
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    assert advise(BASE.replace(bf16=True)) == []


def test_cuda_is_not_probed_when_no_check_needs_it(monkeypatch):
    def boom():
        raise AssertionError("probed")

    monkeypatch.setattr(device, "cuda_available", boom)
    assert advise(BASE.replace(learning_rate=2e-3)) and advise(BASE) == []


def test_advice_codes_are_worded_in_both_languages():
    used = {"advice_lr_high", "advice_lr_low", "advice_alpha_low", "advice_alpha_high", "advice_overfit",
            "advice_rank_high_few_rows", "advice_max_length_unused", "advice_many_truncated",
            "advice_4bit_without_cuda", "advice_8bit_without_cuda", "advice_optim_without_cuda",
            "advice_precision_without_cuda"}
    assert used == {code for code in message_codes() if code.startswith("advice_")}
    zh = render("advice_overfit", {"rows": 50, "passes": "12", "max_passes": 5, "setting": "num_train_epochs",
                                   "suggested": 3}, "zh")
    assert "50" in zh and "num_train_epochs" in zh and "死记硬背" in zh
