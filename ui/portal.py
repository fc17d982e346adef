"""The rater portal: the raters' own page at `/rate?invite=<token>`, apart from the organiser's studio.

A rater sees the question (and its reference when the study shows it), answers A and B side by side on a wide
screen and one above the other on a phone, both rendered as Markdown alike (HTML sanitised), the verdict,
score sliders per criterion, a comment, the progress bar and a line saying what was saved; Skip, Back (change
the previous answer) and a 中文/English switch. Keys: 1-4 choose the verdict, Enter submits. The page's only
Python events are the five named API endpoints in `API_NAMES`; the handlers live in `ui.portal_handlers`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from engine import MAX_COMMENT, Studio
from ui.i18n import LANG_CHOICES, Texts, t
from ui.portal_handlers import (
    CHOICES,
    DEFAULT_SCORE,
    SCORE_FIELDS,
    PortalView,
    rate_back,
    rate_begin,
    rate_language,
    rate_skip,
    rate_vote,
)
from ui.study_organise import MAX_CRITERIA
from ui.wiring import bind

PORTAL_PATH = "/rate"
API_NAMES = ("rate_begin", "rate_vote", "rate_skip", "rate_back", "rate_language")
ASSETS = Path(__file__).resolve().parent / "assets"
ANSWER_MIN_WIDTH = 360  # px: two answers side by side from about 760 px, one above the other on a phone


@dataclass
class PortalLayout(PortalView):
    """The whole page: the components handlers fill, the hidden invitation box (for API clients) and the
    Submit and Skip buttons."""

    invite: Any
    submit: Any
    skip: Any


def build_portal(studio: Studio, lang: str = "en") -> gr.Blocks:
    """The raters' page wired to `studio`; worded in `lang` until the invitation says the study's language."""
    texts = Texts(lang)
    with gr.Blocks(title=t("portal_page_title", lang), analytics_enabled=False) as demo:
        # the page's style and keyboard travel inside it, so they hold wherever the page is mounted
        gr.HTML(f"<style>{(ASSETS / 'portal.css').read_text(encoding='utf-8')}</style>",
                js_on_load=(ASSETS / "portal.js").read_text(encoding="utf-8"), elem_id="portal-assets")
        with gr.Column(elem_id="portal-page"):
            view = _layout(texts)
        _wire(demo, studio, view)
    return demo


def _layout(texts: Texts) -> PortalLayout:
    """The page's components, laid out: header and language switch, notice, the item, Back."""
    with gr.Row(equal_height=True):
        header = gr.Markdown(elem_id="portal-header")
        language = texts.add(gr.Radio(choices=LANG_CHOICES, value=texts.lang, elem_id="portal-language", scale=0,
                                      min_width=200), label="portal_language")
    notice = gr.Markdown(visible=False, elem_id="portal-notice")
    progress = gr.HTML(elem_id="portal-progress", js_on_load=None)  # outside the item: the thank-you shows them too
    saved = gr.Markdown(visible=False, elem_id="portal-saved")
    with gr.Column(visible=False, elem_id="portal-item") as item:
        texts.add(gr.Markdown(elem_id="portal-intro"), value="portal_intro")
        question = gr.Markdown(elem_id="portal-question")
        with texts.add(gr.Accordion(open=True, visible=False, elem_id="portal-reference"),
                       label="portal_reference") as reference:
            reference_text = gr.Markdown(elem_id="portal-reference-text")
        with gr.Row(equal_height=False):
            answer_a, scores_a = _side(texts, "a", "portal_answer_a")
            answer_b, scores_b = _side(texts, "b", "portal_answer_b")
        choice_keys = [(f"portal_choice_{choice}", choice) for choice in CHOICES]
        verdict = gr.Radio(choices=texts.worded_choices(choice_keys), elem_id="portal-choice")
        choice = texts.add_choices(texts.add(verdict, label="portal_choice"), choice_keys)
        comment = texts.add(gr.Textbox(lines=2, max_length=MAX_COMMENT, elem_id="portal-comment"),
                            label="portal_comment")
        with gr.Row():
            submit = texts.add(gr.Button(variant="primary", elem_id="portal-submit"), value="portal_submit")
            skip = texts.add(gr.Button(elem_id="portal-skip"), value="portal_skip")
    back = texts.add(gr.Button(visible=False, size="sm", elem_id="portal-back"), value="portal_back")
    return PortalLayout(token=gr.State(None), screen=gr.State(None), language=language, texts=texts, header=header,
                        notice=notice, item=item, progress=progress, saved=saved, question=question,
                        reference=reference, reference_text=reference_text, answer_a=answer_a, answer_b=answer_b,
                        choice=choice, scores_a=scores_a, scores_b=scores_b, comment=comment, back=back,
                        invite=gr.Textbox(visible=False, elem_id="portal-invite"), submit=submit, skip=skip)


def _side(texts: Texts, side: str, heading: str) -> tuple[gr.Markdown, list[gr.Slider]]:
    """One answer's column: its heading (the text key `heading`), the answer as Markdown and its score sliders.
    Both sides are built here alike, so they look the same."""
    with gr.Column(min_width=ANSWER_MIN_WIDTH, elem_id=f"portal-side-{side}"):
        texts.add(gr.Markdown(), value=heading)
        answer = gr.Markdown(elem_id=f"portal-answer-{side}", sanitize_html=True)
        sliders = [gr.Slider(1, 5, value=DEFAULT_SCORE, step=1, visible=False, elem_id=f"portal-score-{side}-{number}")
                   for number in range(1, MAX_CRITERIA + 1)]
    return answer, sliders


def _wire(demo: gr.Blocks, studio: Studio, view: PortalLayout) -> None:
    """The page's five events, each a named API endpoint (nothing else of the studio is reachable here)."""
    on_screen = [view.language, view.token, view.screen]
    demo.load(bind(rate_begin, studio, view), [view.language, view.invite], view.outputs, api_name="rate_begin")
    view.submit.click(bind(rate_vote, studio, view, fields=SCORE_FIELDS),
                      [*on_screen, view.choice, view.comment, *view.scores_a, *view.scores_b], view.shown,
                      api_name="rate_vote")
    view.skip.click(bind(rate_skip, studio, view), on_screen, view.shown, api_name="rate_skip")
    view.back.click(bind(rate_back, studio, view), on_screen, view.shown, api_name="rate_back")
    view.language.input(bind(rate_language, studio, view), on_screen, view.outputs, api_name="rate_language")
