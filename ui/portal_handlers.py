"""The rater portal's handlers: open an invitation, vote, skip, go back to change an answer, switch language.

Every handler resolves the rater from the invitation token (kept server side in a `gr.State`) on each call, so
a revoked link stops at once; the study and rater ids never come from the browser. What is on screen is kept
server side too (a `Screen`): which item, its number in the rater's sequence, the answer just saved. Nothing
shown names a model, a run, an adapter or a timing: only the question, the two answers and the progress.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from engine import EngineError, RaterPass, RatingItem, Studio
from ui.i18n import Texts, t
from ui.study_organise import MAX_CRITERIA
from ui.wiring import worded_errors

CHOICES = ("A", "B", "tie", "both_bad")
DEFAULT_SCORE = 3
SCORE_FIELDS = [f"score_{side}_{number}" for side in ("a", "b") for number in range(1, MAX_CRITERIA + 1)]
INVALID, DONE, ITEM = "invalid", "done", "item"
# a study that is not open shows the engine's refusal as its screen
STATE_NOTICES = {"draft": "study_not_open", "paused": "study_paused", "closed": "study_closed"}


@dataclass(frozen=True)
class Screen:
    """What the rater has on screen: `kind` (invalid, draft, paused, closed, done or item), the study and rater
    names (header), progress, and for an item its (question id, repeat) key, criteria, its number in the rater's
    sequence (`position`) and whether it was judged before (shown again by Back). `saved` is the number of the
    question whose answer was just saved."""

    kind: str
    study: str = ""
    rater: str = ""
    done: int = 0
    total: int = 0
    position: int = 0
    key: tuple[int, bool] | None = None
    criteria: tuple[str, ...] = ()
    judged: bool = False
    saved: int | None = None


@dataclass
class PortalView:
    """The portal's components that handlers fill: the token and the screen (session state), the language switch,
    the page's worded components (`texts`), the header, a notice (study not open, thank you, bad link), the item
    column (progress, saved line, question, reference, answers, verdict, score sliders per side, comment) and
    the Back button."""

    token: Any
    screen: Any
    language: Any
    texts: Texts
    header: Any
    notice: Any
    item: Any
    progress: Any
    saved: Any
    question: Any
    reference: Any  # the accordion around `reference_text`, hidden unless the study shows references
    reference_text: Any
    answer_a: Any
    answer_b: Any
    choice: Any
    scores_a: list
    scores_b: list
    comment: Any
    back: Any

    @property
    def shown(self) -> list:
        """The outputs of vote, skip and back: the screen and everything it fills."""
        return [self.screen, self.header, self.notice, self.item, self.progress, self.saved, self.question,
                self.reference, self.reference_text, self.answer_a, self.answer_b, self.choice, *self.scores_a,
                *self.scores_b, self.comment, self.back]

    @property
    def outputs(self) -> list:
        """The outputs of begin and of a language switch: the token, the switch, every worded component and the
        screen (each component once)."""
        return list(dict.fromkeys([self.token, self.language, *self.texts.components, *self.shown]))


@worded_errors
def rate_begin(studio: Studio, view: PortalView, lang: str, invite: str, request: gr.Request) -> dict:
    """Inputs: the page's language, an invitation token (for API clients; a browser leaves it empty and the
    page's `?invite=` is read). Outputs: `view.outputs`: the token kept, the page worded in the study's language
    and the rater's next item, or the screen for a study not open, a rater who is done, or a bad link."""
    token = (invite or "").strip() or (request.query_params.get("invite", "") if request else "").strip()
    rater = _pass_or_none(studio, token)
    if rater is None:
        return _merged({view.token: None}, _wording(view, lang), _show(view, Screen(INVALID), None, lang))
    screen, item = _next_screen(studio, rater)
    return _merged({view.token: token, view.language: gr.update(value=rater.lang)}, _wording(view, rater.lang),
                   _show(view, screen, item, rater.lang))


def _notice_unless_open(handler: Callable) -> Callable:
    """A rating handler (vote, skip, back) that shows the study's notice screen instead when the study is not open
    (paused, closed or draft since the page was opened): checked before the handler runs and again when the
    engine refuses, so a page left open never keeps offering an item that cannot be saved."""

    @functools.wraps(handler)
    def guarded(studio: Studio, view: PortalView, lang: str, token: str | None, *rest: Any) -> dict:
        try:
            if studio.rater_for_invitation(token or "").state not in STATE_NOTICES:
                return handler(studio, view, lang, token, *rest)
        except EngineError as error:
            if error.code not in STATE_NOTICES.values():
                raise
        return _show(view, *_next_screen(studio, studio.rater_for_invitation(token or "")), lang)
    return guarded


