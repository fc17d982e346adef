"""A RunPlan is worded line by line from the catalogue, in English and 中文, with every placeholder filled."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine import Issue, duration, plan_lines
from engine.planning.estimate import PARTS

GB = 2 ** 30


def a_plan(**changes) -> SimpleNamespace:
    """A RunPlan-shaped object with one finding of every kind, `changes` replacing some."""
    memory = SimpleNamespace(verdict="will_not_fit", total=30 * GB, available=24 * GB, biggest="weights",
                             parts={part: GB for part in PARTS},
                             suggestion=("estimate_suggest_4bit", {"total_gb": "9.5"}))
    plan = dict(errors=[], issues=[Issue("warning", "config_eval_without_split")] * 2,
                dataset=SimpleNamespace(summary=SimpleNamespace(rows=120, tokens_per_epoch=48_000)),
                trainable=(1_000, 100_000), memory=memory,
                time=SimpleNamespace(seconds_per_epoch=3725, tokens_per_second=812.4))
    return SimpleNamespace(**{**plan, **changes})


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_line_is_worded_with_its_numbers(lang):
    lines = plan_lines(a_plan(), lang)
    assert len(lines) == 7 and all("{" not in line for line in lines)
    assert lines[0].startswith("⚠️ ") and lines[3].startswith("**") and lines[4].startswith("  ")
    assert "120" in lines[1] and "48000" in lines[1] and "1,000" in lines[2] and "1.00%" in lines[2]
    assert "30.0" in lines[3] and "24.0" in lines[3] and lines[4].count("1.00 GB") == len(PARTS)
    assert lines[5].startswith("  💡 ") and "9.5" in lines[5] and "1:02:05" in lines[6] and "812" in lines[6]

def test_the_words_follow_the_language():
    english, chinese = plan_lines(a_plan(), "en"), plan_lines(a_plan(), "zh")
    assert english[3] == "**Will not fit: about 30.0 GB needed, 24.0 GB available (biggest part: model weights).**"
    assert chinese[1] == "数据：120 行可用，每轮约 48000 个词元。"
    assert "model weights 1.00 GB" in english[4] and "4-bit" in english[5] and "4 位" in chinese[5]


def test_no_findings_say_so():
    plan = a_plan(issues=[], dataset=None, trainable=None, memory=None, time=None)
    assert plan_lines(plan, "en") == ["✅ No problems found in the settings."]
    assert plan_lines(plan, "zh") == ["✅ 设置中没有发现问题。"]
    errors = [Issue("error", "dataset_missing_field", row=2, field="output")]
    assert plan_lines(a_plan(errors=errors, issues=errors, dataset=None, trainable=None, memory=None, time=None),
                      "en") == ["❌ Row 2: the field 'output' is missing or empty."]


def test_duration():
    assert duration(None) == "-" and duration(59.9) == "0:00:59" and duration(3725) == "1:02:05"
