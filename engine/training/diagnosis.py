"""A plain-language reading of a training run's curves, the way practitioners read them.

The fine-tuning guides read a loss curve like this: smoothly falling is healthy; jumping up and down
without coming down means the learning rate is too high; flat means the data is not what the model
is trained on (wrong columns) or the learning rate is too low; NaN or a blow-up means the run is
diverging; eval loss rising while the train loss keeps falling means overfitting.

`diagnose(points)` takes the payloads of a run's log events (`LogEvent.payload()`, see
`engine.training.events`): train points carry "loss" (and usually "grad_norm"), eval points carry
"eval_loss"; a None or NaN value means the trainer reported a non-finite number. It returns a
`Diagnosis` whose `title_code` and `advice_code` are worded in `engine.locales`, with `params` filling
in the numbers.

The statistics are robust on purpose: a curve's "level" at a place is the median of a short window of
raw losses there (one spike does not move it, and unlike an EMA it does not lag), and the variability
is a median of step-to-step changes, so a noisy but clearly falling curve is not called oscillating.
Checks run in this order and the first that matches wins: diverging, (too few points to judge),
overfitting, oscillating, flat, healthy.

A DPO run (its points carry TRL's rewards) is read by its rewards instead, as the DPO guides read them: the
margin (chosen minus rejected reward) growing with a reward accuracy above one half means the model learns to
prefer the chosen answers; the margin growing while the chosen answers' own reward falls means it
gets there mostly by making every answer less likely, drifting away from the starting adapter (raise beta or
lower the learning rate); neither means it is not learning the preferences (yet).

Once a run has ended (done or stopped), `diagnose(points, finished=True)` words the same reading as a result: how
the (held-out) loss moved from the first point to the last, and what to do with the adapter now, not "let it finish".

`smooth(values)` is TensorBoard's smoothing (an EMA with bias correction), for the "smoothed loss"
line drawn over the raw curve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from statistics import median
from typing import Any

KINDS = ("warming_up", "healthy", "oscillating", "flat", "diverging", "overfitting",
         "dpo_learning", "dpo_drifting", "dpo_not_learning")

# Fewer train-loss points than this: too early to judge (a NaN is judged at once).
MIN_POINTS = 8
# Window of raw losses whose median is the curve's level at the start, middle and end of the run:
# this fraction of the points, at least LEVEL_WINDOW_MIN.
LEVEL_WINDOW_FRACTION = 0.1
LEVEL_WINDOW_MIN = 3

# diverging: the loss level at the end is more than this fraction above its level at the start ...
DIVERGE_RISE = 0.5
# ... or one of the last GRAD_RECENT grad norms is more than GRAD_EXPLODE times the run's median grad
# norm (only the recent ones: a single early spike that settled is common and harmless).
GRAD_EXPLODE = 10.0
GRAD_RECENT = 3
GRAD_MIN_POINTS = 5

# overfitting: at least OVERFIT_MIN_EVALS eval points, the last OVERFIT_RISES evaluations each rose,
# the last is more than OVERFIT_MARGIN above the best, and the train loss fell since the best eval.
OVERFIT_MIN_EVALS = 3
OVERFIT_RISES = 2
OVERFIT_MARGIN = 0.05

# oscillating: median |step-to-step change| / median loss above OSCILLATION_VARIABILITY, and the net
# drop (start level to end level, as a fraction) smaller than that variability, i.e. the loss moves
# more from one logged step to the next than it has come down over the whole run.
OSCILLATION_VARIABILITY = 0.15

# flat: a run of at least FLAT_MIN_POINTS whose level fell by less than FLAT_LAST_HALF_DROP over the
# last half and by less than FLAT_TOTAL_DROP overall. A shorter run that has not fallen by
# FLAT_TOTAL_DROP yet is still warming up: too short to call flat, too soon to call healthy.
FLAT_MIN_POINTS = 20
FLAT_LAST_HALF_DROP = 0.02
FLAT_TOTAL_DROP = 0.05

# DPO: fewer reward points than this are too early to judge; the margin "grows" when its level at the end is more
# than DPO_MARGIN_GROWTH above its level at the start (rewards are beta x log-ratios: 0 at the start), the
# chosen reward "falls" when its end level is more than DPO_CHOSEN_FALL below its start level, and learning needs
# an accuracy above DPO_ACCURACY. A level is the median of a quarter of the points (DPO runs are short).
DPO_MIN_POINTS = 4
DPO_MARGIN_GROWTH = 0.01
DPO_CHOSEN_FALL = 0.01
DPO_ACCURACY = 0.5

_EPS = 1e-12


@dataclass(frozen=True)
class Diagnosis:
    """One reading of a run: `kind` (one of KINDS) and the numbers its wording needs. A finished run's reading
    (`finished`) speaks of the result: its title says how the loss moved from the first to the last point
    (`measured`: "heldout" when the run was evaluated, "train" otherwise, "" for a DPO run, read by its rewards)
    and its advice says what to do with the result instead of what to do while the run trains."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    measured: str = ""

    @property
    def title_code(self) -> str:
        """The locale key of the title: `diagnosis_<kind>`, or `diagnosis_result_<measured>` for a finished run."""
        return f"diagnosis_result_{self.measured}" if self.finished and self.measured else f"diagnosis_{self.kind}"

    @property
    def advice_code(self) -> str:
        """The locale key of the advice: `diagnosis_<kind>_advice`, `diagnosis_<kind>_done_advice` once finished."""
        return f"diagnosis_{self.kind}_done_advice" if self.finished else f"diagnosis_{self.kind}_advice"


