"""Blind study tab: an organiser sets up and pre-generates a study; raters judge answers A and B
without knowing which model wrote which; the organiser unblinds the results and exports them.

This module lays the tab out and wires it; the handlers live in `ui.study_organise` (set-up),
`ui.study_rate` (the raters' screen) and `ui.study_results` (the verdict, metrics and exports).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui import forms, gen_settings
from ui.chat_tab import MODEL_LANE
from ui.page import Page
from ui.study_organise import (
    MAX_CRITERIA,
    SetupView,
    create_study,
    generate_answers,
    held_out_questions,
    refresh_pickers,
)
from ui.study_rate import CHOICES, RatingView, begin_rating, skip_item, submit_vote
from ui.study_results import ResultsView, automatic_metrics, export_study, unblind_results
from ui.wiring import bind

QUESTION_FILES = [".csv", ".jsonl", ".json", ".tsv", ".xlsx"]


@dataclass
class SetupLayout(SetupView):
    """The organiser's whole panel: the components handlers fill, the study's settings and the buttons."""

    name: Any
    upload: Any
    take_held_out: Any
    criteria: Any
    password: Any
    repeats: Any
    settings: list
    create: Any
    generate: Any


@dataclass
class RatingLayout(RatingView):
    """The raters' whole panel: the components handlers fill, the rater's name and password, the buttons."""

    rater: Any
    password: Any
    begin: Any
    submit: Any
    skip: Any


@dataclass
class ResultsLayout(ResultsView):
    """The organiser's results panel: the components handlers fill and the buttons."""

    unblind: Any
    automatic: Any
    export_csv: Any
    export_jsonl: Any
    export_pairs: Any


def build(page: Page) -> None:
    """Lay out the study tab (set-up, study picker, rating, results) and wire its events."""
    page.texts.add(gr.Markdown(), value="study_intro")
    setup = _setup_layout(page)
    rating = _rating_layout(page)
    results = _results_layout(page)
    _wire_setup(page, setup)
    _wire_rating(page, rating, setup.study)
    _wire_results(page, results, setup.study)


def _setup_layout(page: Page) -> SetupLayout:
    """The organiser's panel and, below it, the study picker everyone uses."""
    texts = page.texts
    with texts.add(gr.Accordion(open=True, elem_id="study-organise"), label="study_organise"):
        with gr.Row():
            name = texts.add(gr.Textbox(elem_id="study-name"), label="study_name")
            questions_path = texts.add(gr.Textbox(elem_id="study-questions"), label="study_questions",
                                       info="study_questions_info")
            upload = texts.add(gr.File(file_types=QUESTION_FILES), label="dataset_upload")
        with gr.Row():
            run = texts.add(gr.Dropdown(choices=[], allow_custom_value=True, elem_id="study-run", scale=3),
                            label="run", info="run_info")
            take_held_out = texts.add(gr.Button(elem_id="study-held-out", scale=1), value="study_held_out")
        with gr.Row():
            criteria = texts.add(gr.Textbox(value="terminology, logic, format", elem_id="study-criteria"),
                                 label="study_criteria")
            password = texts.add(gr.Textbox(type="password", elem_id="study-password"), label="study_password",
                                 info="study_password_info")
            repeats = texts.add(gr.Slider(0, 10, value=0, step=1, elem_id="study-repeats"), label="study_repeats",
                                info="study_repeats_info")
        settings = gen_settings.build(page, "study-gen-settings")
        with gr.Row():
            create = texts.add(gr.Button(variant="primary", elem_id="study-create"), value="study_create")
            generate = texts.add(gr.Button(elem_id="study-generate"), value="study_generate")
        info = gr.Markdown(elem_id="study-info")
    study = texts.add(gr.Dropdown(choices=[], allow_custom_value=True, elem_id="study-pick"), label="study_pick")
    return SetupLayout(run=run, questions_path=questions_path, info=info, study=study, name=name, upload=upload,
                       take_held_out=take_held_out, criteria=criteria, password=password, repeats=repeats,
                       settings=settings, create=create, generate=generate)


