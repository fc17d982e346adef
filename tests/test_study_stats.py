"""Statistics of blind studies against hand-computed values."""
from __future__ import annotations

import pytest

from engine.study.stats import (
    cohens_kappa,
    fleiss_kappa,
    outcome_block,
    self_consistency,
    sign_test,
    summarize,
    wilson_interval,
)


def test_wilson_interval_hand_computed():
    # p = 0.6, n = 10: centre (0.6 + 1.96^2/20) / (1 + 1.96^2/10) = 0.5723, half-width 0.2596
    low, high = wilson_interval(6, 10)
    assert low == pytest.approx(0.3127, abs=1e-4) and high == pytest.approx(0.8318, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_sign_test_exact():
    assert sign_test(6, 2) == pytest.approx(0.2890625)  # 2 * (1 + 8 + 28) / 256
    assert sign_test(2, 6) == sign_test(6, 2)
    assert sign_test(4, 4) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(10, 0) == pytest.approx(2 / 1024)


def test_cohens_kappa_hand_computed():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po 0.7, pe 0.5*0.6 + 0.5*0.4 = 0.5, kappa 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)
    assert cohens_kappa(["win", "loss"], ["win", "loss"]) == 1.0
    assert cohens_kappa(["tie"] * 3, ["tie"] * 3) == 1.0
    with pytest.raises(ValueError):
        cohens_kappa(["win"], [])


def test_fleiss_kappa_wikipedia_example():
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa([[2, 0], [0, 2]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])


def _row(question, rater, outcome, domain=None, repeat=False, adapter=None, base=None, flagged=False):
    return {"question_id": question, "rater_id": rater, "rater": f"r{rater}", "adapter_outcome": outcome,
            "domain": domain, "repeat": repeat, "adapter_scores": adapter or {}, "base_scores": base or {},
            "flagged_identity": flagged}


def test_outcome_block():
    block = outcome_block(["win"] * 6 + ["loss"] * 2 + ["tie", "both_bad"])
    assert block["n"] == 10 and block["decisive"] == 8
    assert block["win"]["rate"] == 0.6 and block["tie"]["count"] == 1 and block["both_bad"]["rate"] == 0.1
    assert block["win_rate_decisive"]["rate"] == 0.75
    assert block["sign_test_p"] == pytest.approx(0.2891, abs=1e-4)
    empty = outcome_block([])
    assert empty["n"] == 0 and empty["win"]["rate"] is None and empty["sign_test_p"] == 1.0


def test_summarize_groups_and_criteria():
    rows = [_row(1, 1, "win", "law", adapter={"logic": 5}, base={"logic": 3}),
            _row(2, 1, "loss", "med", adapter={"logic": 2}, base={"logic": 4}),
            _row(1, 2, "win", "law", adapter={"logic": 4}, base={"logic": 2}, flagged=True),
            _row(2, 2, "tie", "med"),
            _row(1, 2, "loss", "law", repeat=True)]
    summary = summarize(rows)
    assert summary["n_votes"] == 4  # the repeat is not counted twice
    assert summary["by_domain"]["law"]["win"]["count"] == 2 and summary["by_domain"]["med"]["n"] == 2
    assert summary["by_rater"]["r2"]["tie"]["count"] == 1
    logic = summary["criteria"]["logic"]
    assert logic["adapter_mean"] == pytest.approx(11 / 3) and logic["base_mean"] == pytest.approx(3.0)
    assert logic["n_adapter"] == 3
    assert summary["flagged_items"] == 1
    assert summary["self_consistency"]["repeats"] == 1 and summary["self_consistency"]["consistent"] == 0
    pair = summary["agreement"]["cohen"][0]
    assert pair["raters"] == ("r1", "r2") and pair["items"] == 2
    assert summary["agreement"]["fleiss_items"] == 2


def test_self_consistency():
    rows = [_row(1, 1, "win"), _row(1, 1, "win", repeat=True), _row(2, 1, "tie"), _row(2, 1, "loss", repeat=True)]
    result = self_consistency(rows)
    assert result["repeats"] == 2 and result["consistent"] == 1 and result["rate"] == 0.5
