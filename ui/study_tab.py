"""Blind study tab, the organiser's side: set up and pre-generate a study, invite raters (one link each, for the
rater portal), follow and open / pause / close it on a live dashboard, then unblind the results and export them.

A study compares two sides: the baseline (the base model unless another adapter or checkpoint is picked) and the
candidate adapter. From the results, "Improve with these votes" prepares a DPO run on the votes; "Compare with the
previous adapter" then sets up the next study.

This module lays the tab out and wires it; the handlers live in `ui.study_organise` (set-up), `ui.study_invite`
(raters and their links), `ui.study_dashboard` (state and progress), `ui.study_results` (the verdict, metrics
and exports) and `ui.study_loop` (votes to a DPO run, and the next study). Raters judge in the portal
(`ui.portal`), never here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui import forms, gen_settings, journey
from ui.chat_tab import MODEL_LANE
from ui.export_tab import report_for_study
from ui.i18n import LANG_CHOICES
from ui.page import Page
from ui.study_dashboard import REFRESH_SECONDS, STATE_BUTTONS, DashboardView, set_state, show_dashboard
from ui.study_invite import InviteView, invite_rater, renew_link, revoke_link, show_raters
from ui.study_loop import FollowupView, ImproveView, compare_with_previous, improve_with_votes
from ui.study_organise import (
    SetupView,
    create_study,
    default_criteria,
    generate_answers,
    held_out_questions,
    refresh_pickers,
    reword_criteria,
    reword_pickers,
)
from ui.study_results import ResultsView, automatic_metrics, export_study, unblind_results
from ui.study_sides import side_choices
from ui.wiring import bind

QUESTION_FILES = [".csv", ".jsonl", ".json", ".tsv", ".xlsx"]
STATE_API = {"open": "study_open", "paused": "study_pause", "closed": "study_close"}


@dataclass
class SetupLayout(SetupView):
    """The organiser's whole panel: the components handlers fill, the study's settings and the buttons."""

    name: Any
    upload: Any
    take_held_out: Any
    criteria: Any
    study_lang: Any
    show_reference: Any
    repeats: Any
    settings: list
    create: Any
    generate: Any
    follow_up: Any


@dataclass
class InviteLayout(InviteView):
    """The raters panel: the components handlers fill and the buttons."""

    invite: Any
    renew: Any
    revoke: Any


@dataclass
class ResultsLayout(ResultsView):
    """The organiser's results panel: the components handlers fill and the buttons."""

    unblind: Any
    automatic: Any
    export_csv: Any
    export_jsonl: Any
    export_pairs: Any
    report: Any
    improve: Any
    improved: Any  # a line saying what "Improve with these votes" prepared


def build(page: Page) -> None:
    """Lay out the study tab (set-up, study picker, raters, dashboard, results) and wire its events."""
    page.texts.add(gr.Markdown(), value="study_intro")
    setup = _setup_layout(page)
    invite = _invite_layout(page)
    dashboard = _dashboard_layout(page)
    results = _results_layout(page)
    _wire_setup(page, setup)
    _wire_invite(page, invite, setup.study)
    _wire_dashboard(page, dashboard, setup.study)
    _wire_results(page, results, setup.study)
    _wire_loop(page, setup, results)
    journey.next_button(page, "tab-export", "next_to_export", "next-export")


def _setup_layout(page: Page) -> SetupLayout:
    """The organiser's panel and, below it, the study picker every other panel uses."""
    texts = page.texts
    with texts.add(gr.Accordion(open=True, elem_id="study-organise"), label="study_organise"):
        with gr.Row():
            name = texts.add(gr.Textbox(elem_id="study-name"), label="study_name")
            questions_path = texts.add(gr.Textbox(elem_id="study-questions"), label="study_questions",
                                       info="study_questions_info")
            upload = texts.add(gr.File(file_types=QUESTION_FILES), label="dataset_upload")
        left, right = side_choices(page.studio, texts.lang)
        with gr.Row():
            baseline = texts.add(gr.Dropdown(**left, allow_custom_value=True, elem_id="study-baseline", scale=2),
                                 label="study_baseline", info="study_baseline_info")
            run = texts.add(gr.Dropdown(**right, allow_custom_value=True, elem_id="study-run", scale=2),
                            label="run", info="run_info")
            with gr.Column(scale=1, min_width=160):
                take_held_out = texts.add(gr.Button(elem_id="study-held-out"), value="study_held_out")
                follow_up = texts.add(gr.Button(elem_id="study-follow-up"), value="study_followup")
        with gr.Row():
            criteria = texts.add(gr.Textbox(value=default_criteria(texts.lang), elem_id="study-criteria"),
                                 label="study_criteria")
            repeats = texts.add(gr.Slider(0, 10, value=0, step=1, elem_id="study-repeats"), label="study_repeats",
                                info="study_repeats_info")
        with gr.Row():
            study_lang = texts.add(gr.Radio(choices=LANG_CHOICES, value=texts.lang, elem_id="study-lang"),
                                   label="study_lang", info="study_lang_info")
            show_reference = texts.add(gr.Checkbox(value=False, elem_id="study-show-reference"),
                                       label="study_show_reference", info="study_show_reference_info")
        settings = gen_settings.build(page, "study-gen-settings")
        with gr.Row():
            create = texts.add(gr.Button(variant="primary", elem_id="study-create"), value="study_create")
            generate = texts.add(gr.Button(elem_id="study-generate"), value="study_generate")
        info = gr.Markdown(elem_id="study-info")
    study = texts.add(gr.Dropdown(choices=[], allow_custom_value=True, elem_id="study-pick"), label="study_pick")
    return SetupLayout(baseline=baseline, run=run, questions_path=questions_path, info=info, study=study, name=name,
                       upload=upload, take_held_out=take_held_out, criteria=criteria, study_lang=study_lang,
                       show_reference=show_reference, repeats=repeats, settings=settings, create=create,
                       generate=generate, follow_up=follow_up)