def _rating_layout(page: Page) -> RatingLayout:
    """The raters' panel: who rates, the item (question, A, B), the choice, scores and comment."""
    texts = page.texts
    with texts.add(gr.Accordion(open=True, elem_id="study-rate"), label="study_rate"):
        with gr.Row():
            rater = texts.add(gr.Textbox(elem_id="rater-name"), label="rater_name")
            password = texts.add(gr.Textbox(type="password", elem_id="rater-password"), label="study_password")
            begin = texts.add(gr.Button(variant="primary", elem_id="rater-begin"), value="rater_begin")
        progress = gr.Markdown(elem_id="rate-progress")
        question = gr.Markdown(elem_id="rate-question")
        with gr.Row():
            answer_a = texts.add(gr.Textbox(lines=8, interactive=False, elem_id="answer-a"), label="answer_a")
            answer_b = texts.add(gr.Textbox(lines=8, interactive=False, elem_id="answer-b"), label="answer_b")
        choice_keys = [(f"choice_{c}", c) for c in CHOICES]
        choice = texts.add_choices(texts.add(gr.Radio(choices=texts.worded_choices(choice_keys), elem_id="rate-choice"),
                                             label="rate_choice"), choice_keys)
        scores = {}
        for side in ("a", "b"):
            with gr.Row():
                scores[side] = [gr.Slider(1, 5, value=3, step=1, visible=False, elem_id=f"score-{side}-{i}")
                                for i in range(MAX_CRITERIA)]
        comment = texts.add(gr.Textbox(elem_id="rate-comment"), label="rate_comment")
        with gr.Row():
            submit = texts.add(gr.Button(variant="primary", elem_id="rate-submit"), value="rate_submit")
            skip = texts.add(gr.Button(elem_id="rate-skip"), value="rate_skip")
    return RatingLayout(rater_id=gr.State(None), item=gr.State(None), progress=progress, question=question,
                        answer_a=answer_a, answer_b=answer_b, choice=choice, scores_a=scores["a"],
                        scores_b=scores["b"], comment=comment, rater=rater, password=password, begin=begin,
                        submit=submit, skip=skip)


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
        exported = texts.add(gr.File(interactive=False, elem_id="study-exported"), label="editor_exported")
    return ResultsLayout(summary=summary, chart=chart, groups=groups, metrics=metrics, exported=exported,
                         unblind=unblind, automatic=automatic, export_csv=export_csv, export_jsonl=export_jsonl,
                         export_pairs=export_pairs)


def _wire_setup(page: Page, view: SetupLayout) -> None:
    """The organiser's events: pickers on load, upload, held-out questions, create, generate."""
    studio, lang = page.studio, page.language
    page.demo.load(bind(refresh_pickers, studio, view), [lang], [view.run, view.study], api_visibility="private")
    # the upload words nothing, so its language is fixed: the endpoint keeps its one input, the file
    view.upload.upload(bind(forms.take_upload, studio, view.questions_path, "en"), [view.upload],
                       [view.questions_path], api_name="use_upload", api_visibility="private")
    view.take_held_out.click(bind(held_out_questions, studio, view), [lang, view.run], [view.questions_path, view.info],
                             api_name="study_held_out")
    view.create.click(bind(create_study, studio, view), [lang, view.name, view.questions_path, view.run, view.criteria,
                                                          view.password, view.repeats] + view.settings,
                      [view.study, view.info], api_name="study_create")
    view.generate.click(bind(generate_answers, studio, view), [lang, view.study], [view.info],
                        api_name="study_generate", concurrency_id=MODEL_LANE)


def _wire_rating(page: Page, view: RatingLayout, study: gr.Dropdown) -> None:
    """The raters' events: begin, vote, skip; each shows the next item."""
    studio, lang, item = page.studio, page.language, [view.rater_id, view.item]
    view.begin.click(bind(begin_rating, studio, view), [lang, study, view.rater, view.password], view.outputs,
                     api_name="study_begin")
    view.submit.click(bind(submit_vote, studio, view), [lang, study, *item, view.choice, view.comment, *view.scores_a,
                                                         *view.scores_b], view.outputs, api_name="study_vote")
    view.skip.click(bind(skip_item, studio, view), [lang, study, *item], view.outputs, api_name="study_skip")


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
