"""diagnose() reads synthetic training curves as a practitioner would; smooth() is TensorBoard's EMA."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.locales import message_codes, render, wordings
from engine.training.diagnosis import (
    KINDS,
    MIN_POINTS,
    OSCILLATION_VARIABILITY,
    Diagnosis,
    _variability,
    diagnose,
    smooth,
)


def train_points(losses, grad_norms=None, every: int = 10) -> list[dict]:
    """Log-event data dicts as engine/callbacks.py emits them (None = non-finite)."""
    points = []
    for i, loss in enumerate(losses):
        point = {"step": (i + 1) * every, "epoch": round((i + 1) / len(losses), 4),
                 "loss": None if loss is None or not math.isfinite(loss) else float(loss),
                 "learning_rate": 2e-4, "memory_mb": 512.0}
        if grad_norms is not None:
            g = grad_norms[i]
            point["grad_norm"] = None if g is None or not math.isfinite(g) else float(g)
        points.append(point)
    return points


def decay(n: int = 60, start: float = 2.5, floor: float = 0.6, rate: float = 0.06, noise: float = 0.03,
          seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    x = np.arange(n)
    clean = floor + (start - floor) * np.exp(-rate * x)
    return list(clean * (1 + noise * rng.standard_normal(n)))


def grads(n: int, seed: int = 1) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(1.0 + 0.2 * rng.random(n))


def with_evals(points: list[dict], evals: dict[int, float]) -> list[dict]:
    """Insert eval points after the train point of the same step, as the trainer logs them."""
    out = []
    for point in points:
        out.append(point)
        if point["step"] in evals:
            out.append({"step": point["step"], "epoch": point["epoch"], "eval_loss": evals[point["step"]],
                        "memory_mb": 512.0})
    return out


# --- healthy ------------------------------------------------------------------------------------

def test_smooth_exponential_decay_is_healthy():
    result = diagnose(train_points(decay(), grads(60)))
    assert result.kind == "healthy"
    assert 60 <= result.params["drop_pct"] <= 80


@pytest.mark.parametrize("seed", range(10))
def test_noisy_but_falling_curve_is_healthy(seed):
    """Per-batch noise of 20% (step-to-step changes above the oscillation threshold) on a curve that
    clearly comes down: noisy, not oscillating."""
    losses = decay(n=80, rate=0.04, noise=0.2, seed=seed)
    assert _variability(losses) > OSCILLATION_VARIABILITY
    result = diagnose(train_points(losses, grads(80, seed)))
    assert result.kind == "healthy", result


def test_short_steep_decay_is_healthy():
    """Eight points of a steep drop: big step-to-step changes, but all downhill."""
    result = diagnose(train_points([3.0, 2.2, 1.6, 1.2, 0.9, 0.7, 0.6, 0.55]))
    assert result.kind == "healthy"
    assert result.params["drop_pct"] > 50


def test_healthy_run_with_falling_eval_loss():
    points = with_evals(train_points(decay(), grads(60)), {100: 1.6, 200: 1.1, 300: 0.9, 400: 0.85, 500: 0.83})
    assert diagnose(points).kind == "healthy"


def test_one_early_grad_spike_that_settled_is_not_diverging():
    g = grads(60)
    g[1] = 40.0
    assert diagnose(train_points(decay(), g)).kind == "healthy"


# --- warming up ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, MIN_POINTS - 1])
def test_too_few_points_is_warming_up(n):
    result = diagnose(train_points(decay(n=max(n, 1))[:n]))
    assert result == Diagnosis("warming_up", {"points": n, "needed": MIN_POINTS})


def test_eval_only_points_are_warming_up():
    assert diagnose([{"step": 10, "eval_loss": 1.2}]).kind == "warming_up"


def test_short_run_that_has_not_fallen_yet_is_warming_up():
    rng = np.random.default_rng(3)
    losses = list(1.8 + 0.01 * rng.standard_normal(12))
    assert diagnose(train_points(losses)).kind == "warming_up"


# --- oscillating --------------------------------------------------------------------------------

def test_oscillating_curve():
    rng = np.random.default_rng(4)
    n = 60
    base = 2.0 - 0.002 * np.arange(n)  # barely any progress
    swing = 0.35 * np.where(np.arange(n) % 2, 1, -1) + 0.15 * rng.standard_normal(n)
    result = diagnose(train_points(list(base * (1 + swing)), grads(n)))
    assert result.kind == "oscillating"
    assert result.params["swing_pct"] > 30


def test_random_jumps_without_progress_are_oscillating():
    rng = np.random.default_rng(5)
    losses = list(np.abs(1.5 + 0.5 * rng.standard_normal(40)) + 0.1)
    assert diagnose(train_points(losses, grads(40))).kind == "oscillating"


# --- flat ---------------------------------------------------------------------------------------

def test_flat_curve():
    rng = np.random.default_rng(6)
    n = 50
    losses = list(2.3 * (1 + 0.01 * rng.standard_normal(n)))
    result = diagnose(train_points(losses, grads(n)))
    assert result.kind == "flat"
    assert result.params["points"] == n and result.params["change_pct"] <= 2


def test_flat_after_a_small_early_dip_is_flat():
    losses = [2.40, 2.38, 2.36] + [2.33] * 30
    assert diagnose(train_points(losses)).kind == "flat"


def test_falling_slowly_but_steadily_is_not_flat():
    losses = list(np.linspace(2.0, 1.8, 40))  # 10% overall, still falling in the last half
    assert diagnose(train_points(losses)).kind == "healthy"


# --- diverging ----------------------------------------------------------------------------------

def test_nan_loss_is_diverging():
    losses = decay(n=30)
    losses[20:] = [math.nan] * 10
    result = diagnose(train_points(losses, grads(30)))
    assert result == Diagnosis("diverging", {"step": 210})


def test_nan_is_diverging_even_with_few_points():
    assert diagnose(train_points([2.0, 1.9, None])).kind == "diverging"


def test_infinite_grad_norm_is_diverging():
    g = grads(30)
    g[25] = math.inf
    assert diagnose(train_points(decay(n=30), g)) == Diagnosis("diverging", {"step": 260})


def test_exploding_grad_norm_is_diverging():
    n = 40
    g = grads(n)
    g[-2:] = [15.0, 60.0]
    result = diagnose(train_points(decay(n=n), g))
    assert result == Diagnosis("diverging", {"step": (n - 1) * 10})


def test_loss_blowing_up_is_diverging():
    rng = np.random.default_rng(7)
    n = 40
    clean = np.concatenate([np.linspace(2.0, 1.5, 20), 1.5 * np.exp(0.12 * np.arange(20))])
    losses = list(clean * (1 + 0.03 * rng.standard_normal(n)))
    assert diagnose(train_points(losses, grads(n))).kind == "diverging"


# --- overfitting --------------------------------------------------------------------------------

def overfit_points() -> list[dict]:
    n = 60
    points = train_points(decay(n=n, floor=0.2, rate=0.08, noise=0.02), grads(n))
    steps = range(60, 601, 60)  # 10 evaluations, U-shaped: best at step 240
    rng = np.random.default_rng(8)
    evals = {s: float(1.0 + 0.004 * (s - 240) ** 2 / 60 + 0.005 * rng.standard_normal()) for s in steps}
    return with_evals(points, evals)


def test_eval_u_shape_is_overfitting():
    result = diagnose(overfit_points())
    assert result.kind == "overfitting"
    assert result.params["best_eval_step"] == 240
    assert result.params["rise_pct"] > 5


def test_eval_rising_only_once_is_not_overfitting():
    points = with_evals(train_points(decay(), grads(60)), {100: 1.2, 200: 1.0, 300: 0.95, 400: 1.1})
    assert diagnose(points).kind == "healthy"


def test_eval_rising_within_margin_is_not_overfitting():
    points = with_evals(train_points(decay(), grads(60)), {100: 1.2, 200: 1.0, 300: 1.01, 400: 1.02})
    assert diagnose(points).kind == "healthy"


def test_two_evals_are_too_few_for_overfitting():
    points = with_evals(train_points(decay(), grads(60)), {300: 1.0, 600: 1.5})
    assert diagnose(points).kind == "healthy"


def test_nan_eval_loss_is_diverging():
    points = with_evals(train_points(decay(), grads(60)), {300: 1.0, 600: None})
    assert diagnose(points).kind == "diverging"


def test_checks_run_in_order_diverging_before_overfitting():
    points = overfit_points()
    points[-1] = {**points[-1], "loss": None} if "loss" in points[-1] else {**points[-1], "eval_loss": None}
    assert diagnose(points).kind == "diverging"


# --- smooth -------------------------------------------------------------------------------------

def test_smooth_of_a_constant_is_constant():
    assert smooth([1.7] * 50) == pytest.approx([1.7] * 50)
    assert smooth([1.7] * 5, weight=0.99) == pytest.approx([1.7] * 5)


def test_smooth_lags_a_step_change():
    values = [1.0] * 20 + [2.0] * 20
    out = smooth(values, weight=0.9)
    assert out[19] == pytest.approx(1.0)
    assert 1.0 < out[20] < out[25] < out[39] < 2.0
    assert out[20] == pytest.approx(1.11, abs=0.01)  # one step in, about a tenth of the way
    assert out[-1] > 1.85


def test_smooth_has_bias_correction_and_keeps_length():
    out = smooth([3.0, 1.0], weight=0.5)
    assert out[0] == pytest.approx(3.0)  # not pulled towards 0
    assert out[1] == pytest.approx((0.5 * 1.5 + 0.5 * 1.0) / 0.75)
    assert smooth([]) == []
    assert smooth([1.0, 2.0, 3.0], weight=0.0) == [1.0, 2.0, 3.0]


def test_smooth_passes_non_finite_values_through():
    out = smooth([1.0, None, math.nan, 1.0])
    assert out[0] == pytest.approx(1.0) and out[3] == pytest.approx(1.0)
    assert math.isnan(out[1]) and math.isnan(out[2])


@pytest.mark.parametrize("weight", [1.0, -0.1, 1.5])
def test_smooth_rejects_bad_weights(weight):
    with pytest.raises(ValueError):
        smooth([1.0], weight=weight)


# --- wording ------------------------------------------------------------------------------------

def test_diagnosis_codes():
    result = Diagnosis("flat", {"points": 20, "change_pct": 1})
    assert result.title_code == "diagnosis_flat" and result.advice_code == "diagnosis_flat_advice"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_english_and_chinese_wording(kind):
    result = Diagnosis(kind)
    for code in (result.title_code, result.advice_code):
        assert code in message_codes(), code
        en, zh = wordings(code, "en", "zh")
        assert en.strip() and zh.strip() and en != zh
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), code


@pytest.mark.parametrize("points", [
    train_points(decay(n=5)), train_points(decay()), overfit_points(),
    train_points([2.3] * 40), train_points(decay(n=30) + [None]),
], ids=["warming_up", "healthy", "overfitting", "flat", "diverging"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rendered_wording_has_every_number_filled_in(points, lang):
    result = diagnose(points)
    for code in (result.title_code, result.advice_code):
        text = render(code, result.params, lang)
        assert "{" not in text and "}" not in text, text


def test_overfitting_advice_names_the_best_step():
    result = diagnose(overfit_points())
    assert "240" in render(result.advice_code, result.params, "en")
    assert "240" in render(result.advice_code, result.params, "zh")
