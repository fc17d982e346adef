"""The blind study's rater handlers: begin (or continue) rating, vote, skip, and the item on screen.

Raters see only the question, the two answers and their progress: no model names, no timing, no
streaming order. Every vote is committed to SQLite at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import Studio
from ui.i18n import t
from ui.study_organise import MAX_CRITERIA, chosen_study
from ui.wiring import worded_errors

CHOICES = ("A", "B", "tie", "both_bad")


@dataclass
class RatingView:
    """The raters' components that handlers fill: who rates and the item on screen (session state), the
    progress line, the question, answers A and B, the choice, one score slider per criterion and side, the comment."""

    rater_id: Any
    item: Any  # (question id, repeat) of the item on screen
    progress: Any
    question: Any
    answer_a: Any
    answer_b: Any
    choice: Any
    scores_a: list
    scores_b: list
    comment: Any

    @property
    def outputs(self) -> list:
        """The outputs of every rater handler, in the API's order."""
        return [self.rater_id, self.item, self.progress, self.question, self.answer_a, self.answer_b, self.choice,
                *self.scores_a, *self.scores_b, self.comment]


def show_item(studio: Studio, view: RatingView, lang: str, study_id: int, who: int) -> dict:
    """Inputs: language, study, rater id. Outputs: `view.outputs`, showing the rater's next item (or a line
    saying there is none yet / none left)."""
    item = studio.next_item(study_id, who)
    if item is None:
        line = t("rate_not_ready" if studio.generation_pending(study_id) else "rate_done", lang)
        hidden = {slider: gr.Slider(visible=False) for slider in view.scores_a + view.scores_b}
        return {view.rater_id: who, view.item: None, view.progress: line, view.question: "", view.answer_a: "",
                view.answer_b: "", view.choice: gr.Radio(value=None), **hidden, view.comment: ""}
    criteria = item.criteria

    def slider(side: str, index: int) -> gr.Slider:
        """Side A's or B's score slider for the criterion at `index`, hidden when there is none."""
        shown = index < len(criteria)
        return gr.Slider(visible=shown, label=f"{side} · {criteria[index]}" if shown else "", value=3)

    sliders = {component: slider(side, index) for side, row in (("A", view.scores_a), ("B", view.scores_b))
               for index, component in enumerate(row)}
    return {view.rater_id: who, view.item: (item.question_id, item.repeat),
            view.progress: t("rate_progress", lang, done=item.done, total=item.total),
            view.question: f"### {item.prompt}", view.answer_a: item.answer_a, view.answer_b: item.answer_b,
            view.choice: gr.Radio(value=None), **sliders, view.comment: ""}


@worded_errors
def begin_rating(studio: Studio, view: RatingView, lang: str, study_id: int | None, who: str, secret: str) -> dict:
    """Inputs: language, study, rater name, password. Outputs: `view.outputs`, the first item to judge."""
    study_id = chosen_study(study_id, lang)
    if not studio.check_study_password(study_id, secret or None):
        raise gr.Error(t("study_wrong_password", lang))
    return show_item(studio, view, lang, study_id, studio.add_rater(study_id, who))


@worded_errors
def submit_vote(studio: Studio, view: RatingView, lang: str, study_id: int | None, who: int | None, item,
                chosen: str | None, note: str, *scores) -> dict:
    """Inputs: language, study, rater, item, choice, comment, the scores of A then of B (MAX_CRITERIA each).
    Outputs: `view.outputs`, the next item."""
    if who is None or item is None:
        raise gr.Error(t("rate_begin_first", lang))
    if not chosen:
        raise gr.Error(t("rate_choose", lang))
    study_id = chosen_study(study_id, lang)
    names = list(studio.study(study_id)["criteria"])
    given = {"A": dict(zip(names, scores[:len(names)])),
             "B": dict(zip(names, scores[MAX_CRITERIA:MAX_CRITERIA + len(names)]))} if names else None
    studio.vote(study_id, who, item[0], chosen, scores=given, comment=note or "", repeat=item[1])
    return show_item(studio, view, lang, study_id, who)


@worded_errors
def skip_item(studio: Studio, view: RatingView, lang: str, study_id: int | None, who: int | None, item) -> dict:
    """Inputs: language, study, rater, item. Outputs: `view.outputs`, the next item (the skipped one comes
    back later)."""
    if who is None or item is None:
        raise gr.Error(t("rate_begin_first", lang))
    study_id = chosen_study(study_id, lang)
    studio.skip_item(study_id, who, item[0], repeat=item[1])
    return show_item(studio, view, lang, study_id, who)
