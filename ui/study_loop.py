"""The loop from a blind study back to training and on to the next study, for the organiser: "Improve with these
votes" prepares a DPO run from the study's decided votes (continuing the study's adapter) on the run's form and
opens the Training tab; "Compare with the previous adapter" sets up the next study of a DPO adapter against the
adapter it continued."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import Studio
from ui import forms
from ui.i18n import t
from ui.study_organise import chosen_study
from ui.study_sides import choice_name, side_choices, study_side_names
from ui.wiring import worded_errors

TRAINING_TAB = "tab-training"  # the Training tab's id in the page's tabs


@dataclass
class ImproveView:
    """What "Improve with these votes" fills: the run's form (field name -> its input), the Dataset tab's path box,
    a line for the organiser, and the page's tabs (None on a page without them: the tab is then not switched)."""

    fields: dict[str, Any]
    dataset_path: Any
    info: Any
    tabs: Any = None

    @property
    def outputs(self) -> list:
        """The handler's outputs, in the API's order."""
        return [*self.fields.values(), self.dataset_path, self.info] + ([self.tabs] if self.tabs is not None else [])


@dataclass
class FollowupView:
    """What "Compare with the previous adapter" fills on the set-up panel."""

    name: Any
    questions_path: Any
    baseline: Any
    run: Any
    info: Any

    @property
    def outputs(self) -> list:
        """The handler's outputs, in the API's order."""
        return [self.name, self.questions_path, self.baseline, self.run, self.info]


@worded_errors
def improve_with_votes(studio: Studio, view: ImproveView, lang: str, study_id: int | None) -> dict:
    """Input: language, study. Outputs: the run's form filled for a DPO run on the study's decided votes (split
    questions, ties, both-bad and repeats left out, counted so that they add up to the votes) that continues the
    study's adapter, the preference file in the dataset path box, a line saying what was prepared (also shown as a
    notice), and the Training tab opened."""
    study_id = chosen_study(study_id, lang)
    config, counts = studio.prepare_dpo_from_study(study_id)
    study = studio.study(study_id)
    line = t("study_improve_done", lang, **counts, adapter=study_side_names(study, lang)["candidate"],
             beta=config.beta, lr=config.learning_rate, loss=config.loss_type)
    gr.Info(line)
    shown = {view.dataset_path: config.dataset_path, view.info: line,
             **dict(zip(view.fields.values(), forms.values_of(config, list(view.fields))))}
    if view.tabs is not None:
        shown[view.tabs] = gr.Tabs(selected=TRAINING_TAB)
    return shown


@worded_errors
def compare_with_previous(studio: Studio, view: FollowupView, lang: str, run_id: str | None) -> dict:
    """Input: language, the chosen adapter (a DPO run's, or `run@checkpoint-N`). Outputs: the set-up panel filled
    for the next study: its name, its question file, the adapter the run continued as the baseline and the run as
    the candidate, and a line saying what was set up (warning when these questions' votes trained the adapter)."""
    if not run_id:
        raise gr.Error(t("no_runs", lang))
    plan = studio.followup_study(run_id)
    baselines, candidates = side_choices(studio, lang)
    lines = [t("study_followup_done", lang, candidate=choice_name(studio, plan["choice"], lang),
               baseline=choice_name(studio, plan["baseline"], lang), path=plan["questions_path"])]
    if plan["questions_seen_in_training"]:
        lines.append(t("study_followup_seen", lang))
    return {view.name: plan["name"], view.questions_path: str(plan["questions_path"]),
            view.baseline: gr.Dropdown(choices=baselines["choices"], value=plan["baseline"]),
            view.run: gr.Dropdown(choices=candidates["choices"], value=plan["choice"]), view.info: "\n\n".join(lines)}
