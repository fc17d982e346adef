"""The blind study's live dashboard, for the organiser: the study's state with Open / Pause / Close, each rater's
progress and last activity, and how far the raters agree so far; refreshed every few seconds by a timer. Its
heading names the two models compared.

Nothing here unblinds the study: the outcome for the candidate is shown only in the results panel.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gradio as gr
import pandas as pd

from engine import Studio
from ui.i18n import t
from ui.study_organise import chosen_study
from ui.study_results import agreement_lines
from ui.study_sides import sides_line, study_side_names
from ui.wiring import worded_errors

REFRESH_SECONDS = 3
STATE_BUTTONS = ("open", "paused", "closed")  # the states the organiser can set, one button each


@dataclass
class DashboardView:
    """The dashboard's components that handlers fill: the state line, one button per settable state (in
    `STATE_BUTTONS` order), the raters' table, the agreement line and the refresh timer."""

    state: Any
    buttons: list
    raters: Any
    agreement: Any
    timer: Any

    @property
    def outputs(self) -> list:
        """The outputs of every dashboard handler, in the API's order."""
        return [self.state, *self.buttons, self.raters, self.agreement, self.timer]


def _when(stamp: str | None) -> str:
    """An ISO-8601 UTC time as `YYYY-MM-DD HH:MM:SS UTC`, or '-' when there is none."""
    if not stamp:
        return "-"
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S UTC")


def rater_table(raters: list, lang: str) -> pd.DataFrame:
    """One row per rater from `Studio.rater_progress`: name, domain, done/total, last activity, revoked."""
    columns = [t(key, lang) for key in ("col_rater", "col_domain", "col_done", "col_last_active", "col_revoked")]
    rows = [[r.name, r.domain or "-", f"{r.done} / {r.total}", _when(r.last_active), "✓" if r.revoked else ""]
            for r in raters]
    return pd.DataFrame(rows, columns=columns)


def _idle(view: DashboardView, lang: str) -> dict:
    """The dashboard with no study chosen: empty, its buttons off and its timer stopped."""
    return {view.state: t("study_none", lang), **{button: gr.Button(interactive=False) for button in view.buttons},
            view.raters: rater_table([], lang), view.agreement: "", view.timer: gr.Timer(active=False)}


@worded_errors
def show_dashboard(studio: Studio, view: DashboardView, lang: str, study_id: int | None) -> dict:
    """Inputs: language, study. Outputs: the study's state and vote count with the two models it compares, the
    Open / Pause / Close buttons (the current state's is off), the raters' table, the agreement so far and the timer
    (running while a study is chosen)."""
    if study_id is None or study_id == "":
        return _idle(view, lang)
    study = studio.study(int(study_id))
    state = study["state"]
    lines = [t("dashboard_state", lang, state=t(f"study_state_{state}", lang), votes=study["votes"]),
             sides_line(study_side_names(study, lang), lang), t(f"dashboard_state_{state}", lang)]
    if state == "draft" and studio.generation_pending(study["id"]):
        lines.append(t("dashboard_generate_first", lang))
    agreement = agreement_lines(studio.study_statistics(study["id"])["agreement"], lang)
    buttons = {button: gr.Button(interactive=target != state and (target != "paused" or state == "open"))
               for button, target in zip(view.buttons, STATE_BUTTONS)}
    return {view.state: "\n\n".join(lines), **buttons,
            view.raters: rater_table(studio.rater_progress(study["id"]), lang),
            view.agreement: "\n\n".join(agreement) if agreement else t("dashboard_agreement_too_little", lang),
            view.timer: gr.Timer(active=True)}


@worded_errors
def set_state(studio: Studio, view: DashboardView, state: str, lang: str, study_id: int | None) -> dict:
    """`state` is open, paused or closed. Inputs: language, study. Outputs: the dashboard as `show_dashboard`
    fills it, in the new state (opening is refused, in words, while answers are still to be generated)."""
    study_id = chosen_study(study_id, lang)
    studio.set_study_state(study_id, state)
    return show_dashboard(studio, view, lang, study_id)