@worded_errors
@_notice_unless_open
def rate_vote(studio: Studio, view: PortalView, lang: str, token: str | None, screen: Screen | None,
              choice: str | None, comment: str, *scores) -> dict:
    """Inputs: language, token, screen, the verdict (A, B, tie, both_bad), comment, the scores of A then of B
    (MAX_CRITERIA each; those beyond the study's criteria are ignored). Outputs: `view.shown`: the next item
    with a line saying which question's answer was saved. A changed answer supersedes the earlier one; nothing
    is saved when the study is no longer open (its notice screen is shown)."""
    rater = studio.rater_for_invitation(token or "")
    shown = _item_on(screen, lang)
    if choice not in CHOICES:
        raise gr.Error(t("portal_choose", lang))
    names = list(shown.criteria)
    # passed on as given: the engine refuses a score that is not a whole number from 1 to 5, worded
    given = {"A": dict(zip(names, scores[:len(names)])),
             "B": dict(zip(names, scores[MAX_CRITERIA:MAX_CRITERIA + len(names)]))} if names else None
    question_id, repeat = shown.key
    studio.vote(rater.study_id, rater.rater_id, question_id, choice, scores=given, comment=(comment or "").strip(),
                repeat=repeat)
    return _show(view, *_next_screen(studio, rater, saved=shown.position), lang)


@worded_errors
@_notice_unless_open
def rate_skip(studio: Studio, view: PortalView, lang: str, token: str | None, screen: Screen | None) -> dict:
    """Inputs: language, token, screen. Outputs: `view.shown`: the next item (or the study's notice screen when
    it is no longer open). A new item goes to the back of the rater's queue; an earlier answer shown by Back is
    kept as it was."""
    rater = studio.rater_for_invitation(token or "")
    shown = _item_on(screen, lang)
    if not shown.judged:
        question_id, repeat = shown.key
        studio.skip_item(rater.study_id, rater.rater_id, question_id, repeat=repeat)
    return _show(view, *_next_screen(studio, rater), lang)


@worded_errors
@_notice_unless_open
def rate_back(studio: Studio, view: PortalView, lang: str, token: str | None, screen: Screen | None) -> dict:
    """Inputs: language, token, screen. Outputs: `view.shown`: the item the rater judged before the one on
    screen (or their latest, from the thank-you screen) with their answer filled in, to change it; the study's
    notice screen instead when it is no longer open."""
    rater = studio.rater_for_invitation(token or "")
    if screen is None or screen.kind not in (ITEM, DONE):
        raise gr.Error(t("portal_back_none", lang))
    item = studio.previous_item(rater.study_id, rater.rater_id, before=screen.key)
    if item is None:
        raise gr.Error(t("portal_back_none", lang))
    earlier = _item_screen(rater, item, screen.position - 1, judged=True)
    return _show(view, earlier, item, lang)


@worded_errors
def rate_language(studio: Studio, view: PortalView, lang: str, token: str | None, screen: Screen | None) -> dict:
    """Inputs: the language chosen, token, screen. Outputs: `view.outputs`: the page and the screen's lines
    reworded (the verdict, scores and comment being entered stay), or the bad-link screen for a revoked link."""
    if _pass_or_none(studio, token) is None:
        return _merged(_wording(view, lang), _show(view, Screen(INVALID), None, lang))
    return _merged(_wording(view, lang), _worded(view, screen, lang) if screen is not None else {})


def _pass_or_none(studio: Studio, token: str | None) -> RaterPass | None:
    """The `RaterPass` of `token`, or None when the link is missing, unknown or revoked."""
    try:
        return studio.rater_for_invitation(token or "")
    except EngineError as error:
        if error.code != "invite_unknown":
            raise
        return None


def _item_on(screen: Screen | None, lang: str) -> Screen:
    """The screen when it shows an item; a worded `gr.Error` otherwise."""
    if screen is None or screen.kind != ITEM:
        raise gr.Error(t("portal_nothing_shown", lang))
    return screen


def _item_screen(rater: RaterPass, item: RatingItem, position: int, saved: int | None = None,
                 judged: bool = False) -> Screen:
    """The screen of `item` for `rater`, numbered `position` in the rater's sequence."""
    return Screen(ITEM, rater.study_name, rater.name, item.done, item.total, position,
                  (item.question_id, item.repeat), tuple(item.criteria), judged, saved)