def _invite_layout(page: Page) -> InviteLayout:
    """The raters panel: invite by name (and domain), the new link with its QR code, renew or revoke a link."""
    texts = page.texts
    with texts.add(gr.Accordion(open=True, elem_id="study-invite"), label="invite_panel"):
        texts.add(gr.Markdown(elem_id="invite-about"), value="invite_about")
        with gr.Row():
            name = texts.add(gr.Textbox(elem_id="invite-name", scale=2), label="invite_name")
            domain = texts.add(gr.Textbox(elem_id="invite-domain", scale=2), label="invite_domain",
                               info="invite_domain_info")
            invite = texts.add(gr.Button(variant="primary", elem_id="invite-add", scale=1), value="invite_add")
        with gr.Row():
            link = texts.add(gr.Textbox(interactive=False, buttons=["copy"], elem_id="invite-link", scale=3),
                             label="invite_link")
            qr = texts.add(gr.HTML(show_label=True, container=True, padding=True, js_on_load=None, min_height=240,
                                   elem_id="invite-qr", scale=1), label="invite_qr")
        info = gr.Markdown(elem_id="invite-info")
        with gr.Row():
            raters = texts.add(gr.Dropdown(choices=[], elem_id="invite-rater", scale=3), label="invite_rater")
            renew = texts.add(gr.Button(elem_id="invite-renew", scale=1), value="invite_renew")
            revoke = texts.add(gr.Button(variant="stop", elem_id="invite-revoke", scale=1), value="invite_revoke")
    return InviteLayout(name=name, domain=domain, raters=raters, link=link, qr=qr, info=info, invite=invite,
                        renew=renew, revoke=revoke)


def _dashboard_layout(page: Page) -> DashboardView:
    """The live dashboard: the state with its buttons, the raters' progress, the agreement so far, the timer."""
    texts = page.texts
    with texts.add(gr.Accordion(open=True, elem_id="study-dashboard"), label="dashboard_panel"):
        state = gr.Markdown(elem_id="study-state")
        with gr.Row():
            buttons = [texts.add(gr.Button(interactive=False, elem_id=f"study-set-{target}",
                                           variant="primary" if target == "open" else "secondary"),
                                 value=f"dashboard_{target}") for target in STATE_BUTTONS]
        raters = gr.Dataframe(interactive=False, elem_id="study-raters")
        agreement = gr.Markdown(elem_id="study-agreement")
        timer = gr.Timer(REFRESH_SECONDS, active=False)
    return DashboardView(state=state, buttons=buttons, raters=raters, agreement=agreement, timer=timer)


def _results_layout(page: Page) -> ResultsLayout:
    """The organiser's results panel: unblind, automatic metrics, chart, table, exports."""
    texts = page.texts
    with texts.add(gr.Accordion(open=False, elem_id="study-results"), label="study_results"):
        unblind = texts.add(gr.Button(elem_id="study-unblind"), value="study_unblind")
        summary = gr.Markdown(elem_id="study-summary")
        automatic = texts.add(gr.Button(elem_id="study-metrics"), value="study_metrics")
        metrics = gr.Markdown(elem_id="study-metrics-text")
        chart = gr.Plot(elem_id="study-chart")
        groups = gr.Dataframe(interactive=False, elem_id="study-groups")
        with gr.Row():
            export_csv = texts.add(gr.Button(elem_id="export-csv"), value="export_votes_csv")
            export_jsonl = texts.add(gr.Button(elem_id="export-jsonl"), value="export_votes_jsonl")
            export_pairs = texts.add(gr.Button(elem_id="export-pairs"), value="export_preferences")
            report = texts.add(gr.Button(elem_id="study-report"), value="report_button")
        exported = texts.add(gr.File(interactive=False, elem_id="study-exported"), label="editor_exported")
        improve = texts.add(gr.Button(variant="primary", elem_id="study-improve"), value="study_improve")
        improved = gr.Markdown(elem_id="study-improved")
    return ResultsLayout(summary=summary, chart=chart, groups=groups, metrics=metrics, exported=exported,
                         unblind=unblind, automatic=automatic, export_csv=export_csv, export_jsonl=export_jsonl,
                         export_pairs=export_pairs, report=report, improve=improve, improved=improved)


