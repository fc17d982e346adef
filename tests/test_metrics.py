"""ROUGE-L and BLEU with Chinese-aware tokens, against hand-computed values."""
from __future__ import annotations

import math

import pytest

from engine.chat import metrics


def test_tokens_split_han_characters_and_words():
    assert metrics.tokens("退货怎么办 in 3 days, OK?") == ["退", "货", "怎", "么", "办", "in", "3", "days", "ok"]


def test_rouge_l_hand_computed():
    # LCS of "the cat sat" / "the cat on the mat sat" = 3 tokens: P = 1, R = 3/6 -> F1 = 2/3
    assert metrics.rouge_l("the cat sat", "the cat on the mat sat") == pytest.approx(2 / 3)
    # Chinese: 您好退款 vs 您好我们退款 -> LCS 4 (您好退款), P = 1, R = 4/6 -> F1 = 0.8
    assert metrics.rouge_l("您好退款", "您好我们退款") == pytest.approx(0.8)
    assert metrics.rouge_l("", "x") == 0.0 and metrics.rouge_l("a b", "c d") == 0.0


def test_bleu_identical_and_partial():
    same = "we refund within three working days"
    assert metrics.bleu(same, same) == pytest.approx(1.0)
    partial = metrics.bleu("we refund in three days", "we refund within three working days")
    # unigrams 4/5, smoothed bigrams (1+1)/(4+1), trigrams (0+1)/(3+1), 4-grams (0+1)/(2+1); BP = exp(1 - 6/5)
    precisions = (4 / 5, 2 / 5, 1 / 4, 1 / 3)
    expected = math.exp(1 - 6 / 5) * math.exp(sum(math.log(p) for p in precisions) / 4)
    assert partial == pytest.approx(expected)
    assert metrics.bleu("完全不同", "毫无关系") == 0.0


def test_reference_scores_average_over_rows_with_a_reference():
    scores = metrics.reference_scores([("a b", "a b c", "a b c"), ("x", "y", "")])
    assert scores["adapter"]["n"] == 1 and scores["adapter"]["rouge_l"] == pytest.approx(1.0)
    assert scores["base"]["rouge_l"] == pytest.approx(0.8)