def _next_screen(studio: Studio, rater: RaterPass, saved: int | None = None) -> tuple[Screen, RatingItem | None]:
    """The rater's next screen and its item (None when there is none): the study's state when it is not open,
    the next item, or the thank-you screen when every item is judged."""
    if rater.state in STATE_NOTICES:
        return Screen(rater.state, rater.study_name, rater.name), None
    item = studio.next_item(rater.study_id, rater.rater_id)
    if item is not None:
        return _item_screen(rater, item, item.done + 1, saved), item
    mine = next(p for p in studio.rater_progress(rater.study_id) if p.rater_id == rater.rater_id)
    return Screen(DONE, rater.study_name, rater.name, mine.done, mine.total, mine.done + 1, saved=saved), None


def _show(view: PortalView, screen: Screen, item: RatingItem | None, lang: str) -> dict:
    """Updates of `view.shown` for `screen` and its item (None when there is none), worded in `lang`."""
    return _merged(_filled(view, screen, item), _worded(view, screen, lang))


def _filled(view: PortalView, screen: Screen, item: RatingItem | None) -> dict:
    """The item's content (question, reference, answers) and, for an answer shown again, what the rater gave."""
    given = (item.given if item is not None else None) or {}
    given_scores = given.get("scores") or {}
    names = screen.criteria

    def slider(side: str, index: int) -> dict:
        """Side A's or B's score slider for the criterion at `index`, hidden when there is none."""
        if index >= len(names):
            return gr.update(visible=False, label="", value=DEFAULT_SCORE)
        value = (given_scores.get(side) or {}).get(names[index], DEFAULT_SCORE)
        return gr.update(visible=True, label=names[index], value=value)

    sliders = {component: slider(side, index) for side, row in (("A", view.scores_a), ("B", view.scores_b))
               for index, component in enumerate(row)}
    reference = item.reference if item is not None else None
    return {view.screen: screen, view.item: gr.update(visible=item is not None),
            view.question: gr.update(value=item.prompt if item is not None else ""),
            view.reference: gr.update(visible=bool(reference)), view.reference_text: gr.update(value=reference or ""),
            view.answer_a: gr.update(value=item.answer_a if item is not None else ""),
            view.answer_b: gr.update(value=item.answer_b if item is not None else ""),
            view.choice: gr.update(value=given.get("choice")), **sliders,
            view.comment: gr.update(value=given.get("comment") or ""),
            view.back: gr.update(visible=screen.kind in (ITEM, DONE) and screen.position > 1)}


def _worded(view: PortalView, screen: Screen, lang: str) -> dict:
    """The screen's lines in `lang`: header, notice, progress bar and the saved (or changing) line."""
    notice = {INVALID: t("invite_unknown", lang), DONE: t("portal_done", lang)}.get(screen.kind, "")
    if screen.kind in STATE_NOTICES:
        notice = t(STATE_NOTICES[screen.kind], lang, name=screen.study)
    header = f"## {screen.study}\n\n{t('portal_hello', lang, name=screen.rater)}" if screen.kind != INVALID else ""
    if screen.kind == ITEM and screen.judged:
        saved = t("portal_changing", lang, number=screen.position)
    else:
        saved = t("portal_saved", lang, number=screen.saved) if screen.saved else ""
    counted = screen.kind in (ITEM, DONE)
    return {view.header: gr.update(value=header, visible=bool(header)),
            view.notice: gr.update(value=notice, visible=bool(notice)),
            view.progress: gr.update(value=_progress_bar(screen.done, screen.total, lang) if counted else "",
                                     visible=counted),
            view.saved: gr.update(value=saved, visible=bool(saved))}


def _progress_bar(done: int, total: int, lang: str) -> str:
    """The progress bar's HTML: a `<progress>` and "Answered 3 / 10" in `lang`."""
    return (f'<div class="portal-progress"><progress value="{done}" max="{max(total, 1)}"></progress>'
            f'<span>{t("portal_progress", lang, done=done, total=total)}</span></div>')


def _wording(view: PortalView, lang: str) -> dict:
    """Updates that word every registered component of the page in `lang`."""
    return _merged(*({component: update} for component, update in zip(view.texts.components,
                                                                     view.texts.updates(lang))))


def _merged(*parts: dict) -> dict:
    """The updates of `parts` in one dict; two updates of the same component are combined (later ones win)."""
    merged: dict = {}
    for part in parts:
        for component, update in part.items():
            known = merged.get(component)
            merged[component] = {**known, **update} if isinstance(known, dict) and isinstance(update, dict) \
                else update
    return merged