def _wire_setup(page: Page, view: SetupLayout) -> None:
    """The organiser's events: pickers on load (reworded with the page), the criteria's default words, upload,
    held-out questions, create, generate."""
    studio, lang = page.studio, page.language
    page.demo.load(bind(refresh_pickers, studio, view), [lang], [view.baseline, view.run, view.study],
                   api_visibility="private")
    for switch in (page.language_switch, page.tab_switch):  # reworded, and offering runs trained since
        switch.add(bind(reword_pickers, studio, view), [lang, view.baseline, view.run], [view.baseline, view.run])
    page.language_switch.add(bind(reword_criteria, studio, view.criteria), [lang, view.criteria], [view.criteria])
    view.upload.upload(bind(forms.take_upload, studio, view.questions_path), [lang, view.upload],
                       [view.questions_path], api_name="use_upload", api_visibility="private")
    view.take_held_out.click(bind(held_out_questions, studio, view), [lang, view.run], [view.questions_path, view.info],
                             api_name="study_held_out")
    view.create.click(bind(create_study, studio, view), [lang, view.name, view.questions_path, view.run, view.criteria,
                                                          view.study_lang, view.show_reference, view.repeats]
                      + view.settings + [view.baseline], [view.study, view.info], api_name="study_create")
    view.generate.click(bind(generate_answers, studio, view), [lang, view.study], [view.info],
                        api_name="study_generate", concurrency_id=MODEL_LANE)


def _wire_invite(page: Page, view: InviteLayout, study: gr.Dropdown) -> None:
    """The raters panel's events: a new study shows its raters; invite, renew and revoke."""
    studio, lang, public_url = page.studio, page.language, page.public_url
    study.change(bind(show_raters, studio, view), [lang, study], view.link_outputs, api_name="study_raters")
    view.invite.click(bind(invite_rater, studio, view, public_url), [lang, study, view.name, view.domain],
                      [view.name, view.domain, *view.link_outputs], api_name="study_invite")
    view.renew.click(bind(renew_link, studio, view, public_url), [lang, study, view.raters], view.link_outputs,
                     api_name="study_renew")
    view.revoke.click(bind(revoke_link, studio, view), [lang, study, view.raters], view.link_outputs,
                      api_name="study_revoke")


def _wire_dashboard(page: Page, view: DashboardView, study: gr.Dropdown) -> None:
    """The dashboard's events: a new study shows its dashboard, the timer refreshes it, the state buttons."""
    studio, lang = page.studio, page.language
    study.change(bind(show_dashboard, studio, view), [lang, study], view.outputs, api_name="study_dashboard")
    page.language_switch.add(bind(show_dashboard, studio, view), [lang, study], view.outputs)
    view.timer.tick(bind(show_dashboard, studio, view), [lang, study], view.outputs, api_visibility="private",
                    show_progress="hidden")
    for button, target in zip(view.buttons, STATE_BUTTONS):
        button.click(bind(set_state, studio, view, target), [lang, study], view.outputs, api_name=STATE_API[target])


def _wire_results(page: Page, view: ResultsLayout, study: gr.Dropdown) -> None:
    """The organiser's result events: unblind, automatic metrics, the three exports."""
    studio, lang = page.studio, page.language
    view.unblind.click(bind(unblind_results, studio, view), [lang, study], [view.summary, view.chart, view.groups],
                       api_name="study_results")
    view.automatic.click(bind(automatic_metrics, studio, view), [lang, study], [view.metrics],
                         api_name="study_metrics", concurrency_id=MODEL_LANE)
    for button, kind in ((view.export_csv, "csv"), (view.export_jsonl, "jsonl"), (view.export_pairs, "preferences")):
        button.click(bind(export_study, studio, view, kind), [lang, study], [view.exported],
                     api_name=f"study_export_{kind}")
    view.report.click(bind(report_for_study, studio), [lang, study], [view.exported], api_name="study_report",
                      concurrency_id=MODEL_LANE)


def _wire_loop(page: Page, setup: SetupLayout, results: ResultsLayout) -> None:
    """The loop's events: the votes of the chosen study to a DPO run on the form (opening the Training tab), and
    the next study of the chosen adapter against the adapter it continued."""
    studio, lang = page.studio, page.language
    improve = ImproveView(fields=page.form.fields, dataset_path=page.form.dataset_path, info=results.improved,
                          tabs=page.tabs)
    results.improve.click(bind(improve_with_votes, studio, improve), [lang, setup.study], improve.outputs,
                          api_name="study_improve")
    follow = FollowupView(name=setup.name, questions_path=setup.questions_path, baseline=setup.baseline,
                          run=setup.run, info=setup.info)
    setup.follow_up.click(bind(compare_with_previous, studio, follow), [lang, setup.run], follow.outputs,
                          api_name="study_followup")