def smooth(values: list[float | None], weight: float = 0.9) -> list[float]:
    """TensorBoard-style smoothing: an exponential moving average divided by (1 - weight**n), so the
    first points are not pulled towards 0. A non-finite value (or None) is passed through as NaN and
    does not disturb the average. `weight` 0 returns the values; it must be in [0, 1)."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out: list[float] = []
    last, count = 0.0, 0
    for value in values:
        if not _finite(value):
            out.append(math.nan)
            continue
        last = last * weight + (1.0 - weight) * float(value)
        count += 1
        out.append(last / (1.0 - weight ** count))
    return out


def diagnose(points: list[dict[str, Any]], finished: bool = False) -> Diagnosis:
    """Read a run's log points (oldest first) and say what the curves show (a DPO run's by its rewards); for a
    `finished` run (done or stopped), worded as its result (see `Diagnosis`)."""
    found = _read_curves(points)
    if not finished:
        return found
    if any("rewards_margins" in p for p in points):  # a DPO run: read by its rewards, no loss numbers
        return replace(found, finished=True)
    return as_result(found, points)


def as_result(found: Diagnosis, points: list[dict[str, Any]]) -> Diagnosis:
    """A finished run's reading: `found`, with the first and last held-out loss (the training loss when the run
    was not evaluated twice) as `first` and `last`."""
    held_out = [float(p["eval_loss"]) for p in points if _finite(p.get("eval_loss"))]
    losses, measured = (held_out, "heldout") if len(held_out) >= 2 else (
        [float(p["loss"]) for p in points if _finite(p.get("loss"))], "train")
    if len(losses) < 2:
        return replace(found, finished=True, measured="short", params={**found.params, "points": len(losses)})
    numbers = {"first": f"{losses[0]:.3f}", "last": f"{losses[-1]:.3f}"}
    return replace(found, params={**found.params, **numbers}, finished=True, measured=measured)


def _read_curves(points: list[dict[str, Any]]) -> Diagnosis:
    """What the curves show, as the module docstring reads them (a DPO run's by its rewards)."""
    if any("rewards_margins" in p for p in points):
        return diagnose_preferences(points)
    train = [(_step(p, i), p["loss"]) for i, p in enumerate(points) if "loss" in p]
    evals = [(_step(p, i), p["eval_loss"]) for i, p in enumerate(points) if "eval_loss" in p]
    grads = [(_step(p, i), p["grad_norm"]) for i, p in enumerate(points) if "grad_norm" in p]

    for series in (train, grads, evals):
        bad = next((step for step, value in series if not _finite(value)), None)
        if bad is not None:
            return Diagnosis("diverging", {"step": bad})

    n = len(train)
    if n < MIN_POINTS:
        return Diagnosis("warming_up", {"points": n, "needed": MIN_POINTS})

    steps = [step for step, _ in train]
    losses = [float(value) for _, value in train]
    window = max(LEVEL_WINDOW_MIN, int(n * LEVEL_WINDOW_FRACTION))
    start, end = median(losses[:window]), median(losses[-window:])
    first = max(0, n // 2 - window // 2)
    middle = median(losses[first:first + window])
    drop = _fall(start, end)

    if -drop > DIVERGE_RISE:
        return Diagnosis("diverging", {"step": steps[-1]})
    if len(grads) >= GRAD_MIN_POINTS:
        typical = median(float(g) for _, g in grads)
        for step, g in grads[-GRAD_RECENT:]:
            if float(g) > GRAD_EXPLODE * max(typical, _EPS):
                return Diagnosis("diverging", {"step": step})

    overfit = _overfitting(train, [(s, float(v)) for s, v in evals], window)
    if overfit is not None:
        return overfit

    variability = _variability(losses)
    if variability > OSCILLATION_VARIABILITY and drop < variability:
        return Diagnosis("oscillating", {"swing_pct": round(variability * 100)})

    if drop < FLAT_TOTAL_DROP:
        if n < FLAT_MIN_POINTS:
            return Diagnosis("warming_up", {"points": n, "needed": FLAT_MIN_POINTS})
        if _fall(middle, end) < FLAT_LAST_HALF_DROP:
            return Diagnosis("flat", {"points": n, "change_pct": round(abs(drop) * 100)})

    return Diagnosis("healthy", {"drop_pct": max(0, round(drop * 100))})


def diagnose_preferences(points: list[dict[str, Any]]) -> Diagnosis:
    """Read a DPO run's reward points (oldest first): learning, drifting or not learning (see the module docstring)."""
    rewarded = [(_step(p, i), p) for i, p in enumerate(points) if "rewards_margins" in p]
    for step, point in rewarded:
        if not all(_finite(point.get(key)) for key in ("loss", "rewards_margins") if key in point):
            return Diagnosis("diverging", {"step": step})
    n = len(rewarded)
    if n < DPO_MIN_POINTS:
        return Diagnosis("warming_up", {"points": n, "needed": DPO_MIN_POINTS})
    window = max(1, n // 4)

    def level(key: str, end: bool) -> float:
        values = [float(p[key]) for _s, p in rewarded if _finite(p.get(key))]
        return median((values[-window:] if end else values[:window]) or [0.0])

    margin_start, margin = level("rewards_margins", False), level("rewards_margins", True)
    chosen_start, chosen = level("rewards_chosen", False), level("rewards_chosen", True)
    accuracy = level("rewards_accuracies", True)
    params = {"margin": f"{margin:.3g}", "chosen": f"{chosen:.3g}", "accuracy_pct": round(accuracy * 100)}
    growing = margin > margin_start + DPO_MARGIN_GROWTH
    if growing and chosen < chosen_start - DPO_CHOSEN_FALL:
        return Diagnosis("dpo_drifting", params)
    if growing and accuracy > DPO_ACCURACY:
        return Diagnosis("dpo_learning", params)
    return Diagnosis("dpo_not_learning", params)


def _overfitting(train: list[tuple[int, Any]], evals: list[tuple[int, float]], window: int) -> Diagnosis | None:
    if len(evals) < OVERFIT_MIN_EVALS:
        return None
    values = [v for _, v in evals]
    tail = values[-(OVERFIT_RISES + 1):]
    if not all(later > earlier for earlier, later in zip(tail, tail[1:])):
        return None
    best_index = min(range(len(values)), key=values.__getitem__)
    best_step, best = evals[best_index]
    if values[-1] <= best * (1.0 + OVERFIT_MARGIN) or best_index == len(values) - 1:
        return None
    before = [float(v) for s, v in train if s <= best_step][-window:]
    after = [float(v) for s, v in train if s > best_step][-window:]
    if not before or not after or median(after) >= median(before):
        return None  # the train loss is not falling either: that is not overfitting
    return Diagnosis("overfitting", {"best_eval_step": best_step,
                                     "rise_pct": round(-_fall(best, values[-1]) * 100)})


def _variability(losses: list[float]) -> float:
    """Median absolute step-to-step change relative to the median loss."""
    changes = [abs(b - a) for a, b in zip(losses, losses[1:])]
    return median(changes) / max(abs(median(losses)), _EPS)


def _fall(before: float, after: float) -> float:
    """How much `after` is below `before`, as a fraction of `before` (negative when it rose)."""
    return (before - after) / max(abs(before), _EPS)


def _step(point: dict[str, Any], index: int) -> int:
    step = point.get("step")
    return step if isinstance(step, int) else index


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
