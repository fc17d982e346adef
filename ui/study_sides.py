"""The two sides a comparison names, in Chat and in a blind study: the baseline (the base model, any adapter or any
checkpoint) and the candidate (an adapter or a checkpoint), their pickers and the words that name them."""
from __future__ import annotations

import gradio as gr

from engine import BASE_CHOICE, Studio
from ui import present
from ui.i18n import t

# each side's key in a study's `sides` (in the order the pickers show them) and its name in the study's statistics
# and scores, kept from the time a study always compared the base model with an adapter
STATS_NAMES = (("baseline", "base"), ("candidate", "adapter"))
SIDE_KEYS = tuple(key for key, _name in STATS_NAMES)


def side_choices(studio: Studio, lang: str, baseline: str | None = None,
                 candidate: str | None = None) -> tuple[dict, dict]:
    """The choices and value of the baseline picker (the base model first, then every adapter and checkpoint) and
    of the candidate picker (every adapter and checkpoint), as `gr.Dropdown` arguments, worded in `lang`; each keeps
    its value when it is still offered, else the baseline falls back to the base model and the candidate to the
    newest adapter."""
    found = studio.adapter_choices()
    baselines, candidates = present.adapter_choices(found, lang, base=True), present.adapter_choices(found, lang)

    def kept(value: str | None, choices: list[tuple[str, str]], fallback: str | None) -> str | None:
        """`value` when it is one of `choices`, else `fallback`."""
        return value if value in {choice for _label, choice in choices} else fallback

    return ({"choices": baselines, "value": kept(baseline, baselines, BASE_CHOICE)},
            {"choices": candidates, "value": kept(candidate, candidates, candidates[0][1] if candidates else None)})


def side_pickers(studio: Studio, lang: str, baseline: str | None = None,
                 candidate: str | None = None) -> tuple[gr.Dropdown, gr.Dropdown]:
    """The baseline and candidate pickers' updates for a handler (`side_choices` as dropdowns)."""
    left, right = side_choices(studio, lang, baseline, candidate)
    return gr.Dropdown(**left), gr.Dropdown(**right)


def choice_name(studio: Studio, value: str | None, lang: str) -> str:
    """How a picker's value is named on the page: the base model, a run's final adapter or one of its checkpoints
    (a value the studio does not offer is shown as it was typed; no value, as the side an adapter takes)."""
    if not value:
        return t("side_adapter", lang)  # nothing picked yet (no run has an adapter): the side an adapter takes
    known = {choice.value: choice for choice in studio.adapter_choices()}
    return present.side_label(known.get(value, value), lang)


def study_side_names(study: dict, lang: str) -> dict[str, str]:
    """The names of a study's baseline and candidate (`study["sides"]`), worded in `lang`; a study without sides
    compared the base model with an adapter."""
    sides = study.get("sides") or {}
    fallback = {"baseline": t("side_base", lang), "candidate": t("side_adapter", lang)}
    return {key: present.side_label(sides[key], lang) if key in sides else fallback[key] for key in SIDE_KEYS}


def refuse_same_sides(studio: Studio, baseline: str | None, candidate: str | None, lang: str) -> None:
    """A worded `gr.Error`, naming the model, when both sides are the same one; no candidate yet is left to the
    engine to word."""
    if candidate and (baseline or BASE_CHOICE) == candidate:
        raise gr.Error(t("sides_same", lang, side=choice_name(studio, candidate, lang)))


def outcome_label(outcome: str, names: dict[str, str], lang: str) -> str:
    """An outcome for the candidate, naming the side that did better (a win: the candidate; a loss: the
    baseline); a tie or both bad as they are."""
    if outcome == "win":
        return t("outcome_side_win", lang, candidate=names["candidate"])
    if outcome == "loss":
        return t("outcome_side_loss", lang, baseline=names["baseline"])
    return t(f"outcome_{outcome}", lang)


def sides_line(names: dict[str, str], lang: str) -> str:
    """One line naming what is compared with what."""
    return t("sides_compared", lang, **names)
