"""The blind study's organiser handlers: the pickers (the two sides and the study), the criteria's default words,
held-out questions, creating and pre-generating a study."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import BASE_CHOICE, LANGS, Studio
from ui import gen_settings
from ui.i18n import t
from ui.study_sides import refuse_same_sides, side_pickers
from ui.wiring import worded_errors

MAX_CRITERIA = 5  # one pair of score sliders per criterion on the raters' screen
DEFAULTS = gen_settings.DEFAULTS


@dataclass
class SetupView:
    """The organiser's components that handlers fill (`baseline` and `run` pick the study's two sides, the
    candidate being `run`), and the study picker."""

    baseline: Any
    run: Any
    questions_path: Any
    info: Any  # a line for the organiser
    study: Any


def chosen_study(study_id: Any, lang: str) -> int:
    """The picked study's id; a worded `gr.Error` when no study is picked."""
    if study_id is None or study_id == "":
        raise gr.Error(t("study_none", lang))
    return int(study_id)


def study_choices(studio: Studio) -> list[tuple[str, int]]:
    """(label, id) for the study picker, newest first."""
    return [(f"{s['id']}: {s['name']}", s["id"]) for s in studio.list_studies()]


def refresh_pickers(studio: Studio, view: SetupView, lang: str) -> dict:
    """Input: language. Outputs: the baseline picker (the base model chosen, then every adapter and checkpoint),
    the adapter picker (final adapters and checkpoints, the newest chosen) and the study picker (the newest chosen)."""
    studies = study_choices(studio)
    return {**reword_pickers(studio, view, lang, BASE_CHOICE, None),
            view.study: gr.Dropdown(choices=studies, value=studies[0][1] if studies else None)}


def reword_pickers(studio: Studio, view: SetupView, lang: str, baseline: str | None, run_id: str | None) -> dict:
    """Inputs: language, the chosen baseline and adapter. Outputs: both pickers worded in the language, each keeping
    its choice while it is still offered."""
    left, right = side_pickers(studio, lang, baseline, run_id)
    return {view.baseline: left, view.run: right}


def default_criteria(lang: str) -> str:
    """The criteria box's default text in `lang` (the criteria a study is scored on unless the organiser types
    others; a study stores the names as they are written)."""
    return t("study_criteria_default", lang)


def reword_criteria(studio: Studio, view: Any, lang: str, criteria_text: str | None) -> dict:
    """Inputs: language, the criteria box. Output: the box in the language's words while it holds a language's
    default criteria; criteria the organiser typed are kept as they are. (`view` is the criteria box.)"""
    defaults = {_criteria_names(default_criteria(other)) for other in LANGS}
    return {view: default_criteria(lang) if _criteria_names(criteria_text) in defaults else gr.skip()}


def _criteria_names(criteria_text: str | None) -> tuple[str, ...]:
    """The criteria named in a comma-separated text (a Chinese comma as well), stripped, at most MAX_CRITERIA."""
    names = (criteria_text or "").replace("，", ",").split(",")
    return tuple(name.strip() for name in names if name.strip())[:MAX_CRITERIA]


@worded_errors
def held_out_questions(studio: Studio, view: SetupView, lang: str, run_id: str | None) -> dict:
    """Inputs: language, adapter choice. Outputs: the question file path, now a file of the run's
    held-out rows (prompt + reference), and a line for the organiser."""
    path = studio.held_out_questions_file(run_id or "")
    count = len(studio.studies_questions(path))
    return {view.questions_path: str(path), view.info: t("study_held_out_done", lang, count=count, path=path)}


@worded_errors
def create_study(studio: Studio, view: SetupView, lang: str, study_name: str, path: str, run_id: str | None,
                 criteria_text: str, study_lang: str | None, show_reference: bool, repeat_count: float,
                 new_tokens=DEFAULTS.max_new_tokens, temp=DEFAULTS.temperature, nucleus=DEFAULTS.top_p,
                 penalty=DEFAULTS.repetition_penalty, gen_seed=DEFAULTS.seed, system="",
                 baseline: str | None = BASE_CHOICE) -> dict:
    """Inputs: language, name, question file, adapter choice (the candidate), criteria (comma separated), the
    raters' language, whether raters see the reference answer, repeats, generation settings, the baseline (the base
    model unless another adapter or checkpoint is given). Outputs: the study picker with the new study (a draft)
    chosen, and a line for the organiser."""
    baseline = baseline or BASE_CHOICE
    refuse_same_sides(studio, baseline, run_id, lang)
    names = list(_criteria_names(criteria_text))
    params = gen_settings.params(new_tokens, temp, nucleus, penalty, gen_seed, system)
    study = studio.create_study(study_name, path or "", run_id or "", params, criteria=names or None,
                                repeats=int(repeat_count or 0), lang=study_lang or lang,
                                show_reference=bool(show_reference), baseline=baseline)
    return {view.study: gr.Dropdown(choices=study_choices(studio), value=study["id"]),
            view.info: t("study_created", lang, id=study["id"], count=study["questions"])}


@worded_errors
def generate_answers(studio: Studio, view: SetupView, lang: str, study_id: int | None,
                     progress=gr.Progress()) -> dict:
    """Inputs: language, study. Output: a line saying how many pairs were generated and how many were
    flagged. Resumable: only questions without answers are generated."""
    made, flagged = studio.generate_study(chosen_study(study_id, lang),
                                          progress=lambda done, total: progress((done, total)))
    return {view.info: t("study_generated", lang, count=made, flagged=flagged)}
