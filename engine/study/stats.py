"""Statistics of a blind base-vs-adapter study: pure functions over `StudyStore.results()` rows.

Every rate is counted per vote and comes with a 95% Wilson interval; the sign test is the exact
two-sided binomial test on wins against losses (ties and both-bad excluded). Self-consistency
repeats (`repeat=True`) are left out of the rates and only feed the self-consistency figure.
Agreement between raters is measured on the unblinded outcome (win/loss/tie/both_bad), so it does
not depend on which side an answer was shown on.
"""
from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations
from typing import Any, Hashable, Iterable, Sequence

OUTCOMES = ("win", "loss", "tie", "both_bad")


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0.0, 1.0) when there is no data."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n, got {successes} of {n}")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial p-value of wins vs losses under p = 0.5 (ties are not passed in)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))


def cohens_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters' labels on the same items (a[i] and b[i] judge item i).

    Returns 1.0 when both raters used one and the same label throughout (no chance correction possible).
    """
    if len(a) != len(b):
        raise ValueError("both raters need a label for every shared item")
    n = len(a)
    if n == 0:
        raise ValueError("no shared items")
    observed = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    expected = sum((list(a).count(c) / n) * (list(b).count(c) / n) for c in labels)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1 - expected)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa; table[i][j] = how many raters put item i in category j (same rater count per item)."""
    rows = [list(map(int, row)) for row in table]
    if not rows:
        raise ValueError("no items")
    raters = sum(rows[0])
    if raters < 2 or any(sum(row) != raters for row in rows):
        raise ValueError("every item needs the same number of ratings, at least two")
    if len({len(row) for row in rows}) != 1:
        raise ValueError("every row needs the same categories")
    items = len(rows)
    total = items * raters
    p_j = [sum(row[j] for row in rows) / total for j in range(len(rows[0]))]
    p_i = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in rows]
    p_bar = sum(p_i) / items
    p_e = sum(p * p for p in p_j)
    if p_e >= 1.0:
        return 1.0
    return (p_bar - p_e) / (1 - p_e)


def _rate(count: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(count, n)
    return {"count": count, "rate": count / n if n else None, "ci": (low, high)}


def outcome_block(outcomes: Iterable[str]) -> dict[str, Any]:
    """Counts, rates and 95% Wilson intervals of adapter outcomes, the decisive win rate and the sign test."""
    outcomes = list(outcomes)
    n = len(outcomes)
    counts = {o: outcomes.count(o) for o in OUTCOMES}
    decisive = counts["win"] + counts["loss"]
    block: dict[str, Any] = {"n": n}
    for outcome in OUTCOMES:
        block[outcome] = _rate(counts[outcome], n)
    block["decisive"] = decisive
    block["win_rate_decisive"] = _rate(counts["win"], decisive)
    block["sign_test_p"] = sign_test(counts["win"], counts["loss"])
    return block


def _groups(rows: list[dict[str, Any]], key: str) -> dict[Any, list[str]]:
    groups: dict[Any, list[str]] = {}
    for row in rows:
        groups.setdefault(row.get(key) or "", []).append(row["adapter_outcome"])
    return dict(sorted(groups.items(), key=lambda kv: str(kv[0])))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def criterion_means(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean 1-5 score per criterion for the adapter's and the base's answers (already unblinded)."""
    names: list[str] = []
    for row in rows:
        for side in ("adapter_scores", "base_scores"):
            names += [c for c in (row.get(side) or {}) if c not in names]
    means = {}
    for name in names:
        adapter = [row["adapter_scores"][name] for row in rows
                   if (row.get("adapter_scores") or {}).get(name) is not None]
        base = [row["base_scores"][name] for row in rows if (row.get("base_scores") or {}).get(name) is not None]
        a, b = _mean(adapter), _mean(base)
        means[name] = {"adapter_mean": a, "base_mean": b, "difference": a - b if a is not None and b is not None
                       else None, "n_adapter": len(adapter), "n_base": len(base)}
    return means


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cohen's kappa for every pair of raters on their shared items; Fleiss' kappa on items all raters judged."""
    by_rater: dict[Any, dict[Any, str]] = {}
    for row in rows:
        by_rater.setdefault(row.get("rater") or row.get("rater_id"), {})[row["question_id"]] = row["adapter_outcome"]
    pairs = []
    for r1, r2 in combinations(sorted(by_rater, key=str), 2):
        shared = sorted(set(by_rater[r1]) & set(by_rater[r2]), key=str)
        if shared:
            kappa = cohens_kappa([by_rater[r1][q] for q in shared], [by_rater[r2][q] for q in shared])
            pairs.append({"raters": (r1, r2), "items": len(shared), "kappa": kappa})
    fleiss, common = None, []
    if len(by_rater) >= 2:
        common = sorted(set.intersection(*(set(v) for v in by_rater.values())), key=str)
        if common:
            table = [[sum(v[q] == o for v in by_rater.values()) for o in OUTCOMES] for q in common]
            fleiss = fleiss_kappa(table)
    return {"cohen": pairs, "fleiss": fleiss, "fleiss_items": len(common)}


def self_consistency(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How often a rater gave the same unblinded outcome when shown an item again with the sides swapped."""
    first = {(r.get("rater_id"), r["question_id"]): r["adapter_outcome"] for r in rows if not r.get("repeat")}
    pairs = [(first[(r.get("rater_id"), r["question_id"])], r["adapter_outcome"]) for r in rows
             if r.get("repeat") and (r.get("rater_id"), r["question_id"]) in first]
    same = sum(a == b for a, b in pairs)
    return {"repeats": len(pairs), "consistent": same, **_rate(same, len(pairs))}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per-domain and per-rater outcome rates with 95% Wilson intervals and sign tests, mean
    scores per criterion (adapter vs base), rater agreement, self-consistency and flagged items."""
    rows = [r for r in results if not r.get("repeat")]
    return {
        "n_votes": len(rows),
        "overall": outcome_block(r["adapter_outcome"] for r in rows),
        "by_domain": {k: outcome_block(v) for k, v in _groups(rows, "domain").items()},
        "by_rater": {k: outcome_block(v) for k, v in _groups(rows, "rater").items()},
        "criteria": criterion_means(rows),
        "agreement": agreement(rows),
        "self_consistency": self_consistency(results),
        "flagged_items": len({r["question_id"] for r in results if r.get("flagged_identity")}),
    }
